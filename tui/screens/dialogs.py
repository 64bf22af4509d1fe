"""Small modal screens: a yes/no confirmation with details, and a one-line text prompt."""

from __future__ import annotations

from rich.console import RenderableType
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class Confirm(ModalScreen[bool]):
    """Shows what is about to happen (e.g. the gate table) and asks y/n."""

    DEFAULT_CSS = """
    Confirm {
        align: center middle;
    }
    Confirm > Vertical {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    Confirm #confirm-question {
        margin-top: 1;
        text-style: bold;
    }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", tooltip="Go ahead.", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", tooltip="Cancel; nothing changes.",
                id="confirm.no"),
    ]

    def __init__(self, title: str, body: RenderableType, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.body, id="confirm-body")
            yield Static(f"{self.question}  [y] yes  [n] no", id="confirm-question",
                         markup=False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TextPrompt(ModalScreen[str | None]):
    """One line of text; enter saves, escape cancels."""

    DEFAULT_CSS = """
    TextPrompt {
        align: center middle;
    }
    TextPrompt > Vertical {
        width: 70;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Close without saving.",
                        id="prompt.cancel")]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Input(value=self.value, id="prompt-input")

    @on(Input.Submitted, "#prompt-input")
    def save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
