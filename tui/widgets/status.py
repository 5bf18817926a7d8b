"""Status glyphs and theme styles, shared by every view of a run.

The glyph and colour of each status come from the one table in
:mod:`quarterdeck.core.journal.statuses` (its ``mark`` and ``theme``). Colours are theme
variables only (``$success``, ``$error``…), so every Textual theme works and nothing is
hard-coded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.markup import escape

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.statuses import RunStatus, look

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def icon(status: str, frame: int = 0) -> str:
    """The glyph for a status; a running thing spins (``frame`` comes from the clock)."""
    if status == RunStatus.RUNNING:
        return SPINNER[frame % len(SPINNER)]
    return look(status).mark


def badge(status: str, frame: int = 0) -> str:
    """``icon status`` as Content markup in the status's theme colour."""
    seen = look(status)
    return f"[{seen.theme}]{icon(status, frame)} {escape(seen.label)}[/]"


def glyph(status: str, frame: int = 0) -> str:
    """Just the coloured icon, as Content markup."""
    return f"[{look(status).theme}]{icon(status, frame)}[/]"


def elide_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle (``abc…xyz``): the end
    of an id, a path or an error is as telling as its start."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def run_took(state: Any, now: Callable[[], float]) -> str:
    """A run's duration as Home, ``runs`` and ``show`` give it: its active time
    (``RunState.active_time``: time paused, waiting or interrupted left out)."""
    if state.started_at is None:
        return ""
    return format_duration(state.active_time(state.started_at, state.finished_at, now()))


def span(started: float | None, finished: float | None, now: Callable[[], float]) -> str:
    """How long something ran (or has been running), with the injected clock."""
    if started is None:
        return ""
    end = finished if finished is not None else now()
    return format_duration(max(0.0, end - started))


def ago(ts: float | None, now: Callable[[], float]) -> str:
    """``3m ago``: relative, so snapshots and time zones do not matter."""
    if ts is None:
        return ""
    delta = max(0.0, now() - ts)
    if delta < 60:
        return f"{int(delta)}s ago"
    if delta < 3600:
        return f"{int(delta // 60)}m ago"
    if delta < 86400:
        return f"{int(delta // 3600)}h ago"
    return f"{int(delta // 86400)}d ago"


_TAG = re.compile(r"\[\$([a-z][a-z0-9-]*)\]")


def rich_text(markup: str, variables: Mapping[str, str]) -> Text:
    """Our Content markup as Rich Text, for widgets that still take Rich (Tree, DataTable).

    ``[$name]`` tags become the theme's colour for ``name`` (``$text-muted`` is dim), so
    those widgets follow the theme too.
    """

    def resolve(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "text-muted":
            return "[dim]"
        value = variables.get(name, "")
        return f"[{value}]" if value.startswith("#") else "[not dim]"

    return Text.from_markup(_TAG.sub(resolve, markup))


def fill_runs(
    table: Any,
    rows: Sequence[Any],
    now: Callable[[], float],
    variables: Mapping[str, str],
    durations: Mapping[str, float] | None = None,
) -> None:
    """Runs as table rows (id, workflow, status, started, took, by), keyed by run id.

    The home screen's recent runs and the history screen show the same columns; ``took``
    is the run's active time (core/journal/active.py), as ``runs`` and ``show`` say.
    """
    for row in rows:
        seconds = (durations or {}).get(row.id)
        if seconds is None:  # not measured: no time held known, so wall-clock from the row
            seconds = max(0.0, (row.finished_at or now()) - row.started_at)
        took = format_duration(seconds)
        table.add_row(
            row.id,
            row.workflow,
            rich_text(badge(row.status), variables),
            ago(row.started_at, now),
            took,
            row.started_by,
            key=row.id,
        )
