"""`mlyard drift`, `alerts` and `shadow`."""

from __future__ import annotations

from pathlib import Path

import click

from mlyard.core.alerts import delivery
from mlyard.core.automation.drift_check import drift_check
from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.config import segment_columns
from mlyard.core.data.sniff import DATA_SUFFIXES
from mlyard.core.errors import UsageError
from mlyard.core.humanize import counted
from mlyard.core.monitoring import drift_reports, segment_drift, shadow_report
from mlyard.core.monitoring.report_html import render
from mlyard.core.monitoring.report_view import ColumnView, ReportView
from mlyard.core.tracking.evaluation import Interval
from mlyard.core.tracking.segments import segment_name

SEVERITIES = ("none", "moderate", "severe")


class DriftGroup(click.Group):
    """`mlyard drift new.csv` reads as `mlyard drift --file new.csv`: checking a file
    before ingesting it is what a user tries first."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options_with_values = {name for param in self.params if isinstance(param, click.Option)
                               and not param.is_flag for name in param.opts}
        for index, arg in enumerate(args):
            before = args[index - 1] if index else ""
            if before in options_with_values:
                continue  # an option's value (`--html out.html`), not a file to check
            if arg in self.commands:
                break
            if not arg.startswith("-") and Path(arg).suffix.lower() in DATA_SUFFIXES:
                args = [*args[:index], "--file", *args[index:]]
                break
        return super().parse_args(ctx, args)


@click.group("drift", cls=DriftGroup, invoke_without_command=True)
@click.option("--current", help="A dataset version to check (default: the newest).")
@click.option("--served", metavar="WINDOW",
              help="Check the inputs the server logged over this window instead: 1h, 7d.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check a CSV or Parquet file instead, read as ingest would read it but "
                   "not ingested (also: `mlyard drift FILE`).")
@click.option("--reference", default="champion", show_default=True,
              help="The model whose training data is the reference (version or alias).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as a self-contained HTML page.")
@click.option("--fail-on", type=click.Choice(SEVERITIES[1:]),
              help="Exit 1 when the severity reaches this level (for cron and CI).")
@click.option("--by", "segment", metavar="SEGMENT",
              help="Each group of a segment of [monitor] segments against the same group's "
                   "training data (not stored).")
@JSON_OPTION
@click.pass_context
def drift(ctx: click.Context, current: str | None, served: str | None, file: Path | None,
          reference: str, html_path: Path | None, fail_on: str | None, segment: str | None,
          as_json: bool) -> None:
    """Per-feature drift of new data or served traffic against a model's training data.

    The report is stored in the catalog (`mlyard drift history`) and raises an alert when
    features drift; with [monitor] on_drift = "retrain", severe drift retrains once.
    """
    if ctx.invoked_subcommand is not None:
        return
    if sum(given is not None for given in (current, served, file)) > 1:
        raise UsageError("give one of --current, --served and --file")
    obj: Context = ctx.obj
    if segment is not None:
        if served is not None or html_path is not None or fail_on is not None:
            raise UsageError("--by compares a dataset version or a file; it takes no "
                             "--served, --html or --fail-on")
        _print_segment_drift(segment_drift.drift_by(obj.ws, segment, current, file,
                                                    reference), as_json)
        return
    report = drift_check(obj.ws, current=current, served=served, reference=reference,
                         file=file).report
    detail = drift_reports.view(report)
    if html_path is not None:
        by = [] if served is not None else [
            segment_drift.drift_by(obj.ws, segment_name(columns), current, file, reference)
            for columns in segment_columns(obj.ws.config)]
        html_path.write_text(render(detail, by), encoding="utf-8")
    if as_json:
        output.print_json(detail)
    else:
        _print_report(detail)
        if html_path is not None:
            output.stdout.print(f"HTML report: {html_path}", markup=False)
    if fail_on and SEVERITIES.index(report.severity) >= SEVERITIES.index(fail_on):
        raise SystemExit(1)


def _print_segment_drift(found: segment_drift.SegmentDrift, as_json: bool) -> None:
    if as_json:
        output.print_json(found)
        return
    output.print_table(
        ["group", "training rows", "current rows", "drifted", "columns"],
        [(g.group, f"{g.reference_rows:,}", f"{g.current_rows:,}",
          "too few rows" if g.too_few else f"{len(g.drifted)}/{g.judged}",
          ", ".join(g.drifted)) for g in found.groups],
        title=f"{found.current} by {found.segment} against {found.model}/{found.version}'s "
              "training data, most drifted first")


@drift.command("history")
@click.option("--limit", "-n", default=20, show_default=True)
@JSON_OPTION
@click.pass_obj
def drift_history(obj: Context, limit: int, as_json: bool) -> None:
    """Stored drift reports, newest first."""
    reports = drift_reports.list_reports(obj.ws, limit)
    if as_json:
        output.print_json([{k: v for k, v in vars(r).items() if k != "detail"}
                           for r in reports])
        return
    output.print_table(["report", "when", "current", "rows", "model", "drifted", "severity"],
                       [(r.report_id, output.when(r.ts), r.current_label, r.rows,
                         f"{r.model}/{r.version}", f"{r.drifted}/{r.features}", r.severity)
                        for r in reports])


@drift.command("show")
@click.argument("report_id", type=int)
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as a self-contained HTML page.")
@JSON_OPTION
@click.pass_obj
def drift_show(obj: Context, report_id: int, html_path: Path | None, as_json: bool) -> None:
    """One stored report."""
    detail = drift_reports.get_report(obj.ws, report_id)
    if html_path is not None:
        html_path.write_text(render(detail), encoding="utf-8")
    if as_json:
        output.print_json(detail)
    else:
        _print_report(detail)


def _verdict(column: ColumnView) -> str:
    if not column.reliable:
        return "unreliable"  # too few rows for its method; the headline says how many
    return "DRIFT" if column.drifted else "ok"


def _print_report(detail: ReportView) -> None:
    current = detail.current
    headline = detail.headline or \
        f"{len(detail.drifted)} of {len(detail.features)} features drifted"
    output.stdout.print(
        f"report {detail.report_id}: {current.label} ({current.rows:,} rows) "
        f"against {detail.model}/{detail.version}: {headline} -> severity "
        f"{detail.severity}", markup=False)
    # The features the model relies on most first, so drift that matters is on top.
    columns = sorted(detail.features, key=lambda c: -(c.importance or 0.0))
    columns += [c for c in (detail.prediction, detail.target) if c]
    output.print_table(
        ["column", "importance", "method", "statistic", "threshold", "drift", "PSI"],
        [(c.column, f"{c.importance:.0%}" if c.importance is not None else "",
          c.method, c.statistic, c.threshold, _verdict(c),
          f"{c.psi or 0:.3f} {c.psi_level}") for c in columns])
    for c in columns:
        if c.unseen:
            shown = ", ".join(f"{level!r} ({rows:,} rows)" for level, rows in
                              list(c.unseen.items())[:8])
            what = "classes" if c is detail.target else "levels"
            output.stdout.print(f"column {c.column!r}: {what} the model never saw: {shown}",
                                markup=False)
    for line in detail.quality:
        output.stdout.print(f"quality: {line}", markup=False)


@click.group(invoke_without_command=True)
@click.option("--limit", "-n", default=20, show_default=True)
@JSON_OPTION
@click.pass_context
def alerts(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Alerts, newest first, and whether each reached its receivers ([alerts])."""
    if ctx.invoked_subcommand is not None:
        return
    listed = drift_reports.alerts(ctx.obj.ws, limit)
    if as_json:
        output.print_json([alert.as_json() for alert in listed])
        return
    output.print_table(["when", "kind", "subject", "severity", "what", "delivery"],
                       [(output.when(a.ts), a.kind.removeprefix("alert."), a.subject,
                         a.severity, a.what, a.delivery) for a in listed])


