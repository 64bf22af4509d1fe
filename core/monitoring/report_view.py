"""A drift report as every face reads it: the CLI's table and `--json`, the HTML page and
the Monitoring screen decode one typed view, stored in the catalog as the same JSON."""

from __future__ import annotations

import msgspec

from mlyard.core.monitoring.drift_stats import Chart


class ColumnView(msgspec.Struct, kw_only=True):
    """One column's test in a report (a feature, the prediction or the target)."""

    column: str
    kind: str  # numeric | categorical
    method: str
    statistic: float | None  # None when the test could not give a finite figure
    threshold: float
    drifted: bool
    reliable: bool = True  # False: too few values for `method` to say anything
    present: int = 0  # current values that are not missing
    psi: float | None = None
    psi_level: str = "none"
    rows: int = 0
    null_share: float = 0.0
    chart: Chart = msgspec.field(default_factory=Chart)
    unseen: dict[str, int] = msgspec.field(default_factory=dict)  # levels never seen: rows
    importance: float | None = None  # the feature's share of the model's gain


class CurrentData(msgspec.Struct):
    kind: str  # dataset | served | file
    label: str
    rows: int


class ReportView(msgspec.Struct, kw_only=True):
    """One drift report, as stored in the catalog and printed by `--json`."""

    report_id: int | None  # None until stored
    ts: float
    model: str
    version: int
    reference_run: str
    current: CurrentData
    headline: str = ""
    drift_share: float
    drift_share_threshold: float
    dataset_drift: bool
    severity: str  # none | moderate | severe
    drifted: list[str]
    drifted_gain_share: float | None = None
    features: list[ColumnView]
    prediction: ColumnView | None = None
    target: ColumnView | None = None
    quality: list[str] = msgspec.field(default_factory=list)

    @property
    def columns(self) -> list[ColumnView]:
        """Features, then the prediction and the target where the report has them."""
        return [*self.features, *(c for c in (self.prediction, self.target) if c)]


def decode(detail: str | bytes, report_id: int) -> ReportView:
    """A stored report's detail (written by any earlier mlyard: later fields default)."""
    view = msgspec.json.decode(detail, type=ReportView)
    view.report_id = report_id
    return view
