"""The incident war room: one incident, many people, the same live state.

Two tails feed it — the run's journal (:class:`~quarterdeck.tui.tails.JournalTail`, started by
:class:`~quarterdeck.screens.run_screen.RunScreen` like the dashboard's) and the run's incident
actions (:class:`~quarterdeck.tui.tails.SignalTail`) — and each tick folds both into an
:class:`~quarterdeck.core.incidents.model.Incident`. Every
action is an incident signal recorded with its author by
:func:`quarterdeck.core.incidents.record.record`, which checks the roles atomically; the deploy
approval and the rollback are ordinary run signals the runner acts on. Any number of ``quarterdeck
warroom RUN --as NAME`` sessions, in any process, see the same thing because they all read the same
store.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import Input, Tab, Tabs

from quarterdeck.core.commands import store_label
from quarterdeck.core.incidents.model import Incident, build
from quarterdeck.core.incidents.record import Recorded, record
from quarterdeck.core.incidents.severity import parse_severity, severity_name
from quarterdeck.core.journal.events import Event, EventType
from quarterdeck.core.journal.statuses import RUN_ACTIVE, StageStatus
from quarterdeck.core.journal.store import Signal
from quarterdeck.screens.prompts import ChoicePrompt, TextPrompt, role_options, severity_options
from quarterdeck.screens.warroom_deploy import DeployActions
from quarterdeck.tui.bindings import bindings
from quarterdeck.tui.tails import SignalTail, StoreTail
from quarterdeck.tui.widgets.footer import KeysFooter
from quarterdeck.tui.widgets.timeline import TimelinePanel
from quarterdeck.tui.widgets.warroom import (
    Clocks,
    HealthPanel,
    HostsPanel,
    RolesPanel,
    RunbookPanel,
    SeverityBanner,
)

if TYPE_CHECKING:
    from quarterdeck.core.definition.models import Workflow


def opens_in_warroom(store_path: Path, run_id: str) -> bool:
    """Incident-response runs (and runs people have acted on as incidents) open here.

    Asked on the UI thread as a run opens, so read-only: a writable connection records a
    crashed run as interrupted as it reads it, and that write would wait for whoever holds
    the store's write lock; a read never waits for a writer."""
    from quarterdeck.core.errors import QuarterdeckError
    from quarterdeck.core.incidents.read import incident_signals, is_incident_run
    from quarterdeck.core.journal.store import Store

    try:
        with Store(store_path, readonly=True) as store:
            row = store.get_run(run_id)
            return is_incident_run(row.workflow, row.inputs) or bool(
                incident_signals(store, row.id)
            )
    except QuarterdeckError:
        return False


