"""A drift report as one self-contained HTML page: a summary, a table of every column,
and reference-vs-current charts drawn as inline SVG, so it opens offline, from an
email attachment or a CI artifact, with no script or network."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from mlyard.core.monitoring.report_view import ColumnView, ReportView
from mlyard.core.monitoring.segment_drift import SegmentDrift

BAR_WIDTH, CHART_HEIGHT = 14, 90
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
.drift { color: #b00020; font-weight: bold; } .ok { color: #1b7f3b; } .few { color: #777; }
.chart { display: inline-block; margin: 0 2em 2em 0; vertical-align: top; }
.ref { fill: #7a8ca5; } .cur { fill: #e07b39; }
"""


def render(report: ReportView, segments: Sequence[SegmentDrift] = ()) -> str:
    """The page for one report, with a section per segment (`drift --by` of each)."""
    current = report.current
    title = f"Drift of {current.label} against {report.model}/{report.version}"
    columns = report.columns
    rows = "".join(_row(c) for c in columns)
    charts = "".join(_chart(c) for c in columns)
    quality = "".join(f"<li>{html.escape(line)}</li>" for line in report.quality)
    verdict = "dataset drift" if report.dataset_drift else "no dataset drift"
    headline = report.headline or \
        f"{len(report.drifted)} of {len(report.features)} features drifted"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{time.strftime('%Y-%m-%d %H:%M', time.localtime(report.ts))} &middot;
{current.rows:,} rows &middot; <b>{verdict}</b>: {html.escape(headline)}
({report.drift_share:.0%}, threshold {report.drift_share_threshold:.0%}) &middot;
severity <b>{report.severity}</b></p>
<table><tr><th>column</th><th>kind</th><th>method</th><th>statistic</th>
<th>threshold</th><th>drift</th><th>PSI</th></tr>{rows}</table>
{f'<h2>Data quality</h2><ul>{quality}</ul>' if quality else ''}
{"".join(_segment_section(found) for found in segments)}
<h2>Reference (grey) and current (orange)</h2>{charts}
</body></html>
"""


def _segment_section(found: SegmentDrift) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(g.group)}</td><td>{g.reference_rows:,}</td>"
        f"<td>{g.current_rows:,}</td><td>"
        + ('<span class="few">too few rows</span>' if g.too_few else
           f'<span class="{"drift" if g.drifted else "ok"}">{len(g.drifted)}/{g.judged}'
           "</span>")
        + f"</td><td>{html.escape(', '.join(g.drifted))}</td></tr>" for g in found.groups)
    return (f"<h2>By {html.escape(found.segment)}</h2><p>Each group against the same "
            "group's training rows, most drifted first.</p><table><tr><th>group</th>"
            "<th>training rows</th><th>current rows</th><th>drifted</th><th>columns</th>"
            f"</tr>{rows}</table>")


def _row(column: ColumnView) -> str:
    statistic, psi = column.statistic, column.psi
    mark = '<span class="drift">drift</span>' if column.drifted else \
        '<span class="ok">ok</span>'
    if not column.reliable:
        mark = f'<span class="few">unreliable: {column.present:,} rows</span>'
    return (f"<tr><td>{html.escape(column.column)}</td><td>{column.kind}</td>"
            f"<td>{column.method}</td>"
            f"<td>{'-' if statistic is None else f'{statistic:.4g}'}</td>"
            f"<td>{column.threshold:g}</td><td>{mark}</td>"
            f"<td>{'-' if psi is None else f'{psi:.3f}'} ({column.psi_level})</td></tr>")


def _chart(column: ColumnView) -> str:
    chart = column.chart
    reference, current = chart.reference, chart.current
    if not reference:
        return ""
    labels = chart.labels(4)
    top = max(max(reference), max(current), 1e-9)
    bars = []
    for index, (ref, cur) in enumerate(zip(reference, current, strict=True)):
        x = index * (2 * BAR_WIDTH + 4)
        for offset, share, css in ((0, ref, "ref"), (BAR_WIDTH, cur, "cur")):
            height = CHART_HEIGHT * share / top
            bars.append(f'<rect class="{css}" x="{x + offset}" y="{CHART_HEIGHT - height:.1f}" '
                        f'width="{BAR_WIDTH - 1}" height="{height:.1f}">'
                        f"<title>{html.escape(str(labels[index]))}: {share:.1%}</title></rect>")
    width = len(reference) * (2 * BAR_WIDTH + 4)
    return (f'<div class="chart"><b>{html.escape(column.column)}</b><br>'
            f'<svg width="{width}" height="{CHART_HEIGHT}" role="img">{"".join(bars)}</svg>'
            "</div>")
