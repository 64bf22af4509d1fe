"""Every run in a table: filter with a small expression, sort by any column, mark runs
to compare, open one. Running runs update live."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, Static

from mlyard.core.tracking import run_queries
from mlyard.core.tracking.run_queries import RunSort, RunsPage
from mlyard.core.workspace import Workspace
from mlyard.tui.format import coloured_status, duration, number, plain, when
from mlyard.tui.messages import RunsLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.screens.compare import CompareScreen
from mlyard.tui.screens.dialogs import TextPrompt
from mlyard.tui.screens.run_detail import RunDetailScreen
from mlyard.tui.widgets.tables import as_text, fill

PAGE = 500
# By priority: what tells runs apart first (at 80 columns the metrics are on screen), then
# when and on what; varying params sit between the metrics and these.
_LEADING = [("run", RunSort("attr", "run_id")), ("name", RunSort("attr", "name")),
            ("status", RunSort("attr", "status"))]
PINNED = 3  # the mark, run and name columns stay in view when scrolling right
_TRAILING = [("started", RunSort("attr", "start_time")), ("took", RunSort("attr", "duration")),
             ("data", None)]


class RunsScreen(AreaScreen):
    AREA = "runs"
    CHANGES = frozenset({"note", "tag"})
    AUTO_FOCUS = "#runs-table"
    CSS_PATH = Path(__file__).parent / "runs.tcss"
    HELP = """\
