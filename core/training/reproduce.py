"""`mlyard reproduce RUN`: train again from what a run recorded and say whether the model
and its metrics came out identical.

On the CPU a deterministic LightGBM run is identical bit for bit. On a GPU it is not
expected to be: the OpenCL learner sums histograms in single precision, in an order the
device chooses. A GPU run is reproduced when every holdout metric comes out within
GPU_TOLERANCE (relative) of the original's; the model file is compared and reported
but does not decide it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from mlyard.core.config import Config
from mlyard.core.errors import UsageError
from mlyard.core.tracking import artifacts
from mlyard.core.training import trainer
from mlyard.core.training.device import wants_gpu
from mlyard.core.workspace import Workspace
from mlyard.storage import runs_store

GPU_TOLERANCE = 1e-3


class MetricChange(NamedTuple):
    before: float | None  # the original run's
    after: float | None  # the replay's


@dataclass
class Reproduction:
    original_run: str
    new_run: str
    original_model: str
    new_model: str
    metric_differences: dict[str, MetricChange]
    tolerance: float | None = None  # GPU runs: how far a metric may move (relative)

    @property
    def model_identical(self) -> bool:
        return self.original_model == self.new_model

    @property
    def identical(self) -> bool:
        return self.model_identical and not self.metric_differences

    @property
    def reproduced(self) -> bool:
        """Identical (CPU), or every metric within the tolerance (GPU)."""
        if self.tolerance is None:
            return self.identical
        return all(before is not None and after is not None
                   and abs(after - before) <= self.tolerance * max(1.0, abs(before))
                   for before, after in self.metric_differences.values())


def reproduce(ws: Workspace, run_ref: str,
              on_iteration: trainer.ProgressCallback | None = None) -> Reproduction:
    """Replay a training run's config, params, seed and dataset versions as a new run."""
    with ws.catalog.session() as con:
        run_id = runs_store.resolve_run_id(con, run_ref, ws.project)
        hashes = runs_store.artifact_hashes(con, run_id)
        original_metrics = runs_store.latest_metrics_for(con, [run_id])[run_id]
    if artifacts.REPRODUCE not in hashes or artifacts.MODEL not in hashes:
        raise UsageError(f"run {run_id[:8]} has no reproducibility record; only "
                         "`mlyard train` runs can be reproduced")
    record = json.loads(ws.objects.read_bytes(hashes[artifacts.REPRODUCE]))
    config = msgspec.convert(record["config"], Config)
    config = msgspec.structs.replace(
        config, registry=msgspec.structs.replace(config.registry, auto_register=False))
    refs = [item["ref"] for item in record["datasets"]]
    training = trainer.plan(ws, refs, record["overrides"], record["seed"], config)
    for version, item in zip(training.versions, record["datasets"], strict=True):
        if version.snapshot_hash != item["snapshot_blake3"]:
            raise UsageError(f"dataset version {version.ref} is not the one run {run_id[:8]} "
                             "was trained on (its snapshot hash differs)")
    result = trainer.train(ws, training, name=f"reproduce-{run_id[:8]}",
                         on_iteration=on_iteration, tags={"mlyard.reproduces": run_id})
    differences: dict[str, MetricChange] = {}
    for key, value in result.metrics.items():
        before = original_metrics.get(f"holdout.{key}")
        if before != value:
            differences[f"holdout.{key}"] = MetricChange(before, value)
    return Reproduction(run_id, result.run_id, hashes[artifacts.MODEL], result.model_hash,
                        differences, GPU_TOLERANCE if wants_gpu(record["params"]) else None)
