"""A journal with fixed times and ids, for snapshots: nothing depends on the machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quarterdeck.core.journal.events import Event, EventType
from quarterdeck.core.journal.store import Store
from tests.tui.conftest import TINY

T0 = 1_800_000_000.0
NOW = T0 + 4 * 3600 + 42.0
RUN_OK = "20270115-080000-aaaa"
RUN_FAIL = "20270115-090000-fail"
RUN_GATE = "20270115-100000-gate"
RUN_LIVE = "20270115-110000-live"

PERSONAS = {
    "backend-engineer": {
        "budget": 2000,
        "title": "Backend Engineer",
        "color": "blue",
        "role": "Designs and changes server-side code",
        "model": "gpt-4o-mini",
    },
    "devops-engineer": {
        "budget": 1800,
        "title": "DevOps Engineer",
        "color": "green",
        "role": "Tags, publishes, deploys and rolls back",
        "model": "gpt-4o-mini",
    },
}
PLAN = [
    {
        "id": "build",
        "title": "Build",
        "persona": "backend-engineer",
        "approval": None,
        "gate": "quality",
        "steps": [
            {"id": "compile", "uses": "shell", "needs": []},
            {"id": "lint", "uses": "shell", "needs": []},
            {"id": "test", "uses": "shell", "needs": ["compile", "lint"]},
        ],
    },
    {
        "id": "publish",
        "title": "Publish",
        "persona": "devops-engineer",
        "approval": "ship",
        "gate": None,
        "steps": [{"id": "upload", "uses": "shell", "needs": []}],
    },
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
            EventType.RUN_STARTED,
            data={
                "workflow": "tiny",
                "title": "Tiny release",
                "inputs": {"version": "1.0"},
                "plan": PLAN,
                "started_by": by,
                "personas": PERSONAS,
            },
        )

    def emit(
        self,
        type_: str,
        stage: str | None = None,
        step: str | None = None,
        data: dict[str, Any] | None = None,
        dt: float = 0.0,
    ) -> None:
        self.t += dt
        self.seq += 1
        self.store.append(Event(type_, self.run_id, stage, step, data or {}, self.t, self.seq))

    def step(
        self,
        stage: str,
        step: str,
        lines: list[str],
        *,
        status: str = "succeeded",
        took: float = 2.0,
        attempt: int = 1,
        error: str | None = None,
    ) -> None:
        self.emit(EventType.STEP_STARTED, stage, step, {"attempt": attempt, "uses": "shell"})
        self.emit(
            EventType.STEP_OUTPUT, stage, step, {"stream": "stdout", "lines": lines}, dt=took / 2
        )
        self.emit(
            EventType.STEP_FINISHED,
            stage,
            step,
            {"status": status, "attempt": attempt, "outputs": {}, "error": error},
            dt=took / 2,
        )

    def switch(self, to: str, src: str | None, stage: str) -> None:
        self.emit(EventType.PERSONA_SWITCHED, data={"from": src, "to": to, "stage": stage})

    def tokens(self, persona: str, used: int, total: int) -> None:
        self.emit(
            EventType.TOKENS_USED,
            data={
                "persona": persona,
                "used": used,
                "total": total,
                "budget": PERSONAS[persona]["budget"],
            },
            dt=1.0,
        )

    def build(self, *, finish: bool = True) -> None:
        self.switch("backend-engineer", None, "build")
        self.emit(EventType.STAGE_STARTED, "build", data={"persona": "backend-engineer"})
        self.step("build", "compile", [f"compiling module {i}" for i in range(6)], took=8.0)
        self.tokens("backend-engineer", 600, 600)
        self.step("build", "lint", ["ruff: all checks passed"], took=3.0)
        self.tokens("backend-engineer", 1100, 500)
        if finish:
            self.step("build", "test", ["collected 212 items", "212 passed in 9.81s"], took=10.0)
            self.emit(
                EventType.GATE_EVALUATED,
                "build",
                data={
                    "gate": "quality",
                    "passed": True,
                    "results": [{"condition": "coverage >= 80", "kind": "all", "passed": True}],
                },
            )
            self.emit(EventType.STAGE_FINISHED, "build", data={"status": "succeeded"})


def seed(store_path: Path, wf: Path) -> None:
    """Four runs: succeeded, failed, waiting on an approval, and running right now."""
    with Store(store_path) as store:
        ok = _Journal(store, RUN_OK, T0, "alice", wf)
        ok.build()
        ok.switch("devops-engineer", "backend-engineer", "publish")
        ok.emit(
            EventType.APPROVAL_REQUESTED,
            "publish",
            data={
                "gate": "ship",
                "prompt": "Ship 1.0?",
                "evidence": [],
                "approvers": ["bob"],
                "min_approvals": 1,
            },
        )
        ok.emit(
            EventType.APPROVAL_DECIDED,
            "publish",
            data={"gate": "ship", "decision": "approved", "by": "bob", "reason": "lgtm"},
            dt=30,
        )
        ok.emit(EventType.STAGE_STARTED, "publish", data={"persona": "devops-engineer"})
        ok.step("publish", "upload", ["uploaded tiny-1.0.tar.gz"], took=4.0)
        ok.emit(EventType.STAGE_FINISHED, "publish", data={"status": "succeeded"})
        ok.emit(EventType.RUN_FINISHED, data={"status": "succeeded"})
        store.set_status(RUN_OK, "succeeded", ok.t)

        bad = _Journal(store, RUN_FAIL, T0 + 3600, "ci-bot", wf)
        bad.switch("backend-engineer", None, "build")
        bad.emit(EventType.STAGE_STARTED, "build", data={"persona": "backend-engineer"})
        bad.step("build", "compile", ["compiling"], took=5.0)
        bad.step("build", "lint", ["ruff: all checks passed"], took=2.0)
        for attempt in (1, 2):
            bad.emit(EventType.STEP_STARTED, "build", "test", {"attempt": attempt})
            bad.emit(
                EventType.STEP_OUTPUT,
                "build",
                "test",
                {
                    "stream": "stdout",
                    "lines": [
                        "collected 212 items",
                        "FAILED tests/test_api.py::test_login - KeyError: 'id'",
                        "1 failed, 211 passed in 9.12s",
                    ],
                },
                dt=5,
            )
            bad.emit(
                EventType.STEP_RETRY,
                "build",
                "test",
                {"attempt": attempt, "delay": 2, "error": "pytest exited 1"},
                dt=5,
            )
        bad.step(
            "build",
            "test",
            ["1 failed, 211 passed in 9.40s"],
            status="failed",
            attempt=3,
            error="pytest exited with code 1: 1 failed, 211 passed",
            took=9.0,
        )
        bad.emit(
            EventType.STAGE_FINISHED,
            "build",
            data={"status": "failed", "error": "step 'test' failed: pytest exited with code 1"},
        )
        bad.emit(
            EventType.RUN_FINISHED,
            data={"status": "failed", "error": "stage build: step 'test' failed"},
        )
        store.set_status(RUN_FAIL, "failed", bad.t)

        gate = _Journal(store, RUN_GATE, T0 + 2 * 3600, "carol", wf)
        gate.build()
        gate.switch("devops-engineer", "backend-engineer", "publish")
        gate.emit(
            EventType.APPROVAL_REQUESTED,
            "publish",
            data={
                "gate": "ship",
                "prompt": "Ship tiny 1.0 to PyPI?",
                "evidence": [
                    "## Tests\n**212 passed**, 0 failed, coverage **91%**",
                    "## Changelog\n- login survives a missing id\n- faster startup",
                ],
                "approvers": ["alice", "release-managers"],
                "min_approvals": 1,
                "allow_self_approval": False,
                "timeout_at": NOW + 3 * 3600 + 60,
                "on_timeout": "reject",
            },
            dt=1,
        )
        store.set_status(RUN_GATE, "waiting")

        live = _Journal(store, RUN_LIVE, NOW - 42.0, "alice", wf)
        live.switch("backend-engineer", None, "build")
        live.emit(EventType.STAGE_STARTED, "build", data={"persona": "backend-engineer"})
        live.emit(EventType.STEP_STARTED, "build", "compile", {"attempt": 1, "uses": "shell"})
        live.emit(EventType.STEP_STARTED, "build", "lint", {"attempt": 1, "uses": "shell"})
        live.emit(
            EventType.STEP_OUTPUT,
            "build",
            "compile",
            {"stream": "stdout", "lines": [f"compiling module {i}" for i in range(30)]},
            dt=10,
        )
        live.emit(
            EventType.STEP_OUTPUT,
            "build",
            "lint",
            {"stream": "stdout", "lines": ["checking 48 files"]},
            dt=2,
        )
        live.tokens("backend-engineer", 900, 900)
        live.tokens("backend-engineer", 1750, 850)
