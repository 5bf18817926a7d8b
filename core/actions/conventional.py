"""Conventional Commits and semantic versions, as pure functions.

The release actions (:mod:`quarterdeck.core.actions.git_release`) read a repository and hand
plain data to this module, so every rule about which version comes next can be read and
tested without a repository. What a changelog says is :mod:`quarterdeck.core.actions.changelog`.

Rules (Conventional Commits 1.0, SemVer 2.0, and the choices those leave open):

- ``type(scope)!: description`` is a conventional header (a scope may hold one level of
  parentheses: ``feat(api(v2)):``); ``BREAKING CHANGE:`` (or ``BREAKING-CHANGE:``) in the
  footers — its text on the same or the following lines — or ``!`` before the colon, marks
  a breaking change. Footers are ``token: value`` or ``token #value``. Types are
  case-insensitive; the ``BREAKING CHANGE`` token must be upper case.
- Levels come from a preset (:data:`PRESETS`): ``conventional`` (python-semantic-release's
  table: breaking → major, ``feat`` → minor, ``fix``/``perf`` → patch) or ``commitizen``
  (``refactor`` → patch too), with per-type overrides; anything else → no release.
- Release commits of other tools (``bump: version 1.0.0 → 1.1.0``, ``Bump version: …``,
  ``chore(release): …``, a bare version) are not changes and are dropped. Optionally a
  squash-merge body's conventional lines count as the commits it squashed.
- **Major zero**: while the major version is 0, a breaking change bumps the *minor*
  version (SemVer §4: anything may change in 0.y.z; leaving 0 is a deliberate decision,
  made with an explicit ``part: major``). ``zero_major_breaking="major"`` turns this off.
- Merge commits carry no meaning of their own (the commits they bring in are in the
  range and are counted); they are ignored.
- A revert whose target is in the same range cancels it: neither counts nor appears in
  the changelog. A revert of an already-released commit is a patch-level change.
- Prerelease channels, lowest first: ``dev`` < ``alpha`` < ``beta`` < ``rc`` (PEP 440
  order; note SemVer's ASCII ordering would put ``dev`` after ``beta``). Another
  prerelease on the same channel increments its number (1.2.0-rc.1 → 1.2.0-rc.2);
  a higher channel restarts at 1; going down a channel is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from quarterdeck.core.actions.versions import (
    CHANNELS,
    Level,
    Scheme,
    Version,
    VersionError,
    latest,
    parse_tag,
)

__all__ = [
    "CHANNELS",
    "BumpRules",
    "Level",
    "ParsedCommit",
    "Plan",
    "RawCommit",
    "Scheme",
    "Version",
    "VersionError",
    "bump_rules",
    "effective_commits",
    "latest",
    "level_of",
    "next_version",
    "parse_commit",
    "parse_tag",
    "release_level",
    "split_squash",
]


# --------------------------------------------------------------------------- commits

_HEADER = re.compile(
    r"^(?P<type>[A-Za-z][\w-]*)"
    r"(?:\((?P<scope>(?:[^()\r\n]|\([^()\r\n]*\))*)\))?"  # one level of nested parentheses
    r"(?P<bang>!)?: (?P<desc>\S.*)$"
)
# A footer is `token: value` or `token #value`; a breaking-change token may also end its
# line (`BREAKING CHANGE:`) with the text on the following lines, as both referees read it.
_FOOTER = re.compile(
    r"^(?:(?P<token>BREAKING CHANGE|BREAKING-CHANGE|[A-Za-z][\w-]*)(?:: | #)"
    r"|(?P<btoken>BREAKING CHANGE|BREAKING-CHANGE):[ \t]*$)(?P<value>.*)$"
)
# Release commits other tools (and Quarterdeck) make: they carry no change of their own.
_RELEASE_COMMIT = re.compile(
    r"^(?:bump: version \S+ (?:→|->) \S+"  # commitizen
    r"|Bump version: \S+ (?:→|->) \S+"  # bump2version / bump-my-version
    r"|chore\(release\):.*"  # semantic-release, Quarterdeck, release-please
    r"|v?\d+\.\d+\.\d+\S*\s*$)"  # python-semantic-release: the version alone
)
_SQUASHED = re.compile(r"^(?:[*-]\s+)?(?P<header>[A-Za-z][\w-]*(?:\(.*\))?!?: \S.*)$")
_GIT_REVERT = re.compile(r'^Revert "(?P<subject>.*)"$')
_REVERTS_SHA = re.compile(r"This reverts commit (?P<sha>[0-9a-f]{7,40})")
_REFS_SHA = re.compile(r"\b(?P<sha>[0-9a-f]{7,40})\b")


@dataclass(frozen=True)
class RawCommit:
    """What the parser needs from git: the full sha, the message, whether it merges."""

    sha: str
    message: str
    is_merge: bool = False


@dataclass(frozen=True)
class ParsedCommit:
    """A commit message read as a Conventional Commit (or marked as not one)."""

    sha: str
    subject: str
    conventional: bool
    type: str = ""
    scope: str = ""
    description: str = ""
    body: str = ""
    breaking: bool = False
    breaking_notes: tuple[str, ...] = ()
    footers: tuple[tuple[str, str], ...] = ()
    reverts: str | None = None  # sha (or prefix) this commit reverts
    is_merge: bool = False
    is_release: bool = False  # another tool's (or our own) version-bump commit

    @property
    def level(self) -> Level:
        """The level under the ``conventional`` preset (see :func:`level_of`)."""
        return level_of(self, PRESETS["conventional"])


def _split_footers(lines: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Body lines and footers: footers start at a paragraph whose first line is a token."""
    start = None
    for i, line in enumerate(lines):
        if _FOOTER.match(line) and (i == 0 or not lines[i - 1].strip()):
            start = i
            break
    if start is None:
        return lines, []
    footers: list[tuple[str, str]] = []
    for line in lines[start:]:
        match = _FOOTER.match(line)
        if match:
            footers.append((match["token"] or match["btoken"], match["value"]))
        elif footers:
            token, value = footers[-1]
            footers[-1] = (token, f"{value}\n{line}" if line.strip() else value)
    return lines[:start], footers


