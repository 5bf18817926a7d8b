"""``notify.webhook``: post a Slack-compatible JSON message to an incoming webhook.

A webhook URL's path is its secret, so messages name only its scheme and host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.http import (
    BODY_KEEP,
    HttpUrl,
    auth_header,
    guarded_request,
    http_client,
    retryable_status,
)
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError


class WebhookParams(ActionParams):
    url: HttpUrl = Field(description="Incoming-webhook URL (Slack, Mattermost, Rocket.Chat...)")
    text: str = Field(min_length=1)
    username: str | None = None
    icon_emoji: str | None = None
    channel: str | None = None
    blocks: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="More JSON fields")
    timeout: Duration = 15.0
    auth: str | None = Field(
        default=None, description="A credential named in the config, sent only to its hosts"
    )


@action("notify.webhook", WebhookParams)
async def notify_webhook(params: WebhookParams, ctx: ActionContext) -> dict[str, Any]:
    """Post a Slack-compatible JSON message to a webhook."""
    payload: dict[str, Any] = {"text": params.text}
    for key in ("username", "icon_emoji", "channel", "blocks"):
        value = getattr(params, key)
        if value is not None:
            payload[key] = value
    payload.update(params.extra)
    parts = urlsplit(params.url)
    shown = f"{parts.scheme}://{parts.netloc}/…"  # a webhook URL's path is its secret
    ctx.log(f"posting to {shown}: {params.text.splitlines()[0]}")
    async with http_client(params.timeout) as client:
        headers = {"Idempotency-Key": ctx.idempotency_key}
        if params.auth:
            headers.update(auth_header(ctx, client, params.auth))
        response = await guarded_request(
            ctx,
            client,
            "POST",
            params.url,
            shown=shown,
            json=payload,
            headers=headers,
        )
    if not 200 <= response.status_code < 300:
        raise ActionError(
            f"webhook answered {response.status_code}: {response.text[:200]}",
            retryable=retryable_status(response.status_code),
        )
    ctx.log(f"→ {response.status_code} {response.text[:200]}")
    return {"status": response.status_code, "response": response.text[:BODY_KEEP]}
