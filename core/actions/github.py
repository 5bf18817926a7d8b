"""``github.release``: create a GitHub release and upload its assets.

The action looks for its own earlier release (by tag) and for assets already uploaded (by
name) before creating anything, so a resumed step notices what it already did instead of
doing it twice. The token comes from the config or the environment, never the workflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.http import (
    HttpUrl,
    bind_credential,
    guarded_request,
    http_client,
    retryable_status,
)
from quarterdeck.core.actions.paths import confined
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.factories import empty_list
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")

_DEFAULT_GITHUB_API = "https://api.github.com"


class GithubReleaseParams(ActionParams):
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    tag: str = Field(min_length=1)
    name: str | None = Field(default=None, description="Release title (default: the tag)")
    notes: str = Field(default="", description="Release notes (Markdown)")
    target: str | None = Field(default=None, description="Commit-ish the tag is created from")
    draft: bool = False
    prerelease: bool = False
    assets: list[str] = Field(default_factory=empty_list, description="Files to upload")
    api_url: HttpUrl | None = Field(
        default=None,
        description="REST API base URL (default: settings.github.api_url, $GITHUB_API_URL, "
        "https://api.github.com)",
    )
    timeout: Duration = 60.0


def github_token(settings: Any) -> str | None:
    """The token from config (``github.token``) or ``$GITHUB_TOKEN``; never the workflow."""
    configured = (getattr(settings, "github", None) or {}).get("token")
    return configured or os.environ.get("GITHUB_TOKEN") or None


def trusted_github_hosts(settings: Any) -> tuple[str, ...]:
    """API hosts named by the operator (config ``github.api_url``, ``$GITHUB_API_URL``),
    never by the workflow; GitHub Enterprise uploads live on the same host."""
    configured = (getattr(settings, "github", None) or {}).get("api_url")
    hosts = [urlsplit(u).hostname for u in (configured, os.environ.get("GITHUB_API_URL")) if u]
    return tuple(h for h in hosts if h)


def github_api_url(params_url: str | None, settings: Any) -> str:
    configured = (getattr(settings, "github", None) or {}).get("api_url")
    url = params_url or configured or os.environ.get("GITHUB_API_URL") or _DEFAULT_GITHUB_API
    return url.rstrip("/")


def _github_error(what: str, response: httpx.Response) -> ActionError:
    try:
        detail = response.json().get("message", "")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        detail = response.text[:200]
    hint = ""
    if response.status_code == 401:
        hint = " — check github.token in the config or $GITHUB_TOKEN"
    elif response.status_code in (403, 404):
        hint = " — check the repository name and that the token may write releases"
    return ActionError(
        f"GitHub: {what} failed: {response.status_code} {detail}{hint}",
        retryable=retryable_status(response.status_code),
    )


@action("github.release", GithubReleaseParams)
async def github_release(params: GithubReleaseParams, ctx: ActionContext) -> dict[str, Any]:
    """Create a GitHub release with notes and assets (an existing one is reused)."""
    token = github_token(ctx.settings)
    if not token:
        reason = "no GitHub token configured (set github.token in the config or $GITHUB_TOKEN)"
        ctx.log(f"skipped: {reason}")
        return {"skipped": True, "reason": reason, "created": False}
    paths = []
    for asset in params.assets:
        path = confined(ctx.workdir, asset, [ctx.workdir, ctx.run_dir], "assets")
        if not path.is_file():
            raise NonRetryableError(f"release asset not found: {path}")
        paths.append(path)
    api = github_api_url(params.api_url, ctx.settings)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    repo_url = f"{api}/repos/{params.repo}"
    async with http_client(params.timeout) as client:
        # the token goes only to GitHub's hosts (or the configured/Actions API host), also
        # for the upload_url the server returns (credentials.github.hosts widens it)
        bind_credential(client, ctx.settings, "github", trusted_github_hosts(ctx.settings))
        client.headers.update(headers)
        found = await guarded_request(
            ctx, client, "GET", f"{repo_url}/releases/tags/{quote(params.tag, safe='')}"
        )
        if found.status_code == 200:
            release = found.json()
            created = False
            ctx.log(f"release {params.tag} already exists: {release.get('html_url', '')}")
        elif found.status_code == 404:
            body: dict[str, Any] = {
                "tag_name": params.tag,
                "name": params.name or params.tag,
                "body": params.notes,
                "draft": params.draft,
                "prerelease": params.prerelease,
            }
            if params.target:
                body["target_commitish"] = params.target
            made = await guarded_request(ctx, client, "POST", f"{repo_url}/releases", json=body)
            if made.status_code != 201:
                raise _github_error(f"creating release {params.tag}", made)
            release = made.json()
            created = True
            ctx.log(f"created release {params.tag}: {release.get('html_url', '')}")
        else:
            raise _github_error(f"looking up release {params.tag}", found)
        uploaded, kept = await _upload_assets(ctx, client, repo_url, release, paths)
    return {
        "skipped": False,
        "created": created,
        "id": release.get("id"),
        "url": release.get("html_url", ""),
        "tag": release.get("tag_name", params.tag),
        "uploaded": uploaded,
        "existing_assets": kept,
    }


async def _upload_assets(
    ctx: ActionContext,
    client: httpx.AsyncClient,
    repo_url: str,
    release: dict[str, Any],
    paths: list[Path],
) -> tuple[list[str], list[str]]:
    """Upload the assets the release does not have yet (by name): resumable."""
    if not paths:
        return [], []
    listed = await guarded_request(
        ctx,
        client,
        "GET",
        f"{repo_url}/releases/{release['id']}/assets",
        params={"per_page": 100},
    )
    if listed.status_code != 200:
        raise _github_error("listing release assets", listed)
    have = {a.get("name") for a in listed.json()}
    upload_url = str(release.get("upload_url", "")).split("{", 1)[0]
    if not upload_url:
        raise NonRetryableError("GitHub did not say where to upload assets (no upload_url)")
    uploaded: list[str] = []
    kept: list[str] = []
    for path in paths:
        if path.name in have:
            ctx.log(f"asset {path.name} already uploaded")
            kept.append(path.name)
            continue
        reply = await guarded_request(
            ctx,
            client,
            "POST",
            upload_url,
            params={"name": path.name},
            content=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        if reply.status_code != 201:
            raise _github_error(f"uploading {path.name}", reply)
        ctx.log(f"uploaded {path.name} ({path.stat().st_size} bytes)")
        uploaded.append(path.name)
    return uploaded, kept
