"""Git actions on a repository's history: commits, tags, pushes, branches and rollbacks,
and the repository helpers every git action shares. ``git.bump_version`` and
``git.changelog`` live in :mod:`quarterdeck.core.actions.git_release`, ``git.branch`` and
``git.log`` in :mod:`quarterdeck.core.actions.git_branch`.

Each action looks at the repository (and, for ``git.push``, at the remote) before it
changes anything, so a step that runs again after a crash notices its own earlier effect
and reports it instead of doing it twice: an existing tag at the same commit is
``created: false``, a ref the remote already has is skipped, a rollback already done is
``changed: false``.

GitPython reads and writes the local repository (in a worker thread, so a large history
never stalls the event loop); ``git push`` and ``git ls-remote`` run as child processes
through :func:`quarterdeck.core.actions.builtin.run_process`, which streams their output and kills
them on cancel or timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.factories import empty_list
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import asyncio

    import git
else:
    asyncio = lazy_module("asyncio")  # with the first step, not with `validate`
    git = lazy_module("git")

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


def repo_path(params: RepoParams, ctx: ActionContext) -> Path:
    """The repository a step names, relative to the run's workdir."""
    path = Path(params.repo).expanduser()
    return path if path.is_absolute() else ctx.workdir / path


def open_repo(path: Path) -> git.Repo:
    """The repository at ``path``; a missing one is a NonRetryableError that says what to do."""
    try:
        return git.Repo(path)
    except git.NoSuchPathError:
        raise NonRetryableError(f"repository path not found: {path}") from None
    except git.InvalidGitRepositoryError:
        raise NonRetryableError(
            f"{path} is not a git repository (run `git init` there, or point `repo:` at one)"
        ) from None


def head_sha(repo: git.Repo) -> str:
    """HEAD's commit; a repository without commits is a NonRetryableError, not a traceback."""
    try:
        return repo.head.commit.hexsha
    except ValueError:
        raise NonRetryableError(f"{repo.working_dir} has no commits yet") from None


async def threaded(ctx: ActionContext, fn: Callable[[Log], T]) -> T:
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


# --------------------------------------------------------------------------- commit


class CommitParams(RepoParams):
    message: str = Field(min_length=1)
    paths: list[str] = Field(default_factory=empty_list, description="Default: every change")
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
    root = repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
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
            return {"committed": False, "sha": head_sha(repo), "files": []}
        actor = _actor(repo, params.author_name, params.author_email)
        made = repo.index.commit(params.message, author=actor, committer=actor)
        log(f"committed {made.hexsha[:7]} {params.message.splitlines()[0]}")
        for name in staged:
            log(f"  {name}")
        return {"committed": True, "sha": made.hexsha, "files": staged}

    return await threaded(ctx, work)


# --------------------------------------------------------------------------- tag


class TagParams(RepoParams):
    name: RefName
    message: str | None = Field(default=None, description="Default: 'Release NAME'")
    ref: str = "HEAD"


@action("git.tag", TagParams)
async def tag(params: TagParams, ctx: ActionContext) -> dict[str, Any]:
    """Create an annotated tag; one already at the same commit is ``created: false``."""
    root = repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
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

    return await threaded(ctx, work)


# --------------------------------------------------------------------------- push


class PushParams(RepoParams):
    remote: str = "origin"
    branch: str | None = Field(default=None, description="Default: the current branch")
    push_branch: bool = True
    tags: list[RefName] = Field(default_factory=empty_list)


async def _git(ctx: ActionContext, root: Path, *args: str) -> tuple[int, list[str]]:
    env = child_env(ctx, {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    return await run_process(["git", *args], ctx, cwd=root, env=env, tail=10_000)


@action("git.push", PushParams)
async def push(params: PushParams, ctx: ActionContext) -> dict[str, Any]:
    """Push the branch and tags; refs the remote already has at the same object are skipped."""
    root = repo_path(params, ctx)

    def local_refs(log: Log) -> dict[str, str]:
        repo = open_repo(root)
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

    wanted = await threaded(ctx, local_refs)
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
    root = repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
        head = repo.commit(head_sha(repo))
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

    return await threaded(ctx, work)
