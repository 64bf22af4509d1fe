"""The names of the files a training run stores, in one place: the trainer writes them;
the registry, reproduce, the drift reference, bundles and the UI read them."""

from __future__ import annotations

MODEL = "model.txt"  # LightGBM text format, never a pickle
MODEL_CARD = "model_card.json"  # features, task, classes: what serving checks against
REPRODUCE = "reproduce.json"  # everything `mlyard reproduce` needs
FEATURE_IMPORTANCE = "feature_importance.json"
PARAM_IMPORTANCE = "param_importance.json"  # a tuning study's parent run
REFERENCE = "reference.json"  # the drift reference sketch
SEGMENTS = "segments.json"  # holdout figures per group of each segment, and fairness
