"""incident-response end to end against the sandbox: SSH deploys, health windows, rollback."""

from __future__ import annotations

import httpx
import pytest

from quarterdeck.core.incidents.record import record
from quarterdeck.core.journal.store import Store
from quarterdeck.workflows.sandbox import Sandbox
from tests.workflows.conftest import git, quarterdeck, run_args, run_json, stage, step

PROMETHEUS = True  # triage queries the error ratio from a real Prometheus


def _health(box: Sandbox) -> httpx.Response:
    assert box.production is not None
    return httpx.get(f"{box.production.url}/health", timeout=5)


def _metric(box: Sandbox, name: str) -> float:
    assert box.production is not None
    text = httpx.get(f"{box.production.url}/metrics", timeout=5).text
    return float(next(ln.split()[1] for ln in text.splitlines() if ln.startswith(name + " ")))


def test_sev2_hotfix_is_deployed_and_reported(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _metric(sandbox, "demo_error_ratio") == 0.25  # the degraded release
    assert sandbox.prometheus is not None, "install the Debian package prometheus"
    inputs = {**sandbox.inputs("incident"), "health_window": "1.5s"}
    result = quarterdeck(sandbox, *run_args("incident-response", inputs, "--approve", "deploy"))
    run = run_json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run["status"] == "succeeded"
    hotfix = step(run, "fix")["outputs"]["sha"]
    # production now runs the hotfix release, healthy, without errors
    assert _health(sandbox).json() == {"status": "ok", "version": hotfix[:12]}
    assert _metric(sandbox, "demo_error_ratio") == 0.0
    branch = f"hotfix/{run['id']}"
    assert git(sandbox.repo, "rev-parse", branch) == hotfix
    # triage saw the logs over SSH and the demo model's root cause is labelled as such
    logs = step(run, "logs")["outputs"]["hosts"]
    assert any("25% of requests failing" in out["stdout"] for out in logs.values())
    assert step(run, "error_rate")["outputs"]["value"] == 0.25
    rca = step(run, "rca")["outputs"]
    assert rca["model"] == "demo-model" and rca["text"].startswith("[demo model]")
    reports = sandbox.reports_dir
    triage = (reports / f"incident-{run['id']}-triage.md").read_text()
    assert "CheckoutErrorRate (SEV2)" in triage
    resolution = (reports / f"incident-{run['id']}-resolution.md").read_text()
    assert hotfix[:12] in resolution
    assert f"hotfix/{run['id']}" in resolution
    assert stage(run, "deploy")["status"] == "succeeded"
    # one postmortem, written when a person resolves, from the journal: the run writes none
    assert not list(reports.glob("*postmortem*"))
    assert not (sandbox.state_dir / "runs" / run["id"] / "postmortem.md").exists()
    monkeypatch.setenv("QUARTERDECK_HOME", str(sandbox.state_dir))
    with Store(sandbox.store) as store:
        record(store, run["id"], "acknowledge", actor="alice")
        done = record(store, run["id"], "resolve", actor="alice", data={"text": "hotfix out"})
    assert done.refused is None and done.incident.milestone == "resolved"
    postmortem = done.postmortem[0].read_text()
    assert "## Root cause" in postmortem and "exchange-rate cache" in postmortem
    follow = postmortem.split("## Follow-ups")[1]
    assert "(suggested by the run)" in follow and "exchange-rate cache" not in follow


def test_failed_deploy_rolls_back_and_restores_health(sandbox: Sandbox) -> None:
    before = _health(sandbox)
    assert before.status_code == 200
    # a "known good" ref that is in fact broken: its release reports itself unhealthy
    repo = sandbox.repo
    start = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    git(repo, "checkout", "-q", "-b", "broken-build")
    release = repo / "service" / "release.json"
    release.write_text('{"service": "ledgerline-api", "healthy": false, "error_ratio": 1.0}\n')
    git(repo, "commit", "-q", "-am", "chore: a build that cannot start")
    git(repo, "checkout", "-q", start)
    inputs = {
        **sandbox.inputs("incident"),
        "good_ref": "broken-build",
        "severity": "SEV3",
        "health_window": "3s",
    }
    result = quarterdeck(sandbox, *run_args("incident-response", inputs))
    run = run_json(result)
    assert result.returncode == 1, result.stderr[-3000:]
    assert run["status"] == "failed"
    assert stage(run, "deploy")["status"] == "failed"
    assert step(run, "watch")["status"] == "failed"
    assert step(run, "rollback")["status"] == "succeeded"
    assert step(run, "rollback_health")["outputs"]["passed"] is True
    # /health is back, on the release that ran before the deploy
    after = _health(sandbox)
    assert after.status_code == 200
    assert after.json() == before.json()
    report = (sandbox.reports_dir / f"incident-{run['id']}-rollback.md").read_text()
    assert "failed its health check" in report and "passing" in report
    assert stage(run, "resolve")["status"] == "pending"


def test_low_severity_stops_after_triage(sandbox: Sandbox) -> None:
    inputs = {**sandbox.inputs("incident"), "severity": "SEV5"}
    result = quarterdeck(sandbox, *run_args("incident-response", inputs))
    run = run_json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run["status"] == "succeeded"
    assert step(run, "low_severity")["outputs"]["reason"].startswith("SEV5 is tracked")
    assert (sandbox.reports_dir / f"incident-{run['id']}-triage.md").is_file()
    for later in ("hotfix", "deploy", "resolve"):
        assert stage(run, later)["status"] == "pending"
