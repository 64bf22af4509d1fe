"""Loading a registered model and scoring rows with it, exactly as it was trained.

The model is LightGBM's own text format and the card is JSON: both are checked against
their content hash and neither is executed, so loading a model never runs code from
the workspace.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from mlyard.core.models import registry
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.model_text import ModelRefused as ModelRefused  # raised here too
from mlyard.core.models.model_text import check_model_text
from mlyard.core.models.single_row import SingleRowPredictor
from mlyard.core.workspace import Workspace
from mlyard.storage.models_store import ModelVersion


@dataclass
class LoadedModel:
    version: ModelVersion
    booster: lgb.Booster
    card: dict[str, Any]
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


# LightGBM aborts the whole process (SIGABRT) on some malformed model text, so a model
# from outside is first loaded, and asked for one prediction, in a child process.
_TRIAL = """
import sys
import lightgbm, numpy
for number, path in enumerate(sys.argv[1:]):
    print("mlyard-trial", number, flush=True)  # which one, if the next load kills us
    booster = lightgbm.Booster(model_file=path)
    booster.predict(numpy.zeros((1, booster.num_feature())))
"""


def check_loads(path: Path, label: str, timeout: float = 120.0) -> None:
    """Load the LightGBM text at `path` in a child process; raise ModelRefused naming
    `label` when the child fails or dies, so that no server or scorer of ours does."""
    check_all_load([(path, label)], timeout)


def check_all_load(models: list[tuple[Path, str]], timeout: float = 120.0) -> None:
    """`check_loads` for several models in one child (one start-up, not one each); the
    first that fails is the one named. Each text is first read here for the shape
    LightGBM does not check (core/models/model_text.py), which no trial row may reach."""
    for path, label in models:
        check_model_text(path.read_text(encoding="utf-8", errors="replace"), label)
    try:
        child = subprocess.run([sys.executable, "-c", _TRIAL, *(str(p) for p, _ in models)],
                               capture_output=True, timeout=timeout)  # bytes: see below
    except subprocess.TimeoutExpired:
        labels = " and ".join(label for _, label in models)
        raise ModelRefused(f"{labels}: loading took over {timeout:g}s; refused") from None
    if child.returncode == 0:
        return
    # A dying LightGBM prints anything: bytes, and the last number the child printed.
    started = [line.split()[1] for line in child.stdout.decode(errors="replace").splitlines()
               if line.startswith("mlyard-trial ")]
    label = models[int(started[-1]) if started else 0][1]
    if child.returncode < 0:
        how = f"killed the process that loaded it ({signal.Signals(-child.returncode).name})"
    else:
        lines = child.stderr.decode(errors="replace").strip().splitlines()
        how = f"cannot be loaded: {lines[-1] if lines else f'exit {child.returncode}'}"
    raise ModelRefused(f"{label}: the model {how}; refused")


def load_model(ws: Workspace, ref: str) -> LoadedModel:
    version = registry.resolve(ws, ref)
    text = ws.objects.read_bytes(version.model_hash).decode()
    check_model_text(text, f"{version.model}/{version.version}")
    card = json.loads(ws.objects.read_bytes(version.card_hash))
    return LoadedModel(version, lgb.Booster(model_str=text), card,
                       FeatureSpec.from_json(card["spec"]))
