"""Conventional Commits parsing, version decisions and changelog text (pure functions)."""

from __future__ import annotations

import pytest

from quarterdeck.core.actions.changelog import (
    Forge,
    find_section,
    forge_for,
    group_commits,
    insert_section,
    render_section,
)
from quarterdeck.core.actions.conventional import (
    Level,
    RawCommit,
    Version,
    VersionError,
    effective_commits,
    next_version,
    parse_commit,
    release_level,
)


def raw(message: str, sha: str = "a" * 40, merge: bool = False) -> RawCommit:
    return RawCommit(sha, message, merge)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("message", "ctype", "scope", "breaking", "level"),
    [
        ("feat: add login", "feat", "", False, Level.MINOR),
        ("feat(api): add login", "feat", "api", False, Level.MINOR),
        ("fix(parser)!: reject tabs", "fix", "parser", True, Level.MAJOR),
        ("perf: faster start", "perf", "", False, Level.PATCH),
        ("FIX: case-insensitive type", "fix", "", False, Level.PATCH),
        ("docs: explain", "docs", "", False, Level.NONE),
        ("chore!: drop python 3.8", "chore", "", True, Level.MAJOR),
        ("refactor: x\n\nBREAKING CHANGE: the config moved", "refactor", "", True, Level.MAJOR),
        ("feat: x\n\nBREAKING-CHANGE: hyphen form", "feat", "", True, Level.MAJOR),
    ],
)
def test_headers_and_levels(
    message: str, ctype: str, scope: str, breaking: bool, level: Level
) -> None:
    commit = parse_commit(raw(message))
    assert commit.conventional
    assert (commit.type, commit.scope, commit.breaking, commit.level) == (
        ctype,
        scope,
        breaking,
        level,
    )


@pytest.mark.parametrize(
    "message",
    [
        "Update readme",
        "feat:missing space",
        "feat add login",
        "(scope): no type",
        "WIP",
    ],
)
def test_non_conventional_messages_are_kept_as_such(message: str) -> None:
    commit = parse_commit(raw(message))
    assert not commit.conventional
    assert commit.subject == message
    assert commit.level is Level.NONE


def test_footers_and_breaking_notes() -> None:
    commit = parse_commit(
        raw(
            "feat(cli): new flags\n\nLonger body.\n\nStill body.\n\n"
            "Reviewed-by: Z\nBREAKING CHANGE: `--old` is gone;\n  use `--new`\nRefs #123\n"
        )
    )
    assert commit.body == "Longer body.\n\nStill body."
    assert ("Reviewed-by", "Z") in commit.footers
    assert ("Refs", "123") in commit.footers
    assert commit.breaking_notes == ("`--old` is gone;\n  use `--new`",)


def test_lowercase_breaking_change_is_not_a_footer_token() -> None:
    # The spec reserves the upper-case token; "breaking change:" in prose is body text.
    commit = parse_commit(raw("fix: x\n\nbreaking change: not really"))
    assert not commit.breaking


def test_git_reverts_cancel_inside_the_range() -> None:
    feat = raw("feat: risky", "1" * 40)
    revert = raw(f'Revert "feat: risky"\n\nThis reverts commit {"1" * 40}.', "2" * 40)
    fix = raw("fix: small", "3" * 40)
    kept = effective_commits([revert, fix, feat])  # newest first, like git log
    assert [c.sha for c in kept] == ["3" * 40]
    assert release_level(kept) is Level.PATCH


def test_revert_of_a_revert_keeps_the_original() -> None:
    feat = raw("feat: again", "1" * 40)
    revert = raw(f'Revert "feat: again"\n\nThis reverts commit {"1" * 40}.', "2" * 40)
    revert2 = raw(f'Revert "Revert "feat: again""\n\nThis reverts commit {"2" * 40}.', "4" * 40)
    kept = effective_commits([revert2, revert, feat])
    assert [c.sha for c in kept] == ["1" * 40]
    assert release_level(kept) is Level.MINOR


