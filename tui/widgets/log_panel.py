"""The log of the selected step or of the whole run.

Lines arrive in batches (one ``write_lines`` per frame, never one message per line),
the widget keeps at most ``MAX_LINES``, it follows only while you are at the bottom,
and ``/`` filters by text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Log, Static

from quarterdeck.core.journal.state import LogLine

MAX_LINES = 5000


class LogPanel(Vertical):
    """A bounded, filterable, follow-at-bottom log."""

    DEFAULT_CSS = """
    LogPanel { height: 1fr; }
    LogPanel > #log-title { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    LogPanel > Log { height: 1fr; background: $surface; overflow-x: hidden; }
    LogPanel > Input { display: none; height: 3; }
    LogPanel.-filtering > Input { display: block; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step: tuple[str, str] | None = None  # (stage, step) or None for the whole run
        self.stage: str | None = None
        self.filter_text = ""
        self.shown = 0
        # where the lines come from, so a resize can re-wrap errors to the new width
        self.source: Callable[[], Iterable[LogLine]] | None = None
        self._wrapped_at = 0

    def compose(self) -> ComposeResult:
        yield Static("log · whole run", id="log-title", markup=False)
        yield Log(max_lines=MAX_LINES, auto_scroll=False, id="log")
        yield Input(placeholder="filter the log (esc clears)", id="log-filter")

    @property
    def log_widget(self) -> Log:
        return self.query_one("#log", Log)

    def matches(self, line: LogLine) -> bool:
        if self.step is not None and (line.stage, line.step) != self.step:
            return False
        if self.stage is not None and line.stage != self.stage:
            return False
        return not self.filter_text or self.filter_text.lower() in line.text.lower()

    def _format(self, line: LogLine) -> str:
        if self.step is not None:
            return line.text
        return f"{line.step or '-'} │ {line.text}"

    def _wrapped(self, line: LogLine) -> list[str]:
        """A step's error in full, wrapped to the pane (output lines stay one line each)."""
        text = self._format(line)
        if line.stream != "error":
            return [text]
        width = max(20, (self.log_widget.content_size.width or 80) - 1)
        self._wrapped_at = width
        return textwrap.wrap(text, width, subsequent_indent="  ") or [text]

    def on_resize(self) -> None:
        """Errors were wrapped to the old width: wrap them again (only when some were)."""
        width = max(20, (self.log_widget.content_size.width or 80) - 1)
        if self._wrapped_at and width != self._wrapped_at and self.source is not None:
            self.reset(self.source())

    def append(self, lines: Iterable[LogLine]) -> None:
        """Write new lines that match the current scope and filter, in one batch."""
        text = [piece for x in lines if self.matches(x) for piece in self._wrapped(x)]
        if not text:
            return
        if len(text) > MAX_LINES:
            text = text[-MAX_LINES:]
        log = self.log_widget
        at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y - 1
        log.write_lines(text, scroll_end=at_bottom)
        if at_bottom:  # again once laid out: the first frame has no size yet
            self.call_after_refresh(log.scroll_end, animate=False)
        self.shown += len(text)

    def reset(self, lines: Iterable[LogLine]) -> None:
        """Rebuild after the scope or the filter changed."""
        self.log_widget.clear()
        self.shown = 0
        scope = "whole run"
        if self.step is not None:
            scope = f"step {self.step[1]}"
        elif self.stage is not None:
            scope = f"stage {self.stage}"
        title = f"log · {scope}" + (f" · filter: {self.filter_text}" if self.filter_text else "")
        self.query_one("#log-title", Static).update(title)
        self.append(lines)
        self.log_widget.scroll_end(animate=False)

    def open_filter(self) -> None:
        self.add_class("-filtering")
        field = self.query_one("#log-filter", Input)
        field.value = self.filter_text
        field.focus()

    def close_filter(self) -> None:
        self.remove_class("-filtering")
