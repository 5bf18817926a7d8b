"""An approval gate as a modal: prompt, evidence, who may decide, time left, decide.

The decision is a signal written to the store, like ``quarterdeck approve``. The modal
watches the run's state, so a decision made anywhere (another terminal, another host)
closes it too, and it says who decided. "Later" — neither approve nor reject — is the
focused, safe choice.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Markdown, Static

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.state import ApprovalState
from quarterdeck.core.journal.statuses import ApprovalStatus
from quarterdeck.screens.delivery import deliver, still_up
from quarterdeck.screens.host import CockpitHost, RunView, host_of

WATCH_SECONDS = 0.1
#: A decision the runner has not recorded after this long is reported (not a spinner
#: without an end): the run may have stopped, or its process may be gone.
UNRECORDED_SECONDS = 5.0


class ApprovalScreen(ModalScreen[str | None]):
    """Decide one approval gate; dismissed with "gate approved by …" once decided."""

    SCOPE = "approval"
    AUTO_FOCUS = "#later"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "later", "Later", key_display="esc"),
    ]

    def __init__(self, view: RunView, gate: str) -> None:
        """``view`` is the screen showing the run (the dashboard or the war room): its state
        is what this modal watches, and the decision goes out through its ``send``."""
        super().__init__()
        self.view = view
        self.gate = gate
        self.sent: int | None = None
        self._sent_at = 0.0
        self._groups: dict[str, list[str]] = {}
        self._dismissed = False
        self._asking: int | None = None  # the decision a worker is reading the outcome of

    @property
    def host(self) -> CockpitHost:
        return host_of(self)

    @property
    def approval(self) -> ApprovalState:
        return self.view.state.approvals[self.gate]

    def compose(self) -> ComposeResult:
        a = self.approval
        with Vertical(classes="dialog", id="approval"):
            yield Static(
                f"[b]Approval[/b] {escape(a.id)}  [$text-muted]stage "
                f"{escape(a.stage)} · run {escape(self.view.run_id)}[/]",
                id="approval-title",
            )
            yield Static(self._prompt(), id="approval-prompt")
            with VerticalScroll(id="evidence"):
                if not a.evidence:
                    yield Static("[$text-muted]no evidence attached[/]")
                for item in a.evidence:
                    yield Markdown(self._text(item), classes="evidence-item")
            yield Static("", id="approval-who")
            yield Static("", id="approval-time")
            reason = Input(
                placeholder="reason (required to reject)", id="approval-reason", compact=True
            )
            reason.cursor_blink = self.host.blink
            yield reason
            yield Static("", id="approval-error")
            with Horizontal(classes="buttons"):
                yield Button("Later", id="later", variant="primary", compact=True)
                yield Button("Reject", id="reject", variant="error", compact=True)
                yield Button("Approve", id="approve", variant="success", compact=True)

    def _text(self, text: str) -> str:
        """The gate's text as the view tells it now (the war room names the severity of
        now, not the one at request time)."""
        rewrite = getattr(self.view, "approval_text", None)
        return str(rewrite(text)) if rewrite is not None else text

    def _prompt(self) -> str:
        return f"[b]{escape(self._text(self.approval.prompt or 'Approve?'))}[/b]"

    def on_mount(self) -> None:
        try:
            self._groups = dict(self.host.context().settings.groups)
        except Exception:  # unreadable config: nobody is in a group
            self._groups = {}
        self.query_one("#later", Button).focus()
        self._watch()
        self.set_interval(WATCH_SECONDS, self._watch)

    def refusal(self, decision: str) -> str | None:
        from quarterdeck.core.engine.runner import approval_refusal

        return approval_refusal(
            self.approval, self.host.actor, self.view.state.started_by, self._groups, decision
        )

    def _close(self, result: str | None) -> None:
        """Dismiss once: the watch timer can tick again before the popped modal is removed,
        and a second dismissal would pop the screen under it."""
        if not self._dismissed:
            self._dismissed = True
            self.dismiss(result)

    def _watch(self) -> None:
        if self._dismissed:
            return
        a = self.approval
        if a.status != ApprovalStatus.WAITING:
            who = a.decided_by or "?"
            why = f": {a.reason}" if a.reason else ""
            self._close(f"gate {a.id} {a.status} by {who}{why}")
            return
        if self.view.state.pending_approval() is None:  # the run ended or stopped under it
            self._close(
                f"run {self.view.run_id} is {self.view.state.status}: gate {a.id} can no "
                "longer be decided"
            )
            return
        self.query_one("#approval-prompt", Static).update(self._prompt())
        approvers = ", ".join(a.approvers) if a.approvers else "anyone"
        if not a.allow_self_approval and self.view.state.started_by:
            approvers += f" (not {self.view.state.started_by}, who started the run)"
        votes = [v for v in a.votes if v.decision == ApprovalStatus.APPROVED]
        lines = [
            f"[$text-muted]approvers:[/] {escape(approvers)}",
            f"[$text-muted]needed:[/] {len(votes)}/{a.min_approvals} approvals"
            + (f" (from {escape(', '.join(v.by for v in votes))})" if votes else ""),
        ]
        approve_why = self.refusal(ApprovalStatus.APPROVED)
        reject_why = self.refusal(ApprovalStatus.REJECTED)
        me = escape(self.host.actor)
        if approve_why is None:
            lines.append(f"[$success]you ({me}) may approve[/]")
        else:
            lines.append(f"[$warning]you ({me}) may not approve: {escape(approve_why)}[/]")
        self.query_one("#approval-who", Static).update("\n".join(lines))
        self.query_one("#approve", Button).disabled = approve_why is not None
        self.query_one("#reject", Button).disabled = reject_why is not None
        if a.timeout_at is not None:
            left = max(0.0, a.timeout_at - self.host.now())
            text = f"[$text-muted]time left:[/] {format_duration(left)}, then {a.on_timeout}"
        else:
            text = "[$text-muted]no timeout[/]"
        self.query_one("#approval-time", Static).update(text)
        if self.sent is not None:
            self._check_outcome()
        if self.sent is not None and self.host.now() - self._sent_at > UNRECORDED_SECONDS:
            self.sent = None
            text = (
                f"not recorded after {UNRECORDED_SECONDS:.0f}s: the run may not be running "
                f"(`quarterdeck show {self.view.run_id}`). Press Approve or Reject to send "
                "again, or Later to close."
            )
            self._error(text)
            self.notify(text, title="decision not recorded yet", severity="warning")

    def _check_outcome(self) -> None:
        """Ask whether the run refused the decision sent: one read at a time, in a worker
        thread (the store may be locked or slow; the cockpit never waits for it)."""
        if self.sent is not None and self._asking is None:
            self._asking = self.sent
            self._read_outcome(self.sent)

    @work(thread=True, group="approval-outcome")
    def _read_outcome(self, sent: int) -> None:
        from quarterdeck.core.errors import QuarterdeckError
        from quarterdeck.core.journal.store import Store

        outcome: str | None = None
        try:
            with Store(self.host.store_path) as store:
                outcome = store.signal_outcome(sent)
        except QuarterdeckError:  # unreadable now: asked again, and reported after a while
            pass
        finally:
            deliver(self, self._outcome, sent, outcome)

    def _outcome(self, sent: int, outcome: str | None) -> None:
        self._asking = None
        if sent == self.sent and outcome and outcome.startswith("refused"):
            self.sent = None
            self._error(outcome)

    def _error(self, text: str) -> None:
        self.query_one("#approval-error", Static).update(f"[$error]{escape(text)}[/]")

    @on(Button.Pressed, "#approve")
    def action_approve(self) -> None:
        why = self.refusal(ApprovalStatus.APPROVED)
        if why is not None:
            self._error(why)
            return
        reason = self.query_one("#approval-reason", Input).value.strip()
        self._decide("approve", reason, "approval")

    @on(Button.Pressed, "#reject")
    def action_reject(self) -> None:
        why = self.refusal(ApprovalStatus.REJECTED)
        if why is not None:
            self._error(why)
            return
        field = self.query_one("#approval-reason", Input)
        reason = field.value.strip()
        if not reason:
            self._error("a rejection needs a reason: type it above, then Reject")
            field.focus()
            return
        self._decide("reject", reason, "rejection")

    def _decide(self, kind: str, reason: str, noun: str) -> None:
        """Send the decision (written off the UI thread: the store may be busy for a
        while); once it is in the store, wait for the run to record it."""

        def written(signal_id: int | None) -> None:
            if self._dismissed or not still_up(self):
                return
            if signal_id is None:  # refused or failed: the notification said why
                self._error(f"the {noun} was not sent")
                return
            self.sent = signal_id
            self._sent_at = self.host.now()
            self.query_one("#approval-error", Static).update(
                f"[$text-muted]{noun} sent; waiting for the run to record it…[/]"
            )

        if self.view.send(kind, target=self.gate, reason=reason, then=written):
            self.query_one("#approval-error", Static).update(f"[$text-muted]sending the {noun}…[/]")

    @on(Button.Pressed, "#later")
    def action_later(self) -> None:
        self._close(None)