def test_revert_of_a_released_commit_is_a_patch_and_merges_are_ignored() -> None:
    revert = raw('Revert "feat: old"\n\nThis reverts commit ' + "9" * 40 + ".", "2" * 40)
    conv_revert = raw("revert: feat: other\n\nRefs: " + "8" * 12, "5" * 40)
    merge = raw("Merge branch 'feature'", "3" * 40, merge=True)
    kept = effective_commits([merge, conv_revert, revert])
    assert [c.sha for c in kept] == ["5" * 40, "2" * 40]
    assert kept[0].reverts == "8" * 12
    assert release_level(kept) is Level.PATCH


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", Version(1, 2, 3)),
        ("v1.2.3", Version(1, 2, 3)),
        ("1.2", Version(1, 2, 0)),
        ("1.2.0-rc.1", Version(1, 2, 0, ("rc", 1))),
        ("1.2.0rc1", Version(1, 2, 0, ("rc", 1))),
        ("1.2.0b2", Version(1, 2, 0, ("beta", 2))),
        ("1.2.0-alpha.3", Version(1, 2, 0, ("alpha", 3))),
        ("1.2.0.dev4", Version(1, 2, 0, ("dev", 4))),
    ],
)
def test_version_spellings(text: str, expected: Version) -> None:
    assert Version.parse(text) == expected


@pytest.mark.parametrize("text", ["1", "1.2.3.4", "1.2.3-foo.1", "latest"])
def test_bad_versions_say_what_is_expected(text: str) -> None:
    with pytest.raises(VersionError, match=r"MAJOR\.MINOR\.PATCH|prerelease label"):
        Version.parse(text)


def test_formats_and_order() -> None:
    v = Version(1, 2, 0, ("rc", 2))
    assert v.format("semver") == "1.2.0-rc.2"
    assert v.format("pep440") == "1.2.0rc2"
    assert Version(1, 2, 0, ("dev", 1)).format("pep440") == "1.2.0.dev1"
    ordered = ["1.2.0.dev1", "1.2.0a1", "1.2.0b1", "1.2.0rc1", "1.2.0rc2", "1.2.0", "1.2.1"]
    keys = [Version.parse(t).sort_key() for t in ordered]
    assert keys == sorted(keys)


def plan(
    current: str,
    release: str | None,
    level: Level,
    since: Level | None = None,
    channel: str | None = None,
    explicit: bool = False,
) -> str | None:
    result = next_version(
        Version.parse(current),
        Version.parse(release) if release else None,
        level=level,
        level_since_current=level if since is None else since,
        channel=channel,
        explicit=explicit,
    )
    return None if result.new is None else str(result.new)


@pytest.mark.parametrize(
    ("current", "level", "expected"),
    [
        ("1.2.3", Level.PATCH, "1.2.4"),
        ("1.2.3", Level.MINOR, "1.3.0"),
        ("1.2.3", Level.MAJOR, "2.0.0"),
        ("1.2.3", Level.NONE, None),
        # major zero: a breaking change bumps the minor version (documented choice)
        ("0.4.2", Level.MAJOR, "0.5.0"),
        ("0.4.2", Level.MINOR, "0.5.0"),
        ("0.4.2", Level.PATCH, "0.4.3"),
    ],
)
def test_release_bumps(current: str, level: Level, expected: str | None) -> None:
    assert plan(current, current, level) == expected


def test_explicit_major_leaves_zero() -> None:
    assert plan("0.9.1", "0.9.1", Level.MAJOR, explicit=True) == "1.0.0"


def test_zero_major_breaking_major_option() -> None:
    result = next_version(
        Version(0, 4, 2),
        Version(0, 4, 2),
        level=Level.MAJOR,
        level_since_current=Level.MAJOR,
        zero_major_breaking="major",
    )
    assert str(result.new) == "1.0.0"


def test_prerelease_channels() -> None:
    # first rc of the next minor
    assert plan("1.2.0", "1.2.0", Level.MINOR, channel="rc") == "1.3.0-rc.1"
    # more fixes on the rc: rc.2 (the level since the release is still minor)
    assert plan("1.3.0-rc.1", "1.2.0", Level.MINOR, Level.PATCH, channel="rc") == "1.3.0-rc.2"
    # nothing releasable since rc.1: no new rc
    assert plan("1.3.0-rc.1", "1.2.0", Level.MINOR, Level.NONE, channel="rc") is None
    # a breaking change arrives: the rc line moves to the next major
    assert plan("1.3.0-rc.2", "1.2.0", Level.MAJOR, Level.MAJOR, channel="rc") == "2.0.0-rc.1"
    # moving up a channel restarts the number; going down is refused
    assert plan("1.3.0-beta.2", "1.2.0", Level.MINOR, Level.NONE, channel="rc") == "1.3.0-rc.1"
    with pytest.raises(VersionError, match=r"cannot go from 1\.3\.0-rc\.1 down"):
        plan("1.3.0-rc.1", "1.2.0", Level.MINOR, channel="beta")
    # the final release promotes the prerelease, even with no new commit
    assert plan("1.3.0-rc.2", "1.2.0", Level.MINOR, Level.NONE) == "1.3.0"
    # dev channel
    assert plan("2.0.0", "2.0.0", Level.PATCH, channel="dev") == "2.0.1-dev.1"


