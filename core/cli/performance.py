"""`mlyard feedback` and `performance`: live metrics from late labels.

Kept apart from the drift commands so `feedback`, which cron runs as each delivery of
labels lands, starts without loading LightGBM and SciPy (about a second)."""

from __future__ import annotations

from pathlib import Path

import click

from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.monitoring import performance


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--window", default="1d", show_default=True,
              help="The time window metrics are computed over: 1h, 1d, 7d.")
@JSON_OPTION
@click.pass_obj
def feedback(obj: Context, path: Path, window: str, as_json: bool) -> None:
    """Join late labels to served predictions; the model's real metrics per window.

    FILE has the id and target columns; rows join by id to logged predictions."""
    result = performance.feedback(obj.ws, path, window)
    if as_json:
        output.print_json(result)
        return
    output.stdout.print(f"{result.matched:,} of {result.labels:,} labels matched a logged "
                        "prediction", markup=False)
    if result.unseen:
        shown = ", ".join(f"{label!r} ({rows:,} rows)" for label, rows in
                          list(result.unseen.items())[:8])
        output.stderr.print(f"warning: labels of classes the model never saw, not scored: "
                            f"{shown}; retrain on data that has them", markup=False)
    _print_windows(result.windows)
    for note in result.notes:
        output.stderr.print(f"note: {note}", markup=False)
    for alert in result.alerts:
        output.stderr.print(f"alert (segment): {alert}", markup=False)


@click.command("performance")
@click.option("--by", "segment", metavar="SEGMENT",
              help="Per group of a segment of [monitor] segments (region, or region+plan).")
@JSON_OPTION
@click.pass_obj
def performance_cmd(obj: Context, segment: str | None, as_json: bool) -> None:
    """Live metrics per window, from every `mlyard feedback` so far."""
    if segment is not None:
        _print_by_segment(performance.by_segment(obj.ws, segment), as_json)
        return
    windows = performance.history(obj.ws)
    if as_json:
        output.print_json(windows)
        return
    _print_windows(windows)


def _print_by_segment(rows: list[performance.SegmentRow], as_json: bool) -> None:
    if as_json:
        output.print_json(rows)
        return
    keys = sorted({k for row in rows for k in row.metrics})
    output.print_table(["from", "version", "group", "rows", *keys],
                       [(output.when(row.start), row.version, row.group, row.rows,
                         *(row.metrics.get(k) if not row.too_few else "too few rows"
                           if k == keys[0] else "" for k in keys)) for row in rows])


def _print_windows(windows: list[performance.Window]) -> None:
    keys = sorted({k for w in windows for k in w.metrics})
    output.print_table(["from", "to", "version", "rows", *keys],
                       [(output.when(w.start), output.when(w.end), w.version, w.rows,
                         *(w.metrics.get(k) for k in keys)) for w in windows])
