"""Loading a registered model and scoring rows with it, exactly as it was trained.

The model is LightGBM's own text format and the card is JSON: both are checked against
their content hash and neither is executed, so loading a model never runs code from
the workspace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from mlyard.core.models import registry
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.workspace import Workspace
from mlyard.storage.models_store import ModelVersion


@dataclass
class LoadedModel:
    version: ModelVersion
    booster: lgb.Booster
    card: dict[str, Any]
    spec: FeatureSpec

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Probabilities (binary: of the positive class), class probabilities or values."""
        return np.asarray(self.booster.predict(encode(frame, self.spec)))


def load_model(ws: Workspace, ref: str) -> LoadedModel:
    version = registry.resolve(ws, ref)
    text = ws.objects.read_bytes(version.model_hash).decode()
    card = json.loads(ws.objects.read_bytes(version.card_hash))
    return LoadedModel(version, lgb.Booster(model_str=text), card,
                       FeatureSpec.from_json(card["spec"]))
