"""One demo sandbox per test module; workflows run through the real CLI against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.workflows.sandbox import Sandbox
from tests.helpers import REPO


@pytest.fixture(scope="module")
def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The sandbox; Prometheus only for modules that set ``PROMETHEUS = True`` (it is the
    slowest service to start and only incident triage queries it)."""
    prometheus = bool(getattr(request.module, "PROMETHEUS", False))
    with Sandbox(tmp_path_factory.mktemp("sandbox"), prometheus=prometheus) as box:
        yield box


def quarterdeck(box: Sandbox, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``quarterdeck ARGS`` in a subprocess that sees the sandbox's config and journal."""
    env = {**os.environ, **box.env()}
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "quarterdeck.tui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=timeout,
        check=False,
    )


def run_args(workflow: str, inputs: dict[str, str], *extra: str) -> list[str]:
    args = ["run", workflow, "--headless", "--json", *extra]
    for key, value in inputs.items():
        args += ["-i", f"{key}={value}"]
    return args


def run_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    for stage in run["stages"]:
        for found in stage["steps"]:
            if found["id"] == step_id:
                return dict(found)
    raise AssertionError(f"no step {step_id!r} in the run")


def stage(run: dict[str, Any], stage_id: str) -> dict[str, Any]:
    return dict(next(s for s in run["stages"] if s["id"] == stage_id))


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()
