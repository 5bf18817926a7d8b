"""prometheus.query against a real Prometheus (Debian package ``prometheus``) on 127.0.0.1.

The test starts the binary on a free port with a temp config and data dir, scraping a
local ``/metrics`` endpoint every second, and waits (bounded) for the first scrape.
Without the binary the tests skip naming the package; under ``CI=true`` they fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.errors import ActionError, NonRetryableError
from tests.helpers import make_ctx, run_workflow, write_workflow
from tests.servers import HTTPService, PrometheusServer, assert_invalid, run_action, step_outputs

METRICS = {
    "demo_up": 1.0,
    "demo_error_ratio": 0.02,
    'demo_requests_total{code="200"}': 100.0,
    'demo_requests_total{code="500"}': 50.0,
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with (
        HTTPService(metrics=METRICS) as service,
        PrometheusServer(
            [f"127.0.0.1:{service.port}"], tmp_path_factory.mktemp("prometheus")
        ) as prom,
    ):
        prom.wait_for_series('demo_requests_total{code="500"}')
        assert service.hits("/metrics") >= 1
        yield prom


def query(prom: PrometheusServer, tmp_path: Path, **with_: Any) -> dict[str, Any]:
    ctx = make_ctx(tmp_path)
    return asyncio.run(run_action("prometheus.query", {"url": prom.url, **with_}, ctx))


def failure(prom: PrometheusServer, tmp_path: Path, **with_: Any) -> ActionError:
    with pytest.raises(ActionError) as info:
        query(prom, tmp_path, **with_)
    return info.value


def test_instant_query_meets_threshold(prometheus: PrometheusServer, tmp_path: Path) -> None:
    out = query(prometheus, tmp_path, query="demo_error_ratio", threshold=0.05)
    assert out["value"] == 0.02 and out["passed"] is True and out["reason"] == ""
    assert out["result_type"] == "vector" and out["series_count"] == 1
    metric = out["series"][0]["metric"]
    assert metric["__name__"] == "demo_error_ratio" and metric["job"] == "service"


def test_threshold_not_met_fails_or_reports(prometheus: PrometheusServer, tmp_path: Path) -> None:
    err = failure(prometheus, tmp_path, query="demo_error_ratio", threshold=0.01)
    assert err.message == "demo_error_ratio: 0.02 is not <= 0.01" and not err.retryable
    assert err.outputs["passed"] is False and err.outputs["value"] == 0.02
    out = query(
        prometheus, tmp_path, query="demo_error_ratio", threshold=0.01, fail_on_threshold=False
    )
    assert out["passed"] is False


def test_reduce_over_series(prometheus: PrometheusServer, tmp_path: Path) -> None:
    assert query(prometheus, tmp_path, query="sum(demo_requests_total)")["value"] == 150
    assert query(prometheus, tmp_path, query="demo_requests_total")["value"] == 100
    low = query(
        prometheus,
        tmp_path,
        query="demo_requests_total",
        reduce="min",
        threshold=60,
        comparison=">",
        fail_on_threshold=False,
    )
    assert low["value"] == 50 and low["passed"] is False


def test_range_query(prometheus: PrometheusServer, tmp_path: Path) -> None:
    out = query(
        prometheus, tmp_path, query="demo_up", range="30s", step="1s", threshold=1, comparison="=="
    )
    assert out["result_type"] == "matrix" and out["passed"] is True
    points = out["series"][0]["values"]
    assert points and all(v == 1.0 for _, v in points)


def test_no_data_and_bad_queries(prometheus: PrometheusServer, tmp_path: Path) -> None:
    err = failure(prometheus, tmp_path, query="no_such_metric", threshold=1)
    assert "the query returned no data" in err.message
    out = query(prometheus, tmp_path, query="no_such_metric", threshold=1, on_no_data="pass")
    assert out["value"] is None and out["passed"] is True
    err = failure(prometheus, tmp_path, query="sum(demo_up")
    assert isinstance(err, NonRetryableError)
    assert err.message.startswith("Prometheus refused the query: bad_data")


def test_not_a_prometheus_server(tmp_path: Path) -> None:
    with HTTPService() as other:
        ctx = make_ctx(tmp_path)
        with pytest.raises(NonRetryableError, match="a Prometheus server"):
            asyncio.run(run_action("prometheus.query", {"url": other.url, "query": "up"}, ctx))


def test_value_feeds_a_quality_gate(prometheus: PrometheusServer, tmp_path: Path) -> None:
    ran = run_workflow(
        tmp_path,
        f"""
name: slo-check
stages:
  - id: verify
    steps:
      - id: errors
        uses: prometheus.query
        with: {{url: "{prometheus.url}", query: "demo_error_ratio"}}
    gate:
      id: slo
      all: ["{{{{ steps.errors.outputs.value < 0.05 }}}}"]
""",
    )
    assert ran.state.status == "succeeded", ran.state.to_json()
    assert step_outputs(ran, "errors")["value"] == 0.02


def test_bad_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        """\
name: bad-prom
stages:
  - id: s
    steps:
      - id: a
        uses: prometheus.query
        with:
          url: "http://127.0.0.1:9090"
          query: up
          comparison: "~"
      - id: b
        uses: prometheus.query
        with:
          url: "http://127.0.0.1:9090"
          query: up
          treshold: 3
      - id: c
        uses: prometheus.query
        with:
          url: "http://127.0.0.1:9090"
          query: up
          range: 5 minutes
""",
    )
    assert_invalid(
        path,
        {
            10: "prometheus.query",
            16: "unknown parameter 'treshold'",
            22: "bad duration",
        },
    )
