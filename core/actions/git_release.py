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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, action
from quarterdeck.core.actions.changelog import (
    DEFAULT_HIDDEN_TYPES,
    Forge,
    detect_style,
    find_section,
    forge_for,
    group_commits,
    insert_section,
    render_section,
)
from quarterdeck.core.actions.conventional import (
    CHANNELS,
    Version,
    VersionError,
    bump_rules,
    effective_commits,
    latest,
)
from quarterdeck.core.actions.git import Log, RepoParams, head_sha, open_repo, repo_path, threaded
from quarterdeck.core.actions.paths import confined
from quarterdeck.core.actions.release_plan import (
    Decision,
    ReleaseSettings,
    commits_between,
    decide,
    release_settings,
    release_tags,
)
from quarterdeck.core.actions.version_file import (
    check_pattern,
    find_version,
    read_version,
    write_version,
)
from quarterdeck.core.errors import NonRetryableError
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import git
else:
    git = lazy_module("git")


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


def _tag_for(tags: dict[str, Version], version: Version | None) -> str | None:
    if version is None:
        return None
    return next((name for name, v in tags.items() if v == version), None)


def _release_settings(root: Path, ctx: ActionContext) -> ReleaseSettings:
    return release_settings(root, ctx.settings)


# --------------------------------------------------------------------------- bump_version


class BumpParams(RepoParams):
    file: str = Field(default="pyproject.toml", description="File holding the version")
    pattern: str | None = Field(default=None, description="Regex; group `version` (or 1)")
    part: Literal["auto", "major", "minor", "patch"] = "auto"
    prerelease: Literal["dev", "alpha", "beta", "rc"] | None = None
    tag_prefix: str | None = Field(
        default=None, description="Release tags' prefix ('' for 1.2.3); default config or 'v'"
    )
    scheme: Literal["auto", "semver", "pep440"] = Field(
        default="auto", description="How to spell prereleases; auto: pep440 for pyproject.toml"
    )
    preset: Literal["conventional", "commitizen"] | None = Field(
        default=None, description="Bump rules: python-semantic-release's or commitizen's"
    )
    bump_rules: dict[str, Literal["major", "minor", "patch", "none"]] = Field(
        default_factory=dict, description="Per-type overrides, e.g. {docs: patch}"
    )
    zero_major_breaking: Literal["minor", "major"] | None = None
    squash_bodies: bool | None = Field(
        default=None, description="Read conventional lines in squash-merge bodies"
    )
    first_release: bool = Field(
        default=False, description="Release with no release tag yet (from the version file)"
    )
    version: str | None = Field(
        default=None, description="Release exactly this version (still checked to go forward)"
    )
    maintenance: bool = Field(
        default=False,
        description="A maintenance branch: be above the releases of the MAJOR.MINOR line only",
    )
    write: bool = True

    _pattern = field_validator("pattern")(check_pattern)


def _scheme(params: BumpParams) -> Literal["semver", "pep440"]:
    if params.scheme != "auto":
        return params.scheme
    return "pep440" if Path(params.file).name == "pyproject.toml" else "semver"


def plan_bump(
    repo: git.Repo,
    params: BumpParams,
    file_version: Version,
    log: Log,
    config: ReleaseSettings | None = None,
) -> Decision:
    """Decide the next version from tags, the version file and commits (no writes)."""
    head_sha(repo)
    config = config or ReleaseSettings()
    try:
        rules = bump_rules(
            params.preset or config.preset or "conventional",
            {**config.bump_rules, **params.bump_rules},
            params.zero_major_breaking,
        )
    except VersionError as exc:
        raise NonRetryableError(str(exc)) from None
    prefix = _prefix(params.tag_prefix, config)
    squash = params.squash_bodies if params.squash_bodies is not None else config.squash_bodies
    decision = decide(
        repo,
        prefix=prefix,
        file_version=file_version,
        part=params.part,
        channel=params.prerelease,
        rules=rules,
        squash_bodies=bool(squash),
        first_release=params.first_release,
        explicit_version=params.version,
        maintenance=params.maintenance,
    )
    log(
        f"latest version {decision.current} (tag {decision.base_tag or 'none'}), version file "
        f"{decision.file_version}, highest tag {decision.highest_tag or 'none'}; "
        f"{decision.commits} commit(s) since, bump rules {rules.name}"
    )
    for line in decision.shipped:
        log(f"  {line}")
    new = decision.new
    log(decision.reason if new is None else f"{decision.current} → {new} ({decision.reason})")
    return decision


def _prefix(explicit: str | None, config: ReleaseSettings) -> str:
    if explicit is not None:
        return explicit
    return config.tag_prefix if config.tag_prefix is not None else "v"


