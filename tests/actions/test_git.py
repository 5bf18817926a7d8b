"""Git actions against real repositories with real history and a bare origin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quarterdeck.core.errors import NonRetryableError
from tests.actions.conftest import Repo, make_repo, run_action
from tests.helpers import cli, run_workflow


def project_version(repo: Repo) -> str:
    text = (repo.path / "pyproject.toml").read_text()
    match = re.search(r'^\[project\][^\[]*?^version = "([^"]+)"', text, re.M | re.S)
    assert match
    return match.group(1)


def rich_history(repo: Repo) -> dict[str, str]:
    """v1.2.0, then feat/fix/perf with scopes, a merged branch, a revert pair,
    non-conventional and housekeeping commits. Returns shas by label."""
    repo.git("tag", "-a", "v1.1.0", "-m", "old release")
    repo.commit("fix: before the last release")
    repo.tag("v1.2.0")
    shas = {
        "fix": repo.commit("fix(parser): handle empty input"),
        "other": repo.commit("Update the README wording"),
        "perf": repo.commit("perf: cache the lookup table"),
    }
    repo.git("checkout", "-q", "-b", "feature")
    shas["feat"] = repo.commit("feat(api): add the export endpoint")
    repo.git("checkout", "-q", "main")
    shas["docs"] = repo.commit("docs: describe the export")
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "Merge branch 'feature'")
    shas["merge"] = repo.head()
    shas["risky"] = repo.commit("feat: risky experiment")
    repo.git("revert", "--no-edit", shas["risky"])
    shas["revert"] = repo.head()
    return shas


# --------------------------------------------------------------------------- bump_version


def test_bump_auto_picks_minor_from_real_history(repo: Repo, tmp_path: Path) -> None:
    rich_history(repo)
    repo.git("tag", "-d", "v1.1.0")  # older tags must not matter either way
    out, lines = run_action("git.bump_version", {"repo": str(repo.path)}, tmp_path)
    assert out["released"] is True
    assert out["old_version"] == "1.2.0"
    assert out["new_version"] == "1.3.0"
    assert out["level"] == "minor"
    assert out["tag"] == "v1.3.0"
    assert out["last_tag"] == "v1.2.0"
    assert out["changed"] is True
    assert project_version(repo) == "1.3.0"
    assert 'version = "not-this-one"' in (repo.path / "pyproject.toml").read_text()
    logged = "\n".join(line for _, line in lines)
    assert "[minor]" in logged and "add the export endpoint" in logged
    assert "1.2.0 → 1.3.0" in logged


@pytest.mark.parametrize(
    "message",
    [
        "feat(api)!: drop the v1 endpoints",
        "refactor: move config\n\nBody text.\n\nBREAKING CHANGE: config moved to config.toml",
    ],
)
def test_breaking_changes_bump_major(repo: Repo, tmp_path: Path, message: str) -> None:
    rich_history(repo)
    repo.commit(message)
    out, _ = run_action("git.bump_version", {"repo": str(repo.path)}, tmp_path)
    assert (out["old_version"], out["new_version"], out["level"]) == ("1.2.0", "2.0.0", "major")


def test_breaking_change_while_major_is_zero_bumps_minor(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="0.4.0")
    repo.tag("v0.4.0")
    repo.commit("feat!: new storage format")
    out, _ = run_action("git.bump_version", {"repo": str(repo.path)}, tmp_path)
    assert out["new_version"] == "0.5.0"
    repo.git("checkout", "-q", "--", ".")
    out, _ = run_action(
        "git.bump_version",
        {"repo": str(repo.path), "part": "major"},
        tmp_path,
        idempotency_key="other-run/bump",
    )
    assert out["new_version"] == "1.0.0"


def test_no_releasable_commit_is_released_false(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    repo.commit("docs: typo")
    repo.commit("chore: tidy")
    before = (repo.path / "pyproject.toml").read_text()
    out, _ = run_action("git.bump_version", {"repo": str(repo.path)}, tmp_path)
    assert out["released"] is False
    assert out["new_version"] == out["old_version"] == "0.1.0"
    assert out["changed"] is False
    assert (repo.path / "pyproject.toml").read_text() == before


def test_prerelease_line_in_pyproject(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    repo.commit("feat: first feature")
    out, _ = run_action(
        "git.bump_version",
        {"repo": str(repo.path), "prerelease": "rc"},
        tmp_path,
        idempotency_key="r1/bump",
    )
    assert out["new_version"] == "0.2.0rc1"  # PEP 440 spelling in pyproject.toml
    repo.git("commit", "-qam", "chore: release 0.2.0rc1")
    repo.tag("v0.2.0rc1")
    repo.commit("fix: found in rc1")
    out, _ = run_action(
        "git.bump_version",
        {"repo": str(repo.path), "prerelease": "rc"},
        tmp_path,
        idempotency_key="r2/bump",
    )
    assert (out["old_version"], out["new_version"]) == ("0.2.0rc1", "0.2.0rc2")
    repo.git("commit", "-qam", "chore: release 0.2.0rc2")
    repo.tag("v0.2.0rc2")
    out, _ = run_action(
        "git.bump_version", {"repo": str(repo.path)}, tmp_path, idempotency_key="r3/bump"
    )
    assert (out["old_version"], out["new_version"], out["released"]) == ("0.2.0rc2", "0.2.0", True)
    assert project_version(repo) == "0.2.0"


def test_semver_prerelease_in_a_named_file(repo: Repo, tmp_path: Path) -> None:
    (repo.path / "VERSION").write_text("1.2.0-rc.1\n")
    repo.git("add", "VERSION")
    repo.git("commit", "-qm", "chore: version file")
    repo.tag("v1.1.0")
    repo.commit("feat: something")
    repo.tag("v1.2.0-rc.1")
    repo.commit("fix: rc feedback")
    out, _ = run_action(
        "git.bump_version",
        {
            "repo": str(repo.path),
            "file": "VERSION",
            "pattern": r"^(?P<version>\S+)$",
            "prerelease": "rc",
        },
        tmp_path,
    )
    assert (out["old_version"], out["new_version"]) == ("1.2.0-rc.1", "1.2.0-rc.2")
    assert (repo.path / "VERSION").read_text() == "1.2.0-rc.2\n"


def test_resumed_bump_does_not_bump_twice(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    repo.commit("fix: a bug")
    first, _ = run_action(
        "git.bump_version", {"repo": str(repo.path)}, tmp_path, idempotency_key="run-7/bump"
    )
    again, lines = run_action(
        "git.bump_version", {"repo": str(repo.path)}, tmp_path, idempotency_key="run-7/bump"
    )
    assert first["new_version"] == again["new_version"] == "0.1.1"
    assert (first["changed"], again["changed"]) == (True, False)
    assert project_version(repo) == "0.1.1"
    assert any("earlier attempt" in line for _, line in lines)


def test_bump_errors_are_clear(repo: Repo, tmp_path: Path) -> None:
    (repo.path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["version"]\n')
    with pytest.raises(NonRetryableError, match="dynamic"):
        run_action("git.bump_version", {"repo": str(repo.path)}, tmp_path)
    with pytest.raises(NonRetryableError, match="not a git repository"):
        run_action("git.bump_version", {"repo": str(tmp_path)}, tmp_path)


# --------------------------------------------------------------------------- changelog


def test_changelog_from_real_history(repo: Repo, tmp_path: Path) -> None:
    shas = rich_history(repo)
    repo.commit("feat(cli)!: rename --out to --output")
    repo.git("remote", "add", "upstream", "git@github.com:acme/demo.git")
    params = {"repo": str(repo.path), "version": "2.0.0", "date": "2024-05-01"}
    out, _ = run_action("git.changelog", params, tmp_path)
    section = out["section"]
    base = "https://github.com/acme/demo/commit/"
    assert section.startswith("## [2.0.0] - 2024-05-01\n\n### Breaking changes\n")
    assert "- **cli:** rename --out to --output ([" in section
    assert (
        f"- **api:** add the export endpoint ([{shas['feat'][:7]}]({base}{shas['feat']}))"
        in section
    )
    assert f"### Fixed\n\n- **parser:** handle empty input ([{shas['fix'][:7]}]" in section
    assert "### Changed\n\n- cache the lookup table" in section
    assert f"### Other changes\n\n- Update the README wording ([{shas['other'][:7]}]" in section
    assert "risky" not in section  # reverted inside the range: both cancel out
    assert "Merge branch" not in section
    assert "describe the export" not in section  # docs are hidden by default
    assert "before the last release" not in section  # older than v1.2.0
    assert section.index("Breaking changes") < section.index("### Added")
    assert out["breaking"] == 1
    text = (repo.path / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert section in text
    assert "[2.0.0]: https://github.com/acme/demo/compare/v1.2.0...v2.0.0" in text
    assert out["changed"] is True

    again, _ = run_action("git.changelog", {**params, "date": "2024-06-01"}, tmp_path)
    assert again["changed"] is False
    assert again["section"] == section
    assert (repo.path / "CHANGELOG.md").read_text() == text


def test_changelog_after_the_tag_and_without_links(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    repo.commit("feat: one")
    repo.commit("fix: two")
    (repo.path / "CHANGELOG.md").write_text(
        "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2024-01-01\n\n- first\n"
    )
    run_action("git.bump_version", {"repo": str(repo.path)}, tmp_path)
    repo.git("commit", "-qam", "chore: release 0.2.0")
    repo.tag("v0.2.0")  # changelog runs after tagging: the range is v0.1.0..v0.2.0
    out, _ = run_action("git.changelog", {"repo": str(repo.path), "date": "2024-02-02"}, tmp_path)
    assert out["version"] == "0.2.0"
    assert out["since"] == "v0.1.0"
    assert "### Added\n\n- one (" in out["section"]
    text = (repo.path / "CHANGELOG.md").read_text()
    assert text.index("## [Unreleased]") < text.index("## [0.2.0]") < text.index("## [0.1.0]")
    assert "](http" not in out["section"]  # the origin is a local path: no links


# --------------------------------------------------------------------------- commit, tag, push


def test_commit_then_clean_tree_is_a_no_op(repo: Repo, tmp_path: Path) -> None:
    (repo.path / "new.txt").write_text("hello\n")
    out, _ = run_action(
        "git.commit", {"repo": str(repo.path), "message": "feat: new file"}, tmp_path
    )
    assert out["committed"] is True
    assert out["files"] == ["new.txt"]
    assert repo.head() == out["sha"]
    assert repo.git("log", "-1", "--format=%s") == "feat: new file"
    again, _ = run_action(
        "git.commit", {"repo": str(repo.path), "message": "feat: new file"}, tmp_path
    )
    assert again == {"committed": False, "sha": out["sha"], "files": []}


def test_commit_only_named_paths(repo: Repo, tmp_path: Path) -> None:
    (repo.path / "a.txt").write_text("a\n")
    (repo.path / "b.txt").write_text("b\n")
    out, _ = run_action(
        "git.commit", {"repo": str(repo.path), "message": "chore: a", "paths": ["a.txt"]}, tmp_path
    )
    assert out["files"] == ["a.txt"]
    assert "?? b.txt" in repo.git("status", "--porcelain")


def test_tag_is_annotated_and_idempotent(repo: Repo, tmp_path: Path) -> None:
    out, _ = run_action("git.tag", {"repo": str(repo.path), "name": "v0.1.0"}, tmp_path)
    assert out == {"tag": "v0.1.0", "sha": repo.head(), "created": True}
    assert repo.git("cat-file", "-t", "v0.1.0") == "tag"
    assert repo.git("tag", "-l", "--format=%(contents:subject)", "v0.1.0") == "Release v0.1.0"
    again, _ = run_action("git.tag", {"repo": str(repo.path), "name": "v0.1.0"}, tmp_path)
    assert again["created"] is False
    repo.commit("fix: later")
    with pytest.raises(NonRetryableError, match="never moved"):
        run_action("git.tag", {"repo": str(repo.path), "name": "v0.1.0"}, tmp_path)


def test_push_branch_and_tag_then_no_op(repo: Repo, tmp_path: Path) -> None:
    repo.commit("feat: x")
    repo.tag("v0.2.0")
    params = {"repo": str(repo.path), "tags": ["v0.2.0"]}
    out, _ = run_action("git.push", params, tmp_path)
    assert out["pushed"] == ["refs/heads/main", "refs/tags/v0.2.0"]
    assert out["changed"] is True
    assert repo.origin_tags() == ["v0.2.0"]
    from tests.actions.conftest import git

    assert git(repo.origin, "rev-parse", "main") == repo.head()
    again, _ = run_action("git.push", params, tmp_path)
    assert again["pushed"] == []
    assert again["skipped"] == ["refs/heads/main", "refs/tags/v0.2.0"]
    assert again["changed"] is False


def test_push_refuses_to_overwrite_a_published_tag(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    run_action(
        "git.push", {"repo": str(repo.path), "tags": ["v0.1.0"], "push_branch": False}, tmp_path
    )
    repo.git("tag", "-d", "v0.1.0")
    repo.commit("fix: different")
    repo.tag("v0.1.0")
    with pytest.raises(NonRetryableError, match="never overwritten"):
        run_action("git.push", {"repo": str(repo.path), "tags": ["v0.1.0"]}, tmp_path)


def test_branch_and_revert_to(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    out, _ = run_action("git.branch", {"repo": str(repo.path), "name": "release/0.2"}, tmp_path)
    assert (out["created"], out["checked_out"]) == (True, True)
    assert repo.git("branch", "--show-current") == "release/0.2"
    again, _ = run_action("git.branch", {"repo": str(repo.path), "name": "release/0.2"}, tmp_path)
    assert (again["created"], again["checked_out"]) == (False, False)

    good_tree = repo.git("rev-parse", "v0.1.0^{tree}")
    repo.commit("feat: broken deploy", file="app.py", content="broken\n")
    repo.commit("fix: more broken", file="pyproject.toml", content="[project]\n")
    out, _ = run_action("git.revert_to", {"repo": str(repo.path), "ref": "v0.1.0"}, tmp_path)
    assert out["changed"] is True
    assert repo.git("rev-parse", "HEAD^{tree}") == good_tree
    assert not (repo.path / "app.py").exists()
    assert repo.git("rev-list", "--count", "HEAD") == "4"  # history kept: a new commit
    again, _ = run_action("git.revert_to", {"repo": str(repo.path), "ref": "v0.1.0"}, tmp_path)
    assert again["changed"] is False

    repo.commit("feat: try again")
    out, _ = run_action(
        "git.revert_to", {"repo": str(repo.path), "ref": "v0.1.0", "mode": "reset"}, tmp_path
    )
    assert out["sha"] == repo.head() == repo.git("rev-parse", "v0.1.0^{commit}")


# --------------------------------------------------------------------------- workflows


def release_workflow(repo: Path, steps: str) -> str:
    return f"""