def parse_commit(commit: RawCommit) -> ParsedCommit:
    """Read one commit message. Never fails: anything unparseable is non-conventional."""
    text = commit.message.replace("\r\n", "\n").strip("\n")
    subject, _, rest = text.partition("\n")
    subject = subject.strip()
    lines = rest.strip("\n").split("\n") if rest.strip() else []
    body_lines, footers = _split_footers(lines)
    body = "\n".join(body_lines).strip()
    reverts: str | None = None
    git_revert = _GIT_REVERT.match(subject)
    found = _REVERTS_SHA.search(rest)
    if git_revert and found:
        reverts = found["sha"]
    is_release = bool(_RELEASE_COMMIT.match(subject))
    header = _HEADER.match(subject)
    if header is None:
        return ParsedCommit(
            sha=commit.sha,
            subject=subject,
            conventional=False,
            is_release=is_release,
            body=body,
            footers=tuple(footers),
            reverts=reverts,
            is_merge=commit.is_merge,
        )
    ctype = header["type"].lower()
    notes = tuple(v.strip() for t, v in footers if t in ("BREAKING CHANGE", "BREAKING-CHANGE"))
    if ctype == "revert" and reverts is None:
        for token, value in footers:
            if token.lower() == "refs":
                ref = _REFS_SHA.search(value)
                if ref:
                    reverts = ref["sha"]
                    break
        if reverts is None and found:
            reverts = found["sha"]
    return ParsedCommit(
        sha=commit.sha,
        subject=subject,
        conventional=True,
        type=ctype,
        scope=(header["scope"] or "").strip(),
        description=header["desc"].strip(),
        body=body,
        breaking=bool(header["bang"]) or bool(notes),
        breaking_notes=notes,
        footers=tuple(footers),
        reverts=reverts,
        is_merge=commit.is_merge,
        is_release=is_release,
    )


