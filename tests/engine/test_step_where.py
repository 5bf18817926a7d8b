"""A step's messages name its place in the workflow file (``file:line:col: step ID``),
whichever step it is: a stage's, a fallback's (nested too) or an ``on_failure`` one's.
``StepRunner.where`` finds each place when a message first needs it: never, for a step
that succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from quarterdeck.core.engine.step import StepRunner
from tests.helpers import run_workflow

TEXT = """\
name: where
stages:
  - id: s
    steps:
      - id: ok
        uses: memory.set
        with: {key: k, value: 1}
      - id: a
        uses: shell
        with: {run: "echo {{ memory.nope.a }}"}
        fallback:
          - id: b
            uses: shell
            with: {run: "echo {{ memory.nope.b }}"}
            fallback:
              - id: c
                uses: shell
                with: {run: "echo {{ memory.nope.c }}"}
    on_failure:
      - id: d
        uses: shell
        with: {run: "echo {{ memory.nope.d }}"}
"""


def test_every_kind_of_step_names_its_line_and_column(tmp_path: Path) -> None:
    ran = run_workflow(tmp_path, TEXT)
    assert ran.state.status == "failed"
    errors = {
        s.id: s.error or "" for stage in ran.state.stages.values() for s in stage.steps.values()
    }
    for step, line, col in (("a", 8, 9), ("b", 12, 13), ("c", 16, 17), ("d", 20, 9)):
        assert f"wf.yaml:{line}:{col}: step {step}.with: expression" in errors[step], errors


def test_a_step_that_succeeds_never_looks_its_place_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real = StepRunner.where

    def where(self: StepRunner, stage: object, step: object) -> str:
        asked.append(getattr(step, "id", "?"))
        return real(self, stage, step)  # type: ignore[arg-type]

    monkeypatch.setattr(StepRunner, "where", where)
    text = TEXT.split("      - id: a")[0]  # the stage's first step alone: it succeeds
    text += "      - {id: b, uses: memory.set, with: {key: j, value: '{{ memory.k }}'}}\n"
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    assert ran.state.memory["j"] == 1  # its parameters were rendered
    assert asked == []
    failing = text + "      - {id: c, uses: memory.set, with: {key: x, value: '{{ memory.no }}'}}\n"
    (tmp_path / "failing").mkdir()
    ran = run_workflow(tmp_path / "failing", failing)
    assert ran.state.status == "failed"
    assert asked == ["c"]  # its message names it
    assert "wf.yaml:9:9: step c.with: expression" in (ran.state.step("c").error or "")
