"""The incident war room: one incident, many people, the same live state.

Two tails feed it — the run's journal (:class:`~quarterdeck.tui.tails.JournalTail`) and the
run's incident actions (:class:`~quarterdeck.tui.tails.SignalTail`) — and a timer re-armed
after each tick folds both into an :class:`~quarterdeck.core.incidents.incident.Incident`. Every
action is an incident signal recorded with its author by
:func:`quarterdeck.core.incidents.incident.record`, which checks the roles atomically; the deploy
approval and the rollback are ordinary run signals the runner acts on. Any number of ``quarterdeck
warroom RUN --as NAME`` sessions, in any process, see the same thing because they all read the same
store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input

from quarterdeck.core.incidents.incident import (
    Incident,
    build,
    parse_severity,
    record,
    severity_name,
)
from quarterdeck.core.journal.events import ACTIVE_RUN_STATUSES, Event, EventType
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Signal
from quarterdeck.screens.prompts import ChoicePrompt, TextPrompt, role_options, severity_options
from quarterdeck.tui.bindings import bindings
from quarterdeck.tui.tails import JournalTail, SignalTail, send_signal
from quarterdeck.tui.widgets.warroom import (
    Clocks,
    HealthPanel,
    HostsPanel,
    RolesPanel,
    RunbookPanel,
    SeverityBanner,
    TimelinePanel,
)

if TYPE_CHECKING:
    from quarterdeck.tui.app import QuarterdeckApp

TICK_SECONDS = 0.1


def opens_in_warroom(store_path: Path, run_id: str) -> bool:
    """Incident-response runs (and runs people have acted on as incidents) open here."""
    from quarterdeck.core.errors import QuarterdeckError
    from quarterdeck.core.incidents.incident import incident_signals, is_incident_run
    from quarterdeck.core.journal.store import Store

    try:
        with Store(store_path) as store:
            row = store.get_run(run_id)
            return is_incident_run(row.workflow, row.inputs) or bool(
                incident_signals(store, row.id)
            )
    except QuarterdeckError:
        return False


class WarRoomScreen(Screen[None]):
    """Severity, clocks, roles, health, hosts, runbook, timeline — and the actions."""

    SCOPE = "warroom"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *bindings("warroom")
    ]
    DEFAULT_CSS = """
    WarRoomScreen #wr-main {
        layout: grid;
        grid-size: 3 2;
        grid-columns: 38 1fr 38;
        grid-rows: 17 1fr;
        height: 1fr;
    }
    WarRoomScreen .wr-pane { border: round $primary 40%; padding: 0 1; height: 1fr; }
    WarRoomScreen #wr-timeline { column-span: 3; border: round $primary 40%; }
    WarRoomScreen #wr-timeline:focus-within { border: round $primary; }
    WarRoomScreen #wr-middle { height: 1fr; }
    WarRoomScreen #wr-hosts { height: auto; max-height: 5; }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.state = RunState(run_id, keep_log=False)
        self.events: list[Event] = []
        self.signals: list[Signal] = []
        self.incident = Incident(run_id)
        self.params: dict[str, dict[str, Any]] = {}
        self.tail: JournalTail | None = None
        self.signal_tail: SignalTail | None = None
        self.notice = ""
        self._timer: Timer | None = None
        self._dirty = True
        self._definition_requested = False
        self._qapp: QuarterdeckApp | None = None

    @property
    def qapp(self) -> QuarterdeckApp:
        """This screen's app (kept from mount: several apps may share one event loop)."""
        return self._qapp if self._qapp is not None else self.app  # type: ignore[return-value]

    @property
    def actor(self) -> str:
        return self.qapp.actor

    def compose(self) -> ComposeResult:
        yield SeverityBanner(id="wr-banner")
        yield Clocks(id="wr-clocks")
        with Grid(id="wr-main"):
            yield RolesPanel(id="wr-roles", classes="wr-pane")
            with Vertical(id="wr-middle", classes="wr-pane"):
                yield HealthPanel(id="wr-health")
                yield HostsPanel(id="wr-hosts")
            yield RunbookPanel(id="wr-runbook", classes="wr-pane")
            yield TimelinePanel(id="wr-timeline")
        yield Footer()

    def on_mount(self) -> None:
        self._qapp = self.app  # type: ignore[assignment]
        path = Path(self.qapp.store_path)
        self.tail = JournalTail(path, self.run_id).start()
        self.signal_tail = SignalTail(path, self.run_id).start()
        self._tick()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        for tail in (self.tail, self.signal_tail):
            if tail is not None:
                tail.stop()

    # -- the loop ---------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            self.pump()
        finally:
            self._timer = self.set_timer(TICK_SECONDS, self._tick)

    def pump(self) -> int:
        """Drain both tails, fold, repaint once; returns how many items were applied."""
        assert self.tail is not None and self.signal_tail is not None
        events = self.tail.drain()
        signals = self.signal_tail.drain()
        for event in events:
            self.state.apply(event)
            if event.type != EventType.STEP_OUTPUT:
                self.events.append(event)
        self.signals.extend(signals)
        if events or signals:
            self.incident = build(self.run_id, self.events, self.signals)
            self._dirty = True
        row = self.tail.row
        if row is not None:
            if row.status == "interrupted" and self.state.status in ACTIVE_RUN_STATUSES:
                self.state.status = "interrupted"
                self._dirty = True
            if self.incident.run_status in ACTIVE_RUN_STATUSES:
                self.incident.run_status = row.status
            if not self._definition_requested and row.definition:
                self._definition_requested = True
                self._load_definition(row.definition, row.workflow_path)
        if events or signals or self._dirty:
            with self.app.batch_update():
                self._paint()
            self._dirty = False
        elif not self.incident.resolved:  # only clocks and spinners move between changes
            self.query_one("#wr-clocks", Clocks).render_incident(self.incident, self.qapp.now())
            if any(s.status == "running" for s in self.state.stages.values()):
                frame = self.qapp.frame()
                self.query_one("#wr-runbook", RunbookPanel).render_state(self.state, frame)
        return len(events) + len(signals)

    @work(thread=True, group="definition")
    def _load_definition(self, text: str, path: str) -> None:
        """Thresholds of health steps, from the run's own definition, off the UI thread."""
        from quarterdeck.core.definition.validate import load_workflow_text
        from quarterdeck.core.errors import QuarterdeckError

        try:
            workflow = load_workflow_text(text, Path(path), self.qapp.context().personas).workflow
        except QuarterdeckError:
            return
        params: dict[str, dict[str, Any]] = {}
        for stage in workflow.stages:
            todo = [*stage.steps, *stage.on_failure]
            while todo:
                step = todo.pop()
                params[step.id] = dict(step.with_)
                todo.extend(step.fallback)
        self.app.call_from_thread(self._definition_loaded, params)

    def _definition_loaded(self, params: dict[str, dict[str, Any]]) -> None:
        self.params = params
        self._dirty = True
        self.refresh_bindings()

    def _paint(self) -> None:
        now = self.qapp.now()
        frame = self.qapp.frame()
        incident = self.incident
        self.query_one("#wr-banner", SeverityBanner).render_incident(
            incident, self.run_id, self.actor
        )
        self.query_one("#wr-clocks", Clocks).render_incident(incident, now)
        self.query_one("#wr-roles", RolesPanel).render_incident(incident, self.actor)
        self.query_one("#wr-health", HealthPanel).render_state(self.state, self.params, frame)
        self.query_one("#wr-hosts", HostsPanel).render_state(self.state)
        self.query_one("#wr-runbook", RunbookPanel).render_state(self.state, frame)
        self.query_one("#wr-timeline", TimelinePanel).render_incident(incident)
        self.refresh_bindings()

    # -- availability -----------------------------------------------------------------

    def why_unavailable(self, action: str) -> str | None:
        incident = self.incident
        me = self.actor
        if action == "acknowledge":
            return incident.why_not(me, "acknowledge", {})
        if action == "update":
            return incident.why_not(me, "update", {"text": "-"})
        if action == "note":
            return None
        if action == "role":
            return "the incident is resolved" if incident.resolved else None
        if action == "severity":
            other = 1 if incident.severity != 1 else 2
            return incident.why_not(me, "severity", {"severity": other})
        if action == "resolve":
            return incident.why_not(me, "resolve", {})
        if action == "approve":
            return None if self.state.pending_approval() else "no approval gate is waiting"
        if action == "rollback":
            return self._rollback_why()
        if action == "dashboard":
            return None
        return None

    def _rollback_why(self) -> str | None:
        if self.incident.resolved:
            return "the incident is resolved"
        if self.state.pending_approval() is not None:
            return None
        if self.state.status not in ACTIVE_RUN_STATUSES:
            return f"the run has ended ({self.state.status})"
        if self._running_stage() is None:
            return "nothing to roll back: no stage is running and no deploy is waiting"
        return None

    def _running_stage(self) -> str | None:
        for stage in self.state.stages.values():
            if stage.status == "running":
                return stage.id
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if self.why_unavailable(action) else True

    def _refuse(self, action: str) -> bool:
        why = self.why_unavailable(action)
        if why is not None:
            self.notify(why, severity="warning")
            return True
        return False

    # -- writing ----------------------------------------------------------------------

    def act(self, action: str, data: dict[str, Any] | None = None) -> str | None:
        """Record an incident action as this person; returns the refusal, if any."""
        from quarterdeck.core.errors import QuarterdeckError
        from quarterdeck.core.journal.store import Store

        try:
            with Store(self.qapp.store_path) as store:
                done = record(
                    store,
                    self.run_id,
                    action,
                    actor=self.actor,
                    data=data,
                    now=self.qapp.now(),
                    settings=self._settings(),
                )
        except QuarterdeckError as exc:
            self.notify(exc.message, title=f"{action} failed", severity="error")
            return exc.message
        if self.signal_tail is not None:
            self.signal_tail.poke()
        if done.refused is not None:
            self.notify(done.refused, title=f"{action} refused", severity="error")
            return done.refused
        if done.postmortem:
            self.notify(f"postmortem draft: {done.postmortem[0]}", title="resolved")
        if done.postmortem_error:
            self.notify(done.postmortem_error, severity="warning")
        return None

    def _settings(self) -> Any:
        try:
            return self.qapp.context().settings
        except Exception:  # unreadable config: the postmortem skips Logseq
            from quarterdeck.core.config import Settings

            return Settings()

    def send(self, kind: str, *, target: str | None = None, reason: str = "") -> int | None:
        """A run signal (approve, reject, rollback), as the dashboard sends it."""
        return send_signal(
            self,
            Path(self.qapp.store_path),
            self.run_id,
            kind,
            actor=self.actor,
            target=target,
            reason=reason,
            tail=self.tail,
        )

    # -- actions ----------------------------------------------------------------------

    def action_acknowledge(self) -> None:
        if self._refuse("acknowledge"):
            return
        self.act("acknowledge")

    def action_update(self) -> None:
        if self._refuse("update"):
            return

        def done(text: str | None) -> None:
            if text:
                self.act("update", {"text": text})

        self.app.push_screen(
            TextPrompt(
                f"Status update for {self.incident.severity_label} (everyone sees it; the next "
                "one is due a full interval later)",
                placeholder="what we know, what we do next",
                action="Post update",
            ),
            done,
        )

    def action_note(self) -> None:
        def done(text: str | None) -> None:
            if text:
                self.act("note", {"text": text})

        self.app.push_screen(
            TextPrompt(
                "Note for the timeline (start with 'follow-up:' to list it in the postmortem)",
                placeholder="what you saw or did",
                action="Add note",
            ),
            done,
        )

    def action_role(self) -> None:
        if self._refuse("role"):
            return
        mine = self.incident.roles_of(self.actor)
        default = (
            mine[0]
            if mine
            else next((r for r, who in self.incident.roles.items() if who is None), "commander")
        )

        def done(answer: tuple[str, str] | None) -> None:
            if answer:
                role, who = answer
                self.act("role", {"role": role, "to": who or self.actor})

        self.app.push_screen(
            ChoicePrompt(
                "Take a role, or hand one over (the commander assigns any role; a holder hands "
                "over their own)",
                role_options(),
                value=default,
                placeholder=f"who gets it (empty: you, {self.actor})",
                action="Take or hand over",
            ),
            done,
        )

    def action_severity(self) -> None:
        if self._refuse("severity"):
            return

        def done(answer: tuple[str, str] | None) -> None:
            if answer:
                level, why = answer
                if parse_severity(level) == self.incident.severity:
                    self.notify(f"the incident is already {level}", severity="warning")
                    return
                self.act("severity", {"severity": level, "text": why})

        self.app.push_screen(
            ChoicePrompt(
                f"Change the severity (now {self.incident.severity_label}; SEV1 is the worst)",
                severity_options(),
                value=severity_name(self.incident.severity),
                placeholder="why (journaled)",
                action="Change severity",
            ),
            done,
        )

    def action_approve(self) -> None:
        if self._refuse("approve"):
            return
        from quarterdeck.screens.approval import ApprovalScreen

        pending = self.state.pending_approval()
        assert pending is not None

        def closed(result: str | None) -> None:
            if result:
                self.notify(result, title="approval")

        self.app.push_screen(ApprovalScreen(self, pending.id), closed)  # type: ignore[arg-type]

    def action_rollback(self) -> None:
        if self._refuse("rollback"):
            return
        from quarterdeck.screens.confirm import ConfirmScreen

        pending = self.state.pending_approval()
        if pending is None:
            stage = self._running_stage()

            def roll_back(yes: bool | None) -> None:
                if yes:
                    self.send(
                        "rollback",
                        target=stage,
                        reason=f"rollback requested in the war room by {self.actor}",
                    )

            self.app.push_screen(
                ConfirmScreen(
                    f"Roll back: stop stage {stage} now and run its on_failure steps "
                    "(the rollback)?\nThis is journaled with your name.",
                    yes="Roll back",
                    no="Keep going",
                ),
                roll_back,
            )
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.send(
                    "reject",
                    target=pending.id,
                    reason=f"rollback requested in the war room by {self.actor}",
                )
                self.act(
                    "note",
                    {
                        "text": f"rollback: rejected {pending.id}; the service stays "
                        "on the running release"
                    },
                )

        self.app.push_screen(
            ConfirmScreen(
                f"Roll back: reject {pending.id} so the hotfix is not deployed and the service "
                "stays on the release it runs now?\nThe run ends rejected; this is journaled "
                "with your name.",
                yes="Roll back",
                no="Keep waiting",
            ),
            answer,
        )

    def action_resolve(self) -> None:
        if self._refuse("resolve"):
            return

        def done(text: str | None) -> None:
            if text:
                self.act("resolve", {"text": text})

        self.app.push_screen(
            TextPrompt(
                "Resolve the incident? Milestones stop, MTTR is recorded and the postmortem "
                "draft is written.",
                placeholder="resolution summary (required)",
                action="Resolve",
                variant="success",
            ),
            done,
        )

    def action_cycle_filter(self) -> None:
        panel = self.query_one("#wr-timeline", TimelinePanel)
        panel.cycle()
        panel.render_incident(self.incident, force=True)

    def action_filter(self) -> None:
        self.query_one("#wr-timeline", TimelinePanel).open_filter()

    def action_dashboard(self) -> None:
        from quarterdeck.screens.dashboard import DashboardScreen

        self.app.push_screen(DashboardScreen(self.run_id))

    def action_back(self) -> None:
        panel = self.query_one("#wr-timeline", TimelinePanel)
        if panel.has_class("-filtering") or panel.text:
            panel.text = ""
            panel.close_filter()
            panel.render_incident(self.incident, force=True)
            self.set_focus(None)
            return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    @on(Input.Changed, "#timeline-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        panel = self.query_one("#wr-timeline", TimelinePanel)
        panel.text = event.value
        panel.render_incident(self.incident, force=True)

    @on(Input.Submitted, "#timeline-filter")
    def _filter_done(self) -> None:
        self.query_one("#wr-timeline", TimelinePanel).close_filter()
        self.set_focus(None)


def warroom_app(store_path: Path, run_id: str, actor: str, **kwargs: Any) -> QuarterdeckApp:
    """The cockpit opened on ``run_id``'s war room, whatever its workflow (any run may be
    worked as an incident)."""
    from quarterdeck.tui.app import QuarterdeckApp

    class WarRoomApp(QuarterdeckApp):
        # CSS_PATH is relative to the defining module: keep the cockpit's stylesheet
        CSS_PATH = str(Path(__file__).resolve().parent.parent / "tui" / "app.tcss")

        def open_run(self, rid: str, workflow: str | None = None) -> None:
            if rid == run_id:
                self.push_screen(WarRoomScreen(rid))
            else:
                super().open_run(rid, workflow)

    return WarRoomApp(store_path=store_path, actor=actor, attach=run_id, **kwargs)


def run_warroom(*, store: str | None, run_id: str, actor: str | None) -> None:
    """``quarterdeck warroom RUN --as NAME``."""
    from quarterdeck.core.config import current_user, load_settings
    from quarterdeck.tui.launch import store_path

    app = warroom_app(store_path(store), run_id, current_user(actor, load_settings()))
    try:
        app.run()
    finally:
        app.stop_runs()
