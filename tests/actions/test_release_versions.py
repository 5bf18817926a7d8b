"""Version decisions on generated repositories that look like real ones: rewritten
history, unprefixed and floating tags, other tools' commits, presets and project config."""

from __future__ import annotations

from pathlib import Path

import pytest

from quarterdeck.core.errors import ExitCode, NonRetryableError
from tests.actions.conftest import Repo, make_repo, run_action
from tests.actions.test_git import project_version
from tests.helpers import run_workflow


def bump(repo: Repo, tmp_path: Path, **params: object) -> dict[str, object]:
    ctx = {"idempotency_key": params.pop("idempotency_key")} if "idempotency_key" in params else {}
    out, _ = run_action("git.bump_version", {"repo": str(repo.path), **params}, tmp_path, **ctx)
    return out


def refused(repo: Repo, tmp_path: Path, **params: object) -> str:
    before = (repo.path / "pyproject.toml").read_text()
    with pytest.raises(NonRetryableError) as caught:
        bump(repo, tmp_path, **params)
    assert caught.value.outputs.get("refused") is True
    assert (repo.path / "pyproject.toml").read_text() == before, "nothing may be written"
    return caught.value.message


def set_version(repo: Repo, version: str, message: str) -> str:
    text = (repo.path / "pyproject.toml").read_text()
    current = project_version(repo)
    (repo.path / "pyproject.toml").write_text(
        text.replace(f'version = "{current}"', f'version = "{version}"', 1)
    )
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", message)
    return repo.head()


def side_branch_release(tmp_path: Path, bump_message: str) -> Repo:
    """The issue's reproduction: v1.0.0 on main; 1.1.0 released (file and tag) on a side
    branch; its bump cherry-picked onto main; then a `fix:`."""
    repo = make_repo(tmp_path / "r", version="1.0.0")
    repo.tag("v1.0.0")
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("feat: side feature")
    bumped = set_version(repo, "1.1.0", bump_message)
    repo.tag("v1.1.0")
    repo.git("checkout", "-q", "main")
    repo.git("cherry-pick", bumped)
    repo.commit("fix: after the cherry-pick")
    return repo


# --------------------------------------------------------------------------- never backwards


@pytest.mark.parametrize("bump_message", ["chore(release): 1.1.0", "bump: version 1.0.0 → 1.1.0"])
def test_off_lineage_release_is_never_downgraded(tmp_path: Path, bump_message: str) -> None:
    repo = side_branch_release(tmp_path, bump_message)
    message = refused(repo, tmp_path)
    assert "1.0.1" in message and "1.1.0" in message and "not an ancestor" in message
    # An explicit version above everything known goes ahead, and is checked the same way.
    assert "already exists" in refused(repo, tmp_path, version="1.1.0")
    out = bump(repo, tmp_path, version="1.1.1")
    assert (out["new_version"], out["highest_tag"], out["file_version"]) == (
        "1.1.1",
        "v1.1.0",
        "1.1.0",
    )
    assert project_version(repo) == "1.1.1"


def test_rewritten_history_proposal_that_exists_is_refused(tmp_path: Path) -> None:
    """Releases tagged on commits a rewrite left behind: v4.13.0..v4.13.3 off the branch."""
    repo = make_repo(tmp_path / "r", version="4.12.0")
    repo.tag("v4.12.0")
    repo.git("checkout", "-q", "-b", "old")
    for patch in range(4):
        repo.commit(f"fix: old fix {patch}")
        set_version(repo, f"4.13.{patch}", f"chore(release): 4.13.{patch}")
        repo.tag(f"v4.13.{patch}")
    repo.git("checkout", "-q", "main")
    repo.commit("feat: rewritten feature")
    set_version(repo, "4.13.3", "chore: keep the file's version")
    message = refused(repo, tmp_path)
    assert "v4.13.0 already exists (elsewhere in the repository)" in message


def test_maintenance_branch_releases_below_the_newest_major(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="1.2.4")
    repo.tag("v1.2.4")
    repo.git("checkout", "-q", "-b", "release/1.2")
    repo.git("checkout", "-q", "main")
    repo.commit("feat!: the 2.0 rewrite")
    set_version(repo, "2.0.0", "chore(release): 2.0.0")
    repo.tag("v2.0.0")
    repo.git("checkout", "-q", "release/1.2")
    repo.commit("fix: backported fix")
    assert "maintenance: true" in refused(repo, tmp_path)
    out = bump(repo, tmp_path, maintenance=True)
    assert (out["new_version"], out["highest_tag"]) == ("1.2.5", "v2.0.0")
    repo.git("checkout", "-q", "--", ".")
    repo.git("tag", "-a", "v1.2.5", "-m", "made elsewhere", "main")
    message = refused(repo, tmp_path, maintenance=True, idempotency_key="again")
    assert "tag v1.2.5 already exists" in message


