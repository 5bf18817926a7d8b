"""HTTP actions: ``http.request`` and ``http.health_check``, and the client every network
action shares (:mod:`~quarterdeck.core.actions.prometheus`, :mod:`~quarterdeck.core.actions.github`,
:mod:`~quarterdeck.core.actions.notify`).

Each call that contacts a target goes through the run's circuit breaker for that target
(:mod:`quarterdeck.core.policy.circuit`) by way of :func:`guarded_request`, except
``http.health_check``: it is the instrument that measures a target, and has its own fail-fast
rule (N consecutive failures). Requests that change something carry an ``Idempotency-Key``
header (the step's stable key), so a resumed step's target can notice a repeat.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.credentials import check_destination, credential_value
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.lazy import lazy_module
from quarterdeck.core.policy.circuit import circuit_board, http_target

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")

USER_AGENT = "quarterdeck"
_BODY_LINES = 200
BODY_KEEP = 64 * 1024
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/health")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_url)]


def _status_ok(status: int, expected: list[int] | None) -> bool:
    return 200 <= status < 300 if not expected else status in expected


def _transport_error(url: str, exc: httpx.HTTPError) -> ActionError:
    """A message for people: what failed, against what, and what to check."""
    if isinstance(exc, httpx.ConnectError):
        return ActionError(
            f"cannot connect to {url}: {exc or 'connection failed'} — check that the service "
            "is running and the host and port are right"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ActionError(f"{url} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return NonRetryableError(f"bad URL {url}: {exc}")
    return ActionError(f"request to {url} failed: {type(exc).__name__}: {exc}")


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status may pass on its own (5xx, timeouts, rate limits)."""
    return status >= 500 or status in (408, 425, 429)


def json_path(data: Any, path: str) -> Any:
    """``a.b.0.c`` (or ``$.a.b[0].c``) inside a JSON value; KeyError names the missing part."""
    text = path.strip().removeprefix("$").removeprefix(".").replace("[", ".").replace("]", "")
    here = data
    walked: list[str] = []
    for part in [p for p in text.split(".") if p]:
        walked.append(part)
        if isinstance(here, list):
            try:
                here = here[int(part)]
                continue
            except (ValueError, IndexError):
                raise KeyError(".".join(walked)) from None
        if isinstance(here, dict) and part in here:
            here = here[part]
            continue
        raise KeyError(".".join(walked))
    return here


def _stream_body(ctx: ActionContext, text: str) -> None:
    for i, line in enumerate(text.splitlines()):
        if i >= _BODY_LINES:
            ctx.log(f"… ({len(text.splitlines()) - _BODY_LINES} more lines)")
            return
        ctx.log(line)


def http_client(timeout: float, *, follow_redirects: bool = False) -> httpx.AsyncClient:
    """The client every network action uses: one User-Agent, no redirects unless asked."""
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=follow_redirects, headers={"User-Agent": USER_AGENT}
    )


