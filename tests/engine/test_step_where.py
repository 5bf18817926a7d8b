"""A step's messages name its place in the workflow file (``file:line:col: step ID``),
whichever step it is: a stage's, a fallback's (nested too) or an ``on_failure`` one's.
``StepRunner.where`` finds each place when the step first needs it."""

from __future__ import annotations

from pathlib import Path

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