def test_file_ahead_of_the_tags_is_not_overwritten(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    set_version(repo, "0.5.0", "chore: bump by hand")
    repo.commit("fix: small")
    message = refused(repo, tmp_path)
    assert "version file already says 0.5.0" in message


def test_pending_release_commit_in_the_file_is_reused(repo: Repo, tmp_path: Path) -> None:
    """A run that failed after its release commit: the file already holds the proposal."""
    repo.tag("v0.1.0")
    repo.commit("fix: small")
    set_version(repo, "0.1.1", "chore(release): 0.1.1")
    out = bump(repo, tmp_path)
    assert (out["new_version"], out["changed"]) == ("0.1.1", False)


def test_decision_is_explained_in_outputs(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v0.1.0")
    repo.commit("feat: export")
    repo.commit("docs: explain export")
    out = bump(repo, tmp_path, write=False)
    assert out["base_tag"] == "v0.1.0" and out["file_version"] == "0.1.0"
    shipped = out["shipped"]
    assert isinstance(shipped, list)
    assert [line.split(" ", 2)[::2] for line in shipped] == [
        ["[-]", "docs: explain export"],
        ["[minor]", "feat: export"],
    ]
    assert "counted 2 commit(s) since v0.1.0" in str(out["decision"])


def test_refusal_ends_the_run_with_exit_code_2(tmp_path: Path) -> None:
    repo = side_branch_release(tmp_path, "chore(release): 1.1.0")
    wf = f"""
name: rel
stages:
  - id: s
    steps:
      - id: bump
        uses: git.bump_version
        with: {{repo: "{repo.path}"}}
"""
    (tmp_path / "run").mkdir()
    ran = run_workflow(tmp_path / "run", wf)
    assert ran.state.status == "failed"
    assert ran.runner.exit_code == ExitCode.INVALID


# --------------------------------------------------------------------------- tag schemes


def test_unprefixed_tags_are_detected_with_a_clear_message(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="1.2.3")
    repo.tag("1.2.2")
    repo.commit("fix: one")
    repo.tag("1.2.3")
    repo.commit("feat: two")
    message = refused(repo, tmp_path)
    assert message == "no tag matches 'v*'; found 1.2.3, 1.2.2 — pass tag_prefix: ''"
    out = bump(repo, tmp_path, tag_prefix="")
    assert (out["new_version"], out["tag"], out["base_tag"]) == ("1.3.0", "1.3.0", "1.2.3")


def test_first_release_must_be_asked_for(repo: Repo, tmp_path: Path) -> None:
    repo.commit("feat: everything")
    assert "first_release: true" in refused(repo, tmp_path)
    out = bump(repo, tmp_path, first_release=True)
    assert (out["old_version"], out["new_version"], out["base_tag"]) == ("0.1.0", "0.2.0", "")
    repo.git("checkout", "-q", "--", ".")
    repo.tag("v0.2.0")
    assert "already has release tag v0.2.0" in refused(
        repo, tmp_path, first_release=True, idempotency_key="again"
    )


def test_floating_tags_are_not_releases(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="2.0.0")
    repo.tag("v2.0.0")
    fix = repo.commit("fix: the 2.0.1 fix")
    set_version(repo, "2.0.1", "chore(release): 2.0.1")
    repo.tag("v2.0.1")
    for floating in ("v2", "v2.0"):  # moved along with each release
        repo.git("tag", "-f", floating)
    repo.commit("fix: after")
    out = bump(repo, tmp_path, write=False)
    assert (out["base_tag"], out["new_version"]) == ("v2.0.1", "2.0.2")
    log, _ = run_action(
        "git.changelog",
        {"repo": str(repo.path), "version": "2.0.1", "link_commits": False, "write": False},
        tmp_path,
    )
    assert log["since"] == "v2.0.0"
    assert fix[:7] in str(log["section"]) and "No notable changes" not in str(log["section"])


# --------------------------------------------------------------------------- commits


def test_breaking_change_footer_text_on_the_next_line(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v1.0.0")
    repo.commit("refactor: move config\n\nBREAKING CHANGE:\nthe config moved to config.toml")
    out = bump(repo, tmp_path, write=False)
    assert (out["new_version"], out["level"]) == ("2.0.0", "major")


def test_nested_scope_and_squash_bodies(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v1.0.0")
    repo.commit("Export improvements (#12)\n\n* fix(api(v2)): typo\n\n* feat(api(v2)): export")
    assert bump(repo, tmp_path, write=False)["released"] is False
    out = bump(repo, tmp_path, write=False, squash_bodies=True)
    assert (out["new_version"], out["level"]) == ("1.1.0", "minor")
    log, _ = run_action(
        "git.changelog",
        {"repo": str(repo.path), "version": "1.1.0", "squash_bodies": True, "write": False},
        tmp_path,
    )
    assert "**api(v2):** export" in str(log["section"])
    assert "Export improvements" not in str(log["section"])


def test_other_tools_release_commits_stay_out_of_the_changelog(repo: Repo, tmp_path: Path) -> None:
    repo.tag("v1.0.0")
    repo.commit("fix: real fix")
    repo.commit("bump: version 1.0.0 → 1.0.1")
    repo.commit("Bump version: 1.0.1 → 1.0.2")
    repo.commit("1.0.3\n\nAutomatically generated by python-semantic-release")
    log, _ = run_action(
        "git.changelog",
        {"repo": str(repo.path), "version": "1.1.0", "link_commits": False, "write": False},
        tmp_path,
    )
    section = str(log["section"])
    assert "real fix" in section
    assert "ump" not in section and "1.0.3" not in section and log["entries"] == 1


# --------------------------------------------------------------------------- presets, config


def test_commitizen_preset_and_overrides(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="0.3.0")
    repo.tag("v0.3.0")
    repo.commit("refactor: tidy the parser")
    assert bump(repo, tmp_path, write=False)["released"] is False
    assert bump(repo, tmp_path, write=False, preset="commitizen")["new_version"] == "0.3.1"
    repo.commit("feat!: new storage")
    assert bump(repo, tmp_path, write=False)["new_version"] == "0.4.0"
    assert bump(repo, tmp_path, write=False, preset="commitizen")["new_version"] == "1.0.0"
    other = make_repo(tmp_path / "o", version="1.0.0")
    other.tag("v1.0.0")
    other.commit("docs: the manual")
    assert bump(other, tmp_path, write=False, bump_rules={"docs": "patch"})["version"] == "1.0.1"


def test_project_config_sets_preset_and_prefix(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", version="1.0.0")
    repo.tag("1.0.0")
    repo.commit("perf: faster")
    cfg = repo.path / ".quarterdeck" / "config.yaml"
    cfg.parent.mkdir()
    cfg.write_text("release:\n  tag_prefix: ''\n  bump_rules: {perf: minor}\n")
    out = bump(repo, tmp_path, write=False)
    assert (out["new_version"], out["tag"]) == ("1.1.0", "1.1.0")
    cfg.write_text("release:\n  bump_rules: {perf: huge}\n")
    with pytest.raises(NonRetryableError, match=r"config.yaml: release.bump_rules.perf"):
        bump(repo, tmp_path, write=False)


# --------------------------------------------------------------------------- version files


def test_pep440_versions_in_the_file(repo: Repo, tmp_path: Path) -> None:
    set_version(repo, "1.2.3.post1", "chore: post release")
    repo.tag("v1.2.3.post1")
    repo.commit("fix: after the post release")
    assert bump(repo, tmp_path)["new_version"] == "1.2.4"


def test_pyproject_dotted_keys_and_formatting_kept(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    text = (
        '[build-system]\nrequires = ["setuptools"]  # keep me\n\n'
        "[project]\nname = 'demo'\nversion   =   '0.1.0'   # the version\n"
        "urls = {home = 'https://example.test'}\n"
    )
    (repo.path / "pyproject.toml").write_text(text)
    repo.commit("chore: reformat")
    repo.tag("v0.1.0")
    repo.commit("feat: x")
    bump(repo, tmp_path)
    assert (repo.path / "pyproject.toml").read_text() == text.replace("0.1.0", "0.2.0")
    dotted = repo.path / "pyproject.toml"
    dotted.write_text('project.name = "demo"\nproject.version = "0.2.0"\n[tool.x]\nversion = "9"\n')
    repo.commit("chore: dotted keys", file="pyproject.toml", content=dotted.read_text())
    repo.tag("v0.2.0")
    repo.commit("fix: y")
    bump(repo, tmp_path, idempotency_key="second")
    assert 'project.version = "0.2.1"' in dotted.read_text()
    assert 'version = "9"' in dotted.read_text()
