"""Network actions over HTTP: ``http.request``, ``http.health_check``, ``prometheus.query``,
``github.release`` and ``notify.webhook``.

Each call that contacts a target goes through the run's circuit breaker for that target
(:mod:`quarterdeck.core.policy.circuit`), except ``http.health_check``: it is the instrument that
measures a target, and has its own fail-fast rule (N consecutive failures). Requests that change
something carry an ``Idempotency-Key`` header (the step's stable key), and
``github.release`` looks for its own earlier release before creating one, so a resumed
step notices what it already did instead of doing it twice.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import AfterValidator, Field, field_validator, model_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.policy.circuit import circuit_board, http_target

USER_AGENT = "quarterdeck"
_BODY_LINES = 200
_BODY_KEEP = 64 * 1024
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


def _retryable_status(status: int) -> bool:
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


def _client(timeout: float, *, follow_redirects: bool = False) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=follow_redirects, headers={"User-Agent": USER_AGENT}
    )


async def _guarded_request(
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
    async with _client(params.timeout, follow_redirects=params.follow_redirects) as client:
        response = await _guarded_request(ctx, client, params.method, params.url, **kwargs)
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
        "body": text[:_BODY_KEEP],
        "json": reply,
        "elapsed_ms": elapsed_ms,
        "content_type": response.headers.get("content-type", ""),
    }
    if not outputs["ok"]:
        wanted = ", ".join(map(str, params.expected_status or [])) or "2xx"
        raise ActionError(
            f"{params.method} {params.url} answered {response.status_code} "
            f"{response.reason_phrase} (expected {wanted})",
            retryable=_retryable_status(response.status_code),
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
    async with _client(params.timeout) as client:
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


# -- prometheus.query --------------------------------------------------------------------

Comparison = Literal["<", "<=", ">", ">=", "==", "!="]
_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class PrometheusQueryParams(ActionParams):
    url: HttpUrl = Field(description="Prometheus base URL, e.g. http://127.0.0.1:9090")
    query: str = Field(min_length=1, description="PromQL")
    range: Duration | None = Field(
        default=None, description="Range query over the last ... (e.g. 5m); omit for instant"
    )
    step: Duration = Field(default=15.0, description="Resolution of a range query")
    reduce: Literal["max", "min", "avg", "sum", "last", "first"] = Field(
        default="max", description="How the samples of every series become one value"
    )
    threshold: float | None = None
    comparison: Comparison = Field(
        default="<=", description="Passes when value <comparison> threshold"
    )
    on_no_data: Literal["fail", "pass"] = "fail"
    fail_on_threshold: bool = Field(
        default=True, description="Fail the step when the threshold is not met"
    )
    timeout: Duration = 30.0
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("step")
    @classmethod
    def _positive_step(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("step must be more than 0")
        return value


def _samples(result_type: str, result: Any) -> tuple[list[float], list[dict[str, Any]]]:
    """Every sample value in a Prometheus result, and the series as plain JSON."""
    values: list[float] = []
    series: list[dict[str, Any]] = []
    if result_type == "scalar":
        values.append(float(result[1]))
        series.append({"metric": {}, "value": float(result[1])})
    elif result_type == "vector":
        for item in result:
            v = float(item["value"][1])
            values.append(v)
            series.append({"metric": item.get("metric", {}), "value": v})
    elif result_type == "matrix":
        for item in result:
            points = [[float(ts), float(v)] for ts, v in item.get("values", [])]
            values.extend(v for _, v in points)
            series.append({"metric": item.get("metric", {}), "values": points})
    return values, series


def _reduce(how: str, values: list[float]) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return None
    if how == "max":
        return max(clean)
    if how == "min":
        return min(clean)
    if how == "sum":
        return sum(clean)
    if how == "avg":
        return sum(clean) / len(clean)
    if how == "first":
        return clean[0]
    return clean[-1]


@action("prometheus.query", PrometheusQueryParams)
async def prometheus_query(params: PrometheusQueryParams, ctx: ActionContext) -> dict[str, Any]:
    """Run a PromQL instant or range query; outputs the value and the threshold outcome."""
    base = params.url.rstrip("/")
    now = ctx.clock.now()
    if params.range is None:
        endpoint, query = f"{base}/api/v1/query", {"query": params.query, "time": f"{now:.3f}"}
    else:
        endpoint = f"{base}/api/v1/query_range"
        query = {
            "query": params.query,
            "start": f"{now - params.range:.3f}",
            "end": f"{now:.3f}",
            "step": f"{params.step:g}",
        }
    ctx.log(f"PromQL {'range ' if params.range else ''}query: {params.query}")
    async with _client(params.timeout) as client:
        response = await _guarded_request(
            ctx, client, "GET", endpoint, params=query, headers=params.headers
        )
    try:
        reply = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ActionError(
            f"{endpoint} answered {response.status_code} without JSON: is {base} a Prometheus "
            "server?",
            retryable=_retryable_status(response.status_code),
        ) from None
    if not isinstance(reply, dict) or reply.get("status") not in ("success", "error"):
        raise NonRetryableError(
            f"{endpoint} answered {response.status_code} but not in the Prometheus API format: "
            f"is {base} a Prometheus server?"
        )
    if reply.get("status") != "success":
        message = (
            f"Prometheus refused the query: {reply.get('errorType', 'error')}: "
            f"{reply.get('error', response.text[:200])}"
        )
        if response.status_code in (400, 422):
            raise NonRetryableError(message)
        raise ActionError(message, retryable=_retryable_status(response.status_code))
    data = reply.get("data", {})
    result_type = data.get("resultType", "")
    values, series = _samples(result_type, data.get("result", []))
    value = _reduce(params.reduce, values)
    for warning in reply.get("warnings", []) or []:
        ctx.log(f"warning: {warning}", "stderr")
    for s in series[:50]:
        shown = s.get("value", s.get("values", [[0, None]])[-1][1] if s.get("values") else None)
        ctx.log(f"{_series_name(s['metric'])} = {shown}")
    passed: bool | None = None
    reason = ""
    if params.threshold is not None:
        if value is None:
            passed = params.on_no_data == "pass"
            reason = "" if passed else "the query returned no data"
        else:
            passed = _COMPARE[params.comparison](value, params.threshold)
            if not passed:
                reason = f"{value:g} is not {params.comparison} {params.threshold:g}"
    outputs: dict[str, Any] = {
        "value": value,
        "result_type": result_type,
        "series": series,
        "series_count": len(series),
        "passed": passed,
        "reason": reason,
    }
    ctx.log(
        f"value ({params.reduce}) = {value}"
        + ("" if passed is None else f": {'passed' if passed else 'FAILED: ' + reason}")
    )
    if passed is False and params.fail_on_threshold:
        raise ActionError(f"{params.query}: {reason}", retryable=False, outputs=outputs)
    return outputs


def _series_name(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}" if labels or not name else name


# -- github.release ----------------------------------------------------------------------

_DEFAULT_GITHUB_API = "https://api.github.com"


class GithubReleaseParams(ActionParams):
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    tag: str = Field(min_length=1)
    name: str | None = Field(default=None, description="Release title (default: the tag)")
    notes: str = Field(default="", description="Release notes (Markdown)")
    target: str | None = Field(default=None, description="Commit-ish the tag is created from")
    draft: bool = False
    prerelease: bool = False
    assets: list[str] = Field(default_factory=list, description="Files to upload")
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
        retryable=_retryable_status(response.status_code),
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
        path = Path(asset) if Path(asset).is_absolute() else ctx.workdir / asset
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
    async with _client(params.timeout) as client:
        client.headers.update(headers)
        found = await _guarded_request(
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
            made = await _guarded_request(ctx, client, "POST", f"{repo_url}/releases", json=body)
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
    listed = await _guarded_request(
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
        reply = await _guarded_request(
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


# -- notify.webhook ----------------------------------------------------------------------


class WebhookParams(ActionParams):
    url: HttpUrl = Field(description="Incoming-webhook URL (Slack, Mattermost, Rocket.Chat...)")
    text: str = Field(min_length=1)
    username: str | None = None
    icon_emoji: str | None = None
    channel: str | None = None
    blocks: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="More JSON fields")
    timeout: Duration = 15.0


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
    async with _client(params.timeout) as client:
        response = await _guarded_request(
            ctx,
            client,
            "POST",
            params.url,
            shown=shown,
            json=payload,
            headers={"Idempotency-Key": ctx.idempotency_key},
        )
    if not 200 <= response.status_code < 300:
        raise ActionError(
            f"webhook answered {response.status_code}: {response.text[:200]}",
            retryable=_retryable_status(response.status_code),
        )
    ctx.log(f"→ {response.status_code} {response.text[:200]}")
    return {"status": response.status_code, "response": response.text[:_BODY_KEEP]}
