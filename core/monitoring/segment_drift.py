"""`mlyard drift --by SEGMENT`: each group's new data against the same group's training
data, with the statistics a whole-data drift report uses.

Drift in one region can vanish in the whole: a group that is a fifth of the rows and
shifts by a lot moves the overall distribution by little. Here each group gets a
reference sketched from the model's training rows of that group, and the current rows
of the group are compared with it column by column, as `mlyard drift` compares all rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlyard.core.config import segment_columns
from mlyard.core.data import versions
from mlyard.core.data.checked_file import read_checked
from mlyard.core.errors import UsageError
from mlyard.core.models import registry
from mlyard.core.models.loading import load_model
from mlyard.core.models.reference import reference_sketch
from mlyard.core.monitoring.drift_reports import compare
from mlyard.core.tracking.segments import MIN_ROWS, groups_of, segment_name
from mlyard.core.workspace import Workspace
from mlyard.storage import models_store


@dataclass(frozen=True)
class GroupDrift:
    """One group: the rows each side stands on and the features that drifted."""

    group: str
    reference_rows: int
    current_rows: int
    judged: int  # features with enough rows for their test
    drifted: list[str]
    too_few: bool  # under MIN_ROWS rows on either side: not judged

    @property
    def share(self) -> float:
        return len(self.drifted) / self.judged if self.judged else 0.0


@dataclass(frozen=True)
class SegmentDrift:
    segment: str
    model: str
    version: int
    current: str  # what was compared: a dataset version or a file
    groups: list[GroupDrift]  # most drifted first, then the groups too small to judge


def drift_by(ws: Workspace, segment: str, current: str | None = None,
             file: Path | None = None, reference: str = "champion") -> SegmentDrift:
    """Each group of `segment` (one of `[monitor] segments`) in a dataset version (the
    newest by default) or a file, against the model's training rows of the group."""
    known = {segment_name(columns): columns for columns in segment_columns(ws.config)}
    if segment not in known:
        raise UsageError(f"--by {segment!r}: not one of [monitor] segments "
                         f"({', '.join(known) or 'none set'})")
    columns = known[segment]
    version = registry.resolve(ws, reference)
    model = load_model(ws, str(version.version))
    spec, task = model.spec, model.card.task
    with ws.catalog.session() as con:
        inputs = models_store.run_inputs(con, version.run_id)
    training = versions.load_versions(ws, [used.ref for used in inputs]).filter(
        pl.col(spec.target).is_not_null())
    if file is not None:
        frame, label = read_checked(ws, file).rows, f"file {file}"
    else:
        chosen = versions.select_versions(ws, [current] if current else None)[-1]
        frame, label = versions.read_versions(ws, [chosen]), chosen.ref
    for side, rows in (("training data", training), (label, frame)):
        missing = [name for name in columns if name not in rows.columns]
        if missing:
            raise UsageError(f"--by {segment}: the {side} has no column {missing[0]!r}")
    trained = dict(groups_of(training, columns))
    overrides = {name: (c.method, c.threshold) for name, c in ws.config.monitor.columns.items()}
    min_rows = {str(k): v for k, v in ws.config.monitor.min_rows.items()}
    found = []
    for group, index in groups_of(frame, columns):
        reference_index = trained.get(group)
        reference_rows = 0 if reference_index is None else len(reference_index)
        if reference_rows < MIN_ROWS or len(index) < MIN_ROWS:
            found.append(GroupDrift(group, reference_rows, len(index), 0, [], True))
            continue
        assert reference_index is not None
        before = training[reference_index]
        sketch = reference_sketch(before, spec, model.predict(before), task)
        drift = compare(sketch, frame[index], spec, overrides, min_rows=min_rows)
        found.append(GroupDrift(group, reference_rows, len(index),
                                sum(c.reliable for c in drift),
                                [c.column for c in drift if c.drifted], False))
    found.sort(key=lambda g: (g.too_few, -g.share, g.group))
    return SegmentDrift(segment, version.model, version.version, label, found)
