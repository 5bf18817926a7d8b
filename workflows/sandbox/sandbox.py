"""Build and run the demo sandbox; hand out the inputs and environment that point at it.

Layout under ``root``::

    ledgerline/        the package, a git repository (tag v1.2.0, four commits since)
    staging/           the staging host's deploy directory (same layout as deploy/)
    origin.git/        its bare origin
    deploy/            the deploy host's directory: releases/<sha>/service, current → …
    deploy/logs/       the production service's log (read over SSH during triage)
    index/             pypiserver's packages
    config/            QUARTERDECK_CONFIG_DIR: config.yaml (ssh, llm) and persona overrides
    state/             QUARTERDECK_HOME: the journal of demo runs
    ssh/               generated host and client keys, known_hosts
    reports/           release notes, incident reports, postmortems
    logseq/            a Logseq graph the release writes a page into

Everything listens on 127.0.0.1 and :meth:`Sandbox.stop` stops all of it; host keys are
verified against the sandbox's own ``known_hosts`` (nothing is weakened for the demo).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Self

import yaml

from quarterdeck.workflows.sandbox.repo import BASE_TAG, build_repo, git
from quarterdeck.workflows.sandbox.servers import (
    DEMO_MODEL,
    DemoModel,
    DeployHost,
    PackageIndex,
    ProductionService,
    Prometheus,
    SSHKeys,
)

DEMOS = {"release": "package-release", "incident": "incident-response"}
# What the demo runs with Quarterdeck's own interpreter: its package index, and the tools
# the demo project's steps run (Quarterdeck's `demo` extra installs them).
DEMO_MODULES = (
    "pypiserver",
    "passlib",
    "waitress",
    "pytest",
    "coverage",
    "ruff",
    "mypy",
    "build",
    "setuptools",
)


def missing_demo_modules() -> list[str]:
    """The demo's tools this interpreter lacks (Quarterdeck installed without ``[demo]``)."""
    return [name for name in DEMO_MODULES if find_spec(name) is None]


INCIDENT_SEVERITY = "SEV2"
# An Alertmanager webhook payload (version 4), as the alert intake receives it.
INCIDENT_ALERT: dict[str, Any] = {
    "version": "4",
    "status": "firing",
    "receiver": "quarterdeck",
    "groupLabels": {"alertname": "CheckoutErrorRate"},
    "commonLabels": {
        "alertname": "CheckoutErrorRate",
        "service": "ledgerline-api",
        "severity": "high",
    },
    "commonAnnotations": {
        "summary": "25% of checkout requests fail since the last deploy",
        "runbook": "revert the last deploy if the error ratio stays above 5%",
    },
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "CheckoutErrorRate",
                "service": "ledgerline-api",
                "severity": "high",
            },
            "annotations": {"summary": "25% of checkout requests fail since the last deploy"},
            "startsAt": "2026-01-20T09:14:00Z",
        }
    ],
}