def split_squash(commit: RawCommit) -> list[RawCommit]:
    """A squash-merge commit as the commits it squashed (GitHub/GitLab list their headers
    in the body, often as ``* feat: ...``); any other commit as itself.

    The subject stays one commit (when it is conventional); each conventional header line
    in the body starts another, whose following lines (its own body and footers) go with it.
    """
    text = commit.message.replace("\r\n", "\n").strip("\n")
    subject, _, rest = text.partition("\n")
    parts: list[list[str]] = []
    head_body: list[str] = []
    for line in rest.split("\n"):
        found = _SQUASHED.match(line)
        if found and _HEADER.match(found["header"]):
            parts.append([found["header"]])
        elif parts:
            parts[-1].append(line[2:] if line.startswith("  ") else line)
        else:
            head_body.append(line)
    if not parts:
        return [commit]
    out = [RawCommit(commit.sha, "\n".join([subject, *head_body]), commit.is_merge)]
    out += [RawCommit(commit.sha, "\n".join(p).strip("\n"), False) for p in parts]
    return out


def effective_commits(
    commits: Sequence[RawCommit], *, squash_bodies: bool = False
) -> list[ParsedCommit]:
    """Parse ``commits`` (newest first), dropping merges, release commits and revert pairs
    inside the range; with ``squash_bodies``, a squash commit counts as what it squashed."""
    parsed: list[ParsedCommit] = []
    for raw in commits:
        if raw.is_merge:
            continue
        parts = split_squash(raw) if squash_bodies else [raw]
        for index, part in enumerate(parts):
            commit = parse_commit(part)
            if commit.is_release:
                continue
            if index == 0 and len(parts) > 1 and not commit.conventional:
                continue  # a squash commit's subject that is only the pull request's title
            parsed.append(commit)
    cancelled: set[str] = set()
    for commit in parsed:  # newest first: a revert of a revert cancels the inner revert
        if commit.sha in cancelled or commit.reverts is None:
            continue
        target = next(
            (
                c
                for c in parsed
                if c.sha != commit.sha
                and c.sha not in cancelled
                and c.sha.startswith(commit.reverts)
            ),
            None,
        )
        if target is not None:
            cancelled.update((commit.sha, target.sha))
    return [c for c in parsed if c.sha not in cancelled]


# --------------------------------------------------------------------------- bump rules


@dataclass(frozen=True)
class BumpRules:
    """Which commit types move the version how far, and what a breaking change does on 0.x.

    ``conventional`` is python-semantic-release's default table (feat minor, fix/perf
    patch); ``commitizen`` is cz_conventional_commits' (refactor and perf patch too, and a
    breaking change on 0.x goes to 1.0.0 since ``major_version_zero`` is off by default).
    """

    name: str
    types: Mapping[str, Level]
    zero_major_breaking: Literal["minor", "major"]
    git_revert: Level  # a `Revert "..."` commit whose target was already released


PRESETS: dict[str, BumpRules] = {
    "conventional": BumpRules(
        "conventional",
        {"feat": Level.MINOR, "fix": Level.PATCH, "perf": Level.PATCH, "revert": Level.PATCH},
        "minor",
        Level.PATCH,
    ),
    "commitizen": BumpRules(
        "commitizen",
        {"feat": Level.MINOR, "fix": Level.PATCH, "refactor": Level.PATCH, "perf": Level.PATCH},
        "major",
        Level.NONE,
    ),
}


