"""Side panels of the dashboard: the active persona, budgets, metrics.

Each panel renders from a :class:`~quarterdeck.core.journal.state.RunState` and repaints only when
what it would show has changed ("latest value wins": a burst of token events costs one paint).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.color import Color, ColorParseError
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import Sparkline, Static

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.state import PersonaUsage, RunState
from quarterdeck.core.journal.statuses import RUN_ACTIVE, ApprovalStatus, GateStatus
from quarterdeck.tui.widgets.status import glyph, run_took

BAR_WIDTH = 10
NAME_WIDTH = 16
WARN_AT = 0.8


def _colour(name: str | None) -> str | None:
    """A persona's colour (data from its YAML) when it is one Rich understands."""
    if not name:
        return None
    try:
        Color.parse(name)
    except ColorParseError:
        return None
    return name


def text_shape(markup: str) -> tuple[int, tuple[int, ...]]:
    """Where ``markup`` could wrap or break: its length and its spaces and newlines. Two
    texts of one shape take the same lines (a ticking clock, a count, a spinner glyph)."""
    return len(markup), tuple(i for i, c in enumerate(markup) if c in " \n")


class _Panel(Static):
    """A Static that skips repaints nobody could see, and lays the screen out again only
    when its text takes a different number of lines (a layout is a whole-screen reflow:
    the metrics' clock ticks several times a second while a run goes, and a count or a
    clock gaining a digit mostly still fits its line)."""

    _last: str | None = None

    def show(self, markup: str) -> None:
        if markup == self._last:
            return
        last, self._last = self._last, markup
        if last is not None and text_shape(markup) == text_shape(last):
            self.update(markup, layout=False)  # takes the same lines, surely
            return
        width, height = self.content_size
        if last is None or not width:  # not laid out yet
            self.update(markup)
            return
        self.update(markup, layout=False)
        # as Widget.get_content_height measures (its cache is keyed on the width only)
        if self.visual.get_height(self.styles, width) != height:  # type: ignore[arg-type]
            self.refresh(layout=True)


class PersonaPanel(_Panel):
    """Who owns the work now, and the switches so far."""

    def render_state(self, state: RunState) -> None:
        name = state.persona
        if not name:
            self.show("[$text-muted]no persona yet[/]")
            return
        usage = state.personas.get(name) or PersonaUsage(name)  # as ``run.started`` told
        colour = _colour(usage.color)
        swatch = f"[on {colour}]  [/] " if colour else ""
        title = escape(str(usage.title or name))
        role = escape(str(usage.role or ""))
        lines = [f"{swatch}[b]{title}[/b] [$text-muted]{escape(name)}[/]"]
        if role:
            lines.append(f"[$text-muted]{role}[/]")
        switches = state.switches[-3:]
        if switches:
            hops = []
            for s in switches:
                src = escape(str(s.from_ or "start"))
                hops.append(f"{src} → {escape(str(s.to or '?'))}")
            count = len(state.switches)
            shown = "" if count == len(switches) else f", last {len(switches)}"
            lines.append(f"[$text-muted]switches ({count}{shown}):[/] " + ", ".join(hops))
        self.show("\n".join(lines))


def budget_line(usage: PersonaUsage, width: int = BAR_WIDTH) -> str:
    """``name ███░░ used/budget`` coloured by how close to the budget it is."""
    raw = usage.name if len(usage.name) <= NAME_WIDTH else usage.name[: NAME_WIDTH - 1] + "…"
    name = escape(raw.ljust(NAME_WIDTH))
    if usage.budget <= 0:
        return f"{name} [$text-muted]{usage.tokens_used} tokens, no budget[/]"
    ratio = usage.tokens_used / usage.budget
    style = "$success" if ratio < WARN_AT else "$warning" if ratio <= 1 else "$error"
    filled = min(width, round(ratio * width))
    bar = f"[{style}]{'█' * filled}[/][$text-muted]{'░' * (width - filled)}[/]"
    est = "~" if usage.estimated else ""
    left = usage.remaining
    tail = f"{left} left" if left >= 0 else f"[$error]{-left} over[/]"
    return f"{name} {bar} {est}{usage.tokens_used}/{usage.budget} {tail}"


