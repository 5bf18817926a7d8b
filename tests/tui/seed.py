"""A journal with fixed times and ids, for snapshots: nothing depends on the machine."""

from __future__ import annotations

from pathlib import Path

from quarterdeck.core.journal.events import (
    ApprovalDecided,
    ApprovalRequested,
    GateEvaluated,
    GateResult,
    Payload,
    PersonaInfo,
    PersonaSwitched,
    PlanStage,
    PlanStep,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    StepFinished,
    StepOutput,
    StepRetry,
    StepStarted,
    TokensUsed,
    event,
)
from quarterdeck.core.journal.statuses import (
    ApprovalStatus,
    RunStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.core.journal.store import Store
from tests.tui.conftest import TINY

T0 = 1_800_000_000.0
NOW = T0 + 4 * 3600 + 42.0
RUN_OK = "20270115-080000-aaaa"
RUN_FAIL = "20270115-090000-fail"
RUN_GATE = "20270115-100000-gate"
RUN_LIVE = "20270115-110000-live"

PERSONAS = {
    "backend-engineer": PersonaInfo(
        budget=2000,
        title="Backend Engineer",
        color="blue",
        role="Designs and changes server-side code",
        model="gpt-4o-mini",
    ),
    "devops-engineer": PersonaInfo(
        budget=1800,
        title="DevOps Engineer",
        color="green",
        role="Tags, publishes, deploys and rolls back",
        model="gpt-4o-mini",
    ),
}
PLAN = [
    PlanStage(
        id="build",
        title="Build",
        persona="backend-engineer",
        gate="quality",
        steps=[
            PlanStep(id="compile", uses="shell"),
            PlanStep(id="lint", uses="shell"),
            PlanStep(id="test", uses="shell", needs=["compile", "lint"]),
        ],
    ),
    PlanStage(
        id="publish",
        title="Publish",
        persona="devops-engineer",
        approval="ship",
        steps=[PlanStep(id="upload", uses="shell")],
    ),
]


class _Journal:
    def __init__(self, store: Store, run_id: str, start: float, by: str, wf: Path) -> None:
        self.store, self.run_id, self.t, self.seq = store, run_id, start, 0
        store.create_run(
            run_id,
            workflow="tiny",
            title="Tiny release",
            workflow_path=str(wf),
            definition=TINY,
            workdir=str(wf.parent),
            inputs={"version": "1.0"},
            started_by=by,
            started_at=start,
        )
        self.emit(
            RunStarted(
                workflow="tiny",
                title="Tiny release",
                inputs={"version": "1.0"},
                plan=PLAN,
                started_by=by,
                personas=PERSONAS,
            )
        )

    def emit(
        self,
        payload: Payload,
        stage: str | None = None,
        step: str | None = None,
        dt: float = 0.0,
    ) -> None:
        self.t += dt
        self.seq += 1
        self.store.append(event(payload, self.run_id, stage, step, ts=self.t, seq=self.seq))

    def step(
        self,
        stage: str,
        step: str,
        lines: list[str],
        *,
        status: StepStatus = StepStatus.SUCCEEDED,
        took: float = 2.0,
        attempt: int = 1,
        error: str | None = None,
    ) -> None:
        self.emit(StepStarted(attempt=attempt, uses="shell"), stage, step)
        self.emit(StepOutput(stream="stdout", lines=lines), stage, step, dt=took / 2)
        self.emit(
            StepFinished(status=status, attempt=attempt, outputs={}, error=error),
            stage,
            step,
            dt=took / 2,
        )

    def switch(self, to: str, src: str | None, stage: str) -> None:
        self.emit(PersonaSwitched(from_=src, to=to, stage=stage))

    def tokens(self, persona: str, used: int, total: int) -> None:
        self.emit(
            TokensUsed(persona=persona, used=used, total=total, budget=PERSONAS[persona].budget),
            dt=1.0,
        )

    def build(self, *, finish: bool = True) -> None:
        self.switch("backend-engineer", None, "build")
        self.emit(StageStarted(persona="backend-engineer"), "build")
        self.step("build", "compile", [f"compiling module {i}" for i in range(6)], took=8.0)
        self.tokens("backend-engineer", 600, 600)
        self.step("build", "lint", ["ruff: all checks passed"], took=3.0)
        self.tokens("backend-engineer", 1100, 500)
        if finish:
            self.step("build", "test", ["collected 212 items", "212 passed in 9.81s"], took=10.0)
            self.emit(
                GateEvaluated(
                    gate="quality",
                    passed=True,
                    results=[GateResult(condition="coverage >= 80", kind="all", passed=True)],
                ),
                "build",
            )
            self.emit(StageFinished(status=StageStatus.SUCCEEDED), "build")


def seed(store_path: Path, wf: Path) -> None:
    """Four runs: succeeded, failed, waiting on an approval, and running right now."""
    with Store(store_path) as store:
        ok = _Journal(store, RUN_OK, T0, "alice", wf)
        ok.build()
        ok.switch("devops-engineer", "backend-engineer", "publish")
        ok.emit(
            ApprovalRequested(
                gate="ship", prompt="Ship 1.0?", evidence=[], approvers=["bob"], min_approvals=1
            ),
            "publish",
        )
        ok.emit(
            ApprovalDecided(gate="ship", decision=ApprovalStatus.APPROVED, by="bob", reason="lgtm"),
            "publish",
            dt=30,
        )
        ok.emit(StageStarted(persona="devops-engineer"), "publish")
        ok.step("publish", "upload", ["uploaded tiny-1.0.tar.gz"], took=4.0)
        ok.emit(StageFinished(status=StageStatus.SUCCEEDED), "publish")
        ok.emit(RunFinished(status=RunStatus.SUCCEEDED))
        store.set_status(RUN_OK, RunStatus.SUCCEEDED, ok.t)

        bad = _Journal(store, RUN_FAIL, T0 + 3600, "ci-bot", wf)
        bad.switch("backend-engineer", None, "build")
        bad.emit(StageStarted(persona="backend-engineer"), "build")
        bad.step("build", "compile", ["compiling"], took=5.0)
        bad.step("build", "lint", ["ruff: all checks passed"], took=2.0)
        for attempt in (1, 2):
            bad.emit(StepStarted(attempt=attempt), "build", "test")
            bad.emit(
                StepOutput(
                    stream="stdout",
                    lines=[
                        "collected 212 items",
                        "FAILED tests/test_api.py::test_login - KeyError: 'id'",
                        "1 failed, 211 passed in 9.12s",
                    ],
                ),
                "build",
                "test",
                dt=5,
            )
            bad.emit(
                StepRetry(attempt=attempt, delay=2, error="pytest exited 1"),
                "build",
                "test",
                dt=5,
            )
        bad.step(
            "build",
            "test",
            ["1 failed, 211 passed in 9.40s"],
            status=StepStatus.FAILED,
            attempt=3,
            error="pytest exited with code 1: 1 failed, 211 passed",
            took=9.0,
        )
        bad.emit(
            StageFinished(
                status=StageStatus.FAILED, error="step 'test' failed: pytest exited with code 1"
            ),
            "build",
        )
        bad.emit(RunFinished(status=RunStatus.FAILED, error="stage build: step 'test' failed"))
        store.set_status(RUN_FAIL, RunStatus.FAILED, bad.t)

        gate = _Journal(store, RUN_GATE, T0 + 2 * 3600, "carol", wf)
        gate.build()
        gate.switch("devops-engineer", "backend-engineer", "publish")
        gate.emit(
            ApprovalRequested(
                gate="ship",
                prompt="Ship tiny 1.0 to PyPI?",
                evidence=[
                    "## Tests\n**212 passed**, 0 failed, coverage **91%**",
                    "## Changelog\n- login survives a missing id\n- faster startup",
                ],
                approvers=["alice", "release-managers"],
                min_approvals=1,
                allow_self_approval=False,
                timeout_at=NOW + 3 * 3600 + 60,
                on_timeout="reject",
            ),
            "publish",
            dt=1,
        )
        store.set_status(RUN_GATE, RunStatus.WAITING)

        live = _Journal(store, RUN_LIVE, NOW - 42.0, "alice", wf)
        live.switch("backend-engineer", None, "build")
        live.emit(StageStarted(persona="backend-engineer"), "build")
        live.emit(StepStarted(attempt=1, uses="shell"), "build", "compile")
        live.emit(StepStarted(attempt=1, uses="shell"), "build", "lint")
        live.emit(
            StepOutput(stream="stdout", lines=[f"compiling module {i}" for i in range(30)]),
            "build",
            "compile",
            dt=10,
        )
        live.emit(StepOutput(stream="stdout", lines=["checking 48 files"]), "build", "lint", dt=2)
        live.tokens("backend-engineer", 900, 900)
        live.tokens("backend-engineer", 1750, 850)