def bump_rules(
    preset: str = "conventional",
    overrides: Mapping[str, str] | None = None,
    zero_major_breaking: Literal["minor", "major"] | None = None,
) -> BumpRules:
    """A preset with per-type overrides (``{"docs": "patch", "perf": "none"}``)."""
    if preset not in PRESETS:
        raise VersionError(f"unknown bump preset {preset!r}; use one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    types = dict(base.types)
    for ctype, level in (overrides or {}).items():
        name = str(level).strip().upper()
        if name not in Level.__members__:
            raise VersionError(
                f"bump rule {ctype}: {level!r} is not one of major, minor, patch, none"
            )
        types[ctype.strip().lower()] = Level[name]
    return BumpRules(
        base.name if not overrides else f"{base.name}+overrides",
        types,
        zero_major_breaking or base.zero_major_breaking,
        base.git_revert,
    )


def level_of(commit: ParsedCommit, rules: BumpRules) -> Level:
    """How far ``commit`` moves the version under ``rules``."""
    if commit.is_merge or commit.is_release:
        return Level.NONE
    if commit.breaking:
        return Level.MAJOR
    if commit.conventional:
        return rules.types.get(commit.type, Level.NONE)
    if commit.reverts is not None:
        return rules.git_revert
    return Level.NONE


def release_level(commits: Iterable[ParsedCommit], rules: BumpRules | None = None) -> Level:
    """The largest level among ``commits`` (NONE when nothing is releasable)."""
    chosen = rules or PRESETS["conventional"]
    return max((level_of(c, chosen) for c in commits), default=Level.NONE)


# --------------------------------------------------------------------------- next version


@dataclass(frozen=True)
class Plan:
    """The outcome of a version decision: ``new`` is None when there is nothing to release."""

    old: Version
    new: Version | None
    level: Level
    reason: str


def next_version(
    current: Version,
    last_release: Version | None,
    *,
    level: Level,
    level_since_current: Level,
    channel: str | None = None,
    explicit: bool = False,
    zero_major_breaking: Literal["minor", "major"] = "minor",
) -> Plan:
    """Decide the next version.

    ``current`` is the latest version (a tag, or the file's version when there is no tag),
    ``last_release`` the latest final release. ``level`` is the change since
    ``last_release`` (or the whole history), ``level_since_current`` the change since
    ``current``. ``explicit`` means ``level`` was asked for (``part: minor``), not inferred.
    """
    if channel is not None and channel not in CHANNELS:
        raise VersionError(
            f"unknown prerelease channel {channel!r}; use one of {', '.join(CHANNELS)}"
        )
    base = last_release or (current if not current.is_prerelease else None)
    effective = level
    if (
        not explicit
        and effective is Level.MAJOR
        and zero_major_breaking == "minor"
        and (base or current).major == 0
    ):
        effective = Level.MINOR
    # With no release yet and a prerelease as the latest version, the prerelease line
    # simply continues (target None means "the current prerelease's own version").
    target_core = base.bump(effective) if (base is not None and effective) else None
    if current.pre is not None:
        cur_channel, cur_num = current.pre
        same_or_lower = target_core is None or target_core.sort_key() <= current.final().sort_key()
        if channel is None:  # promote the prerelease (or jump past it)
            new = current.final() if same_or_lower else target_core
            return Plan(current, new, effective, f"release of {current}")
        if same_or_lower:
            rank, cur_rank = CHANNELS.index(channel), CHANNELS.index(cur_channel)
            if rank < cur_rank:
                raise VersionError(
                    f"cannot go from {current} down to the {channel!r} channel; "
                    f"use {cur_channel!r} or a later channel"
                )
            if rank == cur_rank:
                if not explicit and level_since_current is Level.NONE:
                    return Plan(current, None, Level.NONE, f"no releasable commit since {current}")
                return Plan(
                    current,
                    replace(current, pre=(channel, cur_num + 1)),
                    effective,
                    f"next {channel} of {current.final()}",
                )
            return Plan(
                current,
                replace(current, pre=(channel, 1)),
                effective,
                f"first {channel} of {current.final()}",
            )
        assert target_core is not None
        return Plan(
            current,
            replace(target_core, pre=(channel, 1)),
            effective,
            f"{effective.name.lower()} change since {base}",
        )
    if target_core is None or effective is Level.NONE:
        return Plan(current, None, Level.NONE, f"no releasable commit since {current}")
    new = target_core if channel is None else replace(target_core, pre=(channel, 1))
    return Plan(current, new, effective, f"{effective.name.lower()} change since {current}")