@action("git.bump_version", BumpParams, read_only_when=lambda p: not p.write)
async def bump_version(params: BumpParams, ctx: ActionContext) -> dict[str, Any]:
    """Bump the version in a file from Conventional Commits since the last release tag."""
    root = repo_path(params, ctx)
    scheme = _scheme(params)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
        path = confined(root, params.file, [root], "file")
        if not path.is_file():
            raise NonRetryableError(f"version file not found: {path}")
        text = path.read_text(encoding="utf-8")
        written = read_version(text, params.file, params.pattern)
        try:
            file_version = Version.parse(written)
        except VersionError as exc:
            raise NonRetryableError(f"{params.file}: {exc}") from None
        marker = _marker_path(repo, "git.bump_version", ctx.idempotency_key)
        done = _read_marker(marker)
        if done is not None and done.get("new_version") == written:
            log(
                f"{params.file} already holds {done['new_version']} from this step's "
                "earlier attempt; not bumping again"
            )
            return {**done, "changed": False}
        config = _release_settings(root, ctx)
        decision = plan_bump(repo, params, file_version, log, config)
        prefix = _prefix(params.tag_prefix, config)
        old = decision.current.format(scheme)
        new = decision.new
        outputs: dict[str, Any] = {
            "released": new is not None,
            "old_version": old,
            "new_version": old if new is None else new.format(scheme),
            "level": decision.level.name.lower() if new is not None else "none",
            "last_tag": decision.base_tag,
            "base_tag": decision.base_tag,
            "highest_tag": decision.highest_tag,
            "file_version": written,
            "commits": decision.commits,
            "shipped": decision.shipped,
            "decision": decision.explain(prefix),
            "file": params.file,
            "changed": False,
        }
        outputs["version"] = outputs["new_version"]
        outputs["tag"] = f"{prefix}{outputs['new_version']}"
        if new is None:
            return outputs
        if written == outputs["new_version"]:
            log(f"{params.file} already holds {outputs['new_version']}")
        elif params.write:
            updated = write_version(text, params.file, params.pattern, outputs["new_version"])
            path.write_text(updated, encoding="utf-8")
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
    tag_prefix: str | None = Field(default=None, description="Default config or 'v'")
    since: str | None = Field(default=None, description="Start ref; default the last tag")
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    link_commits: bool = True
    forge_url: str | None = Field(
        default=None, description="Web address of the repository (https://host/owner/repo)"
    )
    forge: Literal["github", "gitlab", "gitea", "bitbucket"] = "github"
    hidden_types: list[str] = Field(default_factory=lambda: list(DEFAULT_HIDDEN_TYPES))
    squash_bodies: bool | None = None
    write: bool = True

    _pattern = field_validator("pattern")(check_pattern)


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


@action("git.changelog", ChangelogParams, read_only_when=lambda p: not p.write)
async def changelog(params: ChangelogParams, ctx: ActionContext) -> dict[str, Any]:
    """Write a changelog section, in the file's heading style, for commits since the last tag."""
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
            version = read_version(vtext, params.version_file, params.pattern)
        try:
            this = Version.parse(version)
        except VersionError as exc:
            raise NonRetryableError(str(exc)) from None
        config = _release_settings(root, ctx)
        prefix = _prefix(params.tag_prefix, config)
        tags = release_tags(repo, prefix)
        own_tag = tags.name_of(this)
        until = own_tag or "HEAD"
        since = params.since
        if since is None:  # the newest release below this one on this line of history
            reachable = release_tags(repo, prefix, until).reachable
            older = [v for v in reachable.values() if v.sort_key() < this.sort_key()]
            since = _tag_for(reachable, latest(older))
        squash = params.squash_bodies if params.squash_bodies is not None else config.squash_bodies
        commits = effective_commits(commits_between(repo, since, until), squash_bodies=bool(squash))
        forge = _forge(repo, params)
        entries = group_commits(commits, forge, params.hidden_types)
        date = params.date
        if date is None and own_tag is not None:  # an already-tagged release keeps its date
            date = repo.git.for_each_ref("--format=%(creatordate:short)", f"refs/tags/{own_tag}")
        if not date:
            date = dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC).strftime("%Y-%m-%d")
        path = confined(root, params.file, [root], "file")
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        style = detect_style(existing)
        section = render_section(version, date, entries, style)
        compare = None
        if forge is not None and since and style.kind == "keepachangelog":
            compare = forge.compare_url(since, own_tag or f"{prefix}{version}")
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


__all__ = ["CHANNELS", "commits_between", "find_version", "read_version", "release_tags"]
