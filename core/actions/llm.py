"""The ``llm.chat`` action: one OpenAI-compatible chat completion, charged to the persona.

Where to call and with which key comes from config (``llm: {base_url, api_key,
api_key_env}``) or the environment (``QUARTERDECK_LLM_BASE_URL``,
``QUARTERDECK_LLM_API_KEY``, also ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``), never from
the workflow file, so a shared workflow cannot send someone's key elsewhere. The model
and system prompt come from the stage's persona unless the step overrides them.

Rate limits (429) and server errors (5xx) are retried up to ``llm.max_retries`` times,
honouring ``Retry-After``; sleeps go through ``ctx.clock`` so tests need not wait. Tokens
come from the reply's ``usage``; when a server sends none they are estimated, and the
estimate is marked ``estimated: true`` everywhere it appears.
"""

from __future__ import annotations

import json
import os
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.lazy import lazy_module
from quarterdeck.core.policy.budget import BudgetLedger, Reservation, estimate_tokens

if TYPE_CHECKING:
    import httpx

    from quarterdeck.core.journal import events
else:
    httpx = lazy_module("httpx")
    events = lazy_module("quarterdeck.core.journal.events")  # with a call, not `validate`

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0
BASE_URL_ENV = ("QUARTERDECK_LLM_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENV = ("QUARTERDECK_LLM_API_KEY", "OPENAI_API_KEY")


class ChatParams(ActionParams):
    """``with:`` of ``llm.chat``. No URL or key here on purpose: those come from config."""

    prompt: str = Field(description="The user message")
    system: str | None = Field(default=None, description="Replaces the persona's system prompt")
    model: str | None = Field(default=None, description="Overrides the persona's model")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    response_format: Literal["text", "json"] = "text"
    timeout: Duration | None = Field(default=None, description="Per request; default llm.timeout")


def credential_values(settings: Any) -> list[str]:
    """Every API key Quarterdeck might send, so the runner can redact them all."""
    values: list[str] = []
    llm = getattr(settings, "llm", None)
    if llm is not None and llm.api_key:
        values.append(llm.api_key)
    names = [getattr(llm, "api_key_env", None), *API_KEY_ENV]
    for name in names:
        if name and os.environ.get(name):
            values.append(os.environ[name])
    return values


def endpoint(settings: Any) -> tuple[str, str | None]:
    """``(base_url, api_key)`` from config first, then the environment."""
    llm = settings.llm
    base = llm.base_url or next(
        (os.environ[n] for n in BASE_URL_ENV if os.environ.get(n)), DEFAULT_BASE_URL
    )
    key = llm.api_key or next(
        (os.environ[n] for n in (llm.api_key_env, *API_KEY_ENV) if n and os.environ.get(n)),
        None,
    )
    return base.rstrip("/"), key


def _retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return response.text[:200].strip()


class _Masker:
    """Redacts through the run's redactor and, belt and braces, the key we hold."""

    def __init__(self, ctx: ActionContext, key: str | None) -> None:
        self._ctx = ctx
        self._key = key

    def __call__(self, text: str) -> str:
        if self._key and len(self._key) >= 4:
            text = text.replace(self._key, "***")
        return self._ctx.redact(text)


def _parse_reply(response: httpx.Response, where: str) -> tuple[str, dict[str, Any], str]:
    """``(text, usage or {}, finish_reason)``; a reply of the wrong shape is a clear error."""
    try:
        data = response.json()
    except ValueError:
        snippet = response.text[:80]
        raise NonRetryableError(
            f"malformed reply from {where}: HTTP {response.status_code} with a body that is "
            f"not JSON (starts {snippet!r}); is base_url an OpenAI-compatible API?"
        ) from None
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message["content"]
        if not isinstance(text, str):
            raise TypeError("content is not a string")
    except (KeyError, IndexError, TypeError) as exc:
        raise NonRetryableError(
            f"malformed reply from {where}: expected choices[0].message.content "
            f"(a string) in a chat completion ({exc.__class__.__name__}: {exc})"
        ) from None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return text, usage or {}, str(choice.get("finish_reason") or "")


async def _post(
    ctx: ActionContext,
    client: httpx.AsyncClient,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    where: str,
    timeout: float,
    mask: _Masker,
) -> httpx.Response:
    """POST with retries on 429/5xx/transport errors; raises ActionError when it gives up."""
    retries = max(0, int(ctx.settings.llm.max_retries))
    last = ""
    for attempt in range(retries + 1):
        delay: float | None = None
        try:
            response = await client.post(url, json=payload, headers=headers)
        except httpx.TimeoutException:
            last = f"no reply from {where} within {timeout:g}s"
        except httpx.TransportError as exc:
            last = mask(f"cannot reach {where}: {exc.__class__.__name__}: {exc}")
        else:
            status = response.status_code
            if status == 429 or status >= 500:
                delay = _retry_after(response, ctx.clock.now())
                label = "rate limited (429)" if status == 429 else f"server error ({status})"
                last = mask(f"{where} answered {label}: {_server_message(response)}")
                if delay is not None and delay > MAX_RETRY_AFTER_SECONDS:
                    raise ActionError(
                        f"{last}; it asks to wait {delay:g}s (Retry-After), longer than "
                        f"{MAX_RETRY_AFTER_SECONDS:g}s: try again later"
                    )
            elif status >= 400:
                message = mask(_server_message(response))
                hint = ""
                if status in (401, 403):
                    hint = (
                        " — check the API key (llm.api_key / llm.api_key_env in config, "
                        "or QUARTERDECK_LLM_API_KEY)"
                    )
                elif status == 404:
                    hint = " — check llm.base_url and the model name"
                raise NonRetryableError(
                    f"{where} refused the request (HTTP {status}): {message}{hint}"
                )
            else:
                return response
        if attempt == retries:
            break
        if delay is None:
            delay = min(MAX_BACKOFF_SECONDS, 2.0**attempt)
        ctx.log(f"llm: {last}; retry {attempt + 1}/{retries} in {delay:g}s", "stderr")
        await ctx.clock.sleep(delay)
    raise ActionError(f"{last} (gave up after {retries + 1} attempt{'s' if retries else ''})")


@action("llm.chat", ChatParams)
async def llm_chat(params: ChatParams, ctx: ActionContext) -> dict[str, Any]:
    """Ask an OpenAI-compatible chat model; tokens are charged to the stage's persona."""
    base, key = endpoint(ctx.settings)
    mask = _Masker(ctx, key)
    host = urlsplit(base).netloc or base
    where = f"the LLM server {host}"
    if key is None and base == DEFAULT_BASE_URL:
        raise NonRetryableError(
            "no API key for the LLM: set llm.api_key_env (or llm.api_key) in "
            ".quarterdeck/config.yaml, or QUARTERDECK_LLM_API_KEY / OPENAI_API_KEY; for a "
            "local OpenAI-compatible server set llm.base_url or QUARTERDECK_LLM_BASE_URL"
        )
    persona = ctx.persona
    model = params.model or getattr(persona, "model", None) or DEFAULT_MODEL
    system = params.system if params.system is not None else getattr(persona, "system_prompt", "")
    messages: list[dict[str, str]] = []
    if system and system.strip():
        messages.append({"role": "system", "content": system.strip()})
    messages.append({"role": "user", "content": params.prompt})
    payload: dict[str, Any] = {"model": model, "messages": messages}
    if params.max_tokens is not None:
        payload["max_tokens"] = params.max_tokens
    if params.temperature is not None:
        payload["temperature"] = params.temperature
    if params.response_format == "json":
        payload["response_format"] = {"type": "json_object"}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "quarterdeck",
    }
    if key:
        headers["Authorization"] = f"Bearer {key}"

    name = getattr(persona, "name", None)
    ledger = ctx.services.get("budget")
    if name and ledger is None:  # called outside a run: a ledger of its own
        ledger = ctx.services.setdefault(
            "budget",
            BudgetLedger(
                default_policy=getattr(ctx.settings, "budget_policy", None), run_id=ctx.run_id
            ),
        )
    prompt_estimate = sum(estimate_tokens(m["content"]) for m in messages)
    reservation: Reservation | None = None
    if name and ledger is not None:
        need = prompt_estimate + (params.max_tokens or 0)
        reservation = await ledger.reserve(ctx, name, need, persona)

    timeout = float(params.timeout if params.timeout is not None else ctx.settings.llm.timeout)
    ctx.log(f"llm: {model} via {host}" + (f" for {name}" if name else ""))
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False) as client:
            response = await _post(
                ctx, client, f"{base}/chat/completions", payload, headers, where, timeout, mask
            )
        text, usage, finish = _parse_reply(response, where)
    except BaseException:
        if ledger is not None:
            ledger.release(reservation)
        raise

    estimated = not ({"prompt_tokens", "completion_tokens"} <= usage.keys())
    try:
        prompt_tokens = int(usage["prompt_tokens"]) if not estimated else prompt_estimate
        completion_tokens = (
            int(usage["completion_tokens"]) if not estimated else estimate_tokens(text)
        )
    except (TypeError, ValueError):
        estimated, prompt_tokens, completion_tokens = True, prompt_estimate, estimate_tokens(text)
    if name and ledger is not None:
        charged = await ledger.settle(
            ctx,
            reservation,
            name,
            model=model,
            prompt=prompt_tokens,
            completion=completion_tokens,
            estimated=estimated,
        )
    else:
        charged = events.TokensUsed(
            persona=None,
            model=model,
            prompt=prompt_tokens,
            completion=completion_tokens,
            total=prompt_tokens + completion_tokens,
            estimated=estimated,
        ).to_data()
        if ctx.emit_event is not None:
            await ctx.emit_event(events.EventType.TOKENS_USED, charged)
    note = " (estimated)" if estimated else ""
    ctx.log(
        f"llm: {charged['total']} tokens{note}"
        + (
            f", {charged['remaining']} left of {charged['budget']}"
            if "remaining" in charged
            else ""
        )
    )

    outputs: dict[str, Any] = {
        "text": text,
        "model": model,
        "finish_reason": finish,
        "usage": {
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "total": prompt_tokens + completion_tokens,
            "estimated": estimated,
        },
        "estimated": estimated,
    }
    if "remaining" in charged:
        outputs["budget_remaining"] = charged["remaining"]
    if params.response_format == "json":
        try:
            outputs["json"] = json.loads(text)
        except ValueError as exc:
            outputs["json_error"] = f"the reply is not valid JSON: {exc}"
            ctx.log(f"llm: asked for JSON but the reply does not parse ({exc})", "stderr")
    return outputs
