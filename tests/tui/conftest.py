"""Fixtures for the cockpit's Pilot and snapshot tests: workflows, stores, apps, waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from quarterdeck.tui.app import QuarterdeckApp

TINY = """\
name: tiny
title: Tiny release
description: A small release with an approval gate
inputs:
  version: {type: string, default: "1.0"}
  count: {type: int, default: 3}
  mode: {type: choice, choices: [fast, slow], default: fast}
stages:
  - id: build
    title: Build
    persona: backend-engineer
    steps:
      - id: compile
        uses: shell
        with: {run: "echo compiling {{ inputs.version }} x{{ inputs.count }} {{ inputs.mode }}"}
      - id: lint
        uses: shell
        with: {run: "echo linting"}
      - id: test
        uses: shell
        needs: [compile, lint]
        with: {run: "echo tests passed"}
  - id: publish
    title: Publish
    persona: devops-engineer
    approval:
      id: ship
      prompt: "Ship {{ inputs.version }}?"
      evidence: ["**tests**: all passed", "coverage 91%"]
      approvers: [alice, bob]
      allow_self_approval: true
    steps:
      - id: upload
        uses: shell
        with: {run: "echo uploaded"}
"""

CHATTY = """\
name: chatty
title: Chatty
description: Prints lines, then waits
inputs:
  wait: {type: float, default: 0}
stages:
  - id: talk
    persona: backend-engineer
    steps:
      - id: speak
        uses: shell
        with:
          run: "echo alpha one; echo beta two; echo alpha three; echo beta four"
          shell: true
      - id: pause
        uses: shell
        needs: [speak]
        with: {run: "sleep {{ inputs.wait }}"}
      - id: after
        uses: shell
        needs: [pause]
        with: {run: "echo done"}
"""

FLAKY = """\
name: flaky
title: Flaky
stages:
  - id: check
    persona: testing-specialist
    steps:
      - id: needs-marker
        uses: shell
        with: {run: "test -f marker"}
"""

GATED = """\
name: gated
title: Gated
stages:
  - id: measure
    persona: testing-specialist
    steps:
      - id: cov
        uses: shell
        with: {run: "echo measured"}
    gate:
      id: coverage
      all: ["{{ 1 > 2 }}"]
      skippable: true
  - id: ship
    persona: testing-specialist
    steps:
      - id: go
        uses: shell
        with: {run: "echo shipped"}
"""

WORKFLOWS = {"tiny": TINY, "chatty": CHATTY, "flaky": FLAKY, "gated": GATED}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with the test workflows in ``.quarterdeck/workflows``."""
    wf_dir = tmp_path / ".quarterdeck" / "workflows"
    wf_dir.mkdir(parents=True)
    for name, text in WORKFLOWS.items():
        (wf_dir / f"{name}.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def project_catalog(root: Path, only: tuple[str, ...] | None = None) -> Callable[[], Any]:
    """The catalog without bundled workflows (they change as the project grows)."""
    from quarterdeck.workflows.catalog import list_workflows

    def entries() -> Any:
        found = [e for e in list_workflows(root) if e.origin == "project"]
        return [e for e in found if only is None or e.name in only]

    return entries


@pytest.fixture
def make_app(project: Path) -> Callable[..., QuarterdeckApp]:
    def make(**kwargs: Any) -> QuarterdeckApp:
        kwargs.setdefault("store_path", project / "qd.db")
        kwargs.setdefault("actor", "alice")
        kwargs.setdefault("catalog", project_catalog(project))
        kwargs.setdefault("blink", False)
        return QuarterdeckApp(**kwargs)

    return make


async def wait_until(
    pilot: Pilot[Any],
    condition: Callable[[], object],
    timeout: float = 30.0,
    what: str = "condition",
) -> None:
    """Poll ``condition`` between UI pauses, up to ``timeout`` seconds (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
