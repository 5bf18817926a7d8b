"""``python.publish``: upload distributions to a package index with twine, exactly once.

twine tracks the upload protocol and the metadata fields indexes accept (a hand-built form
silently drops new ones such as ``license_expression`` and ``license_files``). Before
uploading, the step asks the index's simple API which files it already has, so a resumed
or repeated release never uploads a file twice: one already there with the same sha256 is
success (``already_published: true``); one there with *different* bytes is an error — a
published file never changes, so the version has to move.

Credentials never come from the workflow: :func:`index_credentials` (the one place they
are resolved, given where they will be sent) reads them from the environment
(``QUARTERDECK_PYPI_TOKEN``, or ``QUARTERDECK_PYPI_USERNAME`` +
``QUARTERDECK_PYPI_PASSWORD``, or twine's ``TWINE_USERNAME``/``TWINE_PASSWORD``), or from
the ``pypi`` section of the config. twine gets them through its environment, never argv.
There is no default upload URL: ``repository_url`` comes from the step or from the
config's ``pypi.url``, so nothing is sent to a public index by accident.
"""

from __future__ import annotations

import hashlib
import html
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.interpreter import STDERR_KEEP, first_error
from quarterdeck.core.actions.packaging import (
    DIST_SUFFIXES,
    normalize_name,
    read_dist,
    resolve_path,
)
from quarterdeck.core.credentials import check_destination
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.factories import empty_list
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")


class PublishParams(ActionParams):
    files: list[str] = Field(default_factory=empty_list, description="Default: every file in dist")
    dist: str = "dist"
    repository_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Upload endpoint (legacy file_upload API); default the config's pypi.url",
    )
    index_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Simple API to check for existing files; default derived from the upload URL",
    )
    username_env: str | None = Field(default=None, description="Name of the env var, not a value")
    password_env: str | None = Field(default=None, description="Name of the env var, not a value")
    timeout: float = Field(default=120.0, gt=0, le=3600)


def simple_index_for(repository_url: str) -> str:
    """The simple API next to an upload URL (PyPI and TestPyPI have their own hosts)."""
    known = {
        "https://upload.pypi.org/legacy/": "https://pypi.org/simple/",
        "https://test.pypi.org/legacy/": "https://test.pypi.org/simple/",
    }
    if repository_url in known:
        return known[repository_url]
    base = repository_url.rstrip("/")
    base = base.removesuffix("/legacy")
    return f"{base}/simple/"


def repository_url(ctx: ActionContext, params: PublishParams) -> str:
    """The upload endpoint: the step's, else the config's ``pypi.url``; never a default."""
    section = getattr(ctx.settings, "pypi", None) or {}
    url = params.repository_url or section.get("url") or section.get("repository_url")
    if not url:
        raise NonRetryableError(
            "no repository_url: give the index's upload URL in the step (or the workflow's "
            "`repository_url` input) or as `pypi: {url: ...}` in the config"
        )
    if not re.match(r"^https?://", str(url)):
        raise NonRetryableError(f"pypi.url in the config is not an http(s) URL: {url!r}")
    return str(url)


def index_credentials(
    ctx: ActionContext, params: PublishParams, destinations: list[str]
) -> tuple[str, str] | None:
    """Username and password from env or config; never from the workflow.

    ``destinations`` are the URLs they will be sent to (the upload endpoint and the
    simple index): every credential this step sends goes through here, and only to the
    hosts ``credentials.pypi.hosts`` allows (never plain http off loopback).
    """
    auth = _find_credentials(ctx, params)
    if auth is not None:
        for url in destinations:
            check_destination(ctx.settings, "pypi", url)
    return auth


