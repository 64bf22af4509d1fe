"""Dataset versions with their column profiles, the schema diff between two versions,
and the files in quarantine with their reasons."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from mlyard.core.data import quarantine, versions
from mlyard.core.data.profile import ColumnProfile
from mlyard.core.workspace import Workspace
from mlyard.tui.format import number, plain, sparkline
from mlyard.tui.messages import DatasetsLoaded, DiffLoaded, ProfileLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.widgets.tables import PlainTable, fill


class DatasetsScreen(AreaScreen):
    AREA = "datasets"
    AUTO_FOCUS = "#versions-table"
    CSS_PATH = Path(__file__).parent / "datasets.tcss"
    HELP = """\
## Datasets
Versions on the left, the highlighted version's column profiles on the right (the
sparkline is each numeric column's histogram, or each category's share). `space` marks
two versions and `d` shows what changed between them. `]` and `[` switch to the
Quarantine tab and back: refused files with their reasons, and whether a later ingest of
the same file resolved them (`mlyard data quarantine --clear` removes those).
"""
    BINDINGS = [
        Binding("space", "mark", "Mark", tooltip="Mark a version for the diff.",
                id="datasets.mark"),
        Binding("d", "diff", "Diff", tooltip="Schema and profile diff of two marked versions.",
                id="datasets.diff"),
        Binding("r", "reload", "Refresh", tooltip="Load the versions again now.",
                id="datasets.reload"),
        Binding("right_square_bracket", "switch_tab(1)", "Next tab",
                tooltip="Show the next tab (versions, quarantine).", id="datasets.next_tab"),
        Binding("left_square_bracket", "switch_tab(-1)", "Previous tab", show=False,
                tooltip="Show the previous tab.", id="datasets.previous_tab"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="datasets-tabs"):
            with TabPane("Versions", id="tab-versions"):
                with Horizontal():
                    yield DataTable(id="versions-table", cursor_type="row")
                    with Vertical(id="profile-box"):
                        yield Static(id="profile-title")
                        yield DataTable(id="profile-table", cursor_type="row")
                with VerticalScroll(id="diff-box", can_focus=True):
                    yield Static(id="diff-view")
            with TabPane("Quarantine", id="tab-quarantine"):
                yield DataTable(id="quarantine-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#diff-box", VerticalScroll).display = False
        self.reload()

    def reload(self) -> None:
        self._load(self.ws)

    @work(thread=True, exclusive=True, exit_on_error=False, group="datasets",
          description="Loading dataset versions")
    def _load(self, ws: Workspace) -> None:
        view = quarantine.datasets_view(ws)
        self.post_message(DatasetsLoaded(view.versions, view.quarantined))

    @work(thread=True, exclusive=True, exit_on_error=False, group="datasets-profile",
          description="Loading the profile")
    def _load_profile(self, ws: Workspace, ref: str) -> None:
        version = versions.get_version(ws, ref)
        self.post_message(ProfileLoaded(version.ref, version.profile,
                                        version.warnings))

    @work(thread=True, exclusive=True, exit_on_error=False, group="datasets-diff",
          description="Comparing versions")
    def _load_diff(self, ws: Workspace, old: str, new: str) -> None:
        diff = versions.diff_versions(ws, old, new)
        self.post_message(DiffLoaded(diff.old.ref, diff.new.ref, diff.changes))

    @on(DatasetsLoaded)
    def fill_versions(self, message: DatasetsLoaded) -> None:
        ordered = list(reversed(message.versions))
        fill(self.query_one("#versions-table", DataTable),
             [" ", "version", "rows", "blake3", "source", "warnings"],
             [("●" if v.ref in self.marked else " ", v.ref, f"{v.rows:,}", v.source_hash[:10],
               Path(v.source_path).name, len(v.warnings)) for v in ordered],
             keys=[v.ref for v in ordered])
        fill(self.query_one("#quarantine-table", DataTable),
             ["file", "status", "refused", "reason"],
             [(Path(item.source).name, f"resolved: {item.resolved_by}" if item.resolved_by
               else "open", item.refused_at, item.reason.split(": ", 1)[-1])
              for item in message.quarantined])
        if not message.versions:
            self.query_one("#profile-title", Static).update(
                "No dataset versions yet: `mlyard ingest FILE`.")

    @on(DataTable.RowHighlighted, "#versions-table")
    def profile_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._load_profile(self.ws, event.row_key.value)

    @on(ProfileLoaded)
    def show_profile(self, message: ProfileLoaded) -> None:
        warnings = f"  ·  {len(message.warnings)} warnings" if message.warnings else ""
        self.query_one("#profile-title", Static).update(plain(f"{message.ref}{warnings}"))
        fill(self.query_one("#profile-table", DataTable),
             ["column", "type", "missing", "distinct", "min", "mean", "max", "shape"],
             [(name, stats.type, f"{stats.null_rate:.1%}", stats.distinct,
               number(stats.min), number(stats.mean), number(stats.max),
               _shape(stats)) for name, stats in message.profile.items()])

    def action_mark(self) -> None:
        table = self.query_one("#versions-table", DataTable)
        if not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        ref = str(row_key.value)
        if ref in self.marked:
            self.marked.remove(ref)
        else:
            self.marked = [*self.marked[-1:], ref]
        for key in list(table.rows):
            table.update_cell(key, table.ordered_columns[0].key,
                              "●" if key.value in self.marked else " ")

    def action_diff(self) -> None:
        if len(self.marked) != 2:
            self.notify("Mark two versions with space first.", severity="warning")
            return
        old, new = sorted(self.marked, key=lambda ref: int(ref.rsplit("v", 1)[1]))
        self._load_diff(self.ws, old, new)

    @on(DiffLoaded)
    def show_diff(self, message: DiffLoaded) -> None:
        box = self.query_one("#diff-box", VerticalScroll)
        box.display = True
        self.query_one("#diff-view", Static).update(_diff_table(message))
        box.focus()  # arrows and page keys scroll through every column


def _shape(stats: ColumnProfile) -> str:
    if stats.histogram:
        return sparkline(stats.histogram)
    if stats.top:
        return sparkline([level.rows for level in stats.top])
    return ""


def _diff_table(message: DiffLoaded) -> Table:
    changes = message.changes
    table = PlainTable(title=plain(f"{message.old} -> {message.new}"), expand=True, box=None,
                  header_style="bold")
    table.add_column("column", no_wrap=True)
    table.add_column("missing", no_wrap=True)
    table.add_column("change")
    for label, names in (("added", changes.added), ("removed", changes.removed)):
        for name in names:
            table.add_row(name, "", f"column {label}")
    for name, retyped in changes.retyped.items():
        table.add_row(name, "", f"type {retyped.before} -> {retyped.after}")
    # Columns that moved first, most first: what a diff is opened for.
    for name, change in sorted(changes.columns.items(), key=lambda kv: -kv[1].moved):
        nulls = change.null_rate
        table.add_row(name, f"{nulls.before or 0:.1%} -> {nulls.after or 0:.1%}",
                      change.describe())
    return table
