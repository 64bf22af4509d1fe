"""The mlyard terminal UI: a thin face over the core engine.

Screens load data in thread workers and show it when a message arrives, so the UI never
waits on the catalog. Errors from core become notifications, never tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from mlyard.core.errors import MlyardError, os_error_line
from mlyard.core.serving.supervisor import ServerProcess
from mlyard.core.workspace import Workspace
from mlyard.tui.screens.automation import AutomationScreen
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.screens.dashboard import DashboardScreen
from mlyard.tui.screens.datasets import DatasetsScreen
from mlyard.tui.screens.help import HelpScreen
from mlyard.tui.screens.models import ModelsScreen
from mlyard.tui.screens.monitoring import MonitoringScreen
from mlyard.tui.screens.runs import RunsScreen
from mlyard.tui.screens.serving import ServingScreen


class MlyardApp(App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "mlyard"
    MODES = {"dashboard": DashboardScreen, "runs": RunsScreen, "datasets": DatasetsScreen,
             "models": ModelsScreen, "serving": ServingScreen,
             "automation": AutomationScreen, "monitoring": MonitoringScreen}
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        Binding("1", "switch_mode('dashboard')", "Dashboard", show=False,
                tooltip="The project at a glance.", id="app.dashboard"),
        Binding("2", "switch_mode('runs')", "Runs", show=False,
                tooltip="Every run, filter and compare.", id="app.runs"),
        Binding("3", "switch_mode('datasets')", "Datasets", show=False,
                tooltip="Dataset versions, profiles and quarantine.", id="app.datasets"),
        Binding("4", "switch_mode('models')", "Models", show=False,
                tooltip="Model versions, aliases, promotion.", id="app.models"),
        Binding("5", "switch_mode('serving')", "Serving", show=False,
                tooltip="Start, stop and watch a scoring server.", id="app.serving"),
        Binding("6", "switch_mode('automation')", "Automation", show=False,
                tooltip="Watched folders, schedules and the job history.",
                id="app.automation"),
        Binding("7", "switch_mode('monitoring')", "Monitoring", show=False,
                tooltip="Drift over time, alerts and live performance.",
                id="app.monitoring"),
        Binding("question_mark,f1", "help", "Help", tooltip="Every key on this screen.",
                id="app.help"),
        Binding("q", "quit", "Quit", tooltip="Leave mlyard.", id="app.quit"),
    ]

    def __init__(self, workspace: Workspace, screen: str = "dashboard") -> None:
        super().__init__()
        self.ws = workspace
        # A read-only workspace refuses every change in the core; the app only draws
        # those keys disabled.
        self.read_only = workspace.read_only
        if screen not in self.MODES:
            raise ValueError(f"unknown screen {screen!r}; one of {', '.join(self.MODES)}")
        self.initial_screen = screen
        self.server_process: ServerProcess | None = None

    def on_mount(self) -> None:
        # The footer keeps room for this screen's own keys; the screen keys live here.
        self.sub_title = f"{self.ws.project} · 1-7 screens · ? keys"
        if self.initial_screen != self.DEFAULT_MODE:
            self.switch_mode(self.initial_screen)

    def on_unmount(self) -> None:
        if self.server_process is not None:
            self.server_process.stop()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(list(self.BINDINGS), self.screen))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every key's action as a palette command, titled "area: action"."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding):
                yield SystemCommand(f"go: {binding.description.lower()}", binding.tooltip,
                                    partial(self.run_action, binding.action))
        if isinstance(screen, AreaScreen):
            for binding in screen.BINDINGS:
                if isinstance(binding, Binding):
                    yield SystemCommand(f"{screen.AREA}: {binding.description.lower()}",
                                        binding.tooltip,
                                        partial(screen.run_action, binding.action))

    def show_error(self, error: BaseException | None) -> None:
        """One notification for a failed worker: the core's own words when it has them."""
        if isinstance(error, MlyardError):
            self.notify(error.msg, title=error.title, severity="error", timeout=8, markup=False)
        elif isinstance(error, OSError):
            self.notify(os_error_line(error), title="Cannot read or write", severity="error",
                        timeout=8, markup=False)
        else:
            self.notify(f"{type(error).__name__}: {error}", title="Unexpected error",
                        severity="error", timeout=8, markup=False)
