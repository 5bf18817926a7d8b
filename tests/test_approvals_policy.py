"""Approvals without a person at the keyboard: the ``--approvals`` policy file, CI
identities, and a decision from another process sharing the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.approval_policy import load_policy
from quarterdeck.core.errors import DefinitionError
from quarterdeck.personas.registry import load_catalog
from tests.helpers import REPO, cli, write_workflow

WORKFLOW = """\
name: release
stages:
  - id: test
    steps:
      - id: tests
        uses: shell
        with: {run: "sh -c 'echo coverage=$COVERAGE >> $QUARTERDECK_OUTPUT'"}
  - id: ship
    approval:
      id: publish
      prompt: "Publish at {{ steps.tests.outputs.coverage }}% coverage?"
      approvers: [ci-bot, alice]
      allow_self_approval: true
    steps:
      - id: upload
        uses: shell
        with: {run: "echo uploaded"}
"""

POLICY = """\
gates:
  publish:
    - when: "{{ steps.tests.outputs.coverage >= 90 }}"
      decision: approve
      reason: coverage is at least 90%
    - decision: reject
      reason: coverage below 90%
"""


@pytest.fixture(autouse=True)
def _ci_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GITHUB_STEP_SUMMARY",
        "GITHUB_ACTIONS",
        "TRACEPARENT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "QUARTERDECK_USER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv(
        "GITHUB_ACTOR", "ci-bot"
    )  # the CI identity (quarterdeck.core.config.current_user)


def _files(tmp_path: Path, policy: str = POLICY, workflow: str = WORKFLOW) -> tuple[Path, Path]:
    wf = write_workflow(tmp_path, workflow)
    pol = tmp_path / "approvals.yaml"
    pol.write_text(policy)
    return wf, pol


def _run(
    tmp_path: Path, *args: str, coverage: int = 95, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    wf, pol = _files(tmp_path)
    return cli(
        "run",
        str(wf),
        "--approvals",
        str(pol),
        "--store",
        str(tmp_path / "qd.db"),
        *args,
        env={"COVERAGE": str(coverage), **(env or {})},
    )


def test_policy_approves_when_the_condition_holds(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--json", "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    approval = data["approvals"][0]
    assert approval["status"] == "approved"
    assert approval["decided_by"] == "ci-bot"  # the CI actor variable
    assert approval["reason"].startswith("coverage is at least 90% (policy ")
    assert f"{tmp_path / 'approvals.yaml'}:3:" in approval["reason"]  # the rule that decided
    assert "approvals policy" in proc.stderr and "approve as ci-bot" in proc.stderr
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "**publish** (ship): ✅ approved by **ci-bot**: coverage is at least 90%" in summary


def test_policy_rejects_otherwise(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--json", coverage=70)
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "rejected"
    assert data["approvals"][0]["reason"].startswith("coverage below 90% (policy ")


def test_command_line_decision_wins_over_the_policy(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--json", "--reject", "publish", "--reason", "freeze", coverage=99)
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["approvals"][0]["reason"] == "freeze"


def test_wait_with_no_wait_exits_3_naming_gate_and_flag(tmp_path: Path) -> None:
    wf, pol = _files(tmp_path, "gates:\n  publish: wait\n")
    proc = cli(
        "run",
        str(wf),
        "--approvals",
        str(pol),
        "--no-wait",
        "--store",
        str(tmp_path / "qd.db"),
        env={"COVERAGE": "99"},
    )
    assert proc.returncode == 3, proc.stderr
    assert "gate 'publish': wait" in proc.stderr
    assert (
        "approval 'publish' is undecided and --no-wait was given: pass --approve publish"
        in proc.stderr
    )


def test_condition_error_skips_the_rule_and_never_approves(tmp_path: Path) -> None:
    wf, pol = _files(
        tmp_path,
        """\
gates:
  publish:
    - when: "{{ steps.tests.outputs.nosuchoutput > 1 }}"
      decision: approve
    - decision: reject
      reason: fell through
