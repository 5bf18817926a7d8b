"""The run dashboard: one code path for live runs, attached runs and finished runs.

Following the run (the journal tail, the timer, the definition, signals) is
:class:`~quarterdeck.screens.run_screen.RunScreen`'s; here each tick's events are folded into a
:class:`~quarterdeck.core.journal.state.RunState` and the widgets updated once: stages and steps,
persona and budgets, metrics, the log — and the controls (pause, cancel, retry, skip a gate).
"""

from __future__ import annotations

import itertools
import time
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.markup import escape
from textual.widgets import Input, Static, Tree

from quarterdeck.core.commands import store_label
from quarterdeck.core.journal.events import ApprovalDecided, Event
from quarterdeck.core.journal.state import LogLine
from quarterdeck.core.journal.statuses import RUN_ACTIVE, GateStatus, RunStatus, StepStatus
from quarterdeck.screens.run_screen import RunScreen
from quarterdeck.tui.bindings import bindings
from quarterdeck.tui.widgets.footer import KeysFooter
from quarterdeck.tui.widgets.log_panel import LogPanel
from quarterdeck.tui.widgets.panels import BudgetPanel, MetricsPanel, PersonaPanel
from quarterdeck.tui.widgets.stage_tree import NodeKey, StageTree
from quarterdeck.tui.widgets.status import badge, elide_middle, run_took

TITLE_WIDTH = 32

#: Events and output lines folded per tick at most (a few ms): a viewer behind a flood
#: catches up in slices (ticks come faster while it is behind) instead of one long stall.
#: With the last event's lines (the writer journals up to 500 a ``step.output``) a slice
#: stays under the state's 5,000 kept log lines, so the log pane sees (and draws or
#: counts in its marker) every line of it.
FOLD_BUDGET = 4000
ERROR_WIDTH = 60

#: While a viewer catches up (ticks every ``CATCH_UP_SECONDS``), it paints at most this
#: often: each paint redraws the log, the tree and the panels, and under a flood those
#: frames were what a key press waited behind. The lines folded in between are held by the
#: log pane and drawn (or counted in its marker) by the next paint.
PAINT_SECONDS = 0.1

#: A control the runner has not recorded after this long is reported, with what to do.
UNRECORDED_SECONDS = 5.0

#: A run the ``retry`` key resumes (a rejected one stays rejected).
RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.INTERRUPTED})