name: git-release
stages:
  - id: release
    steps:
{steps.replace("REPO", str(repo))}
"""


FULL_RELEASE = """\
      - id: bump
        uses: git.bump_version
        with: {repo: "REPO"}
      - id: changelog
        uses: git.changelog
        needs: [bump]
        with: {repo: "REPO", version: "{{ steps.bump.outputs.new_version }}"}
      - id: commit
        uses: git.commit
        needs: [changelog]
        with: {repo: "REPO", message: "chore(release): {{ steps.bump.outputs.new_version }}"}
"""
TAG_AND_PUSH = """\
      - id: tag
        uses: git.tag
        needs: NEEDS
        with: {repo: "REPO", name: "v0.2.0"}
      - id: push
        uses: git.push
        needs: [tag]
        with: {repo: "REPO", tags: ["{{ steps.tag.outputs.tag }}"]}
"""


def test_release_workflow_rerun_tags_once(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    repo.commit("feat: shiny")
    (tmp_path / "run1").mkdir()
    (tmp_path / "run2").mkdir()
    steps_text = FULL_RELEASE + TAG_AND_PUSH.replace("NEEDS", "[commit]")
    first = run_workflow(tmp_path / "run1", release_workflow(repo.path, steps_text))
    assert first.state.status == "succeeded", first.state
    steps = {s.id: s for s in first.state.all_steps()}
    assert steps["bump"].outputs["new_version"] == "0.2.0"
    assert steps["tag"].outputs["created"] is True
    assert repo.origin_tags() == ["v0.2.0"]
    tagged = repo.head()

    # A resumed run executes the in-flight tag and push steps again.
    rerun = TAG_AND_PUSH.replace("NEEDS", "[]")
    second = run_workflow(tmp_path / "run2", release_workflow(repo.path, rerun))
    assert second.state.status == "succeeded", [(s.id, s.error) for s in second.state.all_steps()]
    steps2 = {s.id: s for s in second.state.all_steps()}
    assert steps2["tag"].outputs["created"] is False
    assert steps2["push"].outputs["pushed"] == []
    from tests.actions.conftest import git

    assert repo.origin_tags() == ["v0.2.0"]
    assert git(repo.origin, "rev-parse", "v0.2.0^{commit}") == tagged
    assert "0.2.0" in (repo.path / "CHANGELOG.md").read_text()


def test_bad_git_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""\
name: bad-git
stages:
  - id: s
    steps:
      - id: bump
        uses: git.bump_version
        with: {part: huge}
      - id: bump2
        uses: git.bump_version
        with: {pattern: "no-group"}
      - id: log
        uses: git.changelog
        with: {date: "May 1st"}
      - id: commit
        uses: git.commit
        with: {mesage: "typo"}
      - id: tag
        uses: git.tag
        with: {name: "bad..name"}
      - id: push
        uses: git.push
        with: {tags: "v1"}
      - id: branch
        uses: git.branch
        with: {name: "has space"}
      - id: revert
        uses: git.revert_to
        with: {ref: main, mode: nuke}
""")
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    for line in (7, 10, 13, 16, 19, 22, 25, 28):
        assert f"bad.yaml:{line}:" in result.stderr, (line, result.stderr)
    assert "Traceback" not in result.stderr