class BudgetPanel(_Panel):
    """A budget bar per persona: used, remaining, warning near and error over budget."""

    def render_state(self, state: RunState) -> None:
        if not state.personas:
            self.show("[$text-muted]no token budgets[/]")
            return
        self.show("\n".join(budget_line(u) for u in state.personas.values()))


#: The token rate's window: "tokens in the last minute" is a rate that cannot exceed what
#: was used (slices of a short run scaled up to a minute could: 221 tokens read as
#: "10216/min"), and it does not drift as the run grows.
RATE_WINDOW = 60.0
SPARK_BUCKETS = 24
SPARK_BUCKET_SECONDS = 10.0


def token_rates(
    series: list[tuple[float, int]],
    start: float | None,
    end: float,
    buckets: int = SPARK_BUCKETS,
    width: float = SPARK_BUCKET_SECONDS,
) -> list[float]:
    """Tokens used in each of the last ``buckets`` fixed ``width``-second slices up to
    ``end`` (oldest first): a slice's height never changes once it is past."""
    if start is None or end <= start:
        return [0.0] * buckets
    out = [0.0] * buckets
    for ts, total in series:
        back = int((end - ts) // width)
        if 0 <= back < buckets:
            out[buckets - 1 - back] += total
    return out


def tokens_last(series: list[tuple[float, int]], end: float, window: float = RATE_WINDOW) -> int:
    """Tokens used in the ``window`` seconds up to ``end``."""
    return sum(total for ts, total in series if end - window < ts <= end)


class MetricsPanel(Vertical):
    """Elapsed time, steps done, tokens per minute (sparkline) and gate results."""

    DEFAULT_CSS = """
    MetricsPanel { height: auto; }
    MetricsPanel > Sparkline { height: 1; margin: 0 0; }
    MetricsPanel > Sparkline > .sparkline--max-color { color: $accent; }
    MetricsPanel > Sparkline > .sparkline--min-color { color: $primary 50%; }
    """

    def compose(self) -> ComposeResult:
        yield _Panel(id="metrics-text")
        yield Sparkline([0.0], id="tokens-spark")
        yield _Panel(id="gates-text")

    def render_state(self, state: RunState, now: Callable[[], float]) -> None:
        done, total = state.counts()
        elapsed = run_took(state, now) or "-"
        tokens = sum(u.tokens_used for u in state.personas.values())
        end = state.finished_at if state.finished_at is not None else now()
        rates = token_rates(state.token_series, state.started_at, end)
        if tokens == 0 and not any(step.uses.startswith("llm.") for step in state.all_steps()):
            usage = "[$text-muted]tokens: no LLM step has run[/]"
        elif state.finished_at is not None:
            usage = f"tokens [b]{tokens}[/b]"
        else:
            recent = tokens_last(state.token_series, end)
            usage = f"tokens [b]{tokens}[/b]  {recent} in the last minute"
        self.query_one("#metrics-text", _Panel).show(
            f"active [b]{elapsed}[/b]  steps [b]{done}/{total}[/b]\n{usage}"
        )
        spark = self.query_one("#tokens-spark", Sparkline)
        if list(spark.data or []) != rates:
            spark.data = rates
        gates = []
        for stage in state.stages.values():
            if stage.gate is not None and stage.gate.status != GateStatus.PENDING:
                who = f" by {escape(stage.gate.skipped_by)}" if stage.gate.skipped_by else ""
                gates.append(
                    f"{glyph(stage.gate.status)} {escape(stage.gate.id)} {stage.gate.status}{who}"
                )
            if stage.approval is not None:
                a = stage.approval
                who = f" by {escape(a.decided_by)}" if a.decided_by else ""
                if a.status == ApprovalStatus.WAITING and state.status not in RUN_ACTIVE:
                    gates.append(f"[$text-muted]– {escape(a.id)} never decided[/]")
                else:
                    gates.append(f"{glyph(a.status)} {escape(a.id)} {a.status}{who}")
        self.query_one("#gates-text", _Panel).show(
            "\n".join(gates) if gates else "[$text-muted]no gates yet[/]"
        )


def describe_duration(seconds: float | None) -> str:
    return format_duration(seconds)
