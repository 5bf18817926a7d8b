"""package-release end to end, headless, against the demo sandbox: real git, index, venvs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from quarterdeck.workflows.sandbox import Sandbox
from quarterdeck.workflows.sandbox.repo import NEXT_VERSION, build_repo
from tests.workflows.conftest import git, quarterdeck, run_args, run_json, stage, step


def test_release_bumps_tags_publishes_and_verifies(sandbox: Sandbox, tmp_path: Path) -> None:
    result = quarterdeck(
        sandbox, *run_args("package-release", sandbox.inputs("release"), "--approve", "publish")
    )
    run = run_json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run["status"] == "succeeded"
    repo = sandbox.repo
    assert f'version = "{NEXT_VERSION}"' in (repo / "pyproject.toml").read_text()
    changelog = (repo / "CHANGELOG.md").read_text()
    assert f"## [{NEXT_VERSION}]" in changelog
    assert "add balance_by_currency" in changelog and "round half-even" in changelog
    assert f"ledgerline=={NEXT_VERSION}" in (repo / "README.md").read_text()
    assert f"Current version: {NEXT_VERSION}" in (repo / "docs" / "index.md").read_text()
    assert git(repo, "log", "-1", "--format=%s") == f"chore(release): {NEXT_VERSION}"
    # the tag and the release commit are on origin
    remote_tags = git(repo, "ls-remote", "--tags", str(sandbox.origin))
    tag_sha = git(repo, "rev-parse", f"v{NEXT_VERSION}^{{commit}}")
    assert f"refs/tags/v{NEXT_VERSION}" in remote_tags
    assert git(sandbox.origin, "rev-parse", "main") == tag_sha
    # the index holds the release, and a fresh pip can fetch it from there
    assert sandbox.index is not None
    assert sandbox.index.files() == [
        f"ledgerline-{NEXT_VERSION}-py3-none-any.whl",
        f"ledgerline-{NEXT_VERSION}.tar.gz",
    ]
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--index-url",
            sandbox.index.simple,
            "-d",
            str(tmp_path),
            f"ledgerline=={NEXT_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / f"ledgerline-{NEXT_VERSION}-py3-none-any.whl").is_file()
    verify = step(run, "verify")
    assert verify["outputs"]["imported"] is True and verify["outputs"]["version"] == NEXT_VERSION
    # the gate saw real numbers, and the notes and the Logseq page were written
    assert step(run, "tests")["outputs"]["coverage"] >= 80
    assert step(run, "lint")["outputs"]["errors"] == 0
    notes = (sandbox.reports_dir / f"release-notes-v{NEXT_VERSION}.md").read_text()
    assert "round half-even when converting" in notes and sandbox.index.simple in notes
    # the devops persona drafted the highlights with the demo model: the token panel moves
    highlights = step(run, "highlights")["outputs"]
    assert highlights["model"] == "demo-model" and highlights["usage"]["total"] > 0
    assert f"ledgerline {NEXT_VERSION}" in highlights["text"]
    assert "## Highlights" in notes and highlights["text"] in notes
    page = sandbox.logseq_dir / "pages" / f"ledgerline {NEXT_VERSION}.md"
    assert page.read_text().startswith(f"- # ledgerline {NEXT_VERSION}")
    assert step(run, "github_release")["status"] == "skipped"  # no github_repo given
    # the approval showed how the version was decided and which commits ship
    from quarterdeck.core.journal.store import Store

    with Store(sandbox.state_dir / "quarterdeck.db") as db:
        asked = [e.data for e in db.events(run["id"]) if "evidence" in e.data]
    evidence = asked[0]["evidence"]
    assert any(e.startswith("decision: counted ") and "since v1.2.0" in e for e in evidence)
    shipped = next(e for e in evidence if e.startswith("commits: "))
    assert "[minor]" in shipped and "add balance_by_currency" in shipped


def test_nothing_to_release_ends_cleanly(sandbox: Sandbox, tmp_path: Path) -> None:
    work, _origin = build_repo(tmp_path)
    git(work, "tag", "-a", "v1.2.1", "-m", "Release v1.2.1")  # HEAD is released already
    before = (work / "pyproject.toml").read_text()
    inputs = {**sandbox.inputs("release"), "repo": str(work)}
    result = quarterdeck(sandbox, *run_args("package-release", inputs))
    run = run_json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run["status"] == "nothing_to_do"
    assert step(run, "nothing_to_release")["outputs"]["reason"] == (
        "no commit since v1.2.1 calls for a release"
    )
    for later in ("prepare", "validate", "deploy"):
        assert stage(run, later)["status"] == "pending"
    assert (work / "pyproject.toml").read_text() == before
    assert git(work, "tag", "--list") == "v1.2.0\nv1.2.1"
