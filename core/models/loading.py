"""Loading a registered model and scoring rows with it, exactly as it was trained.

The model is LightGBM's own text format and the card is JSON: both are checked against
their content hash and neither is executed, so loading a model never runs code from
the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl

from mlyard.core.models import registry
from mlyard.core.models.card import ModelCard, read_card
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.model_text import check_model_text
from mlyard.core.models.single_row import SingleRowPredictor
from mlyard.core.workspace import Workspace
from mlyard.storage.models_store import ModelVersion


@dataclass
class LoadedModel:
    version: ModelVersion
    booster: lgb.Booster
    card: ModelCard
    spec: FeatureSpec
    single_row: SingleRowPredictor | None = field(init=False)

    def __post_init__(self) -> None:
        self.single_row = SingleRowPredictor.for_booster(self.booster)

    def predict(self, frame: pl.DataFrame, threads: int | None = None) -> np.ndarray:
        """Probabilities (binary: of the positive class), class probabilities or values."""
        return self.predict_matrix(encode(frame, self.spec), threads)

    def predict_matrix(self, matrix: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The same from an already encoded matrix. `threads=1` for a server: LightGBM's
        thread team spins up for every call, which for a few rows costs more than the
        trees and competes with every other request for the cores."""
        if threads is None:
            return np.asarray(self.booster.predict(matrix))
        if threads == 1 and self.single_row is not None and matrix.shape[0] == 1:
            return self.single_row.predict(matrix)
        return np.asarray(self.booster.predict(matrix, num_threads=threads))


def load_model(ws: Workspace, ref: str) -> LoadedModel:
    version = registry.resolve(ws, ref)
    text = ws.objects.read_bytes(version.model_hash).decode()
    check_model_text(text, f"{version.model}/{version.version}")
    card = read_card(ws.objects.read_bytes(version.card_hash),
                     f"{version.model}/{version.version}")
    return LoadedModel(version, lgb.Booster(model_str=text), card, card.spec)