## Runs
`/` filters with an expression such as `auc > 0.8 and num_leaves = 31` (bare names are
metrics, `holdout.` metrics, then params). `s` sorts by the cursor's column (again to
reverse). `space` marks runs, `c` compares the marked ones, `enter` opens a run, `n`
writes a note and `t` sets a tag. Run and name stay in view when scrolling right; `p`
keeps status and the metrics there too.
"""
    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="Filter runs by an expression.",
                id="runs.filter"),
        Binding("s", "sort", "Sort", tooltip="Sort by the cursor's column; again to reverse.",
                id="runs.sort"),
        Binding("space", "mark", "Mark", tooltip="Mark or unmark the run for comparing.",
                id="runs.mark"),
        Binding("c", "compare", "Compare", tooltip="Compare the marked runs side by side.",
                id="runs.compare"),
        Binding("enter", "open", "Open", tooltip="Open the run under the cursor.",
                id="runs.open", show=False),
        Binding("n", "note", "Note", show=False,
                tooltip="Write a note on the run under the cursor.", id="runs.note"),
        Binding("t", "tag", "Tag", show=False,
                tooltip="Set a tag (KEY=VALUE) on the run under the cursor.", id="runs.tag"),
        Binding("right_square_bracket", "page(1)", "Next page", tooltip="Show the next page.",
                id="runs.next_page", show=False),
        Binding("left_square_bracket", "page(-1)", "Previous page",
                tooltip="Show the previous page.", id="runs.previous_page", show=False),
        Binding("r", "reload", "Refresh", show=False, tooltip="Load the runs again now.",
                id="runs.reload"),
        Binding("p", "pin", "Pin", show=False,
                tooltip="Keep status and metrics in view too while scrolling right; again "
                        "to keep only run and name.", id="runs.pin"),
        Binding("escape", "clear_filter", "Clear filter", tooltip="Remove the filter.",
                id="runs.clear_filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.expression = ""
        self.sort: RunSort | None = None
        self.page_offset = 0
        self.marked: list[str] = []
        self.page: RunsPage | None = None
        self._columns: list[tuple[str, RunSort | None]] = []
        self._shown: tuple[list[str], list[str]] = ([], [])
        self._shown_rows: list[tuple[object, ...]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: auc > 0.8 and num_leaves = 31", id="runs-filter")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="runs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs-filter", Input).display = False
        self.query_one("#runs-table", DataTable).fixed_columns = PINNED
        self.reload()
        self.set_interval(2.0, self._refresh_if_running)

    def reload(self) -> None:
        self._load(self.ws, self.expression, self.sort, self.page_offset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs",
          description="Loading runs")
    def _load(self, ws: Workspace, expression: str, sort: RunSort | None, offset: int) -> None:
        self.post_message(RunsLoaded(run_queries.runs_page(ws, expression, sort, PAGE, offset)))

    @on(RunsLoaded)
    def fill_table(self, message: RunsLoaded) -> None:
        page = message.page
        self.page = page
        table = self.query_one("#runs-table", DataTable)
        cursor = table.cursor_row
        varying = _varying_params(page)[:3]
        headline = run_queries.headline_metrics(page.metric_keys)
        self._columns = [("", None), *_LEADING,
                         *((k, RunSort("metrics", k)) for k in headline),
                         *((k, RunSort("params", k)) for k in varying), *_TRAILING]
        labels = []
        for label, order in self._columns:
            arrow = ""
            if order is not None and order == self._sort_key():
                arrow = " ▼" if self.sort and self.sort.descending else " ▲"
            labels.append(label + arrow)
        rows = [("●" if run.run_id in self.marked else " ", run.run_id[:8],
                 # a tuning trial sits under its study's parent run
                 ("↳ " if "mlyard.parent" in run.tags else "") + (run.name or ""),
                 coloured_status(run.status),
                 *(Text(number(run.metrics.get(k)), justify="right") for k in headline),
                 *(run.params.get(k, "") for k in varying),
                 when(run.start_time), duration(run.start_time, run.end_time),
                 _versions(page.inputs[run.run_id]))
                for run in page.runs]
        keys = [run.run_id for run in page.runs]
        column_keys = [label or "mark" for label, _ in self._columns]
        if (labels, keys) == self._shown:
            # A live refresh of the same page: touch only the cells that changed, so the
            # table is not rebuilt under the user's cursor every two seconds.
            for key, row, old_row in zip(keys, rows, self._shown_rows, strict=True):
                for column, value, old in zip(column_keys, row, old_row, strict=True):
                    if value != old:
                        table.update_cell(key, column, as_text(value))
        else:
            fill(table, labels, rows, keys=keys, column_keys=column_keys)
        self._shown, self._shown_rows = (labels, keys), list(rows)
        if page.runs:
            table.move_cursor(row=min(cursor, len(page.runs) - 1))
        self._show_status()

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#runs-filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        self.expression = event.value.strip()
        self.page_offset = 0
        self.query_one("#runs-table", DataTable).focus()
        if not self.expression:
            event.input.display = False
        self.reload()

    def action_clear_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.value = ""
        box.display = False
        self.expression = ""
        self.page_offset = 0
        self.query_one("#runs-table", DataTable).focus()
        self.reload()

    def action_pin(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        through_metrics = 1 + len(_LEADING) + sum(order is not None and order.kind == "metrics"
                                                  for _, order in self._columns)
        table.fixed_columns = PINNED if table.fixed_columns != PINNED else through_metrics

    def action_sort(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        if not self._columns:
            return
        _, order = self._columns[min(table.cursor_column, len(self._columns) - 1)]
        if order is None:
            self.notify("This column cannot be sorted.", severity="warning")
            return
        same = self._sort_key() == order
        self.sort = RunSort(order.kind, order.key,
                            descending=not self.sort.descending if same and self.sort
                            else order.kind == "metrics")
        self.page_offset = 0
        self.reload()

    def action_mark(self) -> None:
        run_id = self._cursor_run()
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        table = self.query_one("#runs-table", DataTable)
        mark = "●" if run_id in self.marked else " "
        table.update_cell(run_id, "mark", mark)
        index = self._shown[1].index(run_id)
        self._shown_rows[index] = (mark, *self._shown_rows[index][1:])
        table.action_cursor_down()
        self._show_status()

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("Mark at least two runs with space first.", severity="warning")
            return
        self.app.push_screen(CompareScreen(list(self.marked)))

    @on(DataTable.RowSelected, "#runs-table")
    def open_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.push_screen(RunDetailScreen(event.row_key.value))

    def action_open(self) -> None:
        run_id = self._cursor_run()
        if run_id:
            self.app.push_screen(RunDetailScreen(run_id))

    def action_note(self) -> None:
        run_id = self._cursor_run()
        if run_id is None or self.page is None:
            return
        run = next(r for r in self.page.runs if r.run_id == run_id)

        def save(note: str | None) -> None:
            if note is not None:
                self._save_note(self.ws, run_id, note)

        self.app.push_screen(TextPrompt(f"Note on run {run_id[:8]}",
                                        run.tags.get(run_queries.NOTE_TAG, "")), save)

    @work(thread=True, exit_on_error=False, group="runs-note", description="Saving the note")
    def _save_note(self, ws: Workspace, run_id: str, note: str) -> None:
        run_queries.set_note(ws, run_id, note)
        self.app.call_from_thread(self.notify, f"Note saved on {run_id[:8]}.")

    def action_tag(self) -> None:
        run_id = self._cursor_run()
        if run_id is None:
            return

        def save(text: str | None) -> None:
            if text:
                self._save_tag(self.ws, run_id, text)

        self.app.push_screen(TextPrompt(f"Tag run {run_id[:8]} (KEY=VALUE)"), save)

    @work(thread=True, exit_on_error=False, group="runs-tag", description="Saving the tag")
    def _save_tag(self, ws: Workspace, run_id: str, text: str) -> None:
        tags = run_queries.parse_tags([text])
        run_queries.set_tags(ws, run_id, tags)
        self.app.call_from_thread(self.notify, f"Tag {', '.join(tags)} saved on {run_id[:8]}.",
                                  markup=False)

    def action_page(self, step: int) -> None:
        if self.page is None:
            return
        offset = self.page_offset + step * PAGE
        if 0 <= offset < max(self.page.total, 1):
            self.page_offset = offset
            self.reload()

    def _refresh_if_running(self) -> None:
        if self.page and any(r.status == "running" for r in self.page.runs):
            self.reload()

    def _cursor_run(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def _sort_key(self) -> RunSort | None:
        return RunSort(self.sort.kind, self.sort.key) if self.sort else None

    def _show_status(self) -> None:
        page = self.page
        if page is None:
            return
        shown = f"{page.offset + 1}-{page.offset + len(page.runs)}" if page.runs else "0"
        parts = [f"runs {shown} of {page.total:,}"]
        if self.expression:
            parts.append(f"filter: {self.expression}")
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        self.query_one("#runs-status", Static).update(plain(" · ".join(parts)))


def _versions(refs: list[str]) -> str:
    """`churn:v1..v6` for a run of consecutive versions, else the list."""
    if len(refs) < 3:
        return ", ".join(refs)
    names = {ref.split(":v")[0] for ref in refs}
    numbers = [int(ref.rsplit(":v", 1)[1]) for ref in refs]
    if len(names) == 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{names.pop()}:v{numbers[0]}..v{numbers[-1]}"
    return f"{refs[0]} +{len(refs) - 1}"


def _varying_params(page: RunsPage) -> list[str]:
    """Params whose value differs between runs on the page: the ones worth a column."""
    values: dict[str, set[str]] = {}
    for run in page.runs:
        for key in page.param_keys:
            values.setdefault(key, set()).add(run.params.get(key, ""))
    return [k for k in page.param_keys if len(values.get(k, set())) > 1]