""",
    )
    proc = cli(
        "run",
        str(wf),
        "--approvals",
        str(pol),
        "--json",
        "--store",
        str(tmp_path / "qd.db"),
        env={"COVERAGE": "99"},
    )
    assert proc.returncode == 3, proc.stderr
    assert "nosuchoutput" in proc.stderr and "rule skipped" in proc.stderr
    assert json.loads(proc.stdout)["approvals"][0]["reason"].startswith("fell through")


@pytest.mark.parametrize(
    ("policy", "where", "message"),
    [
        ("gates:\n  publish:\n    - decision: maybe\n", ":3:", "decision"),
        ("gates:\n  pubilsh: approve\n", ":2:3", "no approval gate 'pubilsh'"),
        (
            'gates:\n  publish:\n    - when: "{{ steps.( }}"\n      decision: approve\n',
            ":3:",
            "does not parse",
        ),
        ("gates:\n  publish:\n    - decision: approve\n      wen: x\n", ":4:", "unknown key"),
        ("default: later\n", ":1:", "default"),
    ],
)
def test_errors_in_the_policy_file_are_located(
    tmp_path: Path, policy: str, where: str, message: str
) -> None:
    wf, pol = _files(tmp_path, policy)
    proc = cli("run", str(wf), "--approvals", str(pol), "--store", str(tmp_path / "qd.db"))
    assert proc.returncode == 2
    assert f"{pol}{where}" in proc.stderr, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "qd.db").exists()  # checked before anything ran


def test_policy_actor_must_be_an_approver(tmp_path: Path) -> None:
    proc = _run(tmp_path, env={"GITHUB_ACTOR": "mallory"})
    assert proc.returncode == 2
    assert "'mallory', who is not one of its approvers (ci-bot, alice)" in proc.stderr
    assert "approvals.yaml:3:" in proc.stderr


def test_policy_may_not_self_approve(tmp_path: Path) -> None:
    wf, pol = _files(tmp_path, workflow=WORKFLOW.replace("      allow_self_approval: true\n", ""))
    proc = cli("run", str(wf), "--approvals", str(pol), "--store", str(tmp_path / "qd.db"))
    assert proc.returncode == 2
    assert "does not allow self-approval" in proc.stderr


def test_missing_policy_file(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, WORKFLOW)
    proc = cli("run", str(wf), "--approvals", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "nope.yaml:1:1: file not found" in proc.stderr


def test_decide_first_matching_rule(tmp_path: Path) -> None:
    wf, pol = _files(tmp_path, POLICY + "  other: approve\ndefault: reject\n", workflow=WORKFLOW)
    with pytest.raises(DefinitionError) as info:  # 'other' is not a gate of the workflow
        load_policy(pol, load_workflow(wf, load_catalog(tmp_path)).workflow)
    assert "no approval gate 'other'" in str(info.value)
    policy = load_policy(pol)  # without a workflow: the file alone
    hi = policy.decide("publish", {"steps": {"tests": {"outputs": {"coverage": 91}}}})
    lo = policy.decide("publish", {"steps": {"tests": {"outputs": {"coverage": 89}}}})
    assert (hi.decision, lo.decision) == ("approve", "reject")
    assert hi.where == f"{pol}:3:7" and lo.where == f"{pol}:6:7"
    assert policy.decide("other", {}).decision == "approve"
    unlisted = policy.decide("unlisted", {})
    assert (unlisted.decision, unlisted.where) == ("reject", f"{pol}:9:10")


def test_decision_from_another_process_sharing_the_store(tmp_path: Path) -> None:
    """A CI run waits; someone approves from another machine (process) via the store."""
    wf = write_workflow(tmp_path, WORKFLOW.replace("[ci-bot, alice]", "[alice]"))
    store = str(tmp_path / "shared.db")
    env = {**os.environ, "COVERAGE": "50"}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(wf),
            "--events",
            "-",
            "--store",
            store,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert runner.stdout is not None
    run_id = None
    for line in runner.stdout:
        event = json.loads(line)
        if event["type"] == "approval.requested":
            run_id = event["run_id"]
            break
    assert run_id is not None
    # the starter (ci-bot) may not approve; alice, elsewhere, may
    refused = cli("approve", run_id, "publish", "--as", "ci-bot", "--store", store)
    assert refused.returncode == 2
    assert "'ci-bot' may not decide gate 'publish'" in refused.stderr
    approved = cli(
        "approve", run_id, "publish", "--as", "alice", "--reason", "LGTM", "--store", store
    )
    assert approved.returncode == 0, approved.stderr
    rest, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    events = [json.loads(ln) for ln in rest.splitlines()]
    decided = next(e for e in events if e["type"] == "approval.decided")
    assert decided["data"]["by"] == "alice" and decided["data"]["reason"] == "LGTM"
    assert events[-1]["type"] == "run.finished" and events[-1]["data"]["status"] == "succeeded"


def test_resume_with_a_policy_after_no_wait(tmp_path: Path) -> None:
    """CI job 1 stops at the gate (exit 3); job 2 resumes with a policy and reports."""
    wf, pol = _files(tmp_path)
    store = str(tmp_path / "qd.db")
    first = cli("run", str(wf), "--no-wait", "--store", store, env={"COVERAGE": "93"})
    assert first.returncode == 3, first.stderr
    run_id = json.loads(cli("runs", "--json", "--store", store).stdout)[0]["id"]
    second = cli(
        "resume",
        run_id,
        "--approvals",
        str(pol),
        "--json",
        "--store",
        store,
        "--report-dir",
        str(tmp_path / "reports"),
    )
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["status"] == "succeeded"
    assert data["approvals"][0]["decided_by"] == "ci-bot"
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    assert 'name="approval publish"' in junit and "<failure" not in junit
