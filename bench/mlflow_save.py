"""Save an mlyard model in MLflow's format, for the serving comparison only.

Run with the benchmark's own MLflow venv: `bench/.mlflow-venv/bin/python
bench/mlflow_save.py MODEL.txt OUT_DIR [ROWS.json]`. With ROWS.json (a
`dataframe_records` body), the model gets a signature inferred from those rows, so the
server enforces its input schema, as MLflow's documentation recommends. mlyard itself
never imports MLflow.
"""

import json
import sys

import lightgbm
import mlflow.lightgbm
import pandas as pd
from mlflow.models import infer_signature

booster = lightgbm.Booster(model_file=sys.argv[1])
signature = None
if len(sys.argv) > 3:
    with open(sys.argv[3]) as handle:
        rows = pd.DataFrame(json.load(handle)["dataframe_records"]).astype("float64")
    signature = infer_signature(rows, booster.predict(rows))
mlflow.lightgbm.save_model(booster, sys.argv[2], signature=signature)
