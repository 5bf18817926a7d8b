"""The version decision of a release: which tags count, what the current version is, and
whether the proposed version may ship.

Reading tags only reachable from HEAD lets a rewritten branch (releases tagged on the old
commits) or a version file bumped by hand propose a version that already exists or is a
downgrade. So the decision looks at three things: the release tags *reachable* from HEAD
(they bound the commits counted), *every* release tag in the repository and the version
file (they bound what the next version may be). A proposal that is not above all of them,
or whose tag exists anywhere, is refused before anything is written.

Only full ``MAJOR.MINOR.PATCH`` tags are releases: floating tags (``v1``, ``v10.6``) that
move with each release are neither bases nor changelog boundaries. A repository without a
release tag makes its first release only when asked (``first_release: true``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quarterdeck.core.actions.conventional import (
    BumpRules,
    Level,
    ParsedCommit,
    RawCommit,
    Version,
    VersionError,
    effective_commits,
    latest,
    level_of,
    next_version,
    parse_tag,
    release_level,
)
from quarterdeck.core.errors import NonRetryableError, RefusedError
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import git
else:
    git = lazy_module("git")

_VERSIONISH = re.compile(r"^(?P<prefix>.*?)(?P<version>\d+\.\d+\.\d+\S*)$")


class ReleaseSettings(BaseModel):
    """The ``release:`` section of a project's ``.quarterdeck/config.yaml`` (a step's own
    inputs win over it)."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["conventional", "commitizen"] | None = None
    bump_rules: dict[str, Literal["major", "minor", "patch", "none"]] = Field(default_factory=dict)
    squash_bodies: bool | None = None
    tag_prefix: str | None = None


def release_settings(root: Path, fallback: Any) -> ReleaseSettings:
    """The repository's ``release:`` config, else the run's (``ctx.settings.release``)."""
    path = root / ".quarterdeck" / "config.yaml"
    source = str(path)
    data: Any = getattr(fallback, "release", None) or {}
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise NonRetryableError(f"{source}: cannot read: {exc}") from None
        data = loaded.get("release", {}) if isinstance(loaded, dict) else {}
    else:
        source = "config release:"
    try:
        return ReleaseSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"release.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise NonRetryableError(f"{source}: {problems}") from None


@dataclass(frozen=True)
class ReleaseTags:
    """Release tags under one prefix: all of them, and those reachable from HEAD."""

    prefix: str
    all: dict[str, Version]
    reachable: dict[str, Version]

    def name_of(self, version: Version | None, *, reachable_only: bool = False) -> str | None:
        pool = self.reachable if reachable_only else self.all
        if version is None:
            return None
        return next((name for name, v in pool.items() if v == version), None)


def release_tags(repo: git.Repo, prefix: str, ref: str = "HEAD") -> ReleaseTags:
    """Every full-version tag under ``prefix``, and which of them ``ref`` contains."""
    names = [n.strip() for n in repo.git.tag("--list", f"{prefix}*").splitlines() if n.strip()]
    merged = {n.strip() for n in repo.git.tag("--merged", ref, "--list", f"{prefix}*").split("\n")}
    found: dict[str, Version] = {}
    for name in names:
        version = parse_tag(name, prefix)
        if version is not None:
            found[name] = version
    return ReleaseTags(prefix, found, {n: v for n, v in found.items() if n in merged})


def other_schemes(repo: git.Repo, prefix: str) -> tuple[list[str], str | None]:
    """Version-like tags that do not match ``prefix`` (newest first) and the prefix they
    share, if they all share one: what to suggest when nothing matches."""
    seen: list[tuple[Version, str, str]] = []
    for name in repo.git.tag("--list").splitlines():
        match = _VERSIONISH.match(name.strip())
        if not match or (prefix and name.startswith(prefix)):
            continue
        version = parse_tag(name.strip(), match["prefix"])
        if version is not None:
            seen.append((version, name.strip(), match["prefix"]))
    seen.sort(key=lambda item: item[0].sort_key(), reverse=True)
    prefixes = {p for _, _, p in seen}
    return [n for _, n, _ in seen], (prefixes.pop() if len(prefixes) == 1 else None)


def commits_between(repo: git.Repo, since: str | None, until: str = "HEAD") -> list[RawCommit]:
    """Commits in ``since..until`` (all of ``until``'s history when ``since`` is None)."""
    rev = f"{since}..{until}" if since else until
    return [RawCommit(c.hexsha, str(c.message), len(c.parents) > 1) for c in repo.iter_commits(rev)]


@dataclass
class Decision:
    """A version decision and the facts behind it (shown in outputs and approval evidence)."""

    current: Version  # the latest version the commits are counted from
    new: Version | None
    level: Level
    reason: str
    base_tag: str  # the reachable tag the commits are counted from ('' on a first release)
    highest_tag: str  # the highest release tag anywhere in the repository
    file_version: str
    shipped: list[str] = field(default_factory=list)  # "[minor] abc1234 feat: ..."
    commits: int = 0

    def explain(self, tag_prefix: str) -> str:
        base = self.base_tag or "the first commit (first release)"
        highest = self.highest_tag or "none"
        return (
            f"counted {self.commits} commit(s) since {base}; version file {self.file_version}; "
            f"highest tag {highest}; {self.reason}"
        )


