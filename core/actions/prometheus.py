"""``prometheus.query``: a PromQL instant or range query, reduced to one value and compared
with a threshold, so a stage can gate on an SLO ("error ratio <= 1%") instead of on a guess.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.http import HttpUrl, guarded_request, http_client, retryable_status
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError

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
    async with http_client(params.timeout) as client:
        response = await guarded_request(
            ctx, client, "GET", endpoint, params=query, headers=params.headers
        )
    try:
        reply = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ActionError(
            f"{endpoint} answered {response.status_code} without JSON: is {base} a Prometheus "
            "server?",
            retryable=retryable_status(response.status_code),
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
        raise ActionError(message, retryable=retryable_status(response.status_code))
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
