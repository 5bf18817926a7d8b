"""What every view of one run shares: the dashboard and the war room follow a run the same way.

A :class:`~quarterdeck.tui.tails.JournalTail` (and any other tail a screen adds) reads the
store in a thread; a timer here, re-armed after each tick so slow ticks never stack, calls the
screen's :meth:`RunScreen.pump` to drain, fold and repaint once. The run's own definition loads
off the UI thread when its row first shows up. Controls are signals written to the store, as
the CLI writes them — in a worker thread, one at a time (another writer may hold the store for
seconds; the cockpit never waits for it); the runner — in this process or any other — acts on
them, and the journal tells every viewer what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import events, work
from textual.screen import Screen
from textual.timer import Timer

from quarterdeck.core.commands import cli_command
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.statuses import RUN_ACTIVE, RunStatus
from quarterdeck.screens.delivery import deliver
from quarterdeck.screens.host import CockpitHost, host_of
from quarterdeck.tui.bindings import explain_unavailable
from quarterdeck.tui.tails import JournalTail, SignalWrite, StoreTail, write_signal

if TYPE_CHECKING:
    from quarterdeck.core.definition.models import Workflow
    from quarterdeck.core.journal.store import RunRow

log = logging.getLogger(__name__)

T = TypeVar("T")

TICK_SECONDS = 0.1

#: The next tick's delay while the tail is behind (the last drain spent its budget): soon,
#: so a viewer catches up fast, but after a turn of the loop for keys and frames.
CATCH_UP_SECONDS = 0.02


def _signal_failure(result: SignalWrite) -> str | None:
    return None if result.signal_id is not None else result.message


class RunScreen(Screen[None]):
    """One run, followed live from its journal: subclasses say what to read besides the
    events (:meth:`_mounted`), how to fold and paint (:meth:`pump`), and which of their
    actions are unavailable and why (:meth:`why_unavailable`)."""

    SITUATIONAL: ClassVar[frozenset[str]] = frozenset()
    """Actions whose keys leave the footer when they do not apply (the others grey out)."""

    def __init__(self, run_id: str, *, keep_log: bool) -> None:
        super().__init__()
        self.run_id = run_id
        self.state = RunState(run_id, keep_log=keep_log)
        self.workflow: Workflow | None = None
        self.tail: JournalTail | None = None
        self.notice = ""
        self._timer: Timer | None = None
        self._dirty = True
        self._definition_requested = False
        self._host: CockpitHost | None = None

    @property
    def host(self) -> CockpitHost:
        """This screen's app (kept from mount: several apps may share one event loop)."""
        return self._host if self._host is not None else host_of(self)

    @property
    def actor(self) -> str:
        return self.host.actor

    # -- the loop ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self._host = host_of(self)
        self.tail = JournalTail(Path(self.host.store_path), self.run_id).start()
        self._mounted()
        self._tick()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        for tail in self._tails():
            tail.stop()

    def _mounted(self) -> None:
        """Set-up once the journal tail runs, before the first tick (more tails, focus)."""

    def _tails(self) -> list[StoreTail[Any]]:
        """Every tail this screen started (stopped on unmount)."""
        return [self.tail] if self.tail is not None else []

    def _tick(self) -> None:
        delay = TICK_SECONDS
        try:
            self.pump()
            if self.tail is not None and self.tail.behind():
                delay = CATCH_UP_SECONDS
        finally:
            self._timer = self.set_timer(delay, self._tick)

    def pump(self) -> int:
        """Drain the tails, fold, repaint once; returns how many items were applied."""
        raise NotImplementedError

    def _follow_row(self, row: RunRow) -> None:
        """What only the run's row says: a crashed run is interrupted (its journal cannot
        say so), and where its definition is (loaded once, off the UI thread)."""
        if row.status == RunStatus.INTERRUPTED and self.state.status in RUN_ACTIVE:
            self.state.status = RunStatus.INTERRUPTED
            self._dirty = True
        if not self._definition_requested and row.definition:
            self._definition_requested = True
            self._load_definition(row.definition, row.workflow_path)

    @work(thread=True, group="definition")
    def _load_definition(self, text: str, path: str) -> None:
        """The run's own definition (what the journal does not carry), off the UI thread."""
        from quarterdeck.core.definition.validate import load_workflow_text
        from quarterdeck.core.errors import QuarterdeckError

        try:
            personas = self.host.context().personas
            workflow = load_workflow_text(text, Path(path), personas).workflow
        except QuarterdeckError:
            return
        deliver(self, self._definition_loaded, workflow)

    def _definition_loaded(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.refresh_bindings()

    # -- availability -----------------------------------------------------------------

    def _live(self) -> bool:
        return self.state.status in RUN_ACTIVE

    def _no_approval_why(self) -> str | None:
        if self.state.pending_approval() is not None:
            return None
        waiting = [a.id for a in self.state.approvals.values() if a.status == "waiting"]
        if waiting and not self._live():
            if self.state.status == RunStatus.INTERRUPTED:
                return (
                    f"the run is interrupted: resume it to decide {waiting[0]} "
                    f"(`{cli_command('resume', self.run_id, store=self.host.store_path)}`)"
                )
            return f"the run has ended ({self.state.status}); {waiting[0]} can no longer apply"
        return "no approval gate is waiting"

    def why_unavailable(self, action: str) -> str | None:
        """Why ``action`` cannot run now (footer, help and palette say the same), or None."""
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Situational keys leave the footer when they do not apply (help and the palette
        still list them, with the reason); the others stay, greyed out."""
        if self.why_unavailable(action) is None:
            return True
        return False if action in self.SITUATIONAL else None

    def on_key(self, event: events.Key) -> None:
        """A key whose action cannot apply now says why (Textual would ignore it)."""
        explain_unavailable(self, event.key)

    def _refuse(self, action: str) -> bool:
        why = self.why_unavailable(action)
        if why is not None:
            self.notify(why, severity="warning")
            return True
        return False

    # -- signals and the approval modal -----------------------------------------------

    def send(
        self,
        kind: str,
        *,
        target: str | None = None,
        reason: str = "",
        then: Callable[[int | None], object] | None = None,
    ) -> bool:
        """Write a run signal to the store, as the CLI would; the runner acts on it.

        The write happens off the UI thread (:meth:`write`). ``then`` runs on the UI thread
        once it is done, with the signal's id, or None when it was refused or failed (the
        person was told). False: the same signal was still waiting to be written.
        """
        store_path, run_id, actor = Path(self.host.store_path), self.run_id, self.actor

        def written(result: SignalWrite) -> None:
            if result.signal_id is None:
                self.notify(result.message, title=result.title, severity=result.severity)
            elif self.tail is not None:
                self.tail.poke()
            if then is not None:
                then(result.signal_id)

        return self.write(
            ("signal", kind, target),
            kind,
            partial(
                write_signal, store_path, run_id, kind, actor=actor, target=target, reason=reason
            ),
            written,
            _signal_failure,
        )

    def write(
        self,
        key: tuple[object, ...],
        what: str,
        action: Callable[[], T],
        done: Callable[[T], object],
        failure: Callable[[T], str | None],
    ) -> bool:
        """Run the store write ``action`` in a worker thread, then ``done(result)`` on the UI
        thread while this screen is up (``failure(result)`` says what went wrong, for when
        it is not). The app's :class:`~quarterdeck.screens.store_writes.StoreWrites` runs
        them, one at a time in the order asked, across screens: leaving this one does not
        drop what it asked for. False: the same write (``key``) still waits, and the person
        was told.
        """
        return self.host.writes.submit(self, key, what, action, done, failure)

    def _open_approval(self, action: str) -> None:
        """The waiting gate's modal (``action`` names the key, for its refusal)."""
        if self._refuse(action):
            return
        from quarterdeck.screens.approval import ApprovalScreen

        pending = self.state.pending_approval()
        assert pending is not None

        def closed(result: str | None) -> None:
            if result:
                self._approval_closed(result)

        self.app.push_screen(ApprovalScreen(self, pending.id), closed)

    def _approval_closed(self, result: str) -> None:
        """The gate was decided (here or anywhere else): say by whom."""
        self.notify(result, title="approval")

    # -- sharing ----------------------------------------------------------------------

    def share_command(self) -> str:
        """What another person pastes to join this run (the war room's own view for an
        incident), complete: the real run id and the store when it is not the default."""
        verb = "warroom" if getattr(self, "SCOPE", "") == "warroom" else "attach"
        return cli_command(verb, self.run_id, store=self.host.store_path)

    def action_share(self) -> None:
        """Show the join command and copy it (terminals that allow it: OSC 52)."""
        command = self.share_command()
        self.app.copy_to_clipboard(command)
        self.notify(
            f"{command}\n(copied to the clipboard where the terminal allows it)",
            title="join this run from another terminal",
            timeout=15,
        )

    # -- keys -------------------------------------------------------------------------

    def action_back(self) -> None:
        """``esc`` undoes what is open inside the screen first, then leaves it (never the
        last screen: home stays)."""
        if self._back_within():
            return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def _back_within(self) -> bool:
        """Close a filter or a narrowed view; True when there was one."""
        return False
