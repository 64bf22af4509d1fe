"""`mlyard watch`, `daemon`, `status`, `schedule ...`, `jobs ...` and `pipeline run`."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from mlyard.core.automation import daemon, jobs, schedules
from mlyard.core.automation.jobs import STATUSES, Interrupted
from mlyard.core.automation.pipeline import STEPS, PipelineResult, run_pipeline
from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.storage.automation_store import JobRecord

POLLING_OPTION = click.option(
    "--polling", is_flag=True,
    help="Poll the folders instead of OS events (network file systems where inotify "
         "sees nothing).")


@contextmanager
def _interruptible() -> Iterator[None]:
    """Turn SIGTERM (a daemon stopping, `kill`, systemd) into `Interrupted`, so the job
    being run is recorded as failed instead of left running."""
    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except (Interrupted, KeyboardInterrupt) as exc:
        output.stderr.print(f"mlyard: stopped by {exc or 'SIGINT'}; the job is marked failed",
                            markup=False)
        raise SystemExit(143 if isinstance(exc, Interrupted) else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@POLLING_OPTION
@click.option("--verbose", "-v", is_flag=True, help="Log debug detail too.")
@click.pass_obj
def watch(obj: Context, polling: bool, verbose: bool) -> None:
    """Watch the `[data] watch` folders in the foreground (no schedules); Ctrl-C stops."""
    daemon.setup_logging(obj.ws, verbose)
    daemon.Daemon(obj.ws, watch=True, schedule=False, polling=polling).run()


@click.command("daemon")
@POLLING_OPTION
@click.option("--verbose", "-v", is_flag=True, help="Log debug detail too.")
@click.pass_obj
def daemon_cmd(obj: Context, polling: bool, verbose: bool) -> None:
    """Run watchers and schedules until SIGTERM or Ctrl-C (for systemd, tmux or nohup).

    Logs go to stderr and to .mlyard/logs/daemon.log (rotated).
    """
    path = daemon.setup_logging(obj.ws, verbose)
    output.stderr.print(f"mlyard daemon for {obj.ws.project}; log: {path}", markup=False)
    daemon.Daemon(obj.ws, polling=polling).run()


@click.command()
@JSON_OPTION
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Is the daemon running; what fires next; how the last jobs ended."""
    state = daemon.daemon_status(obj.ws)
    listed = schedules.list_schedules(obj.ws)
    recent = jobs.list_jobs(obj.ws, limit=5)
    if as_json:
        output.print_json({"daemon": {"running": state.running, "record": state.record,
                                      "detail": state.detail},
                           "schedules": [_schedule_json(s) for s in listed],
                           "jobs": recent})
        return
    record = state.record
    if record is None:
        output.stdout.print("daemon: never started (mlyard daemon)", markup=False)
    elif state.running:
        output.stdout.print(f"daemon: running, pid {record.pid} on {record.host}, since "
                            f"{output.when(record.started_at)}, heartbeat "
                            f"{time.time() - record.heartbeat:.0f}s ago", markup=False)
    else:
        output.stdout.print(f"daemon: not running (last heartbeat "
                            f"{output.when(record.heartbeat)})", markup=False)
    for folder in state.detail.watch if state.running else []:
        output.stdout.print(f"watching {folder}", markup=False)
    _print_schedules(listed)
    _print_jobs(recent)


@click.group("schedule")
def schedule_group() -> None:
    """Pipelines on a cron expression or an interval (run by `mlyard daemon`)."""


@schedule_group.command("list")
@JSON_OPTION
@click.pass_obj
def schedule_list(obj: Context, as_json: bool) -> None:
    """Every schedule with its next fire time."""
    listed = schedules.list_schedules(obj.ws)
    if as_json:
        output.print_json([_schedule_json(s) for s in listed])
        return
    _print_schedules(listed)


@schedule_group.command("add")
@click.argument("name")
@click.option("--cron", help='Five crontab fields, e.g. "0 2 * * *".')
@click.option("--every", help="An interval: 90s, 15m, 6h, 1d.")
@click.option("--pipeline", type=click.Choice(STEPS), default="train", show_default=True,
              help="The last step to run: ingest, train (retrain) or promote.")
@click.pass_obj
def schedule_add(obj: Context, name: str, cron: str | None, every: str | None,
                 pipeline: str) -> None:
    """Add a schedule kept in the catalog (or declare one with [[schedule]])."""
    record = schedules.add_schedule(obj.ws, name, cron, every, pipeline)
    output.stdout.print(f"schedule {record.name} added", markup=False)


@schedule_group.command("remove")
@click.argument("name")
@click.pass_obj
def schedule_remove(obj: Context, name: str) -> None:
    """Remove a schedule added with `schedule add`."""
    schedules.remove_schedule(obj.ws, name)
    output.stdout.print(f"schedule {name} removed", markup=False)


@schedule_group.command("pause")
@click.argument("name")
@click.pass_obj
def schedule_pause(obj: Context, name: str) -> None:
    """Stop a schedule firing until it is resumed (a running daemon notices)."""
    schedules.set_paused(obj.ws, name, True)
    output.stdout.print(f"schedule {name} paused", markup=False)


@schedule_group.command("resume")
@click.argument("name")
@click.pass_obj
def schedule_resume(obj: Context, name: str) -> None:
    """Let a paused schedule fire again."""
    schedules.set_paused(obj.ws, name, False)
    output.stdout.print(f"schedule {name} resumed", markup=False)


@schedule_group.command("run-now")
@click.argument("name")
@click.option("--trigger", default="manual", show_default=True,
              help="Recorded as who triggered it: manual, cron or schedule.")
