"""Model versions, their aliases and gate results; promote and roll back with a
confirmation that shows the gate table first."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static

from mlyard.core.automation import promotion
from mlyard.core.models import registry
from mlyard.core.models.gates import GateResult
from mlyard.core.workspace import Workspace
from mlyard.tui.format import number, shadow_summary, when
from mlyard.tui.messages import GatesLoaded, ModelsLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.screens.dialogs import Confirm, TextPrompt
from mlyard.tui.widgets.tables import PlainTable, fill


class ModelsScreen(AreaScreen):
    AREA = "models"
    CHANGES = frozenset({"promote", "rollback", "alias"})
    AUTO_FOCUS = "#models-table"
    CSS_PATH = Path(__file__).parent / "models.tcss"
    HELP = """\
## Models
Every version of the project's model with its aliases. The highlighted version's gates
show below, with how it did as the champion's shadow when it was one (`mlyard serve
--shadow`). `p` promotes it to champion (the gate table is shown first), `b` rolls
champion back to the version it replaced, `a` points another alias at it.
"""
    BINDINGS = [
        Binding("p", "promote", "Promote", tooltip="Make the version champion, through gates.",
                id="models.promote"),
        Binding("b", "rollback", "Rollback", tooltip="Move champion back to the previous one.",
                id="models.rollback"),
        Binding("a", "alias", "Alias", tooltip="Point an alias (e.g. challenger) here.",
                id="models.alias"),
        Binding("r", "reload", "Refresh", tooltip="Load the versions again now.",
                id="models.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[GateResult] = []
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="models-table", cursor_type="row")
        with Horizontal(id="models-bottom"):
            yield Static(id="models-gates")
            yield Static(id="models-history")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#models-gates", Static).border_title = "Gates"
        self.query_one("#models-history", Static).border_title = "Alias moves"
        self.reload()

    def reload(self) -> None:
        self._load(self.ws)

    @work(thread=True, exclusive=True, exit_on_error=False, group="models",
          description="Loading models")
    def _load(self, ws: Workspace) -> None:
        view = registry.models_view(ws)
        self.post_message(ModelsLoaded(view.rows, view.history))

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-gates",
          description="Checking gates")
    def _load_gates(self, ws: Workspace, ref: str) -> None:
        panel = promotion.version_panel(ws, ref)
        self.post_message(GatesLoaded(panel.detail, panel.gates, panel.shadow))

    @on(ModelsLoaded)
    def fill_models(self, message: ModelsLoaded) -> None:
        metric = f"holdout.{registry.primary_metric(self.ws)}"
        table = self.query_one("#models-table", DataTable)
        cursor = table.cursor_row
        ordered = list(reversed(message.rows))
        fill(table, ["version", "aliases", "run", "created", metric],
             [(f"{r.version.model}/{r.version.version}", ", ".join(r.aliases),
               r.version.run_id[:8], when(r.version.created_at), number(r.metrics.get(metric)))
              for r in ordered],
             keys=[str(r.version.version) for r in ordered])
        if message.rows:
            table.move_cursor(row=min(cursor, len(message.rows) - 1))
        else:
            self.query_one("#models-gates", Static).update(
                "No model versions yet: `mlyard train`.")
        history = PlainTable(box=None, expand=True, show_header=True, header_style="bold")
        # Alias and move are what the panel is for: never cut; when and who give way.
        history.add_column("alias", no_wrap=True, min_width=10)
        history.add_column("move", no_wrap=True, min_width=14)
        history.add_column("when", no_wrap=True, overflow="ellipsis", ratio=1)
        history.add_column("who", no_wrap=True, overflow="ellipsis", ratio=1)
        for move in reversed(message.history[-8:]):
            before = "-" if move.from_version is None else str(move.from_version)
            history.add_row(move.alias, f"{move.kind} {before} -> {move.to_version}",
                            when(move.ts), move.actor or "")
        self.query_one("#models-history", Static).update(history)

    @on(DataTable.RowHighlighted, "#models-table")
    def gates_for_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.selected = event.row_key.value
            self._load_gates(self.ws, event.row_key.value)

    @on(GatesLoaded)
    def show_gates(self, message: GatesLoaded) -> None:
        self.gates = message.gates
        version = message.detail.version
        self.query_one("#models-gates", Static).border_title = (
            f"Gates for {version.model}/{version.version}")
        shown = gate_table(message.gates)
        if message.shadow is not None:
            shown = Text.assemble(shown, "\n\n", shadow_summary(message.shadow))
        self.query_one("#models-gates", Static).update(shown)

    def action_promote(self) -> None:
        if self.selected is None:
            return
        ref = self.selected
        failed = [g for g in self.gates if not g.passed]
        question = (f"Gates failed. Promote {self.ws.project}/{ref} anyway (recorded as "
                    "forced)?" if failed else f"Promote {self.ws.project}/{ref} to champion?")

        def answered(yes: bool | None) -> None:
            if yes:
                self._promote(self.ws, ref, bool(failed))

        self.app.push_screen(Confirm("Promote", gate_table(self.gates), question), answered)

    @work(thread=True, exit_on_error=False, group="models-move", description="Promoting")
    def _promote(self, ws: Workspace, ref: str, force: bool) -> None:
        move = promotion.promote(ws, ref, reason="from the TUI", force=force).move
        self.app.call_from_thread(self.notify, f"champion -> {move.model}/{move.to_version}")
        self.app.call_from_thread(self.reload)

    def action_rollback(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._rollback(self.ws)

        self.app.push_screen(Confirm("Rollback", "Champion goes back to the version it "
                                     "replaced most recently.", "Roll back champion?"),
                             answered)

    @work(thread=True, exit_on_error=False, group="models-move", description="Rolling back")
    def _rollback(self, ws: Workspace) -> None:
        move = registry.rollback(ws, reason="from the TUI")
        self.app.call_from_thread(self.notify, f"champion -> {move.model}/{move.to_version}")
        self.app.call_from_thread(self.reload)

    def action_alias(self) -> None:
        if self.selected is None:
            return
        ref = self.selected

        def answered(alias: str | None) -> None:
            if alias:
                self._set_alias(self.ws, alias.strip(), ref)

        self.app.push_screen(TextPrompt(f"Alias for {self.ws.project}/{ref}", "challenger"),
                             answered)

    @work(thread=True, exit_on_error=False, group="models-move", description="Moving alias")
    def _set_alias(self, ws: Workspace, alias: str, ref: str) -> None:
        move = registry.set_alias(ws, alias, ref, reason="from the TUI")
        self.app.call_from_thread(self.notify, f"{move.alias} -> {move.model}/{move.to_version}")
        self.app.call_from_thread(self.reload)


def gate_table(gates: list[GateResult]) -> Text | str:
    """One line per gate, result first, wrapping under itself on narrow terminals."""
    if not gates:
        return "No gates configured ([gates] in mlyard.toml)."
    lines = Text()
    for index, gate in enumerate(gates):
        if index:
            lines.append("\n")
        lines.append("pass " if gate.passed else "FAIL ",
                     style="green" if gate.passed else "bold red")
        lines.append(gate.gate, style="bold")
        lines.append(f"  {gate.detail}")
    return lines