async def guarded_request(
    ctx: ActionContext,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    shown: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request through the target's circuit breaker; 5xx and transport errors count.

    ``shown`` replaces the URL in messages when its path is a secret (webhook URLs).
    """
    board = circuit_board(ctx)
    async with board.guard(http_target(url), ctx) as verdict:
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(shown or url, exc) from None
        if response.status_code >= 500:
            verdict.failed(f"HTTP {response.status_code}")
        else:
            verdict.ok()
    return response


def bind_credential(
    client: httpx.AsyncClient, settings: Any, credential: str, extra_hosts: tuple[str, ...] = ()
) -> None:
    """Check every request ``client`` sends — redirects included — against the hosts
    ``credential`` may go to (:func:`~quarterdeck.core.credentials.check_destination`)."""

    async def check(request: httpx.Request) -> None:
        check_destination(settings, credential, str(request.url), extra_hosts=extra_hosts)

    client.event_hooks["request"] = [*client.event_hooks.get("request", []), check]


def auth_header(ctx: ActionContext, client: httpx.AsyncClient, credential: str) -> dict[str, str]:
    """``Authorization: Bearer …`` from a credential named in the config, bound to its hosts."""
    value = credential_value(ctx.settings, credential)
    if not value:
        raise NonRetryableError(f"credential {credential!r}: its environment variable is not set")
    bind_credential(client, ctx.settings, credential)
    return {"Authorization": f"Bearer {value}"}


# -- http.request ------------------------------------------------------------------------


class HttpRequestParams(ActionParams):
    url: HttpUrl = Field(description="http(s) URL to call")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json", description="A JSON request body")
    body: str | None = Field(default=None, description="A raw text request body")
    expected_status: list[int] | None = Field(
        default=None, description="Accepted status codes (default: any 2xx)"
    )
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="Output name → path in the JSON reply, e.g. {version: data.version}",
    )
    timeout: Duration = 30.0
    follow_redirects: bool = False
    auth: str | None = Field(
        default=None,
        description="A credential named in the config (credentials.NAME: env, hosts), "
        "sent as a bearer token only to its hosts",
    )
    idempotency_header: str | None = Field(
        default="Idempotency-Key",
        description="Header carrying the step's idempotency key on non-GET requests (null: none)",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expected_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @model_validator(mode="after")
    def _one_body(self) -> HttpRequestParams:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either json or body, not both")
        return self


@action("http.request", HttpRequestParams)
async def http_request(params: HttpRequestParams, ctx: ActionContext) -> dict[str, Any]:
    """Call an HTTP endpoint; outputs status, body, JSON reply and values picked from it."""
    headers = dict(params.headers)
    if params.idempotency_header and params.method not in _SAFE_METHODS:
        headers.setdefault(params.idempotency_header, ctx.idempotency_key)
    kwargs: dict[str, Any] = {"headers": headers, "params": params.query or None}
    if params.json_body is not None:
        kwargs["json"] = params.json_body
    elif params.body is not None:
        kwargs["content"] = params.body.encode()
    ctx.log(f"{params.method} {params.url}")
    started = time.perf_counter()
    async with http_client(params.timeout, follow_redirects=params.follow_redirects) as client:
        if params.auth:
            headers.update(auth_header(ctx, client, params.auth))
        response = await guarded_request(ctx, client, params.method, params.url, **kwargs)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    text = response.text
    ctx.log(f"→ {response.status_code} {response.reason_phrase} ({elapsed_ms:.0f} ms)")
    _stream_body(ctx, text)
    reply: Any = None
    if text and "json" in response.headers.get("content-type", ""):
        try:
            reply = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            reply = None
    outputs: dict[str, Any] = {
        "status": response.status_code,
        "ok": _status_ok(response.status_code, params.expected_status),
        "body": text[:BODY_KEEP],
        "json": reply,
        "elapsed_ms": elapsed_ms,
        "content_type": response.headers.get("content-type", ""),
    }
    if not outputs["ok"]:
        wanted = ", ".join(map(str, params.expected_status or [])) or "2xx"
        raise ActionError(
            f"{params.method} {params.url} answered {response.status_code} "
            f"{response.reason_phrase} (expected {wanted})",
            retryable=retryable_status(response.status_code),
            outputs=outputs,
        )
    for name, path in params.outputs.items():
        if reply is None:
            raise NonRetryableError(
                f"output {name!r}: the reply is not JSON (content-type "
                f"{outputs['content_type'] or 'missing'})",
                outputs=outputs,
            )
        try:
            outputs[name] = json_path(reply, path)
        except KeyError as exc:
            raise NonRetryableError(
                f"output {name!r}: the JSON reply has no {exc.args[0]!r} (path {path!r})",
                outputs=outputs,
            ) from None
    return outputs


# -- http.health_check -------------------------------------------------------------------


class HealthCheckParams(ActionParams):
    url: HttpUrl
    method: Literal["GET", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    expected_status: list[int] | None = Field(default=None, description="default: any 2xx")
    interval: Duration = Field(default=1.0, description="Time between polls")
    window: Duration = Field(default=30.0, description="How long to keep polling")
    timeout: Duration = Field(default=2.0, description="Per request")
    min_success_ratio: float = Field(default=0.99, ge=0, le=1)
    max_p99_ms: float = Field(default=500.0, gt=0)
    max_consecutive_failures: int = Field(default=3, ge=1)

    @field_validator("expected_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @model_validator(mode="after")
    def _sane(self) -> HealthCheckParams:
        if self.interval <= 0:
            raise ValueError("interval must be more than 0")
        if self.window < self.interval:
            raise ValueError("window must be at least one interval long")
        return self


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (what "p99 latency" means in most SLO docs)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@action("http.health_check", HealthCheckParams)
async def http_health_check(params: HealthCheckParams, ctx: ActionContext) -> dict[str, Any]:
    """Poll an endpoint for a window; pass on success ratio and p99 latency."""
    series: list[dict[str, Any]] = []
    clock = ctx.clock
    start = clock.monotonic()
    polls = max(1, int(params.window / params.interval + 1e-9))
    consecutive = 0
    reason = ""
    ctx.log(
        f"polling {params.url} every {params.interval:g}s for {params.window:g}s "
        f"(pass: ≥{params.min_success_ratio:.0%} ok, p99 ≤ {params.max_p99_ms:g} ms)"
    )
    async with http_client(params.timeout) as client:
        for n in range(polls):
            t = round(clock.monotonic() - start, 3)
            began = time.perf_counter()
            status: int | None = None
            error = ""
            try:
                response = await client.request(params.method, params.url, headers=params.headers)
                status = response.status_code
                ok = _status_ok(status, params.expected_status)
                if not ok:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                ok = False
                error = _transport_error(params.url, exc).message
            latency = round((time.perf_counter() - began) * 1000, 3)
            point: dict[str, Any] = {"t": t, "ok": ok, "latency_ms": latency, "status": status}
            if error:
                point["error"] = error
            series.append(point)
            ctx.log(
                f"[{n + 1}/{polls}] t={t:g}s {status if status is not None else '---'} "
                f"{latency:.0f} ms {'ok' if ok else 'FAIL ' + error}"
            )
            consecutive = 0 if ok else consecutive + 1
            if consecutive >= params.max_consecutive_failures:
                reason = f"{consecutive} consecutive failures (last: {error})"
                break
            if n + 1 < polls:
                await clock.sleep(params.interval)
    oks = sum(1 for p in series if p["ok"])
    ratio = round(oks / len(series), 6)
    p99 = percentile([p["latency_ms"] for p in series], 99)
    if not reason and ratio < params.min_success_ratio:
        reason = f"success ratio {ratio:.2%} is below {params.min_success_ratio:.2%}"
    if not reason and p99 > params.max_p99_ms:
        reason = f"p99 latency {p99:.0f} ms is above {params.max_p99_ms:g} ms"
    outputs: dict[str, Any] = {
        "series": series,
        "samples": len(series),
        "failures": len(series) - oks,
        "success_ratio": ratio,
        "p99_ms": p99,
        "passed": not reason,
        "reason": reason,
    }
    ctx.log(f"success {ratio:.2%}, p99 {p99:.0f} ms: {reason or 'passed'}")
    if reason:
        raise ActionError(f"health check of {params.url} failed: {reason}", outputs=outputs)
    return outputs
