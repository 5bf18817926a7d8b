"""Circuit breakers: stop hammering a target that keeps failing.

One :class:`CircuitBoard` lives in a run's ``ctx.services`` and holds one
:class:`CircuitBreaker` per target (an SSH host, or the base URL of an HTTP service), so
every step of the run that talks to the same target shares what the others learned.
After ``failure_threshold`` failures within ``window`` seconds the breaker *opens*: steps
against that target fail at once, without touching the network, until ``cooldown`` has
passed. Then it is *half-open*: one trial call goes through; success closes the breaker,
failure opens it again for another cool-down.

Time comes from the run's clock (``ctx.clock``), so tests prove the cool-down with a
:class:`quarterdeck.core.clock.FakeClock` instead of sleeping. Transitions are journaled as
``circuit.opened`` / ``circuit.half_open`` / ``circuit.closed`` events so the cockpit can
show an open circuit, and :meth:`CircuitBoard.snapshot` exposes the current state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from quarterdeck.core.clock import Clock
from quarterdeck.core.errors import ActionError
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    from quarterdeck.core.journal import events
    from quarterdeck.core.journal.events import CircuitChanged, EventType
else:  # loaded when a breaker changes, not when `validate` reads an action's parameters
    events = lazy_module("quarterdeck.core.journal.events")

SERVICE_KEY = "circuits"
"""Where the run's :class:`CircuitBoard` lives in ``ctx.services``."""

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitPolicy:
    """When a breaker opens and for how long (defaults suit a deploy or an incident run)."""

    failure_threshold: int = 5
    window: float = 60.0
    cooldown: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.window <= 0 or self.cooldown < 0:
            raise ValueError("window must be positive and cooldown not negative")


class CircuitOpenError(ActionError):
    """A step refused to contact a target whose circuit is open.

    Retryable: the run's retry policy may wait out the cool-down and try again.
    """

    def __init__(self, target: str, retry_in: float, failures: int) -> None:
        super().__init__(
            f"circuit open for {target}: {failures} recent failures; not contacting it for "
            f"another {retry_in:.1f}s (the breaker half-opens after its cool-down)",
            retryable=True,
            outputs={"circuit": OPEN, "target": target, "retry_in": round(retry_in, 3)},
        )
        self.target = target
        self.retry_in = retry_in


@dataclass
class CircuitBreaker:
    """The state of one target. Not thread-safe: a run's steps share one event loop."""

    target: str
    policy: CircuitPolicy
    state: str = CLOSED
    failures: deque[float] = field(default_factory=deque)
    opened_at: float | None = None
    trial_in_flight: bool = False
    last_error: str = ""
    times_opened: int = 0

    def _prune(self, now: float) -> None:
        while self.failures and now - self.failures[0] > self.policy.window:
            self.failures.popleft()

    def retry_in(self, now: float) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.policy.cooldown - now)

    def changed(self, now: float) -> CircuitChanged:
        """The breaker as a ``circuit.*`` event's payload."""
        self._prune(now)
        return events.CircuitChanged(
            target=self.target,
            state=self.state,
            failures=len(self.failures),
            failure_threshold=self.policy.failure_threshold,
            window=self.policy.window,
            cooldown=self.policy.cooldown,
            retry_in=round(self.retry_in(now), 3) if self.state == OPEN else 0.0,
            times_opened=self.times_opened,
            last_error=self.last_error,
        )

    def describe(self, now: float) -> dict[str, Any]:
        """The breaker for the cockpit or a report: its event data."""
        return self.changed(now).to_data()


Emitter = Any  # Callable[[str, dict[str, Any]], Awaitable[None]] | None


