"""Versions: SemVer and PEP 440 spellings, their order, and how they bump.

:mod:`quarterdeck.core.actions.conventional` decides *which* level a release is; this module
knows what a version is. Parsing goes through :mod:`packaging.version` for PEP 440 (epochs,
post and local labels parse and sort) with a thin SemVer layer (``1.2.0-rc.1``); only
``dev``/``alpha``/``beta``/``rc`` prereleases can be bumped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Literal

from packaging.version import InvalidVersion
from packaging.version import Version as PackagingVersion

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
    """``major.minor.patch`` with an optional prerelease ``(channel, number)``.

    PEP 440 extras a release may carry (an epoch ``1!``, a post release ``.post1``, a
    local label ``+build.5``) are kept so they sort and print as written; bumping drops
    them (the next release is a plain ``major.minor.patch``).
    """

    major: int
    minor: int
    patch: int
    pre: tuple[str, int] | None = None
    epoch: int = 0
    post: int | None = None
    local: str | None = None
    components: int = field(default=3, compare=False)  # how many release numbers were written

    @classmethod
    def parse(cls, text: str) -> Version:
        """Read SemVer (``1.2.0-rc.1``) or any PEP 440 spelling (``1!2.0.0``, ``1.2.3.post1``)."""
        raw = text.strip()
        match = _VERSION.match(raw)
        if match:
            pre: tuple[str, int] | None = None
            if match["label"]:
                channel = _CHANNEL_ALIASES.get(match["label"].lower())
                if channel is None:
                    return cls._parse_pep440(raw)
                pre = (channel, int(match["num"]) if match["num"] else 0)
            return cls(
                int(match["major"]),
                int(match["minor"]),
                int(match["patch"] or 0),
                pre,
                components=3 if match["patch"] is not None else 2,
            )
        return cls._parse_pep440(raw)

    @classmethod
    def _parse_pep440(cls, raw: str) -> Version:
        try:
            parsed = PackagingVersion(raw)
        except InvalidVersion:
            raise VersionError(
                f"{raw!r} is not a version this action can bump (expected MAJOR.MINOR.PATCH, "
                "SemVer or PEP 440, with an optional dev/alpha/beta/rc prerelease)"
            ) from None
        release = parsed.release
        if not 2 <= len(release) <= 3:
            raise VersionError(
                f"{raw!r} has {len(release)} release number(s); expected MAJOR.MINOR.PATCH"
            )
        if parsed.pre is not None and parsed.dev is not None:
            raise VersionError(f"{raw!r} is a dev release of a prerelease; not supported")
        pre: tuple[str, int] | None = None
        if parsed.pre is not None:
            pre = (_CHANNEL_ALIASES[parsed.pre[0]], parsed.pre[1])
        elif parsed.dev is not None:
            pre = ("dev", parsed.dev)
        padded = (*release, 0, 0)[:3]
        return cls(
            padded[0],
            padded[1],
            padded[2],
            pre,
            epoch=parsed.epoch,
            post=parsed.post,
            local=parsed.local,
            components=len(release),
        )

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None

    def sort_key(self) -> tuple[int, ...]:
        """Total order (PEP 440's): epoch first, a prerelease before its release, a post
        release after it; channels in CHANNELS order."""
        post = -1 if self.post is None else self.post
        local = 0 if self.local is None else 1
        if self.pre is None:
            return (self.epoch, *self.core, 1, 0, 0, post, local)
        return (self.epoch, *self.core, 0, CHANNELS.index(self.pre[0]), self.pre[1], post, local)

    def final(self) -> Version:
        return replace(self, pre=None, post=None, local=None)

    def bump(self, level: Level) -> Version:
        """The next release at ``level`` (prerelease, post and local labels dropped)."""
        if level is Level.MAJOR:
            return Version(self.major + 1, 0, 0, epoch=self.epoch)
        if level is Level.MINOR:
            return Version(self.major, self.minor + 1, 0, epoch=self.epoch)
        if level is Level.PATCH:
            return Version(self.major, self.minor, self.patch + 1, epoch=self.epoch)
        return self.final()

    def format(self, scheme: Scheme = "semver") -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.epoch:
            text = f"{self.epoch}!{text}"
        if self.pre is not None:
            channel, number = self.pre
            if scheme == "pep440":
                text = f"{text}{_PEP440_LABEL[channel]}{number}"
            else:
                text = f"{text}-{channel}.{number}"
        if self.post is not None:
            text = f"{text}.post{self.post}"
        if self.local is not None:
            text = f"{text}+{self.local}"
        return text

    def __str__(self) -> str:
        return self.format("semver")


def parse_tag(name: str, prefix: str) -> Version | None:
    """The version a release tag names, or None for anything else.

    Floating tags (``v1``, ``v10.6``, moved along with each release) and other tags
    under the prefix are not releases: only a full ``MAJOR.MINOR.PATCH`` counts.
    """
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    if prefix == "" and rest[:1] in ("v", "V"):
        return None  # `v1.2.3` is a `v`-prefixed tag, not an unprefixed one
    try:
        version = Version.parse(rest)
    except VersionError:
        return None
    return version if version.components == 3 else None


def latest(versions: Iterable[Version], *, final_only: bool = False) -> Version | None:
    """The highest of ``versions`` (only releases when ``final_only``)."""
    pool = [v for v in versions if not (final_only and v.is_prerelease)]
    return max(pool, key=Version.sort_key) if pool else None
