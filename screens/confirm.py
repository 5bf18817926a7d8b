"""Small modal questions: confirm something hard to reverse, or ask for a reason.

The safe choice is focused, and ``esc`` always means "no".
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no; "no" is focused."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "no", "Back", key_display="esc"),
    ]
    SCOPE = "confirm"
    AUTO_FOCUS = "#no"

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.no_label, id="no", variant="primary", compact=True)
                yield Button(self.yes_label, id="yes", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)


class ReasonScreen(ModalScreen[str | None]):
    """Ask for a reason (required); returns it, or None when backed out."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "back", "Back", key_display="esc"),
    ]
    SCOPE = "confirm"
    AUTO_FOCUS = "#reason"

    def __init__(self, question: str, *, action: str = "OK") -> None:
        super().__init__()
        self.question = question
        self.action_label = action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            field = Input(placeholder="reason (required)", id="reason", compact=True)
            field.cursor_blink = getattr(self.app, "blink", True)
            yield field
            yield Static("", id="reason-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back", variant="primary", compact=True)
                yield Button(self.action_label, id="ok", variant="warning", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#reason-error", Static).update("a reason is required")
            self.query_one("#reason", Input).focus()
            return
        self.dismiss(reason)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)