class CircuitBoard:
    """All breakers of a run, keyed by target. Put one in ``ctx.services`` per run."""

    def __init__(self, policy: CircuitPolicy | None = None, clock: Clock | None = None) -> None:
        self.policy = policy or CircuitPolicy()
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def _now(self, clock: Clock | None) -> float:
        return (self.clock or clock or Clock()).monotonic()

    def breaker(self, target: str) -> CircuitBreaker:
        found = self._breakers.get(target)
        if found is None:
            found = self._breakers[target] = CircuitBreaker(target, self.policy)
        return found

    def state(self, target: str, clock: Clock | None = None) -> str:
        """The state a call would see now (an open breaker past its cool-down is half-open)."""
        b = self._breakers.get(target)
        if b is None:
            return CLOSED
        if b.state == OPEN and b.retry_in(self._now(clock)) <= 0:
            return HALF_OPEN
        return b.state

    def snapshot(self, clock: Clock | None = None) -> list[dict[str, Any]]:
        """Every known target and its breaker, for the cockpit or a report."""
        now = self._now(clock)
        return [b.describe(now) for _, b in sorted(self._breakers.items())]

    async def before_call(self, target: str, clock: Clock | None, emit: Emitter) -> None:
        """Raise :class:`CircuitOpenError` unless a call to ``target`` may go ahead."""
        b = self.breaker(target)
        now = self._now(clock)
        if b.state == CLOSED:
            return
        if b.state == OPEN:
            wait = b.retry_in(now)
            if wait > 0:
                raise CircuitOpenError(target, wait, len(b.failures) or b.policy.failure_threshold)
            b.state = HALF_OPEN
            b.trial_in_flight = False
            await _emit(emit, events.EventType.CIRCUIT_HALF_OPEN, b.changed(now))
        if b.trial_in_flight:  # half-open: one trial at a time, the others fail fast
            raise CircuitOpenError(target, 0.0, len(b.failures))
        b.trial_in_flight = True

    async def record_success(self, target: str, clock: Clock | None, emit: Emitter) -> None:
        b = self.breaker(target)
        was = b.state
        b.failures.clear()
        b.trial_in_flight = False
        b.state = CLOSED
        b.opened_at = None
        if was != CLOSED:
            await _emit(emit, events.EventType.CIRCUIT_CLOSED, b.changed(self._now(clock)))

    async def record_failure(
        self, target: str, error: str, clock: Clock | None, emit: Emitter
    ) -> None:
        b = self.breaker(target)
        now = self._now(clock)
        b.failures.append(now)
        b.last_error = error
        b._prune(now)
        b.trial_in_flight = False
        if b.state == HALF_OPEN or (
            b.state == CLOSED and len(b.failures) >= b.policy.failure_threshold
        ):
            b.state = OPEN
            b.opened_at = now
            b.times_opened += 1
            await _emit(emit, events.EventType.CIRCUIT_OPENED, b.changed(now))

    async def release(self, target: str) -> None:
        """A call that ended without a verdict on the target (e.g. cancelled)."""
        self.breaker(target).trial_in_flight = False

    @asynccontextmanager
    async def guard(self, target: str, ctx: Any) -> AsyncIterator[CallVerdict]:
        """Wrap one call to ``target``: fail fast when open, record the outcome.

        The body calls ``verdict.failed(reason)`` for an outcome that counts against the
        target (a 5xx reply) and ``verdict.ok()`` once the target answered sanely; an
        exception escaping the body without a verdict (a refused connection) counts as a
        failure. Cancellation gives no verdict.
        """
        clock = getattr(ctx, "clock", None)
        emit = getattr(ctx, "emit_event", None)
        await self.before_call(target, clock, emit)
        verdict = CallVerdict()
        try:
            yield verdict
        except Exception as exc:
            if verdict.outcome is None:
                reason = exc.message if isinstance(exc, ActionError) else f"{exc}"
                verdict.failed(reason or type(exc).__name__)
            await self._settle(target, verdict, clock, emit)
            raise
        except BaseException:  # cancelled or timed out by the runner: no verdict
            await self.release(target)
            raise
        await self._settle(target, verdict, clock, emit)

    async def _settle(self, target: str, verdict: CallVerdict, clock: Any, emit: Emitter) -> None:
        if verdict.outcome is False:
            await self.record_failure(target, verdict.reason, clock, emit)
        else:
            await self.record_success(target, clock, emit)


@dataclass
class CallVerdict:
    """What a guarded call says about its target: None (healthy), or a failure reason."""

    outcome: bool | None = None
    reason: str = ""

    def failed(self, reason: str) -> None:
        self.outcome, self.reason = False, reason

    def ok(self) -> None:
        self.outcome, self.reason = True, ""


async def _emit(emit: Emitter, kind: EventType, payload: CircuitChanged) -> None:
    if emit is not None:
        await emit(str(kind), payload.to_data())


def circuit_board(ctx: Any) -> CircuitBoard:
    """The run's board (created on first use, shared by every step through ``ctx.services``)."""
    board = ctx.services.get(SERVICE_KEY)
    if not isinstance(board, CircuitBoard):
        board = CircuitBoard()
        ctx.services[SERVICE_KEY] = board
    return board


def http_target(url: str) -> str:
    """The breaker key of an HTTP URL: its scheme, host and port (the base URL)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}"


def ssh_target(host: str, port: int) -> str:
    """The breaker key of an SSH host."""
    return f"ssh://{host}:{port}"
