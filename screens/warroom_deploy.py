"""The war room's deploy actions: roll back to the last good release, or reject the deploy.

Two different things people need in an incident, so two keys: **roll back** returns the
hosts to the last good release — while the deploy stage runs, by stopping it so its
``on_failure`` steps switch back; while the deploy waits for approval and the run has built
a revert to the good ref, by deploying that revert (behind its health watch). **Reject**
refuses the waiting deploy: nothing changes on the hosts and the run ends; it asks why.
An approval names the severity of now, not the one it was requested under.
"""

from __future__ import annotations

from typing import Any

from quarterdeck.core.incidents.model import Incident
from quarterdeck.core.incidents.severity import severity_name
from quarterdeck.core.journal.statuses import StageStatus, StepStatus
from quarterdeck.screens.run_screen import RunScreen


class DeployActions(RunScreen):
    """Roll back, reject the deploy, and the approval's wording (mixed into the war room)."""

    incident: Incident

    def act(self, action: str, data: dict[str, Any] | None = None) -> bool:
        raise NotImplementedError  # the war room records incident actions

    def _rollback_why(self) -> str | None:
        if self.incident.resolved:
            return "the incident is resolved"
        pending = self.state.pending_approval()
        if pending is not None:
            if self._revert() is None:
                return (
                    f"no release to roll back to: {pending.id} does not deploy a revert; "
                    "approve it (a) or reject it (r)"
                )
            return None
        if not self._live():
            return f"the run has ended ({self.state.status})"
        if self._running_stage() is None:
            return "nothing to roll back: no stage is running and no deploy is waiting"
        return None

    def _revert(self) -> str | None:
        """The waiting revert, as "release X (the tree of REF)": a ``git.revert_to`` step
        that succeeded built the last good release; None when the run built none."""
        for step in self.state.all_steps():
            if step.uses == "git.revert_to" and step.status == StepStatus.SUCCEEDED:
                out = step.outputs or {}
                sha = str(out.get("sha") or "")[:12] or "the hotfix"
                target = str(out.get("target_sha") or "")[:7]
                return f"release {sha}" + (f" (the tree of {target})" if target else "")
        return None

    def _running_stage(self) -> str | None:
        for stage in self.state.stages.values():
            if stage.status == StageStatus.RUNNING:
                return stage.id
        return None

    def action_rollback(self) -> None:
        """Return production to the last good release: stop a running stage (its
        ``on_failure`` steps switch back), or deploy the waiting revert to the good ref."""
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
                    f"Roll back: stop stage {stage} now and run its on_failure steps, which "
                    "switch the hosts back to the release they ran before?\n"
                    "This is journaled with your name.",
                    yes="Roll back",
                    no="Keep going",
                ),
                roll_back,
            )
            return
        revert = self._revert()

        def deploy_revert(yes: bool | None) -> None:
            if yes:
                self.send(
                    "approve",
                    target=pending.id,
                    reason=f"roll back to the last good release: {revert}",
                )

        self.app.push_screen(
            ConfirmScreen(
                f"Roll back to the last good release: approve {pending.id}, which deploys "
                f"{revert} to the hosts (behind its health watch, with its own rollback if "
                "that fails)?\nThis is journaled with your name.",
                yes="Roll back",
                no="Not now",
            ),
            deploy_revert,
        )

    def action_reject_deploy(self) -> None:
        """Refuse the waiting deploy: nothing changes on the hosts (and the run ends)."""
        if self._refuse("reject_deploy"):
            return
        from quarterdeck.screens.confirm import ReasonScreen

        pending = self.state.pending_approval()
        assert pending is not None

        def answer(reason: str | None) -> None:
            if not reason:
                return
            note = f"rejected {pending.id}: {reason}; the hosts stay on the release they run now"

            def rejected(signal_id: int | None) -> None:
                if signal_id is not None:  # noted once in the store, after the reject
                    self.act("note", {"text": note})

            self.send("reject", target=pending.id, reason=reason, then=rejected)

        self.app.push_screen(
            ReasonScreen(
                f"Reject {pending.id}: nothing is deployed, the hosts stay on the release "
                "they run now (the one the alert is about), and the run ends rejected.\nWhy?",
                action="Reject deploy",
            ),
            answer,
        )

    def approval_text(self, text: str) -> str:
        """An approval's prompt or evidence as of now: rendered when the gate opened, it
        names the severity of then; after an escalation it names the current one."""
        incident = self.incident
        before, now = severity_name(incident.initial_severity), incident.severity_label
        if before == now or before not in text:
            return text
        return text.replace(before, now) + f" (was {before} when requested)"
