"""The bundled workflow files are valid and say what the issue asked of them."""

from __future__ import annotations

from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.personas.registry import load_catalog
from quarterdeck.workflows.catalog import BUNDLED_DIR
from tests.helpers import cli

BUNDLED = ["package-release", "feature-development", "incident-response", "spec-to-production"]


def test_all_bundled_workflows_validate() -> None:
    paths = [str(BUNDLED_DIR / f"{name}.yaml") for name in BUNDLED]
    result = cli("validate", *paths)
    assert result.returncode == 0, result.stderr
    for name in BUNDLED:
        assert f"{name}.yaml: ok ({name}:" in result.stdout + result.stderr


def test_spec_to_production_retry_policies() -> None:
    wf = load_workflow(BUNDLED_DIR / "spec-to-production.yaml", load_catalog()).workflow
    policies = {s.id: s.retry for s in wf.stages}
    testing, staging, production = policies["testing"], policies["staging"], policies["production"]
    assert testing is not None and staging is not None and production is not None
    assert (testing.max_attempts - 1, testing.initial_delay) == (3, 1.0)
    assert (staging.max_attempts - 1, staging.initial_delay, staging.max_delay) == (5, 2.0, 30.0)
    assert (production.max_attempts - 1, production.initial_delay, production.max_delay) == (
        3,
        5.0,
        60.0,
    )
    gate = next(s.gate for s in wf.stages if s.id == "quality")
    assert gate is not None
    checked = " ".join(gate.all)
    for output in ("coverage", "passed", "lint", "types", "secrets"):
        assert output in checked


def test_incident_routes_by_severity() -> None:
    wf = load_workflow(BUNDLED_DIR / "incident-response.yaml", load_catalog()).workflow
    assert wf.inputs["severity"].choices == ["SEV1", "SEV2", "SEV3", "SEV4", "SEV5"]
    deploy = next(s for s in wf.stages if s.id == "deploy")
    assert deploy.approval is not None and "SEV1" in str(deploy.approval.when)
    assert deploy.on_failure[0].id == "rollback"