def _find_credentials(ctx: ActionContext, params: PublishParams) -> tuple[str, str] | None:
    env = ctx.env
    if params.username_env or params.password_env:
        user = env.get(params.username_env or "", "__token__" if params.password_env else "")
        password = env.get(params.password_env or "")
        if not password:
            raise NonRetryableError(
                f"environment variable {params.password_env!r} is not set (it holds the index "
                "password or token)"
            )
        return user or "__token__", password
    if env.get("QUARTERDECK_PYPI_TOKEN"):
        return "__token__", env["QUARTERDECK_PYPI_TOKEN"]
    for user_var, pass_var in (
        ("QUARTERDECK_PYPI_USERNAME", "QUARTERDECK_PYPI_PASSWORD"),
        ("TWINE_USERNAME", "TWINE_PASSWORD"),
    ):
        if env.get(pass_var):
            return env.get(user_var) or "__token__", env[pass_var]
    section = getattr(ctx.settings, "pypi", None)
    if isinstance(section, dict) and section.get("token"):
        return "__token__", str(section["token"])
    if isinstance(section, dict) and section.get("password"):
        return str(section.get("username") or "__token__"), str(section["password"])
    return None


_ANCHOR = re.compile(r"<a\s[^>]*href=\"(?P<href>[^\"]*)\"[^>]*>(?P<text>[^<]*)</a>", re.I)


async def existing_files(
    client: httpx.AsyncClient, index_url: str, name: str
) -> dict[str, str | None]:
    """Files the index already has for ``name`` → their sha256 (when it says)."""
    url = f"{index_url.rstrip('/')}/{normalize_name(name)}/"
    try:
        response = await client.get(
            url,
            follow_redirects=True,
            headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.5"},
        )
    except httpx.HTTPError as exc:
        raise ActionError(f"cannot reach the index at {url}: {_describe(exc)}") from None
    if response.status_code == 404:
        return {}
    if response.status_code >= 400:
        raise ActionError(
            f"the index answered {response.status_code} for {url}",
            retryable=response.status_code >= 500,
        )
    found: dict[str, str | None] = {}
    if "json" in response.headers.get("content-type", ""):
        for item in response.json().get("files", []):
            found[item["filename"]] = (item.get("hashes") or {}).get("sha256")
        return found
    for match in _ANCHOR.finditer(response.text):
        text = html.unescape(match["text"]).strip()
        href = html.unescape(match["href"])
        digest = re.search(r"#sha256=([0-9a-f]{64})", href)
        found[text or href.split("#")[0].rsplit("/", 1)[-1]] = digest.group(1) if digest else None
    return found


