"""A step its failed stage never started is not done: a resume runs it.

When a step fails, the steps of its stage that had not started are journaled ``skipped``
("not run: the stage failed"). They were never run, so resuming the run (which runs the
failed step again) must run them too; before, a resume kept them as "skipped" and the
stage, and the run, succeeded without them. A step skipped by its own ``when`` stays
skipped. Real ``quarterdeck`` processes on a real store.
"""

from __future__ import annotations

from pathlib import Path

from tests.engine.procs import effects, events, finish, run_id, start
from tests.helpers import write_workflow

WORKFLOW = """\
name: dependents
stages:
  - id: s
    steps:
      - id: gate
        uses: shell
        with: {shell: true, run: "test -f go && echo gate >> effects.txt"}
      - id: after
        needs: [gate]
        uses: shell
        with: {shell: true, run: "echo after >> effects.txt"}
      - id: never
        needs: [gate]
        when: "false"
        uses: shell
        with: {shell: true, run: "echo never >> effects.txt"}
      - id: last
        needs: [after, never]
        uses: shell
        with: {shell: true, run: "echo last >> effects.txt"}
"""


def test_the_steps_a_failed_stage_never_started_run_on_resume(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, WORKFLOW)
    code, err = finish(start(tmp_path, "run", str(wf)), tmp_path)
    assert code == 1, err
    assert effects(tmp_path) == []
    (tmp_path / "go").touch()
    rid = run_id(tmp_path)
    assert rid
    code, err = finish(start(tmp_path, "resume", rid, tag="resume"), tmp_path, "resume")
    assert code == 0, err
    assert effects(tmp_path) == ["gate", "after", "last"]
    # `never` was skipped twice: not started by the failed stage, then by its own `when`
    skipped = [step for _seq, kind, step in events(tmp_path) if kind == "step.skipped"]
    assert skipped.count("never") == 2
