"""The war room's timeline: every run event and person's action, oldest first, filterable.

``f`` cycles all / people / run; ``/`` filters by text. A person's decision (an approval,
a signal) carries their name, not "run".
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.widgets import Input

from quarterdeck.core.incidents.model import Incident
from quarterdeck.tui.widgets.warroom import _Pane, utc

# -- timeline ---------------------------------------------------------------------------

FILTERS = ("all", "people", "run")
SOURCE_STYLE = {
    "note": "$text",
    "update": "$accent",
    "incident": "$warning",
    "refused": "$error",
    "alert": "$error",
    "run": "$text-muted",
}


class _Body(_Pane):
    """The timeline's text. Each new height it is laid out with (new entries) takes the
    scroll to the end: a scroll asked for just after the update can run before the new
    lines have their height, and leave the newest ones below the fold."""

    def on_resize(self, event: events.Resize) -> None:
        if isinstance(self.parent, VerticalScroll):
            self.parent.scroll_end(animate=False)


class TimelinePanel(Vertical):
    """Every event and human note, oldest first; ``f`` cycles all/people/run, ``/``
    filters by text."""

    DEFAULT_CSS = """
    TimelinePanel { height: 1fr; }
    TimelinePanel > #timeline-title { height: 1; background: $panel; padding: 0 1; }
    TimelinePanel > VerticalScroll { height: 1fr; }
    TimelinePanel > Input { display: none; height: 3; }
    TimelinePanel.-filtering > Input { display: block; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = "all"
        self.text = ""
        self._last: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield _Pane(id="timeline-title")
        with VerticalScroll(id="timeline-scroll"):
            yield _Body(id="timeline-body")
        field = Input(placeholder="filter the timeline (esc clears)", id="timeline-filter")
        yield field

    def render_incident(self, incident: Incident, force: bool = False) -> None:
        entries = incident.sorted_timeline()
        key = (
            len(entries),
            incident.last_signal_id,
            self.mode,
            self.text,
            entries[-1].ts if entries else 0,
        )
        if key == self._last and not force:
            return
        self._last = key
        shown = []
        for entry in entries:
            if self.mode == "people" and entry.source == "run":
                continue
            if self.mode == "run" and entry.source != "run":
                continue
            line = f"{entry.actor} {entry.text}"
            if self.text and self.text.lower() not in line.lower():
                continue
            style = SOURCE_STYLE.get(entry.source, "$text")
            who = escape(entry.actor or "run")
            label = {"note": "note", "update": "UPDATE", "refused": "refused"}.get(entry.source, "")
            text = escape(entry.text)
            lead = f"[b]{label}[/b] " if label else ""
            shown.append(f"[$text-muted]{utc(entry.ts)}[/] {who:<12} [{style}]{lead}{text}[/]")
        filt = f"  filter: “{escape(self.text)}”" if self.text else ""
        self.query_one("#timeline-title", _Pane).show(
            f"[b]Timeline[/b]  [$text-muted]{self.mode} · {len(shown)}/{len(entries)} "
            f"entries (f: all/people/run, /: filter){filt}[/]"
        )
        self.query_one("#timeline-body", _Pane).show(
            "\n".join(shown) if shown else "[$text-muted]nothing matches[/]"
        )
        scroll = self.query_one("#timeline-scroll", VerticalScroll)
        scroll.call_after_refresh(scroll.scroll_end, animate=False)

    def cycle(self) -> str:
        self.mode = FILTERS[(FILTERS.index(self.mode) + 1) % len(FILTERS)]
        return self.mode

    def open_filter(self) -> None:
        self.add_class("-filtering")
        field = self.query_one("#timeline-filter", Input)
        field.value = self.text
        field.focus()

    def close_filter(self) -> None:
        self.remove_class("-filtering")
