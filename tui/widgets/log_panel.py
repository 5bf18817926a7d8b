"""The log of the selected step or of the whole run.

Lines arrive in batches (one ``write_lines`` per frame, never one message per line), it
follows only while you are at the bottom, and ``/`` filters by text.

Bounded, so a step printing 50,000 lines a second costs a frame no more drawing than a
screenful of them: a frame draws at most :data:`FRAME_LINES` new lines (the newest; a
marker line says how many earlier ones were not drawn), and the scrollback keeps the last
:data:`MAX_LINES` (the title says so once older lines have gone). Every line is still in
the step's log file (and the journal, up to its cap): only this view is bounded, and
never silently.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Iterable
from typing import Any, Self

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input, Log, Static

from quarterdeck.core.journal.state import LogLine

MAX_LINES = 5000

#: New lines drawn in one frame at most (a tall terminal shows ~60): a flood's older lines
#: in the same frame are replaced by one marker line saying how many were not drawn.
FRAME_LINES = 400

#: The title's note once the scrollback has dropped its oldest lines.
SCROLLBACK_NOTE = f"last {MAX_LINES:,} lines (older: the step's log file)"


def skipped_marker(count: int) -> str:
    """The line standing in for lines a frame did not draw (the view never drops silently)."""
    noun = "line" if count == 1 else "lines"
    return f"⋯ {count:,} {noun} not drawn here (all are in the step's log file)"


class _Log(Log):
    """Textual's Log, without two costs a flood paid on every write.

    - The width scan: every write started a thread that measured each new line's cell
      width (holding the GIL) only to size a horizontal scrollbar this pane hides
      (``overflow-x: hidden``). Long lines are cut at the edge.
    - The screen layout: a write that grows the scrollback changes the virtual size, a
      reactive that asks the whole screen for a layout, and so a full repaint of every
      widget (under a flood, until the scrollback was full: the worst key-to-frame
      waits). The pane's own size never depends on its lines (``height: 1fr``), so only
      its scrollbar follows the growth (a scrollbar shown or hidden still lays out).
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    _followed = Size(0, 0)

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        return

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        super().write_lines(lines, scroll_end)
        self._follow_size()
        return self

    def clear(self) -> Self:
        super().clear()
        self._follow_size()
        return self

    def _follow_size(self) -> None:
        """What a layout did for a changed virtual size: the scrollbar's thumb and
        whether it shows (nothing before the pane has a size: its first layout does it).
        Only on a change: a full scrollback keeps its size, and redrawing the scrollbar on
        every write cost more than the lines."""
        size = self.virtual_size
        if self.container_size and size != self._followed:
            self._followed = size
            self._scroll_update(size)


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
        self.shown = 0  # lines drawn since the last reset
        self.skipped = 0  # lines not drawn since the last reset (each frame's marker says)
        self._written = 0  # lines in the widget since the last reset, markers included
        self._held: list[LogLine] = []  # folded since the last paint (see hold)
        self._scope_title = "log · whole run"
        # where the lines come from, so a resize can re-wrap errors to the new width
        self.source: Callable[[], Iterable[LogLine]] | None = None
        self._wrapped_at = 0

    def compose(self) -> ComposeResult:
        yield Static("log · whole run", id="log-title", markup=False)
        yield _Log(max_lines=MAX_LINES, auto_scroll=False, id="log")
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

    @property
    def holding(self) -> bool:
        """Lines are held for the next paint."""
        return bool(self._held)

    def hold(self, lines: list[LogLine]) -> None:
        """Keep lines folded between paints (a viewer catching up folds in slices faster
        than it paints) for the next :meth:`append`, which draws them or counts them in
        its marker; a :meth:`reset` redraws from the kept lines instead."""
        self._held.extend(lines)

    def append(self, lines: Iterable[LogLine], limit: int = FRAME_LINES) -> None:
        """Write new lines (after any held ones) that match the current scope and filter, in
        one batch: the newest ``limit`` of them, after a marker counting the ones not drawn."""
        batch = lines if isinstance(lines, list) else list(lines)
        if self._held:
            batch, self._held = self._held + batch, []
        text: list[str] = []
        # the whole run unfiltered shows every line: no test per line (a flood's 50,000 a
        # second went through one, even the ones only counted)
        everything = self.step is None and self.stage is None and not self.filter_text
        # newest first, so a flood formats only what it draws (older matches are counted)
        older = len(batch)
        while older and len(text) < limit:
            older -= 1
            x = batch[older]
            if everything or self.matches(x):
                text.extend(reversed(self._wrapped(x)))
        if everything:
            skipped = older
        else:
            skipped = sum(1 for x in itertools.islice(batch, older) if self.matches(x))
        if not text:
            return
        text.reverse()
        if skipped:
            text.insert(0, skipped_marker(skipped))
            self.skipped += skipped
        log = self.log_widget
        at_bottom = log.max_scroll_y == 0 or log.scroll_y >= log.max_scroll_y - 1
        log.write_lines(text, scroll_end=at_bottom)
        if at_bottom:  # again once laid out: the first frame has no size yet
            self.call_after_refresh(log.scroll_end, animate=False)
        self.shown += len(text) - (1 if skipped else 0)
        rotated = self._written <= MAX_LINES < self._written + len(text)
        self._written += len(text)
        if rotated:  # the oldest lines just left the scrollback: say so, once
            self._title()

    def _title(self) -> None:
        note = f" · {SCROLLBACK_NOTE}" if self._written > MAX_LINES else ""
        # one line, always: a layout here repainted the whole screen mid-flood
        self.query_one("#log-title", Static).update(self._scope_title + note, layout=False)

    def reset(self, lines: Iterable[LogLine]) -> None:
        """Rebuild after the scope or the filter changed."""
        self._held = []  # the kept lines include them: drawn below, once
        self.log_widget.clear()
        self.shown = 0
        self.skipped = 0
        self._written = 0
        scope = "whole run"
        if self.step is not None:
            scope = f"step {self.step[1]}"
        elif self.stage is not None:
            scope = f"stage {self.stage}"
        self._scope_title = f"log · {scope}" + (
            f" · filter: {self.filter_text}" if self.filter_text else ""
        )
        self._title()
        self.append(lines, limit=MAX_LINES)  # once, on a person's action: all that is kept
        self.log_widget.scroll_end(animate=False)

    def open_filter(self) -> None:
        self.add_class("-filtering")
        field = self.query_one("#log-filter", Input)
        field.value = self.filter_text
        field.focus()

    def close_filter(self) -> None:
        self.remove_class("-filtering")
