"""Every key of the app and of the screen underneath, from the same bindings that drive
the keys and the command palette."""

from __future__ import annotations

from rich.markdown import Markdown
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def describe_key(key: str) -> str:
    names = {"slash": "/", "space": "space", "question_mark": "?", "escape": "esc",
             "right_square_bracket": "]", "left_square_bracket": "["}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_markdown(title: str, bindings: list[BindingType]) -> str:
    rows = [f"### {title}", "", "| key | action | what it does |", "|---|---|---|"]
    for binding in bindings:
        if isinstance(binding, Binding):
            rows.append(f"| `{describe_key(binding.key)}` | {binding.description} | "
                        f"{binding.tooltip} |")
    return "\n".join(rows)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 90%;
        height: 90%;
        border: thick $primary;
        background: $surface;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close",
                        tooltip="Close the help.", id="help.close")]

    def __init__(self, app_bindings: list[BindingType], screen: Screen[object]) -> None:
        super().__init__()
        self.app_bindings = app_bindings
        self.under = screen

    def compose(self) -> ComposeResult:
        parts = ["# mlyard keys", "", "Every action is also in the command palette "
                 "(ctrl+p).", "", bindings_markdown("Everywhere", self.app_bindings)]
        area = getattr(self.under, "AREA", "")
        if area:
            parts += ["", bindings_markdown(f"This screen: {area}",
                                            list(self.under.BINDINGS))]
        help_text = getattr(self.under, "HELP", None)
        if help_text:
            parts += ["", help_text]
        with VerticalScroll():
            # Rich's Markdown renders in one pass, so the help is complete on its first frame.
            yield Static(Markdown("\n".join(parts)))
