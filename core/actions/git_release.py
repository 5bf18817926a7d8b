"""Release actions on a git repository: ``git.bump_version`` and ``git.changelog``.

They read tags and commits (through the shared helpers of :mod:`quarterdeck.core.actions.git`)
and hand plain data to the pure rules of :mod:`quarterdeck.core.actions.conventional`
(which version comes next) and :mod:`quarterdeck.core.actions.changelog` (what the section
says). A step that runs again after a crash notices its own earlier effect: a version this
step already wrote is ``changed: false`` (a marker in ``.git/quarterdeck`` remembers it), a
changelog that already has the version's section is left as it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import git
from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, action
from quarterdeck.core.actions.changelog import (
    DEFAULT_HIDDEN_TYPES,
    Forge,
    find_section,
    forge_for,
    group_commits,
    insert_section,
    render_section,
)
from quarterdeck.core.actions.conventional import (
    CHANNELS,
    Level,
    RawCommit,
    Version,
    VersionError,
    effective_commits,
    latest,
    next_version,
    release_level,
)
from quarterdeck.core.actions.git import Log, RepoParams, head_sha, open_repo, repo_path, threaded
from quarterdeck.core.actions.paths import confined
from quarterdeck.core.errors import NonRetryableError


def _marker_path(repo: git.Repo, action_name: str, key: str) -> Path:
    digest = hashlib.sha256(f"{action_name}\0{key}".encode()).hexdigest()[:24]
    return Path(repo.git_dir) / "quarterdeck" / f"{digest}.json"


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def version_tags(repo: git.Repo, prefix: str, ref: str = "HEAD") -> dict[str, Version]:
    """Tags reachable from ``ref`` that spell ``prefix`` + a version, by tag name."""
    out = repo.git.tag("--merged", ref, "--list", f"{prefix}*")
    tags: dict[str, Version] = {}
    for name in out.splitlines():
        name = name.strip()
        try:
            tags[name] = Version.parse(name[len(prefix) :])
        except VersionError:
            continue
    return tags


def commits_between(repo: git.Repo, since: str | None, until: str = "HEAD") -> list[RawCommit]:
    """Commits in ``since..until`` (all of ``until``'s history when ``since`` is None)."""
    rev = f"{since}..{until}" if since else until
    return [RawCommit(c.hexsha, str(c.message), len(c.parents) > 1) for c in repo.iter_commits(rev)]


def _tag_for(tags: dict[str, Version], version: Version | None) -> str | None:
    if version is None:
        return None
    return next((name for name, v in tags.items() if v == version), None)


# --------------------------------------------------------------------------- version files

_PYPROJECT_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$", re.MULTILINE)
_PYPROJECT_VERSION = re.compile(r"^version\s*=\s*[\"'](?P<version>[^\"'\n]+)[\"']", re.MULTILINE)
_GENERIC_VERSION = (
    r"[\"']?(?:__version__|version|VERSION)[\"']?\s*[:=]\s*[\"'](?P<version>[^\"'\n]+)[\"']"
)


def find_version(text: str, file_name: str, pattern: str | None) -> tuple[int, int]:
    """The span of the version string in a file's text. Raises NonRetryableError."""
    if pattern is not None:
        match = re.search(pattern, text, re.MULTILINE)
        if not match:
            raise NonRetryableError(f"pattern {pattern!r} matches nothing in {file_name}")
        group: int | str = "version" if "version" in match.re.groupindex else 1
        return match.span(group)
    if Path(file_name).name == "pyproject.toml":
        sections = list(_PYPROJECT_SECTION.finditer(text))
        for i, sec in enumerate(sections):
            if sec["name"].strip() not in ("project", "tool.poetry"):
                continue
            end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
            match = _PYPROJECT_VERSION.search(text, sec.end(), end)
            if match:
                return match.span("version")
        if re.search(r"^dynamic\s*=.*[\"']version[\"']", text, re.MULTILINE):
            raise NonRetryableError(
                f"{file_name} declares the version as dynamic; name the file that holds it "
                "with `file:` (and `pattern:` if needed)"
            )
        raise NonRetryableError(f'no `version = "..."` in the [project] table of {file_name}')
    match = re.search(_GENERIC_VERSION, text, re.MULTILINE)
    if not match:
        raise NonRetryableError(
            f"no version found in {file_name}; give a `pattern:` with a (?P<version>...) group"
        )
    return match.span("version")


def _check_pattern(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        compiled = re.compile(value, re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    if compiled.groups < 1:
        raise ValueError("the pattern needs a group around the version, e.g. (?P<version>...)")
    return value


# --------------------------------------------------------------------------- bump_version


class BumpParams(RepoParams):
    file: str = Field(default="pyproject.toml", description="File holding the version")
    pattern: str | None = Field(default=None, description="Regex; group `version` (or 1)")
    part: Literal["auto", "major", "minor", "patch"] = "auto"
    prerelease: Literal["dev", "alpha", "beta", "rc"] | None = None
    tag_prefix: str = "v"
    scheme: Literal["auto", "semver", "pep440"] = Field(
        default="auto", description="How to spell prereleases; auto: pep440 for pyproject.toml"
    )
    zero_major_breaking: Literal["minor", "major"] = "minor"
    write: bool = True

    _pattern = field_validator("pattern")(_check_pattern)


def _scheme(params: BumpParams) -> Literal["semver", "pep440"]:
    if params.scheme != "auto":
        return params.scheme
    return "pep440" if Path(params.file).name == "pyproject.toml" else "semver"


def plan_bump(
    repo: git.Repo, params: BumpParams, file_version: Version, log: Log
) -> dict[str, Any]:
    """Decide the next version from tags and commits (no writes)."""
    head_sha(repo)
    tags = version_tags(repo, params.tag_prefix)
    current = latest(tags.values()) or file_version
    last_release = latest(tags.values(), final_only=True)
    if not tags and not file_version.is_prerelease:
        last_release = file_version
    current_tag = _tag_for(tags, latest(tags.values()))
    release_tag = _tag_for(tags, last_release) if tags else None
    since_release = effective_commits(commits_between(repo, release_tag))
    since_current = effective_commits(commits_between(repo, current_tag))
    explicit = params.part != "auto"
    level = Level[params.part.upper()] if explicit else release_level(since_release)
    log(
        f"latest version {current} (tag {current_tag or 'none'}), "
        f"last release {last_release or 'none'}; {len(since_current)} commit(s) since"
    )
    for commit in since_current:
        marker = f"[{commit.level.name.lower()}]" if commit.level else "[-]"
        log(f"  {marker} {commit.sha[:7]} {commit.subject}")
    try:
        plan = next_version(
            current,
            last_release,
            level=level,
            level_since_current=level if explicit else release_level(since_current),
            channel=params.prerelease,
            explicit=explicit,
            zero_major_breaking=params.zero_major_breaking,
        )
    except VersionError as exc:
        raise NonRetryableError(str(exc)) from None
    log(plan.reason if plan.new is None else f"{plan.old} → {plan.new} ({plan.reason})")
    return {
        "current": current,
        "plan": plan,
        "last_tag": current_tag or "",
        "commits": len(since_current),
    }


@action("git.bump_version", BumpParams)
async def bump_version(params: BumpParams, ctx: ActionContext) -> dict[str, Any]:
    """Bump the version in a file from Conventional Commits since the last tag."""
    root = repo_path(params, ctx)
    scheme = _scheme(params)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
        path = confined(root, params.file, [root], "file")
        if not path.is_file():
            raise NonRetryableError(f"version file not found: {path}")
        text = path.read_text(encoding="utf-8")
        start, end = find_version(text, params.file, params.pattern)
        try:
            file_version = Version.parse(text[start:end])
        except VersionError as exc:
            raise NonRetryableError(f"{params.file}: {exc}") from None
        marker = _marker_path(repo, "git.bump_version", ctx.idempotency_key)
        done = _read_marker(marker)
        if done is not None and done.get("new_version") == text[start:end]:
            log(
                f"{params.file} already holds {done['new_version']} from this step's "
                "earlier attempt; not bumping again"
            )
            return {**done, "changed": False}
        decided = plan_bump(repo, params, file_version, log)
        plan = decided["plan"]
        old = plan.old.format(scheme)
        outputs: dict[str, Any] = {
            "released": plan.new is not None,
            "old_version": old,
            "new_version": old if plan.new is None else plan.new.format(scheme),
            "level": plan.level.name.lower() if plan.new is not None else "none",
            "last_tag": decided["last_tag"],
            "commits": decided["commits"],
            "file": params.file,
            "changed": False,
        }
        outputs["version"] = outputs["new_version"]
        outputs["tag"] = f"{params.tag_prefix}{outputs['new_version']}"
        if plan.new is None:
            return outputs
        if text[start:end] == outputs["new_version"]:
            log(f"{params.file} already holds {outputs['new_version']}")
        elif params.write:
            path.write_text(text[:start] + outputs["new_version"] + text[end:], encoding="utf-8")
            outputs["changed"] = True
            log(f"wrote {outputs['new_version']} to {params.file}")
            _write_marker(marker, outputs)
        return outputs

    return await threaded(ctx, work)


# --------------------------------------------------------------------------- changelog


class ChangelogParams(RepoParams):
    file: str = "CHANGELOG.md"
    version: str | None = Field(default=None, description="Default: read from version_file")
    version_file: str = "pyproject.toml"
    pattern: str | None = None
    tag_prefix: str = "v"
    since: str | None = Field(default=None, description="Start ref; default the last tag")
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    link_commits: bool = True
    forge_url: str | None = Field(
        default=None, description="Web address of the repository (https://host/owner/repo)"
    )
    forge: Literal["github", "gitlab", "gitea", "bitbucket"] = "github"
    hidden_types: list[str] = Field(default_factory=lambda: list(DEFAULT_HIDDEN_TYPES))
    write: bool = True

    _pattern = field_validator("pattern")(_check_pattern)


def _forge(repo: git.Repo, params: ChangelogParams) -> Forge | None:
    if not params.link_commits:
        return None
    if params.forge_url:
        return Forge(params.forge, params.forge_url.rstrip("/"))
    for remote in repo.remotes:
        for url in remote.urls:
            found = forge_for(url)
            if found is not None:
                return found
    return None


@action("git.changelog", ChangelogParams)
async def changelog(params: ChangelogParams, ctx: ActionContext) -> dict[str, Any]:
    """Write a Keep a Changelog section for the commits since the last tag."""
    root = repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
        head_sha(repo)
        version = params.version
        if version is None:
            vpath = confined(root, params.version_file, [root], "version_file")
            if not vpath.is_file():
                raise NonRetryableError(
                    f"no `version:` given and {params.version_file} not found in {root}"
                )
            vtext = vpath.read_text(encoding="utf-8")
            start, end = find_version(vtext, params.version_file, params.pattern)
            version = vtext[start:end]
        try:
            this = Version.parse(version)
        except VersionError as exc:
            raise NonRetryableError(str(exc)) from None
        tags = version_tags(repo, params.tag_prefix)
        own_tag = _tag_for(tags, this)
        until = own_tag or "HEAD"
        since = params.since
        if since is None:
            older = [v for v in tags.values() if v.sort_key() < this.sort_key()]
            since = _tag_for(tags, latest(older))
        commits = effective_commits(commits_between(repo, since, until))
        forge = _forge(repo, params)
        entries = group_commits(commits, forge, params.hidden_types)
        date = params.date or dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC).strftime(
            "%Y-%m-%d"
        )
        section = render_section(version, date, entries)
        compare = None
        if forge is not None and since:
            compare = forge.compare_url(since, own_tag or f"{params.tag_prefix}{version}")
        path = confined(root, params.file, [root], "file")
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        previous = find_section(existing, version) if existing is not None else None
        breaking = len(entries.sections.get("Breaking changes", []))
        count = sum(len(v) for v in entries.sections.values())
        outputs: dict[str, Any] = {
            "version": version,
            "file": params.file,
            "since": since or "",
            "entries": count,
            "breaking": breaking,
            "changed": False,
        }
        if previous is not None:
            log(f"{params.file} already has a section for {version}; leaving it as it is")
            return {**outputs, "section": previous}
        for line in section.splitlines():
            log(line)
        if params.write:
            new_text, changed = insert_section(existing, version, section, compare)
            if changed:
                path.write_text(new_text, encoding="utf-8")
                log(f"updated {params.file}")
            outputs["changed"] = changed
        return {**outputs, "section": section}

    return await threaded(ctx, work)


__all__ = ["CHANNELS", "commits_between", "find_version", "version_tags"]
