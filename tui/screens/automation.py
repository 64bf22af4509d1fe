"""Watched folders and their newest files, schedules (pause, resume, run now) and the
job history with each job's log."""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Log, Static

from mlyard.core.automation import jobs, schedules, status
from mlyard.core.workspace import Workspace
from mlyard.tui.format import coloured_status, duration, when
from mlyard.tui.messages import AutomationLoaded, JobLogLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.widgets.tables import fill

REFRESH_SECONDS = 2.0


class AutomationScreen(AreaScreen):
    AREA = "automation"
    CHANGES = frozenset({"toggle_pause", "run_now"})
    AUTO_FOCUS = "#schedules-table"
    CSS_PATH = Path(__file__).parent / "automation.tcss"
    HELP = """\
## Automation
What `mlyard daemon` runs. Top: the watched folders' newest files and the version each
became. Middle: schedules with their next fire time; `p` pauses or resumes the
highlighted one, `n` runs it now in its own process. Bottom: the job history, newest
first; the highlighted job's log is shown beside it. Everything refreshes every 2 s.
"""
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume",
                tooltip="Pause the highlighted schedule, or resume it.",
                id="automation.pause"),
        Binding("n", "run_now", "Run now",
                tooltip="Run the highlighted schedule's pipeline now, in the background.",
                id="automation.run_now"),
        Binding("r", "reload", "Refresh", tooltip="Load everything again now.",
                id="automation.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.overview: status.AutomationOverview | None = None
        self._shown_job: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="automation-daemon")
        with Horizontal(id="automation-top"):
            yield DataTable(id="files-table", cursor_type="row")
            yield DataTable(id="schedules-table", cursor_type="row")
        with Horizontal(id="automation-bottom"):
            yield DataTable(id="jobs-table", cursor_type="row")
            with Vertical(id="job-log-box"):
                yield Log(id="job-log", auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#files-table", DataTable).border_title = "Watched files"
        self.query_one("#schedules-table", DataTable).border_title = "Schedules"
        self.query_one("#jobs-table", DataTable).border_title = "Jobs"
        self.query_one("#job-log", Log).border_title = "Job log"
        self.reload()
        self.set_interval(REFRESH_SECONDS, self.reload)

    def reload(self) -> None:
        self._load(self.ws)

    @work(thread=True, exclusive=True, exit_on_error=False, group="automation",
          description="Loading automation")
    def _load(self, ws: Workspace) -> None:
        self.post_message(AutomationLoaded(status.overview(ws)))

    @on(AutomationLoaded)
    def show_overview(self, message: AutomationLoaded) -> None:
        overview = message.overview
        self.overview = overview
        self.query_one("#automation-daemon", Static).update(_daemon_line(overview))
        self.query_one("#files-table", DataTable).border_subtitle = ", ".join(
            f.name for f in overview.folders)
        _refill(self.query_one("#files-table", DataTable), ["file", "modified", "version"],
                [(f.path.name, when(f.modified), f.version or "-") for f in overview.files],
                [str(f.path) for f in overview.files])
        _refill(self.query_one("#schedules-table", DataTable),
                ["schedule", "when", "pipeline", "next fire", "last fire"],
                [(s.name, s.when, s.record.pipeline,
                  "paused" if s.next_fire is None else when(s.next_fire),
                  when(s.record.last_fire) if s.record.last_fire else "never")
                 for s in overview.schedules],
                [s.name for s in overview.schedules])
        _refill(self.query_one("#jobs-table", DataTable),
                ["job", "step", "trigger", "status", "started", "took", "error"],
                [(j.job_id, j.step, j.trigger, coloured_status(j.status), when(j.started_at),
                  duration(j.started_at, j.ended_at), j.error or "") for j in overview.jobs],
                [str(j.job_id) for j in overview.jobs])
        self._show_highlighted_job()

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(table_id, DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)

    def action_toggle_pause(self) -> None:
        name = self._selected("#schedules-table")
        if name is None or self.overview is None:
            return
        paused = next(s.record.paused for s in self.overview.schedules if s.name == name)
        self._set_paused(self.ws, name, not paused)

    @work(thread=True, exclusive=False, exit_on_error=False, group="automation-change",
          description="Pausing or resuming a schedule")
    def _set_paused(self, ws: Workspace, name: str, paused: bool) -> None:
        schedules.set_paused(ws, name, paused)
        self.app.call_from_thread(self.notify, f"{name} {'paused' if paused else 'resumed'}")
        self.app.call_from_thread(self.reload)

    def action_run_now(self) -> None:
        name = self._selected("#schedules-table")
        if name is not None:
            self._run_now(self.ws, name)

    @work(thread=True, exclusive=False, exit_on_error=False, group="automation-change",
          description="Starting a schedule")
    def _run_now(self, ws: Workspace, name: str) -> None:
        pid = status.run_schedule_in_background(ws, name)
        self.app.call_from_thread(self.notify, f"{name}: started (pid {pid})")
        time.sleep(0.5)  # let its first job be recorded before the history is read again
        self.app.call_from_thread(self.reload)

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _show_highlighted_job(self) -> None:
        selected = self._selected("#jobs-table")
        if selected is not None and self.overview is not None:
            record = next((j for j in self.overview.jobs if str(j.job_id) == selected), None)
            if record is not None:
                self._load_log(record)

    @work(thread=True, exclusive=True, exit_on_error=False, group="automation-log",
          description="Reading a job log")
    def _load_log(self, record: jobs.JobRecord) -> None:
        self.post_message(JobLogLoaded(record.job_id, jobs.job_log(record)))

    @on(JobLogLoaded)
    def show_log(self, message: JobLogLoaded) -> None:
        log = self.query_one("#job-log", Log)
        log.border_subtitle = f"job {message.job_id}"
        if self._shown_job == message.job_id and log.line_count == len(message.lines):
            return
        self._shown_job = message.job_id
        log.clear()
        log.write_lines(message.lines or ["(no log lines)"])


def _refill(table: DataTable[object], columns: list[str], rows: list[tuple[object, ...]],
            keys: list[str]) -> None:
    """Fill the table again, keeping the cursor on the same row."""
    selected = table.cursor_row
    fill(table, columns, rows, keys)
    if rows:
        table.move_cursor(row=min(selected, len(rows) - 1))


def _daemon_line(overview: status.AutomationOverview) -> str:
    state = overview.daemon
    record = state.record
    if record is None:
        return "Daemon: never started. Run `mlyard daemon` (or `mlyard watch`) in a shell."
    if not state.running:
        return (f"Daemon: not running; last heartbeat {when(record.heartbeat)}. "
                "Start it with `mlyard daemon`.")
    return (f"Daemon: running (pid {record.pid} on {record.host}), watching "
            f"{len(state.detail.watch)} folder(s); on new data: {state.detail.on_new_data}")