class WarRoomScreen(DeployActions):
    """Severity, clocks, roles, health, hosts, runbook, timeline — and the actions."""

    SCOPE = "warroom"
    # keys for what is not happening now leave the footer (help and `:` still say why)
    SITUATIONAL = frozenset({"acknowledge", "approve", "rollback", "reject_deploy"})
    AUTO_FOCUS = "#timeline-scroll"  # j/k scroll the timeline until a number key moves on
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
    WarRoomScreen .wr-pane:focus, WarRoomScreen .wr-pane:focus-within {
        border: heavy $accent;
    }
    WarRoomScreen #wr-timeline { column-span: 3; border: round $primary 40%; }
    WarRoomScreen #wr-timeline:focus-within { border: heavy $accent; }
    WarRoomScreen #wr-middle { height: 1fr; }
    WarRoomScreen #wr-hosts { height: auto; max-height: 5; }
    WarRoomScreen #wr-tabs { display: none; }
    WarRoomScreen.-tabs #wr-tabs { display: block; }
    WarRoomScreen.-tabs #wr-main { grid-size: 1 2; grid-columns: 1fr; grid-rows: 9 1fr; }
    WarRoomScreen.-tabs #wr-main > .wr-pane { display: none; overflow-y: auto; }
    WarRoomScreen.-tabs #wr-main > .wr-pane.-shown { display: block; }
    WarRoomScreen.-tabs #wr-timeline { column-span: 1; }
    """
    # below 110 columns the three side panes would squeeze to nothing: they become tabs
    HORIZONTAL_BREAKPOINTS = [(0, "-tabs"), (110, "-columns")]  # noqa: RUF012 - Textual reads a list
    PANES = ("wr-roles", "wr-middle", "wr-runbook")

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id, keep_log=False)
        self.events: list[Event] = []
        self.signals: list[Signal] = []
        self.incident = Incident(run_id)
        self.params: dict[str, dict[str, Any]] = {}
        self.signal_tail: SignalTail | None = None

    def compose(self) -> ComposeResult:
        yield SeverityBanner(id="wr-banner")
        yield Clocks(id="wr-clocks")
        tabs = Tabs(
            Tab("1 Roles", id="tab-wr-roles"),
            Tab("2 Health", id="tab-wr-middle"),
            Tab("3 Runbook", id="tab-wr-runbook"),
            id="wr-tabs",
        )
        tabs.can_focus = False  # number keys switch them; focus stays on the panes
        yield tabs
        with Grid(id="wr-main"):
            yield RolesPanel(id="wr-roles", classes="wr-pane -shown")
            with Vertical(id="wr-middle", classes="wr-pane"):
                yield HealthPanel(id="wr-health")
                yield HostsPanel(id="wr-hosts")
            yield RunbookPanel(id="wr-runbook", classes="wr-pane")
            yield TimelinePanel(id="wr-timeline")
        yield KeysFooter()

    def _mounted(self) -> None:
        self.signal_tail = SignalTail(Path(self.host.store_path), self.run_id).start()

    def _tails(self) -> list[StoreTail[Any]]:
        return [*super()._tails(), *([self.signal_tail] if self.signal_tail else [])]

    # -- the loop ---------------------------------------------------------------------

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
            self._follow_row(row)
            if self.incident.run_status in RUN_ACTIVE:
                self.incident.run_status = row.status
        if events or signals or self._dirty:
            with self.app.batch_update():
                self._paint()
            self._dirty = False
        elif not self.incident.resolved:  # only clocks and spinners move between changes
            self.query_one("#wr-clocks", Clocks).render_incident(self.incident, self.host.now())
            if any(s.status == StageStatus.RUNNING for s in self.state.stages.values()):
                frame = self.host.frame()
                self.query_one("#wr-runbook", RunbookPanel).render_state(self.state, frame)
        return len(events) + len(signals)

    def _definition_loaded(self, workflow: Workflow) -> None:
        """Health steps' thresholds (their ``with``), from the run's own definition."""
        params: dict[str, dict[str, Any]] = {}
        for stage in workflow.stages:
            todo = [*stage.steps, *stage.on_failure]
            while todo:
                step = todo.pop()
                params[step.id] = dict(step.with_)
                todo.extend(step.fallback)
        self.params = params
        self._dirty = True
        super()._definition_loaded(workflow)

    def _paint(self) -> None:
        now = self.host.now()
        frame = self.host.frame()
        incident = self.incident
        self.query_one("#wr-banner", SeverityBanner).render_incident(
            incident, self.run_id, self.actor, store_label(self.host.store_path)
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
            return self._no_approval_why()
        if action == "rollback":
            return self._rollback_why()
        if action == "reject_deploy":
            if self.incident.resolved:
                return "the incident is resolved"
            return self._no_approval_why()
        if action == "dashboard":
            return None
        return None

    # -- writing ----------------------------------------------------------------------

    def act(self, action: str, data: dict[str, Any] | None = None) -> bool:
        """Record an incident action as this person, off the UI thread (:meth:`write`: the
        store may be busy); a refusal or a failure is told once it is known. False: the
        same action was still waiting to be written."""
        store_path, run_id, actor = Path(self.host.store_path), self.run_id, self.actor
        now, settings = self.host.now(), self._settings()

        def recording() -> Recorded | str:
            from quarterdeck.core.errors import QuarterdeckError
            from quarterdeck.core.journal.store import Store

            try:
                with Store(store_path) as store:
                    return record(
                        store, run_id, action, actor=actor, data=data, now=now, settings=settings
                    )
            except QuarterdeckError as exc:
                return exc.message

        return self.write(
            ("incident", action, repr(data)),
            action,
            recording,
            partial(self._recorded, action),
            _record_failure,
        )

    def _recorded(self, action: str, done: Recorded | str) -> None:
        if isinstance(done, str):
            self.notify(done, title=f"{action} failed", severity="error")
            return
        if self.signal_tail is not None:
            self.signal_tail.poke()
        if done.refused is not None:
            self.notify(done.refused, title=f"{action} refused", severity="error")
            return
        if done.postmortem:
            self.notify(f"postmortem draft: {done.postmortem[0]}", title="resolved")
        if done.postmortem_error:
            self.notify(done.postmortem_error, severity="warning")

    def _settings(self) -> Any:
        try:
            return self.host.context().settings
        except Exception:  # unreadable config: the postmortem skips Logseq
            from quarterdeck.core.config import Settings

            return Settings()

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
        self._open_approval("approve")

    def action_resolve(self) -> None:
        if self._refuse("resolve"):
            return
        from quarterdeck.screens.confirm import ConfirmScreen

        def done(text: str | None) -> None:
            if text:
                self.act("resolve", {"text": text})

        def ask() -> None:
            self.app.push_screen(
                TextPrompt(
                    "Resolve the incident? Milestones stop, MTTR is recorded and the "
                    "postmortem draft is written.",
                    placeholder="resolution summary (required)",
                    action="Resolve",
                    variant="success",
                ),
                done,
            )

        alert = self.incident.alert_state
        if alert is None or alert[0] != "firing":
            ask()
            return
        source = "Alertmanager says so" if alert[1] == "alertmanager" else f"{alert[1]} failed"

        def anyway(yes: bool | None) -> None:
            if yes:
                ask()

        self.app.push_screen(
            ConfirmScreen(
                f"The alert is still firing ({source}).\nResolve the incident anyway?",
                yes="Resolve anyway",
                no="Keep working",
            ),
            anyway,
        )

    @on(Tabs.TabActivated, "#wr-tabs")
    def _tab(self, event: Tabs.TabActivated) -> None:
        shown = (event.tab.id or "").removeprefix("tab-")
        for pane in self.PANES:
            self.query_one(f"#{pane}").set_class(pane == shown, "-shown")

    def action_pane(self, number: int) -> None:
        """``1``–``4``: roles, health, runbook, timeline (a tab when they are tabs)."""
        if number == 4:
            self.query_one("#timeline-scroll").focus()
            return
        pane = self.PANES[number - 1]
        self.query_one("#wr-tabs", Tabs).active = f"tab-{pane}"
        target = self.query_one("#wr-health") if pane == "wr-middle" else self.query_one(f"#{pane}")
        target.focus()

    def action_cycle_filter(self) -> None:
        panel = self.query_one("#wr-timeline", TimelinePanel)
        panel.cycle()
        panel.render_incident(self.incident, force=True)

    def action_filter(self) -> None:
        self.query_one("#wr-timeline", TimelinePanel).open_filter()

    def action_dashboard(self) -> None:
        from quarterdeck.screens.dashboard import DashboardScreen

        self.app.push_screen(DashboardScreen(self.run_id))

    def _back_within(self) -> bool:
        panel = self.query_one("#wr-timeline", TimelinePanel)
        if panel.has_class("-filtering") or panel.text:
            panel.text = ""
            panel.close_filter()
            panel.render_incident(self.incident, force=True)
            self.set_focus(None)
            return True
        return False

    @on(Input.Changed, "#timeline-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        panel = self.query_one("#wr-timeline", TimelinePanel)
        panel.text = event.value
        panel.render_incident(self.incident, force=True)

    @on(Input.Submitted, "#timeline-filter")
    def _filter_done(self) -> None:
        self.query_one("#wr-timeline", TimelinePanel).close_filter()
        self.set_focus(None)


def _record_failure(done: Recorded | str) -> str | None:
    """What a war-room write's result says went wrong (None: it was recorded)."""
    if isinstance(done, str):
        return done
    return done.refused