def _dist_files(ctx: ActionContext, params: PublishParams) -> list[Path]:
    if params.files:
        paths = [resolve_path(ctx, f) for f in params.files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise NonRetryableError(f"distribution files not found: {', '.join(missing)}")
        return paths
    dist = resolve_path(ctx, params.dist)
    if not dist.is_dir():
        raise NonRetryableError(f"no {dist} directory; build first or list `files:`")
    paths = sorted(p for p in dist.iterdir() if p.name.endswith(DIST_SUFFIXES))
    if not paths:
        raise NonRetryableError(f"no wheel or sdist in {dist}")
    return paths


_HTTP_STATUS = re.compile(r"HTTPError: (?P<code>\d{3})")


async def _twine_upload(
    ctx: ActionContext, path: Path, url: str, auth: tuple[str, str]
) -> tuple[int | None, str]:
    """Upload one file with twine; ``(None, "")`` when it went up, else the index's HTTP
    status (when twine names one) and the line that says what went wrong."""
    config = ctx.run_dir / "publish" / "empty.pypirc"  # never the user's ~/.pypirc
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("")
    env = {k: v for k, v in child_env(ctx, {}).items() if not k.startswith("TWINE_")}
    env.update(
        {
            "TWINE_USERNAME": auth[0],
            "TWINE_PASSWORD": auth[1],
            "TWINE_NON_INTERACTIVE": "1",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "NO_COLOR": "1",
        }
    )
    argv = [sys.executable, "-m", "twine", "upload", "--non-interactive"]
    argv += ["--disable-progress-bar", "--config-file", str(config), "--repository-url", url]
    errors: list[str] = []
    code, lines = await run_process(
        [*argv, str(path)],
        ctx,
        cwd=ctx.workdir,
        env=env,
        tail=200,
        stderr_tail=errors,
        stderr_keep=STDERR_KEEP,
    )
    if code == 0:
        return None, ""
    said = [*errors, *lines]
    status = next((m["code"] for m in map(_HTTP_STATUS.search, said) if m), None)
    return (int(status) if status else None), ctx.redact(first_error(said, f"exit code {code}"))


@action("python.publish", PublishParams)
async def publish(params: PublishParams, ctx: ActionContext) -> dict[str, Any]:
    """Upload distributions with twine; a file already there with the same hash is skipped,
    one there with different bytes is an error."""
    upload_url = repository_url(ctx, params)
    infos = [read_dist(p) for p in _dist_files(ctx, params)]
    releases = {(normalize_name(i.name), i.version) for i in infos}
    if len(releases) != 1:
        listed = ", ".join(f"{n} {v}" for n, v in sorted(releases))
        raise NonRetryableError(
            f"the files are for several releases ({listed}); list the ones to publish in `files:`"
        )
    name, version = infos[0].name, infos[0].version
    index_url = params.index_url or simple_index_for(upload_url)
    auth = index_credentials(ctx, params, [upload_url, index_url])
    base = {
        "name": name,
        "version": version,
        "repository_url": upload_url,
        "index_url": index_url,
        "url": f"{index_url.rstrip('/')}/{normalize_name(name)}/",
    }
    uploaded: list[str] = []
    skipped: list[str] = []
    async with httpx.AsyncClient(
        timeout=params.timeout,
        limits=httpx.Limits(max_keepalive_connections=0),
        auth=httpx.BasicAuth(*auth) if auth else None,
    ) as client:

        async def already_there(path: Path) -> bool:
            """Whether the index has ``path`` (same bytes); different bytes are an error."""
            present = await existing_files(client, index_url, name)
            if path.name not in present:
                return False
            theirs, mine = present[path.name], hashlib.sha256(path.read_bytes()).hexdigest()
            if theirs is not None and theirs != mine:
                raise NonRetryableError(
                    f"{path.name} is already on the index with different content (sha256 "
                    f"{theirs} there, {mine} built); a published file never changes — bump "
                    "the version to publish new content",
                    outputs={**base, "uploaded": uploaded, "differs": [path.name]},
                )
            ctx.log(f"{path.name} is already on the index (same sha256); not uploading it again")
            return True

        for info in infos:
            if await already_there(info.path):
                skipped.append(info.path.name)
                continue
            if auth is None:
                raise NonRetryableError(
                    "no index credentials: set QUARTERDECK_PYPI_TOKEN (or "
                    "QUARTERDECK_PYPI_USERNAME and QUARTERDECK_PYPI_PASSWORD) in the environment"
                )
            size = info.path.stat().st_size
            ctx.log(f"uploading {info.path.name} ({size} bytes) to {upload_url} with twine")
            status, said = await _twine_upload(ctx, info.path, upload_url, auth)
            if status is None and not said:
                uploaded.append(info.path.name)
                ctx.log(f"uploaded {info.path.name}")
                continue
            if status in (400, 409) and await already_there(info.path):
                skipped.append(info.path.name)  # another upload won the race, same bytes
                continue
            if status in (401, 403):
                raise NonRetryableError(
                    f"{upload_url} refused the credentials ({status}); check the token in "
                    "the environment",
                    outputs={**base, "uploaded": uploaded},
                )
            raise ActionError(
                f"upload of {info.path.name} failed: {said}",
                retryable=status is None or status >= 500 or status == 429,
                outputs={**base, "uploaded": uploaded},
            )
    return {
        **base,
        "already_published": not uploaded,
        "uploaded": uploaded,
        "skipped": skipped,
        "differs": [],
    }


def _describe(exc: Exception) -> str:
    """httpx errors often have an empty message; name the kind of failure instead."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
