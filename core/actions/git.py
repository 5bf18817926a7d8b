"""Git actions: version bumps, changelogs, commits, tags, pushes, branches and rollbacks.

Each action looks at the repository (and, for ``git.push``, at the remote) before it
changes anything, so a step that runs again after a crash notices its own earlier effect
and reports it instead of doing it twice: an existing tag at the same commit is
``created: false``, a ref the remote already has is skipped, a version already written
is ``changed: false``. Version and changelog rules live in
:mod:`quarterdeck.core.actions.conventional` as pure functions.

GitPython reads and writes the local repository (in a worker thread, so a large history
never stalls the event loop); ``git push`` and ``git ls-remote`` run as child processes
through :func:`quarterdeck.core.actions.builtin.run_process`, which streams their output and kills
them on cancel or timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import git
from pydantic import AfterValidator, Field, field_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.conventional import (
    CHANNELS,
    DEFAULT_HIDDEN_TYPES,
    Forge,
    Level,
    RawCommit,
    Version,
    VersionError,
    effective_commits,
    find_section,
    forge_for,
    group_commits,
    insert_section,
    latest,
    next_version,
    release_level,
    render_section,
)
from quarterdeck.core.errors import ActionError, NonRetryableError

T = TypeVar("T")
Log = Callable[[str], None]

_REF_NAME = re.compile(
    r"^(?!/|.*(?:\.\.|//|@\{|\.lock$|/\.|[\s~^:?*\[\\]))[^\x00-\x1f\x7f]+(?<![/.])$"
)


def _ref_name(value: str) -> str:
    if not value or not _REF_NAME.match(value) or value.startswith("-"):
        raise ValueError(f"{value!r} is not a valid git ref name")
    return value


RefName = Annotated[str, AfterValidator(_ref_name)]


class RepoParams(ActionParams):
    repo: str = Field(default=".", description="Repository path (relative to the run's workdir)")


# --------------------------------------------------------------------------- helpers


def _repo_path(params: RepoParams, ctx: ActionContext) -> Path:
    path = Path(params.repo).expanduser()
    return path if path.is_absolute() else ctx.workdir / path


def _open(path: Path) -> git.Repo:
    try:
        return git.Repo(path)
    except git.NoSuchPathError:
        raise NonRetryableError(f"repository path not found: {path}") from None
    except git.InvalidGitRepositoryError:
        raise NonRetryableError(
            f"{path} is not a git repository (run `git init` there, or point `repo:` at one)"
        ) from None


def _head_sha(repo: git.Repo) -> str:
    try:
        return repo.head.commit.hexsha
    except ValueError:
        raise NonRetryableError(f"{repo.working_dir} has no commits yet") from None


async def _threaded(ctx: ActionContext, fn: Callable[[Log], T]) -> T:
    """Run ``fn(log)`` in a worker thread, then stream what it logged.

    Lines are collected in the thread and emitted on the event loop, because the line
    sink belongs to the runner's loop.
    """
    lines: list[str] = []
    try:
        return await asyncio.to_thread(fn, lines.append)
    except git.GitCommandError as exc:
        detail = (exc.stderr or exc.stdout or str(exc)).strip().replace("\n", " ")
        raise ActionError(
            f"git {exc.command[1] if len(exc.command) > 1 else ''} failed: {detail}"
        ) from None
    finally:
        for line in lines:
            ctx.log(line)


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
    _head_sha(repo)
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
    root = _repo_path(params, ctx)
    scheme = _scheme(params)

    def work(log: Log) -> dict[str, Any]:
        repo = _open(root)
        path = root / params.file
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

    return await _threaded(ctx, work)


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
    root = _repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = _open(root)
        _head_sha(repo)
        version = params.version
        if version is None:
            vpath = root / params.version_file
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
        path = root / params.file
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

    return await _threaded(ctx, work)


# --------------------------------------------------------------------------- commit


class CommitParams(RepoParams):
    message: str = Field(min_length=1)
    paths: list[str] = Field(default_factory=list, description="Default: every change")
    allow_empty: bool = False
    author_name: str | None = None
    author_email: str | None = None


def _actor(repo: git.Repo, name: str | None, email: str | None) -> git.Actor:
    reader = repo.config_reader()
    name = name or str(reader.get_value("user", "name", "Quarterdeck"))
    email = email or str(reader.get_value("user", "email", "quarterdeck@localhost"))
    return git.Actor(name, email)


@action("git.commit", CommitParams)
async def commit(params: CommitParams, ctx: ActionContext) -> dict[str, Any]:
    """Commit changes; a clean tree is ``committed: false``, not a failure."""
    root = _repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = _open(root)
        if params.paths:
            missing = [
                p
                for p in params.paths
                if not (root / p).exists() and not repo.git.ls_files("--", p)
            ]
            if missing:
                raise NonRetryableError(f"paths not found in {root}: {', '.join(missing)}")
            repo.git.add("-A", "--", *params.paths)
        else:
            repo.git.add("-A")
        has_head = repo.head.is_valid()
        staged = (
            repo.git.diff("--cached", "--name-only").splitlines()
            if has_head
            else repo.git.ls_files().splitlines()
        )
        if not staged and not params.allow_empty:
            log("nothing to commit; the tree is clean")
            return {"committed": False, "sha": _head_sha(repo), "files": []}
        actor = _actor(repo, params.author_name, params.author_email)
        made = repo.index.commit(params.message, author=actor, committer=actor)
        log(f"committed {made.hexsha[:7]} {params.message.splitlines()[0]}")
        for name in staged:
            log(f"  {name}")
        return {"committed": True, "sha": made.hexsha, "files": staged}

    return await _threaded(ctx, work)


# --------------------------------------------------------------------------- tag


class TagParams(RepoParams):
    name: RefName
    message: str | None = Field(default=None, description="Default: 'Release NAME'")
    ref: str = "HEAD"


@action("git.tag", TagParams)
async def tag(params: TagParams, ctx: ActionContext) -> dict[str, Any]:
    """Create an annotated tag; one already at the same commit is ``created: false``."""
    root = _repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = _open(root)
        try:
            target = repo.commit(params.ref)
        except (git.BadName, ValueError):
            raise NonRetryableError(f"unknown ref {params.ref!r} in {root}") from None
        existing = next((t for t in repo.tags if t.name == params.name), None)
        if existing is not None:
            if existing.commit.hexsha == target.hexsha:
                log(f"tag {params.name} already exists at {target.hexsha[:7]}")
                return {"tag": params.name, "sha": target.hexsha, "created": False}
            raise NonRetryableError(
                f"tag {params.name} already exists at {existing.commit.hexsha[:7]}, not at "
                f"{target.hexsha[:7]}; a released tag is never moved — bump the version instead"
            )
        actor = _actor(repo, None, None)
        message = params.message or f"Release {params.name}"
        repo.git.tag(
            "-a",
            params.name,
            target.hexsha,
            "-m",
            message,
            env={"GIT_COMMITTER_NAME": actor.name or "", "GIT_COMMITTER_EMAIL": actor.email or ""},
        )
        log(f"tagged {target.hexsha[:7]} as {params.name}")
        return {"tag": params.name, "sha": target.hexsha, "created": True}

    return await _threaded(ctx, work)


# --------------------------------------------------------------------------- push


class PushParams(RepoParams):
    remote: str = "origin"
    branch: str | None = Field(default=None, description="Default: the current branch")
    push_branch: bool = True
    tags: list[RefName] = Field(default_factory=list)


async def _git(ctx: ActionContext, root: Path, *args: str) -> tuple[int, list[str]]:
    env = child_env(ctx, {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    return await run_process(["git", *args], ctx, cwd=root, env=env, tail=10_000)


@action("git.push", PushParams)
async def push(params: PushParams, ctx: ActionContext) -> dict[str, Any]:
    """Push the branch and tags; refs the remote already has at the same object are skipped."""
    root = _repo_path(params, ctx)

    def local_refs(log: Log) -> dict[str, str]:
        repo = _open(root)
        if params.remote not in [r.name for r in repo.remotes]:
            raise NonRetryableError(f"no remote named {params.remote!r} in {root}")
        wanted: dict[str, str] = {}
        if params.push_branch:
            name = params.branch
            if name is None:
                if repo.head.is_detached:
                    raise NonRetryableError("HEAD is detached; name the branch with `branch:`")
                name = repo.active_branch.name
            try:
                wanted[f"refs/heads/{name}"] = repo.git.rev_parse(f"refs/heads/{name}")
            except git.GitCommandError:
                raise NonRetryableError(f"no local branch {name!r}") from None
        for tag_name in params.tags:
            try:
                wanted[f"refs/tags/{tag_name}"] = repo.git.rev_parse(f"refs/tags/{tag_name}")
            except git.GitCommandError:
                raise NonRetryableError(f"no local tag {tag_name!r}") from None
        return wanted

    wanted = await _threaded(ctx, local_refs)
    if not wanted:
        return {"pushed": [], "skipped": [], "changed": False, "remote": params.remote}
    code, lines = await _git(ctx, root, "ls-remote", params.remote, *wanted)
    if code != 0:
        raise ActionError(f"cannot list refs on {params.remote}: {lines[-1] if lines else code}")
    remote_refs: dict[str, str] = {}
    for line in lines:
        sha, _, ref = line.partition("\t")
        if ref:
            remote_refs[ref.strip()] = sha.strip()
    to_push: list[str] = []
    skipped: list[str] = []
    for ref, sha in wanted.items():
        there = remote_refs.get(ref)
        if there == sha:
            skipped.append(ref)
            ctx.log(f"{params.remote} already has {ref} at {sha[:7]}")
        elif there is not None and ref.startswith("refs/tags/"):
            raise NonRetryableError(
                f"{params.remote} has {ref} at {there[:7]}, which differs from the local tag "
                f"({sha[:7]}); a published tag is never overwritten"
            )
        else:
            to_push.append(ref)
    if to_push:
        code, lines = await _git(
            ctx, root, "push", "--porcelain", params.remote, *[f"{ref}:{ref}" for ref in to_push]
        )
        if code != 0:
            rejected = [ln for ln in lines if ln.startswith("!")]
            detail = rejected[0] if rejected else (lines[-1] if lines else f"exit {code}")
            raise ActionError(
                f"git push to {params.remote} failed: {detail}", retryable=not rejected
            )
    return {
        "pushed": to_push,
        "skipped": skipped,
        "changed": bool(to_push),
        "remote": params.remote,
    }


# --------------------------------------------------------------------------- branch


class BranchParams(RepoParams):
    name: RefName
    start_point: str = "HEAD"
    checkout: bool = True


@action("git.branch", BranchParams)
async def branch(params: BranchParams, ctx: ActionContext) -> dict[str, Any]:
    """Create (and check out) a branch; one already at the start point is reused."""
    root = _repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = _open(root)
        try:
            start = repo.commit(params.start_point)
        except (git.BadName, ValueError):
            raise NonRetryableError(f"unknown start point {params.start_point!r}") from None
        existing = next((h for h in repo.heads if h.name == params.name), None)
        created = existing is None
        if existing is None:
            existing = repo.create_head(params.name, start)
            log(f"created branch {params.name} at {start.hexsha[:7]}")
        elif existing.commit.hexsha != start.hexsha and not repo.is_ancestor(
            start, existing.commit
        ):
            raise NonRetryableError(
                f"branch {params.name} already exists at {existing.commit.hexsha[:7]}, "
                f"which does not contain {params.start_point} ({start.hexsha[:7]})"
            )
        else:
            log(f"branch {params.name} already exists at {existing.commit.hexsha[:7]}")
        checked_out = False
        if params.checkout and (repo.head.is_detached or repo.active_branch != existing):
            if repo.is_dirty(untracked_files=False):
                raise NonRetryableError(
                    f"cannot check out {params.name}: {root} has uncommitted changes"
                )
            existing.checkout()
            checked_out = True
            log(f"checked out {params.name}")
        return {
            "branch": params.name,
            "sha": existing.commit.hexsha,
            "created": created,
            "checked_out": checked_out,
        }

    return await _threaded(ctx, work)


# --------------------------------------------------------------------------- revert_to


class RevertToParams(RepoParams):
    ref: str = Field(min_length=1, description="Tag or commit whose tree to go back to")
    mode: Literal["revert", "reset"] = Field(
        default="revert",
        description="revert: a new commit restoring the tree (pushable); reset: move HEAD",
    )
    message: str | None = None


@action("git.revert_to", RevertToParams)
async def revert_to(params: RevertToParams, ctx: ActionContext) -> dict[str, Any]:
    """Roll the work tree back to ``ref``; already there is ``changed: false``."""
    root = _repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = _open(root)
        head = repo.commit(_head_sha(repo))
        try:
            target = repo.commit(params.ref)
        except (git.BadName, ValueError):
            raise NonRetryableError(f"unknown ref {params.ref!r} in {root}") from None
        base = {"previous_sha": head.hexsha, "target_sha": target.hexsha, "mode": params.mode}
        if head.tree.hexsha == target.tree.hexsha:
            log(f"HEAD already has the tree of {params.ref}; nothing to roll back")
            return {**base, "sha": head.hexsha, "changed": False}
        if repo.is_dirty(untracked_files=False):
            raise NonRetryableError(f"{root} has uncommitted changes; commit or stash them first")
        if params.mode == "reset":
            repo.head.reset(target, index=True, working_tree=True)
            log(
                f"reset {repo.active_branch.name if not repo.head.is_detached else 'HEAD'} "
                f"to {params.ref} ({target.hexsha[:7]})"
            )
            return {**base, "sha": target.hexsha, "changed": True}
        repo.git.read_tree("-u", "--reset", target.hexsha)
        actor = _actor(repo, None, None)
        message = params.message or (
            f"revert: roll back to {params.ref}\n\nRestores the tree of {target.hexsha}."
        )
        made = repo.index.commit(message, author=actor, committer=actor)
        log(f"committed {made.hexsha[:7]}: tree of {params.ref} ({target.hexsha[:7]})")
        return {**base, "sha": made.hexsha, "changed": True}

    return await _threaded(ctx, work)


__all__ = ["CHANNELS", "commits_between", "find_version", "version_tags"]