def _describe(commit: ParsedCommit, rules: BumpRules) -> str:
    level = level_of(commit, rules)
    marker = level.name.lower() if level else "-"
    return f"[{marker}] {commit.sha[:7]} {commit.subject}"


def _no_tags(repo: git.Repo, prefix: str) -> RefusedError:
    found, shared = other_schemes(repo, prefix)
    if found:
        listed = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        hint = f"pass tag_prefix: {shared!r}" if shared is not None else "pass tag_prefix"
        return RefusedError(f"no tag matches '{prefix}*'; found {listed} — {hint}")
    return RefusedError(
        f"no release tag ('{prefix}MAJOR.MINOR.PATCH') in the repository: a first release "
        "must be asked for — pass first_release: true to release from the version file"
    )


def decide(
    repo: git.Repo,
    *,
    prefix: str,
    file_version: Version,
    part: Literal["auto", "major", "minor", "patch"],
    channel: str | None,
    rules: BumpRules,
    squash_bodies: bool = False,
    first_release: bool = False,
    explicit_version: str | None = None,
    maintenance: bool = False,
) -> Decision:
    """Decide the next version, or raise :class:`RefusedError` (nothing has been written)."""
    tags = release_tags(repo, prefix)
    if not tags.all and not first_release:
        raise _no_tags(repo, prefix)
    if tags.all and first_release:
        highest = tags.name_of(latest(tags.all.values()))
        raise RefusedError(
            f"first_release: true, but the repository already has release tag {highest}; "
            "drop first_release to release after it"
        )
    if tags.all and not tags.reachable:
        highest = tags.name_of(latest(tags.all.values()))
        raise RefusedError(
            f"none of the {len(tags.all)} release tag(s) under '{prefix}' (highest {highest}) "
            "is an ancestor of HEAD, so there is no base to count commits from — tag the "
            "base commit, or pass version: explicitly"
        )
    reachable = tags.reachable.values()
    current = latest(reachable) or file_version
    last_release = latest(reachable, final_only=True)
    if first_release and not file_version.is_prerelease:
        last_release = file_version
    current_tag = tags.name_of(latest(reachable), reachable_only=True)
    release_tag = tags.name_of(last_release, reachable_only=True) if tags.reachable else None
    since_release = effective_commits(
        commits_between(repo, release_tag), squash_bodies=squash_bodies
    )
    since_current = effective_commits(
        commits_between(repo, current_tag), squash_bodies=squash_bodies
    )
    explicit = part != "auto"
    level = Level[part.upper()] if explicit else release_level(since_release, rules)
    highest_version = latest(tags.all.values())
    decision = Decision(
        current=current,
        new=None,
        level=Level.NONE,
        reason="",
        base_tag=current_tag or "",
        highest_tag=tags.name_of(highest_version) or "",
        file_version=str(file_version),
        shipped=[_describe(c, rules) for c in since_current],
        commits=len(since_current),
    )
    if explicit_version:
        try:
            decision.new = Version.parse(explicit_version)
        except VersionError as exc:
            raise RefusedError(f"version: {exc}") from None
        decision.level, decision.reason = level, f"{explicit_version} asked for explicitly"
    else:
        try:
            plan = next_version(
                current,
                last_release,
                level=level,
                level_since_current=level if explicit else release_level(since_current, rules),
                channel=channel,
                explicit=explicit,
                zero_major_breaking=rules.zero_major_breaking,
            )
        except VersionError as exc:
            raise RefusedError(str(exc)) from None
        decision.new, decision.level, decision.reason = plan.new, plan.level, plan.reason
    if decision.new is not None:
        check_forward(
            decision.new,
            tags,
            file_version,
            first_release=first_release,
            maintenance=maintenance,
        )
    return decision


def check_forward(
    new: Version,
    tags: ReleaseTags,
    file_version: Version,
    *,
    first_release: bool = False,
    maintenance: bool = False,
) -> None:
    """Refuse a proposal that is not above every known version or whose tag exists.

    On a maintenance branch (``maintenance``: 1.2.x fixes while 2.0.0 exists) the proposal
    need only be above the releases of its own ``MAJOR.MINOR`` line.
    """
    clash = tags.name_of(new)
    if clash is not None:
        where = "on this branch" if clash in tags.reachable else "elsewhere in the repository"
        raise RefusedError(
            f"refusing to release {new}: tag {clash} already exists ({where}); "
            "pass version: with a higher version, or investigate the history"
        )
    pool = [
        v
        for v in tags.all.values()
        if not maintenance or (v.epoch, v.major, v.minor) == (new.epoch, new.major, new.minor)
    ]
    highest = latest(pool)
    if highest is not None and new.sort_key() <= highest.sort_key():
        name = tags.name_of(highest)
        where = "on this branch" if name in tags.reachable else "not an ancestor of HEAD"
        raise RefusedError(
            f"refusing to release {new}: it is not above {highest} (tag {name}, {where}); "
            f"the history was likely rewritten after that release — pass version: with a "
            f"version above {highest}, or maintenance: true on a maintenance branch"
        )
    # The version file may already hold the proposal (a release commit left by an earlier
    # run); it may not hold something higher (that would be a downgrade).
    file_is_base = first_release and new == file_version
    if new.sort_key() < file_version.sort_key() and not file_is_base:
        raise RefusedError(
            f"refusing to release {new}: the version file already says {file_version}, "
            f"which is higher — pass version: {file_version.final()} (or higher) to release it"
        )
