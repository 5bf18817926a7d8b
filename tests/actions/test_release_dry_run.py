"""``run package-release --dry-run`` shows the decision: next version, commits, conditions."""

from __future__ import annotations

from pathlib import Path

from tests.actions.conftest import Repo, make_repo
from tests.helpers import cli


def dry_run(repo: Repo, tmp_path: Path, *inputs: str) -> tuple[int, str, str]:
    args = ["run", "package-release", "--dry-run", "--store", str(tmp_path / "qd.db")]
    for item in (f"repo={repo.path}", "repository_url=http://127.0.0.1:9/legacy/", *inputs):
        args += ["-i", item]
    result = cli(*args, cwd=tmp_path)
    return result.returncode, result.stdout, result.stderr


def test_dry_run_prints_next_version_and_commits_and_writes_nothing(
    repo: Repo, tmp_path: Path
) -> None:
    repo.tag("v0.1.0")
    feat = repo.commit("feat(api): export endpoint")
    repo.commit("docs: explain export")
    before = (repo.path / "pyproject.toml").read_text()
    head = repo.head()
    code, out, err = dry_run(repo, tmp_path)
    assert code == 0, err
    assert "plan [git.bump_version]" in out
    assert "new_version: 0.2.0" in out and "tag: v0.2.0" in out
    assert f"- [minor] {feat[:7]} feat(api): export endpoint" in out
    assert "when {{ not steps.plan.outputs.released }} → false" in out
    assert "bump [git.bump_version]\n    would run (not read-only" in out
    assert (repo.path / "pyproject.toml").read_text() == before
    assert repo.head() == head and repo.git("tag", "--list") == "v0.1.0"
    assert not (repo.path / "CHANGELOG.md").exists()
    assert not (tmp_path / "qd.db").exists()


def test_dry_run_shows_a_refusal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="1.2.3")
    repo.tag("1.2.3")
    repo.commit("fix: x")
    code, out, err = dry_run(repo, tmp_path)
    assert code == 0, err
    assert "FAILED (refused" in out and "no tag matches 'v*'; found 1.2.3" in out
    code, out, err = dry_run(repo, tmp_path, "tag_prefix=")
    assert "new_version: 1.2.4" in out and "tag: 1.2.4" in out


def test_package_release_refuses_a_downgrade_with_exit_2_and_writes_nothing(
    tmp_path: Path,
) -> None:
    from tests.actions.test_release_versions import side_branch_release

    repo = side_branch_release(tmp_path, "chore(release): 1.1.0")
    before = (repo.path / "pyproject.toml").read_text()
    head, tags = repo.head(), repo.git("tag", "--list")
    args = ["run", "package-release", "--headless", "--store", str(tmp_path / "qd.db")]
    args += ["-i", f"repo={repo.path}", "-i", "repository_url=http://127.0.0.1:9/legacy/"]
    result = cli(*args, cwd=tmp_path, env={"QUARTERDECK_HOME": str(tmp_path / "home")})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "refusing to release 1.0.1: it is not above 1.1.0" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert (repo.path / "pyproject.toml").read_text() == before
    assert repo.head() == head and repo.git("tag", "--list") == tags
    assert repo.origin_tags() == []
