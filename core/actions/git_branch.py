"""Branches from an explicit base (``git.branch``) and the commits a change ships
(``git.log``).

A branch cut from whatever happens to be checked out carries whatever is on it: a failed
incident's hotfix branch, a stray local commit. So ``git.branch`` starts from a named base
(default: the repository's default branch — ``origin/HEAD``'s branch, else ``main`` or
``master``), refuses a working tree with uncommitted changes, and refuses to reuse an
existing branch that already holds commits the base does not (it lists them): the
commits a workflow ships are the ones it made. ``git.log`` lists ``base..head`` with
authors, for approval evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, action
from quarterdeck.core.actions.git import Log, RefName, RepoParams, open_repo, repo_path, threaded
from quarterdeck.core.errors import NonRetryableError
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import git
else:
    git = lazy_module("git")


def default_branch(repo: git.Repo, remote: str = "origin") -> str:
    """The repository's default branch: the local branch ``<remote>/HEAD`` names (or the
    remote-tracking one when there is no local copy), else ``main``, else ``master``."""
    heads = {h.name for h in repo.heads}
    try:
        ref = repo.git.symbolic_ref(f"refs/remotes/{remote}/HEAD")
        name = ref.removeprefix(f"refs/remotes/{remote}/")
        return name if name in heads else f"{remote}/{name}"
    except git.GitCommandError:
        pass
    for name in ("main", "master"):
        if name in heads:
            return name
    raise NonRetryableError(
        f"no default branch in {repo.working_dir}: {remote}/HEAD is not set and there is no "
        "main or master branch; pass the base branch explicitly (`base:` / `start_point:`)"
    )


def describe(commit: git.Commit) -> str:
    subject = str(commit.message).strip().splitlines()[0] if commit.message else ""
    return f"{commit.hexsha[:7]} {commit.author.name} <{commit.author.email}>: {subject}"


def _no_option(value: str) -> str:
    if value.startswith("-"):
        raise ValueError(f"{value!r} starts with '-': a ref or range, not an option")
    return value


class BranchParams(RepoParams):
    name: RefName
    start_point: str = Field(
        default="",
        description="The base the branch starts from; empty means the repository's default "
        "branch (origin/HEAD, main, master) — never whatever is checked out",
    )
    checkout: bool = True

    @field_validator("start_point")
    @classmethod
    def _start(cls, value: str) -> str:
        return _no_option(value)


@action("git.branch", BranchParams)
async def branch(params: BranchParams, ctx: ActionContext) -> dict[str, Any]:
    """Create (and check out) a branch from an explicit base; refuses a dirty tree and an
    existing branch with commits the base does not have."""
    root = repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
        base = params.start_point or default_branch(repo)
        try:
            start = repo.commit(base)
        except (git.BadName, ValueError):
            raise NonRetryableError(f"unknown base {base!r} in {root}") from None
        status = repo.git.status("--porcelain", "--untracked-files=no")
        dirty = [line[3:] for line in status.splitlines() if line.strip()]
        if dirty:
            shown = ", ".join(dirty[:5])
            raise NonRetryableError(
                f"cannot branch {params.name} from {base}: {root} has uncommitted changes "
                f"({shown}); commit or stash them first"
            )
        current = "(detached)" if repo.head.is_detached else repo.active_branch.name
        if current not in (base, params.name):
            log(f"{root} had {current} checked out; the branch starts from {base}, not from it")
        existing = next((h for h in repo.heads if h.name == params.name), None)
        created = existing is None
        if existing is None:
            existing = repo.create_head(params.name, start)
            log(f"created branch {params.name} at {start.hexsha[:7]} ({base})")
        elif existing.commit.hexsha != start.hexsha:
            if not repo.is_ancestor(start, existing.commit):
                raise NonRetryableError(
                    f"branch {params.name} already exists at {existing.commit.hexsha[:7]}, "
                    f"which does not contain {base} ({start.hexsha[:7]})"
                )
            extra = list(repo.iter_commits(f"{start.hexsha}..{existing.commit.hexsha}"))
            listed = "; ".join(describe(c) for c in extra[:5])
            raise NonRetryableError(
                f"branch {params.name} already exists with {len(extra)} commit(s) that are "
                f"not on {base}: {listed}; delete the branch or choose another name, so "
                "only this run's commits ship"
            )
        else:
            log(f"branch {params.name} already exists at {base} ({start.hexsha[:7]})")
        checked_out = False
        if params.checkout and (repo.head.is_detached or repo.active_branch != existing):
            existing.checkout()
            checked_out = True
            log(f"checked out {params.name}")
        return {
            "branch": params.name,
            "sha": existing.commit.hexsha,
            "base": base,
            "base_sha": start.hexsha,
            "created": created,
            "checked_out": checked_out,
        }

    return await threaded(ctx, work)


class LogParams(RepoParams):
    base: str = Field(min_length=1, description="Commits not on this ref…")
    head: str = Field(default="HEAD", description="…that are on this one")
    max_count: int = Field(default=200, ge=1, le=10_000)

    @field_validator("base", "head")
    @classmethod
    def _refs(cls, value: str) -> str:
        return _no_option(value)


@action("git.log", LogParams)
async def log_range(params: LogParams, ctx: ActionContext) -> dict[str, Any]:
    """The commits in ``base..head`` (newest first) with their authors: what would ship."""
    root = repo_path(params, ctx)

    def work(log: Log) -> dict[str, Any]:
        repo = open_repo(root)
        for ref in (params.base, params.head):
            try:
                repo.commit(ref)
            except (git.BadName, ValueError):
                raise NonRetryableError(f"unknown ref {ref!r} in {root}") from None
        commits = list(
            repo.iter_commits(f"{params.base}..{params.head}", max_count=params.max_count)
        )
        lines = [describe(c) for c in commits]
        for line in lines:
            log(line)
        authors = sorted({f"{c.author.name} <{c.author.email}>" for c in commits})
        return {
            "count": len(commits),
            "commits": [
                {
                    "sha": c.hexsha,
                    "author": c.author.name,
                    "email": c.author.email,
                    "subject": str(c.message).strip().splitlines()[0] if c.message else "",
                }
                for c in commits
            ],
            "lines": lines,
            "authors": authors,
            "text": "\n".join(lines) if lines else f"no commits in {params.base}..{params.head}",
        }

    return await threaded(ctx, work)
