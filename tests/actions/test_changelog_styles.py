"""Changelogs that fit the project's file: each heading style, newest first, never twice,
already-tagged sections dated with their tag; and the pure parsing rules behind them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quarterdeck.core.actions.changelog import detect_style, find_section, insert_section
from quarterdeck.core.actions.conventional import (
    Level,
    RawCommit,
    Version,
    bump_rules,
    effective_commits,
    level_of,
    parse_commit,
    release_level,
)
from tests.actions.conftest import Repo, run_action

STYLES = {
    "keepachangelog": (
        "# Changelog\n\n## [Unreleased]\n\n## [1.1.0] - 2026-01-02\n\n### Fixed\n\n- b\n\n"
        "## [1.0.0] - 2026-01-01\n\n### Added\n\n- a\n",
        "## [1.2.0] - 2026-03-04",
    ),
    "parens": (
        "# CHANGELOG\n\n## v1.1.0 (2026-01-02)\n\n### Fix\n\n- b\n\n"
        "## v1.0.0 (2026-01-01)\n\n### Feat\n\n- a\n",
        "## v1.2.0 (2026-03-04)",
    ),
    "bare": (
        "# History\n\n## 1.1.0\n\n- b\n\n## 1.0.0\n\n- a\n",
        "## 1.2.0",
    ),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_changelog_heading_styles_newest_first_never_twice(
    repo: Repo, tmp_path: Path, style: str
) -> None:
    text, heading = STYLES[style]
    (repo.path / "CHANGELOG.md").write_text(text)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "docs: changelog")
    repo.tag("v1.1.0")
    repo.commit("feat: the new thing")
    params = {"repo": str(repo.path), "version": "1.2.0", "date": "2026-03-04"}
    out, _ = run_action("git.changelog", {**params, "link_commits": False}, tmp_path)
    written = (repo.path / "CHANGELOG.md").read_text()
    assert out["changed"] is True
    lines = written.splitlines()
    assert heading in lines
    position = lines.index(heading)
    older = next(i for i, line in enumerate(lines) if "1.1.0" in line)
    assert position < older, "newest first"
    assert written.count("1.2.0") == 1
    # An existing section for the same version (in the file's own style) is not duplicated.
    again, _ = run_action("git.changelog", params, tmp_path)
    assert again["changed"] is False
    assert (repo.path / "CHANGELOG.md").read_text() == written
    assert detect_style(written).kind == style


def test_existing_section_in_parens_style_is_found() -> None:
    text = STYLES["parens"][0]
    assert find_section(text, "1.0.0") == "## v1.0.0 (2026-01-01)\n\n### Feat\n\n- a\n"
    new, changed = insert_section(text, "1.1.0", "## v1.1.0 (2026-09-09)\n")
    assert (new, changed) == (text, False)


def test_already_tagged_section_gets_the_tags_date(repo: Repo, tmp_path: Path) -> None:
    repo.commit("fix: old fix")
    env = {**os.environ, "GIT_COMMITTER_DATE": "2024-05-06T10:00:00Z"}
    import subprocess

    subprocess.run(
        ["git", "tag", "-a", "v0.1.1", "-m", "Release"], cwd=repo.path, env=env, check=True
    )
    repo.commit("feat: later")
    out, _ = run_action(
        "git.changelog", {"repo": str(repo.path), "version": "0.1.1", "write": False}, tmp_path
    )
    assert str(out["section"]).startswith("## [0.1.1] - 2024-05-06")


# --------------------------------------------------------------------------- parsing rules


def raw(message: str, sha: str = "b" * 40) -> RawCommit:
    return RawCommit(sha, message)


@pytest.mark.parametrize(
    "message",
    [
        "refactor: x\n\nBREAKING CHANGE:\nthe config moved",
        "feat: x\n\nbody\n\nReviewed-by: Z\nBREAKING-CHANGE:\n  spans\n  lines",
    ],
)
def test_breaking_footer_value_on_following_lines(message: str) -> None:
    commit = parse_commit(raw(message))
    assert commit.breaking and commit.level is Level.MAJOR
    assert commit.breaking_notes and commit.breaking_notes[0]


def test_hash_footer_and_nested_scope() -> None:
    commit = parse_commit(raw("fix(api(v2)): typo\n\nFixes #12"))
    assert (commit.type, commit.scope, commit.description) == ("fix", "api(v2)", "typo")
    assert commit.footers == (("Fixes", "12"),)


@pytest.mark.parametrize(
    "subject",
    [
        "bump: version 1.0.0 → 1.1.0",
        "Bump version: 2.3.0 → 2.4.0",
        "chore(release): 1.2.0 [skip ci]",
        "1.4.0",
    ],
)
def test_release_commits_of_other_tools_are_excluded(subject: str) -> None:
    commits = effective_commits([raw(subject, "c" * 40), raw("fix: kept")])
    assert [c.subject for c in commits] == ["fix: kept"]


def test_squash_body_gives_each_squashed_commit() -> None:
    message = "Big PR (#7)\n\n* feat(ui): panel\n\n* fix: crash\n  details\n\nBREAKING CHANGE: x"
    plain = effective_commits([raw(message)])
    assert release_level(plain) is Level.NONE
    split = effective_commits([raw(message)], squash_bodies=True)
    assert [c.subject for c in split] == ["feat(ui): panel", "fix: crash"]
    assert split[1].breaking, "the footer belongs to the last squashed commit"


def test_presets_and_overrides() -> None:
    refactor = parse_commit(raw("refactor: tidy"))
    revert = parse_commit(raw('Revert "feat: x"\n\nThis reverts commit ' + "d" * 40 + "."))
    cz = bump_rules("commitizen")
    assert level_of(refactor, bump_rules()) is Level.NONE
    assert level_of(refactor, cz) is Level.PATCH
    assert level_of(revert, bump_rules()) is Level.PATCH
    assert level_of(revert, cz) is Level.NONE
    assert cz.zero_major_breaking == "major"
    custom = bump_rules("conventional", {"docs": "patch", "perf": "none"})
    assert level_of(parse_commit(raw("docs: x")), custom) is Level.PATCH
    assert level_of(parse_commit(raw("perf: x")), custom) is Level.NONE


@pytest.mark.parametrize(
    ("text", "bumped"),
    [("1.2.3.post1", "1.2.4"), ("1!2.0.0", "1!2.0.1"), ("1.0.0+build.5", "1.0.1")],
)
def test_pep440_versions_parse_and_bump(text: str, bumped: str) -> None:
    version = Version.parse(text)
    assert version.format("pep440") == text
    assert version.bump(Level.PATCH).format("pep440") == bumped
    assert version.sort_key() > Version.parse("1.0.0").sort_key()
