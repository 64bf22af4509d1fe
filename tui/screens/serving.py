"""Start and stop a scoring server for a model or alias, and watch it live."""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Static

from mlyard.core.monitoring import shadow_report
from mlyard.core.serving import supervisor
from mlyard.core.serving.supervisor import LoggedRequest, ServerProcess
from mlyard.core.workspace import Workspace
from mlyard.tui.format import number, plain, shadow_summary, when
from mlyard.tui.messages import ExplanationLoaded, ServerStarted, ServingLoaded, ShadowLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.screens.explanation import ExplanationScreen
from mlyard.tui.widgets.tables import PlainTable, fill


class ServingScreen(AreaScreen):
    AREA = "serving"
    CHANGES = frozenset({"edit", "start", "stop"})
    AUTO_FOCUS = "#serving-predictions"
    CSS_PATH = Path(__file__).parent / "serving.tcss"
    HELP = """\
## Serving
`s` starts `mlyard serve` on 127.0.0.1 for the model or alias in the box (`e` to edit
it), `x` stops it. While it runs: its URL, requests per second, latency percentiles,
errors and the last requests it logged. The server keeps following its alias. `enter`
on a logged request opens why it scored as it did: its features' contributions as bars.
With `[serve] shadow` set (or any `mlyard serve --shadow`), the Shadow panel compares the
shadow with the champion on the same requests (`mlyard shadow report` for all of it).
"""
    SHADOW_EVERY = 10.0  # seconds between readings of the shadow log
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="Serve the model or alias in the box.",
                id="serving.start"),
        Binding("x", "stop", "Stop", tooltip="Stop the server.", id="serving.stop"),
        Binding("e", "edit", "Edit model", tooltip="Type the model or alias to serve.",
                id="serving.edit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._last: tuple[float, float] | None = None  # (time, requests) at the last poll
        self.latest_stats: supervisor.ServerStats | None = None
        self.predictions: list[LoggedRequest] = []  # the logged requests the table shows

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="serving-form"):
            yield Static("model:", id="serving-label")
            yield Input(value="champion", id="serving-ref")
        yield Static(id="serving-status")
        with Horizontal(id="serving-figures"):
            yield Static(id="serving-stats")
            yield Static(id="serving-shadow")
        yield DataTable(id="serving-predictions", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#serving-predictions", DataTable).border_title = "Last predictions"
        self.query_one("#serving-shadow", Static).border_title = "Shadow"
        self._show_status()
        self.set_interval(1.0, self._poll_if_running)
        self._load_shadow(self.ws)
        self.set_interval(self.SHADOW_EVERY, lambda: self._load_shadow(self.ws))

    @property
    def server(self) -> ServerProcess | None:
        process: ServerProcess | None = getattr(self.app, "server_process", None)
        return process

    def action_edit(self) -> None:
        self.query_one("#serving-ref", Input).focus()

    @on(Input.Submitted, "#serving-ref")
    def start_from_box(self) -> None:
        self.query_one("#serving-predictions", DataTable).focus()
        self.action_start()

    def action_start(self) -> None:
        if self.server is not None and self.server.alive:
            self.notify("A server is already running; stop it first (x).", severity="warning")
            return
        ref = self.query_one("#serving-ref", Input).value.strip() or "champion"
        self.query_one("#serving-status", Static).update(plain(f"starting {ref} ..."))
        self._start(self.ws, ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="serving-start",
          description="Starting the server")
    def _start(self, ws: Workspace, ref: str) -> None:
        process = ServerProcess(ws, ref)
        try:
            process.wait_ready()
        except BaseException:
            process.stop()
            self.app.call_from_thread(self._show_status)
            raise
        self.post_message(ServerStarted(process))

    @on(ServerStarted)
    def remember_server(self, message: ServerStarted) -> None:
        self.app.server_process = message.process  # type: ignore[attr-defined]
        self._last = None
        self._show_status()
        self._poll(self.ws, message.process.url)

    def action_stop(self) -> None:
        if self.server is None:
            return
        self.server.stop()
        self.app.server_process = None  # type: ignore[attr-defined]
        self._show_status()

    def _poll_if_running(self) -> None:
        if self.server is not None and self.server.alive:
            self._poll(self.ws, self.server.url)
        elif self.server is not None:
            self.app.server_process = None  # type: ignore[attr-defined]
            self.notify("The server stopped.", severity="warning")
            self._show_status()

    @work(thread=True, exclusive=True, exit_on_error=False, group="serving-poll",
          description="Reading server figures")
    def _poll(self, ws: Workspace, url: str) -> None:
        view = supervisor.serving_view(ws, url)
        self.post_message(ServingLoaded(view.stats, view.predictions, time.monotonic()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="serving-shadow",
          description="Comparing the shadow")
    def _load_shadow(self, ws: Workspace) -> None:
        self.post_message(ShadowLoaded(shadow_report.newest(ws, "24h")))

    @on(ShadowLoaded)
    def show_shadow(self, message: ShadowLoaded) -> None:
        self.query_one("#serving-shadow", Static).update(
            shadow_summary(message.comparison) if message.comparison is not None else
            plain("No shadow traffic in the last 24h: set [serve] shadow (e.g. "
                  "\"challenger\") or run `mlyard serve MODEL --shadow OTHER`."))

    @on(ServingLoaded)
    def show_figures(self, message: ServingLoaded) -> None:
        stats = message.stats
        self.latest_stats = stats
        rate = None
        if self._last is not None and message.at > self._last[0]:
            rate = (stats.requests - self._last[1]) / (message.at - self._last[0])
        self._last = (message.at, stats.requests)
        table = PlainTable(box=None, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for label, value in (("version", number(stats.model_version)),
                             ("requests", f"{stats.requests:,.0f}"),
                             ("requests/s", "-" if rate is None else f"{rate:,.1f}"),
                             ("errors", f"{stats.errors:,.0f}"),
                             ("rows scored", f"{stats.rows:,.0f}"),
                             # Latency on one line of a half-width panel at 80 columns.
                             ("p50/p95/p99", " / ".join(
                                 "-" if v is None else f"{v:.1f}"
                                 for v in (stats.p50_ms, stats.p95_ms, stats.p99_ms)) + " ms")):
            table.add_row(label, value)
        self.query_one("#serving-stats", Static).update(table)
        self.predictions = list(message.predictions)
        fill(self.query_one("#serving-predictions", DataTable),
             ["time", "request", "version", "rows", "outputs", "inputs"],
             # An id's end tells requests apart (its start is the server's, the same for all).
             [(when(r.ts), r.request_id[-8:], r.version, r.rows, r.outputs[:24], r.inputs[:60])
              for r in message.predictions])

    @on(DataTable.RowSelected, "#serving-predictions")
    def open_explanation(self, event: DataTable.RowSelected) -> None:
        if event.cursor_row < len(self.predictions):
            logged = self.predictions[event.cursor_row]
            self._explain(self.ws, logged.request_id, logged.version, logged.inputs)

    @work(thread=True, exclusive=True, exit_on_error=False, group="serving-explain",
          description="Explaining the prediction")
    def _explain(self, ws: Workspace, request_id: str, version: int, inputs: str) -> None:
        self.post_message(ExplanationLoaded(request_id,
                                            supervisor.explain_logged(ws, version, inputs)))

    @on(ExplanationLoaded)
    def show_explanation(self, message: ExplanationLoaded) -> None:
        self.app.push_screen(ExplanationScreen(message.request_id, message.explanation))

    def _show_status(self) -> None:
        server = self.server
        text = (f"serving {server.ref} at {server.url}/invocations" if server and server.alive
                else "No server running. Press s to serve the model in the box.")
        self.query_one("#serving-status", Static).update(plain(text))
