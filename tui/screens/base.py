"""What every mlyard screen shares: the workspace, its area name, and the palette."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from mlyard.core.workspace import Workspace


class AreaScreen(Screen[None]):
    """A screen of one area of the product (runs, models, ...).

    AREA titles its bindings in the command palette ("runs: compare marked"), so every
    key is also a palette command and the two cannot drift apart.
    """

    AREA: ClassVar[str] = ""
    # Below 100 columns a screen has the class `-narrow`: side-by-side panels stack, so an
    # 80x24 terminal shows whole tables rather than halves of them.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    # Actions that change something (promote, start a server, pause a schedule): shown
    # disabled, and refused, when the app is read-only (`mlyard tui --web` by default).
    CHANGES: ClassVar[frozenset[str]] = frozenset()

    @property
    def ws(self) -> Workspace:
        workspace: Workspace = self.app.ws  # type: ignore[attr-defined]
        return workspace

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.CHANGES and getattr(self.app, "read_only", False):
            return None  # shown disabled in the footer and help; the key does nothing
        return True

    def reload(self) -> None:
        """Load this screen's data again (in a worker)."""

    def action_reload(self) -> None:
        """The `r` key of every screen that binds it."""
        self.reload()

    def action_switch_tab(self, step: int) -> None:
        """`]` and `[`: the next or previous tab of the screen's tabs. Focus moves into
        the tab shown, so a widget left focused in the old one cannot pull it back."""
        tabs = self.query_one(TabbedContent)
        panes = [pane for pane in tabs.query(TabPane) if pane.id]
        ids = [pane.id for pane in panes]
        current = ids.index(tabs.active) if tabs.active in ids else 0
        shown = panes[(current + step) % len(panes)]
        tabs.active = shown.id or ""
        focusable = [widget for widget in shown.query("*") if widget.can_focus]
        self.call_after_refresh(self.set_focus, focusable[0] if focusable else None)

    @on(Worker.StateChanged)
    def report_failed_worker(self, event: Worker.StateChanged) -> None:
        """Every worker of every screen fails into the app's one error display."""
        if event.state == WorkerState.ERROR:
            self.app.show_error(event.worker.error)  # type: ignore[attr-defined]
