"""Save an mlyard model in MLflow's format, for the serving comparison only.

Run with the benchmark's own MLflow venv: `bench/.mlflow-venv/bin/python
bench/mlflow_save.py MODEL.txt OUT_DIR`. mlyard itself never imports MLflow.
"""

import sys

import lightgbm
import mlflow.lightgbm

mlflow.lightgbm.save_model(lightgbm.Booster(model_file=sys.argv[1]), sys.argv[2])
