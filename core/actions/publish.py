"""``python.publish``: upload distributions to a package index, exactly once.

It speaks the upload protocol every index implements — the legacy multipart
``file_upload`` API that twine uses — and first asks the index's simple API which files it
already has, so a resumed or repeated release never uploads a version twice: it reports
``already_published: true`` instead.

Credentials never come from the workflow: it reads them from the environment
(``QUARTERDECK_PYPI_TOKEN``, or ``QUARTERDECK_PYPI_USERNAME`` +
``QUARTERDECK_PYPI_PASSWORD``, or twine's ``TWINE_USERNAME``/``TWINE_PASSWORD``), or from
a ``pypi`` section in the config when there is one.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.packaging import (
    DIST_SUFFIXES,
    DistInfo,
    normalize_name,
    read_dist,
    resolve_path,
)
from quarterdeck.core.credentials import check_destination
from quarterdeck.core.errors import ActionError, NonRetryableError


class PublishParams(ActionParams):
    files: list[str] = Field(default_factory=list, description="Default: every file in dist")
    dist: str = "dist"
    repository_url: str = Field(
        default="https://upload.pypi.org/legacy/",
        pattern=r"^https?://",
        description="Upload endpoint (legacy file_upload API)",
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


def credentials(ctx: ActionContext, params: PublishParams) -> tuple[str, str] | None:
    """Username and password from env or config; never from the workflow."""
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


def _form(info: DistInfo, content: bytes) -> list[tuple[str, str]]:
    """The fields twine sends with ``:action=file_upload``."""
    meta = info.metadata
    fields: list[tuple[str, str]] = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", str(meta.get("Metadata-Version", "2.1"))),
        ("name", info.name),
        ("version", info.version),
        ("filetype", info.filetype),
        ("pyversion", info.pyversion),
        ("md5_digest", hashlib.md5(content, usedforsecurity=False).hexdigest()),
        ("sha256_digest", hashlib.sha256(content).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(content, digest_size=32).hexdigest()),
    ]
    single = {
        "Summary": "summary",
        "Home-page": "home_page",
        "Author": "author",
        "Author-email": "author_email",
        "Maintainer": "maintainer",
        "Maintainer-email": "maintainer_email",
        "License": "license",
        "Keywords": "keywords",
        "Requires-Python": "requires_python",
        "Description-Content-Type": "description_content_type",
    }
    for header, key in single.items():
        if meta.get(header):
            fields.append((key, str(meta[header])))
    multi = {
        "Classifier": "classifiers",
        "Requires-Dist": "requires_dist",
        "Provides-Extra": "provides_extra",
        "Project-URL": "project_urls",
        "Platform": "platform",
    }
    for header, key in multi.items():
        for value in meta.get_all(header) or []:
            fields.append((key, str(value)))
    body = meta.get_payload()
    description = body if isinstance(body, str) and body.strip() else meta.get("Description")
    if description:
        fields.append(("description", str(description)))
    return fields


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


@action("python.publish", PublishParams)
async def publish(params: PublishParams, ctx: ActionContext) -> dict[str, Any]:
    """Upload distributions to a package index; an existing version is reported, not re-sent."""
    infos = [read_dist(p) for p in _dist_files(ctx, params)]
    releases = {(normalize_name(i.name), i.version) for i in infos}
    if len(releases) != 1:
        listed = ", ".join(f"{n} {v}" for n, v in sorted(releases))
        raise NonRetryableError(
            f"the files are for several releases ({listed}); list the ones to publish in `files:`"
        )
    name, version = infos[0].name, infos[0].version
    index_url = params.index_url or simple_index_for(params.repository_url)
    auth = credentials(ctx, params)
    if auth is not None:  # the index credentials go only to credentials.pypi.hosts, https
        for url in (params.repository_url, index_url):  # the client sends auth to both
            check_destination(ctx.settings, "pypi", url)
    base = {
        "name": name,
        "version": version,
        "repository_url": params.repository_url,
        "url": f"{index_url.rstrip('/')}/{normalize_name(name)}/",
    }
    # No keep-alive: uploads are few and large, and some index servers close idle
    # connections without saying so, which would fail the next upload mid-request.
    async with httpx.AsyncClient(
        timeout=params.timeout,
        limits=httpx.Limits(max_keepalive_connections=0),
        auth=httpx.BasicAuth(*auth) if auth else None,
    ) as client:
        present = await existing_files(client, index_url, name)
        uploaded: list[str] = []
        skipped: list[str] = []
        differs: list[str] = []
        for info in infos:
            content = info.path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            if info.path.name in present:
                theirs = present[info.path.name]
                if theirs is not None and theirs != digest:
                    differs.append(info.path.name)
                    ctx.log(
                        f"{info.path.name} is already on the index with different content "
                        "(a rebuild?); a published file never changes, so it stays as it "
                        "is — bump the version to publish new content",
                        "stderr",
                    )
                else:
                    ctx.log(f"{info.path.name} is already on the index; not uploading it again")
                skipped.append(info.path.name)
                continue
            if auth is None:
                raise NonRetryableError(
                    "no index credentials: set QUARTERDECK_PYPI_TOKEN (or "
                    "QUARTERDECK_PYPI_USERNAME and QUARTERDECK_PYPI_PASSWORD) in the environment"
                )
            ctx.log(f"uploading {info.path.name} ({len(content)} bytes) to {params.repository_url}")
            try:
                response = await client.post(
                    params.repository_url,
                    data=_multi(_form(info, content)),
                    files={"content": (info.path.name, content, "application/octet-stream")},
                )
            except httpx.HTTPError as exc:
                raise ActionError(
                    f"upload of {info.path.name} failed: {_describe(exc)}",
                    outputs={**base, "uploaded": uploaded},
                ) from None
            text = response.text[:300].strip()
            if response.status_code in (400, 409) and "exist" in text.lower():
                ctx.log(f"{info.path.name} is already on the index (the upload said so)")
                skipped.append(info.path.name)
                continue
            if response.status_code in (401, 403):
                raise NonRetryableError(
                    f"{params.repository_url} refused the credentials "
                    f"({response.status_code}); check the token in the environment",
                    outputs={**base, "uploaded": uploaded},
                )
            if response.status_code >= 300:
                raise ActionError(
                    f"upload of {info.path.name} failed: {response.status_code} {text}",
                    retryable=response.status_code >= 500 or response.status_code == 429,
                    outputs={**base, "uploaded": uploaded},
                )
            uploaded.append(info.path.name)
            ctx.log(f"uploaded {info.path.name}")
    return {
        **base,
        "already_published": not uploaded,
        "uploaded": uploaded,
        "skipped": skipped,
        "differs": differs,
    }


def _describe(exc: Exception) -> str:
    """httpx errors often have an empty message; name the kind of failure instead."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _multi(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """httpx wants repeated form fields as a list under one key."""
    out: dict[str, str | list[str]] = {}
    for key, value in fields:
        if key in out:
            current = out[key]
            out[key] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            out[key] = value
    return out
