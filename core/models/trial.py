"""A model from elsewhere scores this project's own rows in a child process first.

LightGBM aborts or crashes the whole process (SIGABRT, SIGSEGV) on some malformed model
text, and only when a row reaches the bad node. So before an import, a sync or a
server's swap lets a model in, its text is held to LightGBM's own shape
(core/models/model_text.py), and then a child process loads it and scores real rows of
this project (up to TRIAL_ROWS of the newest data, encoded with the model's own features)
and a few edge rows (all zeros, all missing, huge values). A model that would crash a
scorer crashes the child instead and is refused with one line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlyard.core.data import versions
from mlyard.core.errors import MlyardError
from mlyard.core.models.card import read_card
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.model_text import ModelRefused, check_model_text
from mlyard.core.workspace import Workspace

TRIAL_ROWS = 2000

_TRIAL = """
import sys
import lightgbm, numpy
for number, (model, rows) in enumerate(zip(sys.argv[1::2], sys.argv[2::2])):
    print("mlyard-trial", number, flush=True)  # which one, if the next load kills us
    booster = lightgbm.Booster(model_file=model)
    booster.predict(numpy.load(rows))
"""


@dataclass(frozen=True)
class Candidate:
    """A model text not yet trusted, with the card that came with it."""

    path: Path
    label: str  # how a refusal names it
    card: bytes  # the JSON card: its feature spec encodes the trial rows


def check_loads(ws: Workspace, candidate: Candidate, timeout: float = 120.0) -> None:
    """Raise ModelRefused naming the candidate unless it loads and scores this project's
    rows in a child process."""
    check_all_load(ws, [candidate], timeout)


def check_all_load(ws: Workspace, candidates: list[Candidate], timeout: float = 120.0) -> None:
    """`check_loads` for several models in one child (one start-up, not one each); the
    first that fails is the one named."""
    with tempfile.TemporaryDirectory(prefix="mlyard-trial-") as scratch:
        arguments: list[str] = []
        for number, candidate in enumerate(candidates):
            check_model_text(candidate.path.read_text(encoding="utf-8", errors="replace"),
                             candidate.label)
            rows = Path(scratch) / f"{number}.npy"
            np.save(rows, trial_rows(ws, spec_of(candidate)))
            arguments += [str(candidate.path), str(rows)]
        try:  # bytes out: a dying LightGBM prints anything
            child = subprocess.run([sys.executable, "-c", _TRIAL, *arguments],
                                   capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            labels = " and ".join(c.label for c in candidates)
            raise ModelRefused(f"{labels}: loading took over {timeout:g}s; refused") from None
    if child.returncode != 0:
        raise ModelRefused(_refusal(child, candidates))


def trial_rows(ws: Workspace, spec: FeatureSpec) -> np.ndarray:
    """Rows to score: the project's newest data as the model encodes it (none when the
    project has no data yet or lacks the model's columns: the edge rows remain), then
    all zeros, all missing, and huge values either way."""
    width = len(spec.features)
    edges = np.array([np.zeros(width), np.full(width, np.nan), np.full(width, 1e30),
                      np.full(width, -1e30)])
    try:
        [newest] = versions.select_versions(ws, window=1)
        frame = versions.read_versions(ws, [newest])
        if frame.height > TRIAL_ROWS:
            frame = frame.sample(n=TRIAL_ROWS, seed=0)
        real = encode(frame, spec)
    except MlyardError:
        return edges
    return np.vstack([real, edges])


def spec_of(candidate: Candidate) -> FeatureSpec:
    """The candidate's feature spec, or one line refusing a card that has none."""
    return read_card(candidate.card, candidate.label).spec


def _refusal(child: subprocess.CompletedProcess[bytes], candidates: list[Candidate]) -> str:
    """Which candidate failed (the last number the child printed) and how."""
    started = [line.split()[1] for line in child.stdout.decode(errors="replace").splitlines()
               if line.startswith("mlyard-trial ")]
    label = candidates[int(started[-1]) if started else 0].label
    if child.returncode < 0:
        how = f"killed the process that scored with it ({signal.Signals(-child.returncode).name})"
    else:
        lines = child.stderr.decode(errors="replace").strip().splitlines()
        how = f"cannot score this project's rows: {lines[-1][:300] if lines else child.returncode}"
    return f"{label}: the model {how}; refused"
