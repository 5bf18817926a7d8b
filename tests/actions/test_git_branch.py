"""Branches start from an explicit base (default the repository's default branch), never
from whatever is checked out; ``git.log`` lists what a change would ship."""

from __future__ import annotations

from pathlib import Path

import pytest

from quarterdeck.core.errors import NonRetryableError
from tests.actions.conftest import Repo, run_action
from tests.helpers import cli


def on_a_hotfix_branch(repo: Repo) -> str:
    """Leave the clone as a failed incident would: on its hotfix branch, one stray commit."""
    repo.git("checkout", "-q", "-b", "hotfix/run-41")
    return repo.commit("fix: stray hotfix that never shipped")


def test_a_branch_starts_from_the_default_branch_not_the_checkout(
    repo: Repo, tmp_path: Path
) -> None:
    main = repo.head()
    stray = on_a_hotfix_branch(repo)
    out, lines = run_action("git.branch", {"repo": str(repo.path), "name": "spec/x"}, tmp_path)
    assert (out["base"], out["base_sha"], out["sha"]) == ("main", main, main)
    assert repo.git("branch", "--show-current") == "spec/x"
    assert stray not in repo.git("log", "--format=%H", "spec/x")
    assert any("had hotfix/run-41 checked out" in line for _, line in lines)


def test_the_default_branch_comes_from_origin_head(repo: Repo, tmp_path: Path) -> None:
    repo.git("checkout", "-q", "-b", "trunk")
    trunk = repo.commit("feat: on trunk")
    repo.git("push", "-q", "origin", "trunk")
    repo.git("remote", "set-head", "origin", "trunk")
    repo.git("checkout", "-q", "main")
    out, _ = run_action("git.branch", {"repo": str(repo.path), "name": "feature/y"}, tmp_path)
    assert (out["base"], out["sha"]) == ("trunk", trunk)


def test_a_dirty_checkout_is_refused_before_anything_changes(repo: Repo, tmp_path: Path) -> None:
    (repo.path / "pyproject.toml").write_text("# edited, not committed\n")
    with pytest.raises(NonRetryableError, match=r"has uncommitted changes \(pyproject.toml\)"):
        run_action(
            "git.branch",
            {"repo": str(repo.path), "name": "spec/x", "start_point": "main"},
            tmp_path,
        )
    assert "spec/x" not in repo.git("branch", "--list")


def test_an_existing_branch_with_foreign_commits_is_refused(repo: Repo, tmp_path: Path) -> None:
    """A branch left by an earlier run holds commits the base does not: reusing it would
    ship them, so it is refused and the commits are named with their authors."""
    repo.git("checkout", "-q", "-b", "spec/x")
    stray = repo.commit("fix: left over")
    repo.git("checkout", "-q", "main")
    with pytest.raises(NonRetryableError) as info:
        run_action("git.branch", {"repo": str(repo.path), "name": "spec/x"}, tmp_path)
    message = info.value.message
    assert "already exists with 1 commit(s) that are not on main" in message
    assert f"{stray[:7]} Test User <user@example.test>: fix: left over" in message
    # at the base it is reused, as a resumed step needs
    repo.git("branch", "-f", "spec/x", "main")
    out, _ = run_action("git.branch", {"repo": str(repo.path), "name": "spec/x"}, tmp_path)
    assert (out["created"], out["checked_out"]) == (False, True)


def test_log_lists_the_commits_that_would_ship(repo: Repo, tmp_path: Path) -> None:
    base = repo.head()
    first = repo.commit("feat: one")
    repo.git(
        "commit", "-q", "--allow-empty", "-m", "fix: two", "--author", "Ada <ada@example.test>"
    )
    out, _ = run_action("git.log", {"repo": str(repo.path), "base": base}, tmp_path)
    assert out["count"] == 2
    assert [c["subject"] for c in out["commits"]] == ["fix: two", "feat: one"]
    assert out["lines"][1] == f"{first[:7]} Test User <user@example.test>: feat: one"
    assert out["authors"] == ["Ada <ada@example.test>", "Test User <user@example.test>"]
    empty, _ = run_action("git.log", {"repo": str(repo.path), "base": "HEAD"}, tmp_path)
    assert (empty["count"], empty["text"]) == (0, "no commits in HEAD..HEAD")


def test_refs_that_look_like_options_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text("""\
name: refs
stages:
  - id: s
    steps:
      - id: branch
        uses: git.branch
        with: {name: "spec/x", start_point: "--orphan"}
      - id: log
        uses: git.log
        with: {base: "--output=/tmp/x"}
""")
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    for line in (7, 10):
        assert f"refs.yaml:{line}:" in result.stderr, (line, result.stderr)
    assert "Traceback" not in result.stderr