CRASHY_PUSH = """\
name: crashy-push
stages:
  - id: release
    steps:
      - id: tag
        uses: git.tag
        with: {repo: "REPO", name: "v0.1.0"}
      - id: push
        uses: git.push
        needs: [tag]
        with: {repo: "REPO", tags: ["v0.1.0"]}
"""


def test_crash_during_push_then_resume_pushes_once(repo: Repo, tmp_path: Path) -> None:
    """The process dies after origin took the tag but before the step was journaled as
    finished; the resumed run runs the push step again, which notices and does nothing."""
    import json
    import os
    import subprocess
    import sys
    import time

    from tests.helpers import REPO

    effects = tmp_path / "effects"
    resumed = tmp_path / "resumed"
    hook = repo.origin / "hooks" / "post-receive"
    # post-receive runs after origin has updated its refs; the pusher waits for it.
    hook.write_text(
        "#!/bin/sh\n"
        f"echo pushed >> '{effects}'\n"
        "i=0\n"
        f"while [ ! -f '{resumed}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
    )
    hook.chmod(0o755)
    wf = tmp_path / "crashy.yaml"
    wf.write_text(CRASHY_PUSH.replace("REPO", str(repo.path)))
    db = str(tmp_path / "qd.db")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(wf),
            "--headless",
            "--store",
            db,
            "--workdir",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 30
        while "pushed" not in (effects.read_text() if effects.exists() else ""):
            assert proc.poll() is None, "the run ended before the push reached origin"
            assert time.monotonic() < deadline, "the push never reached origin"
            time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        resumed.touch()  # lets the orphaned push (and its hook) finish
    assert repo.origin_tags() == ["v0.1.0"]
    runs = json.loads(cli("runs", "--json", "--store", db).stdout)
    run_id = runs[0]["id"]
    result = cli("resume", run_id, "--headless", "--store", db)
    assert result.returncode == 0, result.stderr
    shown = json.loads(cli("show", run_id, "--json", "--store", db).stdout)
    steps = {s["id"]: s for stage in shown["stages"] for s in stage["steps"]}
    assert steps["tag"]["attempts"] == 1  # finished before the crash: not run again
    assert steps["push"]["outputs"]["pushed"] == []
    assert steps["push"]["outputs"]["skipped"] == ["refs/heads/main", "refs/tags/v0.1.0"]
    assert repo.origin_tags() == ["v0.1.0"]
    assert effects.read_text().split() == ["pushed"]  # origin received exactly one push