@alerts.command("test")
@click.pass_obj
def alerts_test(obj: Context) -> None:
    """Send a test alert to every [alerts] receiver now; exit 1 if any fails."""
    config = obj.ws.config.alerts
    if not (config.webhooks or config.command):
        raise UsageError("no receivers: add `webhooks` or `command` under [alerts] in "
                         "mlyard.toml")
    attempts = delivery.send_test(obj.ws)
    for attempt in attempts:
        said = f"{attempt.receiver}: {attempt.outcome}" + \
            (f" ({attempt.error})" if attempt.error else "")
        (output.stdout if attempt.outcome == "delivered" else output.stderr).print(
            said, markup=False)
    if any(a.outcome != "delivered" for a in attempts):
        raise SystemExit(1)


@click.group("shadow")
def shadow_group() -> None:
    """How a shadow model (`mlyard serve --shadow`) compares with the champion."""


@shadow_group.command("report")
@click.option("--window", default="24h", show_default=True,
              help="The requests compared: those of the last 1h, 24h, 7d ...")
@JSON_OPTION
@click.pass_obj
def shadow_report_cmd(obj: Context, window: str, as_json: bool) -> None:
    """Agreement, scores, latency and live metrics of each champion/shadow pair."""
    report = shadow_report.report(obj.ws, window)
    if as_json:
        output.print_json(report)
        return
    if not report.comparisons:
        output.stdout.print(f"no shadow traffic in the last {window}: serve with "
                            "`mlyard serve MODEL --shadow OTHER` (or [serve] shadow)",
                            markup=False)
        return
    for index, pair in enumerate(report.comparisons):
        if index:
            output.stdout.print()
        _print_comparison(pair)


