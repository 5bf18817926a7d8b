"""The launch-time check of typed inputs (core/definition/input_types.py) looks only at the
steps whose parameters can read an input, and still looks up every action the workflow
uses (importing its module): a resumed run's definition is not validated again, and this
is where the modules of its actions are imported, before any step runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from quarterdeck.core.definition.input_types import input_problems
from quarterdeck.core.definition.models import Workflow


def workflow(*steps: dict[str, object]) -> Workflow:
    return Workflow.model_validate({"name": "w", "stages": [{"id": "s", "steps": list(steps)}]})


def test_only_a_parameter_that_reads_an_input_is_checked() -> None:
    inputs = {"window": "thirty seconds"}
    bad = {"url": "http://127.0.0.1:9", "window": "{{ inputs.window }}"}
    literal = {"url": "http://127.0.0.1:9", "window": "thirty seconds"}  # validate's to report
    named = {"url": "http://127.0.0.1:9", "window": "inputs"}  # names inputs, reads none
    found = input_problems(
        workflow(
            {"id": "a", "uses": "http.health_check", "with": literal},
            {"id": "b", "uses": "http.health_check", "with": named},
            {"id": "c", "uses": "memory.set", "with": {"key": "k"}},
            {"id": "d", "uses": "http.health_check", "with": bad},
        ),
        inputs,
    )
    assert list(found) == ["window"]
    assert "step s.d" in found["window"] and "parameter 'window'" in found["window"]
    skipped = {"id": "e", "uses": "http.health_check", "with": bad, "when": "false"}
    assert input_problems(workflow(skipped), inputs) == {}


def test_every_action_used_is_imported_by_the_check() -> None:
    """In a fresh process: a step none of whose parameters reads an input is skipped by the
    check, but its action's module is imported by it all the same."""
    code = textwrap.dedent(
        """
        import sys
        from quarterdeck.core.definition.input_types import input_problems
        from quarterdeck.core.definition.models import Workflow

        step = {"id": "h", "uses": "http.health_check", "with": {"url": "http://127.0.0.1:9"}}
        w = Workflow.model_validate({"name": "w", "stages": [{"id": "s", "steps": [step]}]})
        before = "quarterdeck.core.actions.http" in sys.modules
        assert input_problems(w, {}) == {}
        print(before, "quarterdeck.core.actions.http" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
