"""Conventional Commits and semantic versions, as pure functions.

The release actions (:mod:`quarterdeck.core.actions.git_release`) read a repository and hand
plain data to this module, so every rule about which version comes next can be read and
tested without a repository. What a changelog says is :mod:`quarterdeck.core.actions.changelog`.

Rules (Conventional Commits 1.0, SemVer 2.0, and the choices those leave open):

- ``type(scope)!: description`` is a conventional header; ``BREAKING CHANGE:`` (or
  ``BREAKING-CHANGE:``) in the footers, or ``!`` before the colon, marks a breaking change.
  Types are case-insensitive; the ``BREAKING CHANGE`` token must be upper case.
- Breaking → major, ``feat`` → minor, ``fix``/``perf`` → patch, anything else → no release.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Literal

CHANNELS: tuple[str, ...] = ("dev", "alpha", "beta", "rc")
_CHANNEL_ALIASES = {
    "dev": "dev",
    "a": "alpha",
    "alpha": "alpha",
    "b": "beta",
    "beta": "beta",
    "c": "rc",
    "rc": "rc",
    "pre": "rc",
    "preview": "rc",
}
_PEP440_LABEL = {"dev": ".dev", "alpha": "a", "beta": "b", "rc": "rc"}

Scheme = Literal["semver", "pep440"]


class Level(IntEnum):
    """How much a change moves the version."""

    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3


class VersionError(ValueError):
    """A version string or a requested version move that makes no sense."""


# --------------------------------------------------------------------------- versions

_VERSION = re.compile(
    r"^[vV]?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:[-_.]?(?P<label>[A-Za-z]+)(?:[-_.]?(?P<num>\d+))?)?$"
)


@dataclass(frozen=True)
class Version:
    """``major.minor.patch`` with an optional prerelease ``(channel, number)``."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, int] | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        """Read SemVer (``1.2.0-rc.1``) or PEP 440 (``1.2.0rc1``, ``1.2.0.dev3``) spellings."""
        match = _VERSION.match(text.strip())
        if not match:
            raise VersionError(
                f"{text!r} is not a version this action can bump "
                "(expected MAJOR.MINOR.PATCH with an optional dev/alpha/beta/rc prerelease)"
            )
        pre: tuple[str, int] | None = None
        if match["label"]:
            channel = _CHANNEL_ALIASES.get(match["label"].lower())
            if channel is None:
                raise VersionError(
                    f"{text!r} has prerelease label {match['label']!r}; "
                    f"supported channels are {', '.join(CHANNELS)}"
                )
            pre = (channel, int(match["num"]) if match["num"] else 0)
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"] or 0), pre)

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None

    def sort_key(self) -> tuple[int, int, int, int, int, int]:
        """Total order: a prerelease sorts before its release, channels in CHANNELS order."""
        if self.pre is None:
            return (*self.core, 1, 0, 0)
        return (*self.core, 0, CHANNELS.index(self.pre[0]), self.pre[1])

    def final(self) -> Version:
        return replace(self, pre=None)

    def bump(self, level: Level) -> Version:
        """The next release at ``level`` (prerelease dropped)."""
        if level is Level.MAJOR:
            return Version(self.major + 1, 0, 0)
        if level is Level.MINOR:
            return Version(self.major, self.minor + 1, 0)
        if level is Level.PATCH:
            return Version(self.major, self.minor, self.patch + 1)
        return self.final()

    def format(self, scheme: Scheme = "semver") -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre is None:
            return text
        channel, number = self.pre
        if scheme == "pep440":
            return f"{text}{_PEP440_LABEL[channel]}{number}"
        return f"{text}-{channel}.{number}"

    def __str__(self) -> str:
        return self.format("semver")


def latest(versions: Iterable[Version], *, final_only: bool = False) -> Version | None:
    """The highest of ``versions`` (only releases when ``final_only``)."""
    pool = [v for v in versions if not (final_only and v.is_prerelease)]
    return max(pool, key=Version.sort_key) if pool else None


# --------------------------------------------------------------------------- commits

_HEADER = re.compile(
    r"^(?P<type>[A-Za-z][\w-]*)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?: (?P<desc>\S.*)$"
)
_FOOTER = re.compile(
    r"^(?P<token>BREAKING CHANGE|BREAKING-CHANGE|[A-Za-z][\w-]*)(?:: | #)(?P<value>.*)$"
)
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

    @property
    def level(self) -> Level:
        if self.is_merge:
            return Level.NONE
        if self.breaking:
            return Level.MAJOR
        if self.type == "feat":
            return Level.MINOR
        if self.type in ("fix", "perf"):
            return Level.PATCH
        if self.reverts is not None:
            return Level.PATCH
        return Level.NONE


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
            footers.append((match["token"], match["value"]))
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
    header = _HEADER.match(subject)
    if header is None:
        return ParsedCommit(
            sha=commit.sha,
            subject=subject,
            conventional=False,
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
    )


def effective_commits(commits: Sequence[RawCommit]) -> list[ParsedCommit]:
    """Parse ``commits`` (newest first), dropping merges and revert pairs inside the range."""
    parsed = [parse_commit(c) for c in commits if not c.is_merge]
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


def release_level(commits: Iterable[ParsedCommit]) -> Level:
    """The largest level among ``commits`` (NONE when nothing is releasable)."""
    return max((c.level for c in commits), default=Level.NONE)


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