class DashboardScreen(RunScreen):
    """Stages and steps, persona and budgets, metrics, the log, and the controls."""

    SCOPE = "dashboard"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = bindings(
        "dashboard"
    )
    SITUATIONAL = frozenset({"approval", "retry", "skip_gate", "jump", "whole_log"})

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id, keep_log=True)
        self._offered: set[tuple[str, float | None]] = set()
        self._reported_error: str | None = None
        self._decided: set[str] = set()
        self._keys: tuple[object, ...] = ()
        self._awaiting: tuple[str, float] | None = None
        self._last_bar = ""
        self._painted_at = 0.0  # time.monotonic() of the last paint

    def compose(self) -> ComposeResult:
        yield Static(f"run {escape(self.run_id)}  [$text-muted]loading…[/]", id="run-bar")
        with Grid(id="dash-main"):
            yield StageTree(self.host.now, id="tree")
            yield LogPanel(id="log-panel")
            with Vertical(id="dash-side"):
                yield PersonaPanel(id="persona")
                yield BudgetPanel(id="budgets")
                yield MetricsPanel(id="metrics")
        yield KeysFooter()

    def _mounted(self) -> None:
        for tree in self.query("#tree").results(StageTree):  # gone if the app is closing
            tree.focus()
        for panel in self.query("#log-panel").results(LogPanel):
            panel.source = lambda: self.state.log

    # -- the loop ---------------------------------------------------------------------

    def pump(self) -> int:
        """Drain the tail, fold, repaint once; returns how many events were applied."""
        assert self.tail is not None
        events = self.tail.drain(FOLD_BUDGET)
        new_lines = self._apply(events)
        if self.tail.row is not None:
            self._follow_row(self.tail.row)
        running = any(s.status == StepStatus.RUNNING for s in self.state.all_steps())
        panel = self.query_one("#log-panel", LogPanel)
        if events or self._dirty or running or self._live() or panel.holding:
            now = time.monotonic()
            if not self.tail.behind() or now - self._painted_at >= PAINT_SECONDS:
                with self.app.batch_update():
                    self._paint(new_lines)
                self._dirty = False
                self._painted_at = now
            else:
                panel.hold(new_lines)
        self._check_background()
        self._check_awaiting()
        self._offer_approval()
        self._refresh_keys()
        return len(events)

    def _refresh_keys(self) -> None:
        """Re-check the footer only when something that decides availability changed."""
        s = self.state
        here = self.host.runs.get(self.run_id)
        pending = s.pending_approval()
        failing = s.failing_step()
        key = (
            s.status,
            s.paused,
            pending.id if pending else None,
            failing.id if failing else None,
            self.workflow is not None,
            here.alive if here else None,
        )
        if key != self._keys:
            self._keys = key
            self.refresh_bindings()

    def _apply(self, events: list[Event]) -> list[LogLine]:
        if not events:
            return []
        before = self.state.log_total
        for event in events:
            payload = event.payload()
            if isinstance(payload, ApprovalDecided):
                self._announce_decision(payload, event.seq)
            self.state.apply(event)
        added = min(self.state.log_total - before, len(self.state.log))
        log = self.state.log
        if not added:
            return []
        return list(itertools.islice(log, max(0, len(log) - added), None))

    def _announce_decision(self, decided: ApprovalDecided, seq: int) -> None:
        key = f"{decided.gate}:{seq}"
        if key in self._decided:
            return
        self._decided.add(key)
        self.notice = f"gate {decided.gate} {decided.decision} by {decided.by or '?'}"

    def _paint(self, new_lines: list[LogLine]) -> None:
        now = self.host.now
        frame = self.host.frame()
        state = self.state
        self.query_one("#tree", StageTree).sync(state, frame)
        self.query_one("#persona", PersonaPanel).render_state(state)
        self.query_one("#budgets", BudgetPanel).render_state(state)
        self.query_one("#metrics", MetricsPanel).render_state(state, now)
        self.query_one("#log-panel", LogPanel).append(new_lines)  # and any it holds
        bar = self._bar()
        if bar != self._last_bar:  # only on change, and never a layout: one line, always
            self._last_bar = bar  # (its spinner turns ten times a second)
            self.query_one("#run-bar", Static).update(bar, layout=False)

    def _bar(self) -> str:
        s = self.state
        # the id is what people paste to join: it comes first and is never cut; the title
        # and the error give way (elided in the middle; the full error is in the step's log)
        title = escape(elide_middle(s.title or s.workflow or "", TITLE_WIDTH))
        parts = [badge(s.status, self.host.frame()), escape(self.run_id)]
        # None for the default store (nothing to paste); short enough that the id and the
        # store share the first line at 80 columns (the share key gives the full path)
        store = store_label(self.host.store_path, width=20)
        if store is not None:
            parts.append(f"[$text-muted]store[/]\u00a0{escape(store)}")
        parts.append(f"[b]{title}[/b]")
        if s.started_by:
            parts.append(f"[$text-muted]by[/] {escape(s.started_by)}")
        elapsed = run_took(s, self.host.now)
        if elapsed:
            parts.append(elapsed)
        pending = s.pending_approval()
        if pending is not None:
            parts.append(f"[$warning]waiting on {escape(pending.id)} (a)[/]")
        elif self.notice:
            parts.append(f"[$text-muted]{escape(self.notice)}[/]")
        if s.error and s.status not in RUN_ACTIVE:
            parts.append(f"[$error]{escape(elide_middle(s.error, ERROR_WIDTH))}[/]")
        if self.tail is not None and self.tail.error and not s.started_at:
            parts.append(f"[$error]{escape(self.tail.error)}[/]")
        return "  ".join(parts)

    def _check_background(self) -> None:
        run = self.host.runs.get(self.run_id)
        if run is not None and run.error and run.error != self._reported_error:
            self._reported_error = run.error
            self.notice = run.error
            self.notify(run.error, title="the run could not go on", severity="error")
            self._dirty = True

    def _offer_approval(self) -> None:
        pending = self.state.pending_approval()
        if pending is None or self.app.screen is not self:
            return
        key = (pending.id, pending.requested_at)
        if key in self._offered:
            return
        self._offered.add(key)
        self.action_approval()

    # -- availability -----------------------------------------------------------------

    def _skippable_gate(self) -> tuple[str, str] | None:
        """(stage, gate) of a skippable gate that failed, or that a live run will reach."""
        if self.workflow is None:
            return None
        for stage in self.workflow.stages:
            if stage.gate is None or not stage.gate.skippable:
                continue
            st = self.state.stages.get(stage.id)
            gate = st.gate if st is not None else None
            gate_status = gate.status if gate is not None else GateStatus.PENDING
            if gate_status == GateStatus.FAILED and self.state.status in RETRYABLE:
                return stage.id, stage.gate.id
            if gate_status == GateStatus.PENDING and self._live():
                return stage.id, stage.gate.id
        return None

    def why_unavailable(self, action: str) -> str | None:
        s = self.state
        here = self.host.runs.get(self.run_id)
        if action == "approval":
            return self._no_approval_why()
        if action in ("pause", "cancel"):
            if not self._live():
                return f"the run has ended ({s.status})" if s.started_at else "no run yet"
            return None
        if action == "retry":
            if here is not None and here.alive:
                return "the run is already running in this cockpit"
            if s.status not in RETRYABLE:
                return f"only a failed or interrupted run can be retried (it is {s.status})"
            return None
        if action == "skip_gate":
            if self._skippable_gate() is None:
                return "no skippable quality gate failed (or is still ahead)"
            return None
        if action == "jump":
            return None if s.failing_step() else "no step has failed"
        if action == "whole_log":
            panel = self.query_one("#log-panel", LogPanel)
            if panel.step is None and panel.stage is None:
                return "the log already shows the whole run"
            return None
        return None

    # -- actions ----------------------------------------------------------------------

    def action_approval(self) -> None:
        self._open_approval("approval")

    def _approval_closed(self, result: str) -> None:
        self.notice = result
        self._dirty = True
        super()._approval_closed(result)

    def action_pause(self) -> None:
        if self._refuse("pause"):
            return
        if self.state.paused:
            self._control("unpause", "resumed from the cockpit", "unpause sent")
        else:
            self._control(
                "pause",
                "paused from the cockpit",
                "pause sent: steps in flight finish, no new step starts",
            )
        self._dirty = True

    def _control(self, kind: str, reason: str, notice: str) -> None:
        """Send a run control; "sending" until the store took it (it may be busy), then
        ``notice`` until the journal shows the runner acted on it."""
        sending = f"sending {kind}…"

        def written(signal_id: int | None) -> None:
            if signal_id is not None:
                self._await(kind, notice)
            elif self.notice == sending:
                self.notice = ""
            self._dirty = True

        if self.send(kind, reason=reason, then=written):
            self.notice = sending
            self._dirty = True

    def _await(self, kind: str, notice: str) -> None:
        """Say a control was sent until the journal shows the runner acted on it."""
        self.notice = notice
        self._awaiting = (kind, self.host.now())

    def _check_awaiting(self) -> None:
        """A sent control the journal now reflects clears its notice; one the runner has not
        recorded within :data:`UNRECORDED_SECONDS` says so (no "sent" that never ends)."""
        if self._awaiting is None:
            return
        kind, sent_at = self._awaiting
        s = self.state
        recorded = {
            "pause": s.paused,
            "unpause": not s.paused,
            "cancel": s.status == RunStatus.CANCELLED,
        }.get(kind, False)
        if recorded or not self._live():
            self._awaiting = None
            self.notice = ""
            self._dirty = True
        elif self.host.now() - sent_at > UNRECORDED_SECONDS:
            self._awaiting = None
            key = "c" if kind == "cancel" else "p"
            self.notice = (
                f"{kind} not recorded after {UNRECORDED_SECONDS:.0f}s: is the run's process "
                f"still going? ({key} sends it again, c cancels the run)"
            )
            self.notify(self.notice, title=f"{kind} not recorded yet", severity="warning")
            self._dirty = True

    def action_cancel(self) -> None:
        if self._refuse("cancel"):
            return
        from quarterdeck.screens.confirm import ReasonScreen

        def answer(reason: str | None) -> None:
            # journaled with the cancel: the timeline and `show` say why
            if reason:
                self._control("cancel", reason, "cancel sent")

        self.app.push_screen(
            ReasonScreen(
                f"Cancel run {self.run_id}? Steps in flight are stopped.\n"
                "Why? (journaled with your name; esc keeps it running)",
                action="Cancel the run",
            ),
            answer,
        )

    def action_retry(self) -> None:
        if self._refuse("retry"):
            return
        self.host.resume(self.run_id)
        self.notice = "resuming: failed steps run again, completed ones are reused"
        self._dirty = True

    def action_skip_gate(self) -> None:
        if self._refuse("skip_gate"):
            return
        from quarterdeck.screens.confirm import ReasonScreen

        found = self._skippable_gate()
        assert found is not None
        stage_id, gate_id = found

        def answer(reason: str | None) -> None:
            if reason:
                self.send("skip-gate", target=gate_id, reason=reason, then=skipped)

        def skipped(signal_id: int | None) -> None:
            if signal_id is None:
                return
            self.notice = f"skip of gate {gate_id} recorded"
            if not self._live():
                self.host.resume(self.run_id)
                self.notice += "; resuming the run"
            self._dirty = True

        self.app.push_screen(
            ReasonScreen(
                f"Skip quality gate {gate_id} of stage {stage_id}?\n"
                "The reason is journaled with your name.",
                action="Skip gate",
            ),
            answer,
        )

    def action_jump(self) -> None:
        if self._refuse("jump"):
            return
        step = self.state.failing_step()
        assert step is not None
        tree = self.query_one("#tree", StageTree)
        node = tree.node_for(("step", step.stage, step.id))
        if node is not None:
            tree.move_cursor(node)
            tree.focus()
        self.scope_log(("step", step.stage, step.id))

    def action_filter(self) -> None:
        self.query_one("#log-panel", LogPanel).open_filter()

    def action_whole_log(self) -> None:
        self.scope_log(("run",))

    def _back_within(self) -> bool:
        panel = self.query_one("#log-panel", LogPanel)
        if panel.has_class("-filtering") or panel.filter_text:
            panel.filter_text = ""
            panel.close_filter()
            panel.reset(self.state.log)
            self.query_one("#tree", StageTree).focus()
            return True
        if panel.step is not None or panel.stage is not None:
            self.scope_log(("run",))
            return True
        return False

    # -- log scope and filter ---------------------------------------------------------

    def scope_log(self, key: NodeKey) -> None:
        panel = self.query_one("#log-panel", LogPanel)
        panel.step = (key[1], key[2]) if key[0] == "step" else None
        panel.stage = key[1] if key[0] == "stage" else None
        panel.reset(self.state.log)
        self.refresh_bindings()

    @on(Tree.NodeSelected, "#tree")
    def _node_selected(self, event: Tree.NodeSelected[NodeKey]) -> None:
        if event.node.data is not None:
            self.scope_log(event.node.data)

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        panel = self.query_one("#log-panel", LogPanel)
        panel.filter_text = event.value
        panel.reset(self.state.log)

    @on(Input.Submitted, "#log-filter")
    def _filter_done(self) -> None:
        self.query_one("#log-panel", LogPanel).log_widget.focus()

    def action_pane(self, number: int) -> None:
        """``1`` the stage tree, ``2`` the log (as lazygit's number keys)."""
        if number == 1:
            self.query_one("#tree", StageTree).focus()
        else:
            self.query_one("#log-panel", LogPanel).log_widget.focus()
