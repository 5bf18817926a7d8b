"""Contextual help: the keys of the screen you came from, and why any is unavailable.

It reads the same registry as the footer and the command palette, plus the focused
widget's own keys.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from quarterdeck.tui.bindings import commands
from quarterdeck.tui.commands import scope_of, unavailable


def help_text(screen: Screen[object]) -> str:
    scope = scope_of(screen)
    lines = [f"[b]{escape(scope.title())}[/b]"]
    for command in [*commands(scope), *commands("app")]:
        key = command.key_display or command.key
        why = unavailable(screen, command)
        text = f"  [b]{escape(key):>7}[/b]  {escape(command.description)}: {escape(command.help)}"
        if why:
            text = (
                f"  [$text-muted]{escape(key):>7}  {escape(command.description)}: "
                f"{escape(command.help)}[/]\n           [$warning]unavailable: "
                f"{escape(why)}[/]"
            )
        lines.append(text)
    lines.append("  [b] ctrl+p[/b]  Commands: search every action of this screen")
    focused = screen.focused
    if focused is not None:
        extra = []
        for key, found in focused._bindings.key_to_bindings.items():
            for binding in found:
                if binding.description and binding.show:
                    extra.append(
                        f"  [b]{escape(binding.key_display or key):>7}[/b]  "
                        f"{escape(binding.description)}"
                    )
        if extra:
            lines.append(f"\n[b]{escape(type(focused).__name__)}[/b] (focused)")
            lines.extend(extra[:12])
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Keys for the screen below."""

    SCOPE = "help"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,question_mark,q", "close", "Close", key_display="esc"),
    ]

    def __init__(self, below: Screen[object]) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help"):
            with VerticalScroll():
                yield Static(help_text(self.below), id="help-text")
            yield Static("[$text-muted]esc closes[/]")

    def action_close(self) -> None:
        self.dismiss(None)