class Sandbox:
    """The demo's world. Use as a context manager, or call :meth:`start` / :meth:`stop`."""

    def __init__(self, root: Path, *, prometheus: bool | None = None) -> None:
        self.root = root.resolve()
        self.want_prometheus = prometheus
        self.repo = self.root / "ledgerline"
        self.origin = self.root / "origin.git"
        self.deploy_dir = self.root / "deploy"
        self.staging_dir = self.root / "staging"
        self.log_file = self.deploy_dir / "logs" / "service.log"
        self.config_dir = self.root / "config"
        self.state_dir = self.root / "state"
        self.reports_dir = self.root / "reports"
        self.logseq_dir = self.root / "logseq"
        self.production: ProductionService | None = None
        self.staging: ProductionService | None = None
        self.host: DeployHost | None = None
        self.model: DemoModel | None = None
        self.index: PackageIndex | None = None
        self.prometheus: Prometheus | None = None
        self._stack = contextlib.ExitStack()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            build_repo(self.root)
            for path in (
                self.log_file.parent,
                self.reports_dir,
                self.logseq_dir / "pages",
                self.state_dir,
            ):
                path.mkdir(parents=True, exist_ok=True)
            self.deploy(git(self.repo, "rev-parse", "--short", "HEAD"))
            self.production = self._stack.enter_context(
                ProductionService(self.deploy_dir, self.log_file)
            )
            (self.staging_dir / "logs").mkdir(parents=True, exist_ok=True)
            self.staging = self._stack.enter_context(
                ProductionService(self.staging_dir, self.staging_dir / "logs" / "service.log")
            )
            keys = SSHKeys(self.root / "ssh")
            self.host = self._stack.enter_context(DeployHost(keys, self.deploy_dir))
            self.model = self._stack.enter_context(DemoModel())
            self.index = self._stack.enter_context(PackageIndex(self.root / "index"))
            use_prometheus = (
                Prometheus.available() is not None
                if self.want_prometheus is None
                else self.want_prometheus
            )
            if use_prometheus:
                target = self.production.url.removeprefix("http://")
                self.prometheus = self._stack.enter_context(
                    Prometheus(self.root / "prometheus", [target])
                )
                self.prometheus.wait_for("demo_error_ratio")
            self._write_config(keys)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every service (idempotent; safe from a signal handler's ``finally``)."""
        self._stack.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the deploy host's state ----------------------------------------------------------

    def deploy(self, name: str, *, healthy: bool | None = None) -> Path:
        """Put the repository's ``service/`` as release ``name`` and make it current.

        What the incident workflow does over SSH; used here to set the starting state."""
        release = self.deploy_dir / "releases" / name / "service"
        if release.exists():
            shutil.rmtree(release)
        shutil.copytree(self.repo / "service", release)
        if healthy is not None:
            data = json.loads((release / "release.json").read_text())
            data["healthy"] = healthy
            (release / "release.json").write_text(json.dumps(data) + "\n")
        current = self.deploy_dir / "current"
        temp = self.deploy_dir / ".current.tmp"
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        temp.symlink_to(release)
        temp.replace(current)
        return release

    # -- configuration --------------------------------------------------------------------

    def _write_config(self, keys: SSHKeys) -> None:
        assert self.model is not None
        self.config_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "ssh": {
                "known_hosts": str(keys.known_hosts),
                "client_keys": [str(keys.client_key_path)],
                "username": os.environ.get("USER") or "demo",
                "use_agent": False,
            },
            "llm": {"base_url": self.model.base_url, "api_key": "demo-key-not-a-secret"},
            "logseq_graph": str(self.logseq_dir),
            "report_dir": str(self.reports_dir / "runs" / "{run}"),
        }
        (self.config_dir / "config.yaml").write_text(
            "# Written by `quarterdeck demo`: everything points at the sandbox on 127.0.0.1.\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
        self._write_personas()

    def _write_personas(self) -> None:
        """Every bundled persona, with the demo model, so outputs say ``demo-model``."""
        from quarterdeck.personas.registry import BUNDLED_DIR

        target = self.config_dir / "personas"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(Path(BUNDLED_DIR).glob("*.yaml")):
            data = yaml.safe_load(path.read_text())
            if isinstance(data, dict):
                data["model"] = DEMO_MODEL
                (target / path.name).write_text(yaml.safe_dump(data, sort_keys=False))

    def env(self) -> dict[str, str]:
        """What a ``quarterdeck`` process needs: the sandbox's config, journal and the index
        upload credentials (read from the environment, as in CI; never from a workflow)."""
        assert self.index is not None
        return {
            "QUARTERDECK_CONFIG_DIR": str(self.config_dir),
            "QUARTERDECK_HOME": str(self.state_dir),
            "QUARTERDECK_PYPI_USERNAME": self.index.username,
            "QUARTERDECK_PYPI_PASSWORD": self.index.password,
        }

    @property
    def store(self) -> Path:
        return self.state_dir / "quarterdeck.db"

    # -- workflow inputs ------------------------------------------------------------------

    def break_known_good(self) -> str:
        """A "known good" ref that is not: a build whose release reports itself unhealthy.

        The incident demo's ``rollback`` scenario deploys it, so the deploy's health-check
        window fails and the stage's ``on_failure`` rolls production back.
        """
        from quarterdeck.workflows.sandbox.repo import git

        start = git(self.repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
        git(self.repo, "checkout", "-q", "-b", "broken-build", BASE_TAG)
        release = self.repo / "service" / "release.json"
        release.write_text('{"service": "ledgerline-api", "healthy": false, "error_ratio": 1.0}\n')
        git(self.repo, "commit", "-q", "-am", "chore: a build that cannot start")
        git(self.repo, "checkout", "-q", start)
        return "broken-build"

    def inputs(self, demo: str) -> dict[str, str]:
        """``-i`` values for the demo's workflow (``release`` or ``incident``).

        ``python`` is Quarterdeck's own interpreter: the demo project has no venv, and the
        ``demo`` extra put its tools (pytest, coverage, ruff, mypy, build) there."""
        assert self.index is not None and self.production is not None
        assert self.host is not None
        return {**self._inputs(demo), "python": sys.executable}

    def _inputs(self, demo: str) -> dict[str, str]:
        assert self.index is not None and self.production is not None
        assert self.host is not None
        if demo == "release":
            return {
                "repo": str(self.repo),
                "repository_url": self.index.upload_url,
                "index_url": self.index.simple,
                "build_isolation": "false",
                "notes_dir": str(self.reports_dir),
                "logseq_graph": str(self.logseq_dir),
                "llm_notes": "true",  # the devops persona drafts highlights: tokens move
            }
        if demo == "incident":
            return {
                "alert": json.dumps(INCIDENT_ALERT),
                "severity": INCIDENT_SEVERITY,
                "service_url": self.production.url,
                "prometheus_url": self.prometheus.url if self.prometheus else "",
                "hosts": self.host.host,
                "deploy_dir": str(self.deploy_dir),
                "log_file": str(self.log_file),
                "repo": str(self.repo),
                "good_ref": BASE_TAG,
                "health_window": "3s",
                "reports_dir": str(self.reports_dir),
            }
        if demo == "feature":
            return {
                "repo": str(self.repo),
                "feature": "balances per currency over the API",
                "name": "balances",
            }
        if demo == "spec":
            assert self.staging is not None
            return {
                "repo": str(self.repo),
                "spec": "expose balances per currency",
                "name": "balances",
                "staging_hosts": self.host.host,
                "staging_dir": str(self.staging_dir),
                "staging_url": self.staging.url,
                "production_hosts": self.host.host,
                "production_dir": str(self.deploy_dir),
                "production_url": self.production.url,
                "health_window": "1s",
            }
        raise ValueError(f"unknown demo {demo!r}: choose one of {', '.join(DEMOS)}")