def _print_comparison(pair: shadow_report.ShadowComparison) -> None:
    ours, theirs = f"champion v{pair.champion_version}", f"shadow v{pair.shadow_version}"
    output.stdout.print(output.bold(
        f"{pair.model}: {ours} against {theirs}, {counted(pair.requests, 'request')} "
        f"({counted(pair.rows, 'row')}) from {output.when(pair.first)} to "
        f"{output.when(pair.last)}"))
    if pair.failed:
        output.stdout.print(f"the shadow could not score {counted(pair.failed, 'request')}: "
                            f"{pair.first_error}", markup=False)
    if pair.rows:
        delta = "|Δ|" if pair.task == "regression" else "|Δp|"
        agreed = (f"{pair.same_label:.1%} same label, " if pair.same_label is not None
                  else "")
        output.stdout.print(f"agreement: {agreed}mean {delta} {pair.mean_abs_diff:.4g}, "
                            f"p95 {delta} {pair.p95_abs_diff:.4g}", markup=False)
    rows: list[tuple[str, object, object]] = []
    if pair.champion_scores and pair.shadow_scores:
        rows.append(("score mean", pair.champion_scores.mean, pair.shadow_scores.mean))
        rows += [(f"score {q}", pair.champion_scores.quantiles[q],
                  pair.shadow_scores.quantiles[q]) for q in pair.champion_scores.quantiles]
    rows += [(f"scoring {q} ms", pair.champion_ms.get(q), pair.shadow_ms.get(q))
             for q in ("p50", "p99")]
    live = pair.live
    if live is not None:
        rows.append((f"live {live.metric}", _interval(live.champion), _interval(live.shadow)))
    output.print_table(["", ours, theirs], rows)
    if live is None:
        output.stdout.print("no labels for these requests yet: `mlyard feedback FILE` "
                            "joins them by [data] id_column", style="dim")
    else:
        worse = live.difference
        if worse.value > 0:
            said = f"worse by {_interval(worse)}"
        else:
            better = Interval(-worse.value, -worse.high, -worse.low)
            said = f"better by {_interval(better)}"
        output.stdout.print(f"live {live.metric} on {live.rows:,} labelled rows (95% "
                            f"intervals): the shadow is {said}", markup=False)


def _interval(value: Interval) -> str:
    return f"{value.value:.4g} ({value.low:.3g} to {value.high:.3g})"

