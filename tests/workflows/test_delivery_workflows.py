"""feature-development and spec-to-production end to end against the sandbox."""

from __future__ import annotations

import httpx

from quarterdeck.workflows.sandbox import Sandbox
from tests.workflows.conftest import git, quarterdeck, run_args, run_json, step


def test_feature_development_merges_after_review(sandbox: Sandbox) -> None:
    result = quarterdeck(
        sandbox, *run_args("feature-development", sandbox.inputs("feature"), "--approve", "review")
    )
    run = run_json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run["status"] == "succeeded"
    repo = sandbox.repo
    # the contract the backend wrote is what the frontend read (from memory) and documented
    contract = (repo / "docs" / "api" / "balances.md").read_text()
    assert "GET /api/v1/balances" in contract
    ui_prompt = next(p for p in sandbox.model.prompts if "Describe the UI" in p)  # type: ignore[union-attr]
    assert "GET /api/v1/balances" in ui_prompt
    assert "docs/api/balances.md" in (repo / "docs" / "ui" / "balances.md").read_text()
    # merged into main with a merge commit, and pushed
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "log", "-1", "--format=%s") == "Merge feature/balances"
    assert git(sandbox.origin, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")
    assert step(run, "tests")["outputs"]["failed"] == 0


def test_spec_to_production_deploys_staging_then_production(sandbox: Sandbox) -> None:
    assert sandbox.staging is not None and sandbox.production is not None
    assert httpx.get(f"{sandbox.staging.url}/health", timeout=5).status_code == 503  # empty
    # the clone is left as a failed incident leaves it: on its hotfix branch, a stray commit
    repo = sandbox.repo
    main = git(repo, "rev-parse", "main")
    git(repo, "checkout", "-q", "-b", "hotfix/failed-incident")
    (repo / "STRAY.md").write_text("never reviewed\n")
    git(repo, "add", "STRAY.md")
    git(repo, "commit", "-q", "-m", "fix: stray hotfix commit")
    stray = git(repo, "rev-parse", "HEAD")
    result = quarterdeck(
        sandbox, *run_args("spec-to-production", sandbox.inputs("spec"), "--approve", "production")
    )
    run = run_json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run["status"] == "succeeded"
    release = step(run, "release_id")["outputs"]["stdout"]
    assert release == git(sandbox.repo, "rev-parse", "--short=12", "spec/balances")
    for service in (sandbox.staging, sandbox.production):
        assert httpx.get(f"{service.url}/health", timeout=5).json() == {
            "status": "ok",
            "version": release,
        }
    assert "Specification" in (sandbox.repo / "docs" / "specs" / "balances.md").read_text()
    assert step(run, "secrets")["outputs"]["count"] == 0
    assert step(run, "types")["outputs"]["errors"] == 0
    # cut from main (the default branch), not from the hotfix: the stray commit stays out,
    # and the production approval listed exactly the commits that shipped
    branch = step(run, "branch")["outputs"]
    assert (branch["base"], branch["base_sha"]) == ("main", main)
    shipped = git(repo, "log", "--format=%H", f"{main}..spec/balances").split()
    assert stray not in git(repo, "log", "--format=%H", "spec/balances").split()
    shipping = step(run, "shipping")["outputs"]
    assert [c["sha"] for c in shipping["commits"]] == shipped and len(shipped) == 1
    shown = quarterdeck(sandbox, "show", run["id"])
    assert shown.returncode == 0, shown.stderr
    evidence = shown.stdout.split("approval production:")[1]
    assert f"ships 1 commit(s) on main:\n{shipped[0][:7]} " in evidence, evidence
    assert "stray" not in evidence
