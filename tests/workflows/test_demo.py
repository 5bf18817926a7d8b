"""``quarterdeck demo --headless``: builds the sandbox, runs the workflow, stops everything."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from quarterdeck.workflows.sandbox.repo import NEXT_VERSION
from tests.helpers import cli
from tests.workflows.conftest import git


def _listening(url: str) -> bool:
    host, port = re.sub(r"^http://|/.*$", "", url).split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_demo_release_headless_runs_and_stops_everything(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = cli(
        "demo", "release", "--headless", "--approve", "publish", "--dir", str(where), timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"run \S+: succeeded", result.stderr)
    urls = re.findall(r"http://127\.0\.0\.1:\d+", result.stderr)
    assert len(urls) >= 3  # index, production, model (and prometheus when installed)
    assert not [u for u in urls if _listening(u)], "a demo service is still listening"
    assert "demo sandbox stopped; files kept" in result.stderr
    tags = git(where / "ledgerline", "ls-remote", "--tags", str(where / "origin.git"))
    assert f"refs/tags/v{NEXT_VERSION}" in tags
    assert (where / "index" / "packages" / f"ledgerline-{NEXT_VERSION}.tar.gz").is_file()


def test_demo_rejects_unknown_names_without_a_traceback(tmp_path: Path) -> None:
    result = cli("demo", "party", "--headless")
    assert result.returncode == 2
    assert "unknown demo 'party'" in result.stderr and "Traceback" not in result.stderr
    result = cli("demo", "release", "--headless", "--approve", "nope", "--dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "--approve 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_demo_incident_rollback_scenario_rolls_production_back(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = cli(
        "demo",
        "incident",
        "--headless",
        "--scenario",
        "rollback",
        "--approve",
        "deploy",
        "--dir",
        str(where),
        timeout=240,
    )
    assert result.returncode == 1, result.stderr[-3000:]  # the deploy failed: rolled back
    assert "watch: failed: health check of" in result.stderr
    assert re.search(r"rollback: \| \[127\.0\.0\.1:\d+\] rolled back: current -> ", result.stderr)
    assert "rollback_health: | success 100.00%" in result.stderr
    reports = list((where / "reports").glob("incident-*-rollback.md"))
    assert len(reports) == 1 and "passing" in reports[0].read_text()
    current = (where / "deploy" / "current").resolve()
    assert (
        "releases/" in str(current)
        and '"healthy": false' not in (current / "release.json").read_text()
    )


def test_demo_scenario_is_checked(tmp_path: Path) -> None:
    result = cli("demo", "release", "--headless", "--scenario", "rollback")
    assert result.returncode == 2 and "incident demo only" in result.stderr
    result = cli("demo", "incident", "--headless", "--scenario", "chaos")
    assert result.returncode == 2 and "unknown scenario 'chaos'" in result.stderr
