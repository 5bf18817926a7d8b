"""The dialogs behind the war room's actions: a line of text (a note, a status update, a
resolution summary), or a choice plus a line of text (a role and who gets it, a severity
and why).

Like :mod:`quarterdeck.screens.confirm`, ``esc`` always backs out with nothing decided.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static
from textual.widgets.button import ButtonVariant

from quarterdeck.core.incidents.model import ROLE_TITLES, ROLES
from quarterdeck.core.incidents.severity import SEVERITIES, severity_name


class TextPrompt(ModalScreen[str | None]):
    """Ask for a line of text (a note, a status update, a resolution summary)."""

    SCOPE = "confirm"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "back", "Back", key_display="esc"),
    ]

    def __init__(
        self,
        question: str,
        *,
        placeholder: str,
        action: str,
        required: bool = True,
        variant: ButtonVariant = "primary",
    ) -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.action_label = action
        self.required = required
        self.variant = variant

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            field = Input(placeholder=self.placeholder, id="prompt-text")
            field.cursor_blink = getattr(self.app, "blink", True)
            yield field
            yield Static("", id="prompt-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back")
                yield Button(self.action_label, id="ok", variant=self.variant)

    def on_mount(self) -> None:
        self.query_one("#prompt-text", Input).focus()

    @on(Input.Submitted, "#prompt-text")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        text = self.query_one("#prompt-text", Input).value.strip()
        if self.required and not text:
            self.query_one("#prompt-error", Static).update("some text is required")
            self.query_one("#prompt-text", Input).focus()
            return
        self.dismiss(text)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)


class ChoicePrompt(ModalScreen[tuple[str, str] | None]):
    """Pick one option and give a line of text: a role and who gets it, or a severity
    and why. Returns ``(choice, text)``."""

    SCOPE = "confirm"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "back", "Back", key_display="esc"),
    ]

    def __init__(
        self,
        question: str,
        options: list[tuple[str, str]],
        *,
        value: str,
        placeholder: str,
        text: str = "",
        action: str = "OK",
        required: bool = False,
    ) -> None:
        super().__init__()
        self.question = question
        self.options = options
        self.value = value
        self.placeholder = placeholder
        self.text = text
        self.action_label = action
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            yield Select(self.options, value=self.value, allow_blank=False, id="prompt-choice")
            field = Input(value=self.text, placeholder=self.placeholder, id="prompt-text")
            field.cursor_blink = getattr(self.app, "blink", True)
            yield field
            yield Static("", id="prompt-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back")
                yield Button(self.action_label, id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#prompt-choice", Select).focus()

    @on(Input.Submitted, "#prompt-text")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        text = self.query_one("#prompt-text", Input).value.strip()
        if self.required and not text:
            self.query_one("#prompt-error", Static).update("a name is required")
            self.query_one("#prompt-text", Input).focus()
            return
        choice = self.query_one("#prompt-choice", Select).value
        self.dismiss((str(choice), text))

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)


def role_options() -> list[tuple[str, str]]:
    """The incident roles as ``ChoicePrompt`` options (title shown, role id returned)."""
    return [(ROLE_TITLES[r], r) for r in ROLES]


def severity_options() -> list[tuple[str, str]]:
    """SEV1…SEV5 with a word each, so "SEV1 is the worst" needs no memory."""
    names = {1: "critical", 2: "major", 3: "minor", 4: "low", 5: "informational"}
    return [
        (f"{severity_name(level)} — {names[level]}", severity_name(level)) for level in SEVERITIES
    ]