@JSON_OPTION
@click.pass_obj
def schedule_run_now(obj: Context, name: str, trigger: str, as_json: bool) -> None:
    """Run a schedule's pipeline now, in the foreground; exit 1 if a step failed."""
    record = schedules.get_schedule(obj.ws, name)
    _run(obj, record.pipeline, f"{trigger}:{name}", True, as_json)


@schedule_group.command("crontab")
@click.pass_obj
def schedule_crontab(obj: Context) -> None:
    """Print crontab lines that run each cron schedule headlessly (for system cron)."""
    for line in schedules.crontab_lines(obj.ws):
        click.echo(line)


@click.group("pipeline")
def pipeline_group() -> None:
    """The automated pipeline: ingest the watched folders, retrain, gates, promote."""


@pipeline_group.command("run")
@click.argument("until", type=click.Choice(STEPS), default="train")
@click.option("--no-ingest", is_flag=True, help="Start at the train step.")
@click.option("--trigger", default="manual", show_default=True, help="Recorded as who ran it.")
@JSON_OPTION
@click.pass_obj
def pipeline_run(obj: Context, until: str, no_ingest: bool, trigger: str,
                 as_json: bool) -> None:
    """Run the steps up to UNTIL, each recorded as a job; exit 1 if one failed."""
    _run(obj, until, trigger, not no_ingest, as_json)


def _run(obj: Context, until: str, trigger: str, ingest: bool, as_json: bool) -> None:
    def waiting(message: str) -> None:
        output.stderr.print(message, markup=False)

    with _interruptible():
        result = run_pipeline(obj.ws, until, trigger, ingest=ingest, on_wait=waiting)
    if as_json:
        output.print_json(_result_json(result))
    else:
        for step, step_status in result.statuses.items():
            output.stdout.print(f"{step}: {step_status}", markup=False)
        if result.model_version is not None:
            output.stdout.print(f"model {obj.ws.project}/{result.model_version} "
                                f"(run {result.run_id})", markup=False)
    if result.failure is not None:
        raise result.failure  # its one line and exit code, as the step's own command gives
    if result.failed:
        raise SystemExit(1)


def _result_json(result: PipelineResult) -> dict[str, Any]:
    return {"jobs": result.job_ids, "steps": result.statuses, "run_id": result.run_id,
            "model_version": result.model_version, "ingest": result.ingest,
            "error": result.failure.msg if result.failure else None}


@click.group("jobs")
def jobs_group() -> None:
    """The history of automated steps: who triggered them and how they ended."""


@jobs_group.command("list")
@click.option("--limit", "-n", default=20, show_default=True)
@click.option("--status", type=click.Choice(list(STATUSES)))
@JSON_OPTION
@click.pass_obj
def jobs_list(obj: Context, limit: int, status: str | None, as_json: bool) -> None:
    """Newest first."""
    listed = jobs.list_jobs(obj.ws, limit, status)
    if as_json:
        output.print_json(listed)
        return
    _print_jobs(listed)


@jobs_group.command("show")
@click.argument("job_id", type=int)
@click.option("--lines", "-n", default=200, show_default=True, help="Log lines to show.")
@JSON_OPTION
@click.pass_obj
def jobs_show(obj: Context, job_id: int, lines: int, as_json: bool) -> None:
    """One job: its outcome, detail and log."""
    record = jobs.get_job(obj.ws, job_id)
    log_lines = jobs.job_log(record, lines)
    if as_json:
        output.print_json({**output.jsonable(record), "log": log_lines})
        return
    output.stdout.print(f"job {record.job_id}: {record.step} ({record.trigger}) "
                        f"{record.status}, started {output.when(record.started_at)}, "
                        f"took {output.duration(record.started_at, record.ended_at)}", markup=False)
    if record.error:
        output.stdout.print(f"error: {record.error}", markup=False)
    if record.run_id:
        output.stdout.print(f"run: {record.run_id}", markup=False)
    if record.detail:
        output.stdout.print(f"detail: {json.dumps(json.loads(record.detail))}", markup=False)
    output.stdout.print(f"log: {record.log_path}", markup=False)
    for line in log_lines:
        click.echo(line)


def _schedule_json(schedule: schedules.Schedule) -> dict[str, Any]:
    record = schedule.record
    return {"name": record.name, "cron": record.cron, "every_seconds": record.every_seconds,
            "pipeline": record.pipeline, "source": record.source, "paused": record.paused,
            "last_fire": record.last_fire, "next_fire": schedule.next_fire}


def _print_schedules(listed: list[schedules.Schedule]) -> None:
    if not listed:
        output.stdout.print("no schedules ([[schedule]] in mlyard.toml, or mlyard schedule "
                            "add)", markup=False)
        return
    output.print_table(
        ["schedule", "when", "pipeline", "next fire", "last fire", "from"],
        [(s.name, s.when, s.record.pipeline,
          "paused" if s.next_fire is None else output.when(s.next_fire),
          output.when(s.record.last_fire) if s.record.last_fire else "never",
          s.record.source) for s in listed])


def _print_jobs(listed: list[JobRecord]) -> None:
    if not listed:
        output.stdout.print("no jobs yet", markup=False)
        return
    output.print_table(
        ["job", "step", "trigger", "status", "started", "took", "run", "outcome"],
        [(j.job_id, j.step, j.trigger, j.status, output.when(j.started_at),
          output.duration(j.started_at, j.ended_at),
          (j.run_id or "")[:8], j.outcome) for j in listed], drop_first=["trigger", "took"])