# --------------------------------------------------------------------------- changelog


def test_forge_detection() -> None:
    assert forge_for("git@github.com:acme/tool.git") == Forge(
        "github", "https://github.com/acme/tool"
    )
    assert forge_for("https://gitlab.com/g/sub/proj.git") == Forge(
        "gitlab", "https://gitlab.com/g/sub/proj"
    )
    assert forge_for("ssh://git@codeberg.org/a/b") == Forge("gitea", "https://codeberg.org/a/b")
    assert forge_for("/srv/git/origin.git") is None
    assert forge_for("https://git.internal.example/a/b.git") is None
    gl = Forge("gitlab", "https://gitlab.com/g/p")
    assert gl.commit_url("abc") == "https://gitlab.com/g/p/-/commit/abc"
    assert gl.compare_url("v1", "v2") == "https://gitlab.com/g/p/-/compare/v1...v2"


def test_sections_breaking_first_and_other_changes_kept() -> None:
    commits = effective_commits(
        [
            raw("Tidy up the build script", "6" * 40),
            raw("fix(security): escape names", "5" * 40),
            raw("chore: bump deps", "4" * 40),
            raw("feat(api)!: remove v1 endpoints", "3" * 40),
            raw("perf: cache lookups", "2" * 40),
            raw("feat: add export\n\nBREAKING CHANGE: export replaces dump", "1" * 40),
            raw("feat(ui): dark mode", "0" * 40),
        ]
    )
    entries = group_commits(commits, Forge("github", "https://github.com/a/b"))
    assert list(entries.sections) == [
        "Breaking changes",
        "Added",
        "Changed",
        "Security",
        "Other changes",
    ]
    assert entries.sections["Breaking changes"] == [
        "- **api:** remove v1 endpoints ([3333333](https://github.com/a/b/commit/"
        + "3" * 40
        + "))",
        "- add export: export replaces dump ([1111111](https://github.com/a/b/commit/"
        + "1" * 40
        + "))",
    ]
    assert entries.sections["Other changes"] == [
        "- Tidy up the build script ([6666666](https://github.com/a/b/commit/" + "6" * 40 + "))"
    ]
    text = render_section("1.0.0", "2024-05-01", group_commits(commits))
    assert text.startswith("## [1.0.0] - 2024-05-01\n\n### Breaking changes\n")
    assert "- **ui:** dark mode (0000000)" in text
    assert "bump deps" not in text  # chore is hidden by default


def test_insert_section_into_new_and_existing_changelogs() -> None:
    first, changed = insert_section(None, "1.0.0", "## [1.0.0] - 2024-01-01\n\n- a\n")
    assert changed
    assert first.startswith("# Changelog\n")
    assert first.rstrip().endswith("- a")
    human = first.replace("# Changelog\n", "# Changelog\n\n## [Unreleased]\n", 1)
    second, changed = insert_section(
        human,
        "1.1.0",
        "## [1.1.0] - 2024-02-01\n\n- b\n",
        "https://github.com/a/b/compare/v1.0.0...v1.1.0",
    )
    assert changed
    assert second.index("## [Unreleased]") < second.index("## [1.1.0]") < second.index("## [1.0.0]")
    assert second.rstrip().endswith("[1.1.0]: https://github.com/a/b/compare/v1.0.0...v1.1.0")
    assert find_section(second, "1.1.0") == "## [1.1.0] - 2024-02-01\n\n- b\n"
    again, changed = insert_section(second, "1.1.0", "## [1.1.0] - 2099-01-01\n\n- other\n")
    assert not changed
    assert again == second
