"""Every validation error names file, line and field, exits 2, and shows no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.errors import DefinitionError
from tests.helpers import cli

BASE = """\
name: demo
stages:
  - id: build
    persona: backend-engineer
    steps:
      - id: compile
        uses: shell
        with: {run: "echo hi"}
"""

CASES = {
    "unknown key": (
        BASE.replace("        uses: shell\n", "        uses: shell\n        retyr: 3\n"),
        8,
        "unknown key 'retyr'; did you mean 'retry'?",
    ),
    "wrong type": (
        BASE.replace(
            "        uses: shell\n", "        uses: shell\n        continue_on_error: maybe\n"
        ),
        8,
        "continue_on_error: input should be a valid boolean",
    ),
    "missing required field": (
        BASE.replace("        uses: shell\n", ""),
        6,
        "missing required field 'uses'",
    ),
    "unknown step in needs": (
        BASE + "      - id: test\n        uses: shell\n        needs: [compil]\n"
        "        with: {run: 'true'}\n",
        11,
        "unknown step 'compil' in needs; did you mean 'compile'?",
    ),
    "cycle in needs": (
        BASE.replace("        uses: shell\n", "        uses: shell\n        needs: [test]\n", 1)
        + "      - id: test\n        uses: shell\n        needs: [compile]\n"
        "        with: {run: 'true'}\n",
        8,
        "cycle in needs: compile → test → compile",
    ),
    "unknown action": (
        BASE.replace("uses: shell", "uses: shel"),
        7,
        "unknown action 'shel'; did you mean 'shell'?",
    ),
    "unknown persona": (
        BASE.replace("backend-engineer", "backend-enginer"),
        4,
        "unknown persona 'backend-enginer'; did you mean 'backend-engineer'?",
    ),
    "duplicate id": (
        BASE + "      - id: compile\n        uses: shell\n        with: {run: 'true'}\n",
        9,
        "duplicate step id 'compile' (first at line 6)",
    ),
    "bad duration": (
        BASE.replace(
            "        uses: shell\n", "        uses: shell\n        timeout: 5 minutes please\n"
        ),
        8,
        "bad duration '5 minutes please'",
    ),
    "expression does not parse": (
        BASE.replace('"echo hi"', '"echo {{ inputs. }}"'),
        8,
        "expression does not parse",
    ),
    "invalid YAML": (
        BASE.replace("      - id: compile", "      - id: compile\n     bad: [unclosed"),
        7,
        "invalid YAML",
    ),
    "duplicate key": (
        BASE.replace("        uses: shell\n", "        uses: shell\n        uses: git.tag\n"),
        8,
        "duplicate key 'uses' (first at line 7)",
    ),
    "bad action parameter": (
        BASE.replace('{run: "echo hi"}', '{run: "echo hi", cwdd: x}'),
        8,
        "unknown parameter 'cwdd' for shell; did you mean 'cwd'?",
    ),
    "condition does not parse": (
        BASE.replace(
            "    persona: backend-engineer\n",
            '    persona: backend-engineer\n    when: "inputs.x =="\n',
        ),
        5,
        "expression does not parse",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_error_names_line_and_exits_2(case: str, tmp_path: Path) -> None:
    text, line, message = CASES[case]
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    first = [ln for ln in result.stderr.splitlines() if message in ln]
    assert first, f"expected {message!r} in:\n{result.stderr}"
    assert first[0].startswith(f"{path}:{line}:"), first[0]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n\n")
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert f"{path}:1:1: the file is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert f"{path}:1:1: this is a binary file" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_run_of_invalid_file(tmp_path: Path) -> None:
    result = cli("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "file not found" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(CASES["unknown action"][0])
    ran = cli("run", str(bad), "--headless")
    assert ran.returncode == 2
    assert f"{bad}:7:" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = BASE.replace("uses: shell", "uses: shel").replace("backend-engineer", "nobody")
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert "unknown action 'shel'" in result.stderr
    assert "unknown persona 'nobody'" in result.stderr
    assert "2 problems" not in result.stdout


def test_valid_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    result = cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "ok (demo: 1 stages, 1 steps)" in result.stderr


def test_schema_accepts_valid_and_rejects_invalid_files(tmp_path: Path) -> None:
    result = cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(BASE)
    assert list(validator.iter_errors(good)) == []
    bad = yaml.safe_load(CASES["unknown key"][0])
    assert any("retyr" in e.message for e in validator.iter_errors(bad))
    bad_param = yaml.safe_load(CASES["bad action parameter"][0])
    assert list(validator.iter_errors(bad_param)), "per-action `with:` is checked"


def test_action_outside_persona_tools_is_refused(tmp_path: Path) -> None:
    personas = tmp_path / ".quarterdeck" / "personas"
    personas.mkdir(parents=True)
    (personas / "scribe.yaml").write_text(
        "name: scribe\ntitle: Scribe\nrole: Takes notes\ntoken_budget: 100\ntools: ['memory.*']\n"
    )
    path = tmp_path / "wf.yaml"
    path.write_text(BASE.replace("backend-engineer", "scribe"))
    result = cli("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        f"{path}:7:15: stages[build].steps[compile].uses: step 'compile' uses 'shell', "
        "which persona 'scribe' may not use (its tools: memory.*)"
    ) in result.stderr


def test_a_templated_parameter_is_left_to_run_time_and_its_neighbours_still_checked(
    tmp_path: Path,
) -> None:
    # the templated locs are worked out only when the action's parameters are refused:
    # a template where a number must be is not reported, a bad plain value beside it is
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: t\ninputs: {n: {type: int, default: 5}}\nstages:\n  - id: s\n    steps:\n"
        '      - {id: a, uses: shell, with: {run: "echo", stdout_tail: "{{ inputs.n }}"}}\n'
        '      - {id: b, uses: shell, with: {run: "echo", stdout_tail: -1}}\n'
    )
    with pytest.raises(DefinitionError) as info:
        load_workflow(path)
    assert [(p.line, p.message) for p in info.value.problems] == [
        (7, "shell: Input should be greater than or equal to 0")
    ]


def _every_string_the_old_way(data: object) -> list[tuple[tuple[object, ...], str, bool]]:
    """What the expression check looked at before: every string, tested one by one."""
    from quarterdeck.core.definition.expressions import is_template
    from quarterdeck.core.definition.validate import _is_condition_loc, _strings

    out = []
    for loc, text in _strings(data, ()):
        condition = any(p in ("when", "all", "any") for p in loc if isinstance(p, str))
        condition = condition and _is_condition_loc(loc)
        if condition or is_template(text):
            out.append((loc, text, condition))
    return out


def test_expression_candidates_are_the_strings_the_check_looked_at() -> None:
    # the walk builds a loc only for a template or a string under when/all/any: what the
    # check keeps of them is the same strings, locs, order and condition flags as testing
    # every string of the file
    import yaml as pyyaml

    from quarterdeck.core.definition.expressions import is_template
    from quarterdeck.core.definition.validate import _expression_candidates

    root = Path(__file__).resolve().parents[2]
    texts = [p.read_text() for p in sorted((root / "workflows").glob("*.yaml"))]
    texts.append(
        "name: c\nwhen: top\nstages:\n  - id: s\n    when: inputs.x\n"
        "    gate: {id: g, all: ['a > 1', '{{ b }}', [nested]], any: [c]}\n"
        "    steps:\n      - {id: a, uses: shell, when: '{{ x }}',\n"
        "         with: {run: 'echo {{ inputs.y }}', when: plain, env: {all: z}}}\n"
        "stray: ['{% if x %}y{% endif %}', {any: [1, '{{ z }}']}]\n"
    )
    checked = 0
    for text in texts:
        data = pyyaml.safe_load(text)
        expected = _every_string_the_old_way(data)
        found = [c for c in _expression_candidates(data) if c[2] or is_template(c[1])]
        assert found == expected
        checked += len(expected)
    assert checked > 50
