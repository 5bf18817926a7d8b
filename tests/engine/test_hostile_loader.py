"""Hostile workflow files are refused fast, located, exit 2 — never a hang or a traceback.

The corpus under ``hostile/`` is the fixed set of cases the fuzzer
(``benchmarks/fuzz_workflows.py``) found; each is a file a pull request could carry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quarterdeck.core.definition.expressions import render, syntax_error
from quarterdeck.core.definition.loader import MAX_ALIAS_VALUES, MAX_BYTES, MAX_NODES
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.errors import DefinitionError, ExpressionError
from tests.helpers import cli

HOSTILE = Path(__file__).parent / "hostile"
# valid files whose danger is only at run time (their expressions are refused there)
VALID = {"pow_expr.yaml", "str_bomb_expr.yaml", "reversed_needs_chain.yaml"}
REFUSED = {
    "billion_laughs.yaml": (6, "aliases expand to more than"),
    "recursive_alias.yaml": (1, "recursive alias *a"),
    "deep_nesting.yaml": (2, "nest"),  # libyaml stops flow nesting itself, also located
    "deep_block_nesting.yaml": (52, "nested deeper than 100 levels"),
    "deep_fallbacks.yaml": (197, "nested deeper than 100 levels"),
    "huge_int.yaml": (2, "bad value: Exceeds the limit (4300 digits)"),
    "control_char.yaml": (7, "control character U+0001 not allowed"),
    "control_escape.yaml": (1, "control character U+0001 in a string"),
    "paren_expr.yaml": (7, "nested deeper than 64 brackets"),
    "three_typos.yaml": (6, "unknown key 'usse'"),
}
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): ", re.M)


def test_the_corpus_is_all_named() -> None:
    assert {p.name for p in HOSTILE.glob("*.yaml")} == VALID | set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_file_is_refused_with_a_location(name: str) -> None:
    line, message = REFUSED[name]
    with pytest.raises(DefinitionError) as caught:
        load_workflow(HOSTILE / name)
    found = [p for p in caught.value.problems if message in p.message]
    assert found, [str(p) for p in caught.value.problems]
    assert found[0].line == line
    assert found[0].file.endswith(name)


@pytest.mark.parametrize("name", sorted(VALID))
def test_run_time_bombs_validate_without_evaluating(name: str) -> None:
    loaded = load_workflow(HOSTILE / name)
    assert loaded.workflow.stages


def test_validate_cli_exits_2_with_file_line_col_for_every_hostile_file() -> None:
    files = [str(HOSTILE / name) for name in sorted(REFUSED)]
    result = cli("validate", *files, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    located = {Path(m.group("file")).name for m in LOCATED.finditer(result.stderr)}
    assert located == set(REFUSED)


def test_three_typos_are_three_messages_in_one_run() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_workflow(HOSTILE / "three_typos.yaml")
    messages = [p.message for p in caught.value.problems]
    assert any("unknown key 'usse'" in m for m in messages)
    assert any("unknown action 'shel'; did you mean 'shell'?" in m for m in messages)
    assert any("unknown parameter 'cdw' for shell; did you mean 'cwd'?" in m for m in messages)


def test_many_values_without_aliases_are_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("name: x\nstages: []\nwide: [" + "1," * MAX_NODES + "1]\n")
    with pytest.raises(DefinitionError, match=f"the document holds more than {MAX_NODES} values"):
        load_workflow(path)


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: x\nstages: []\n# " + "x" * MAX_BYTES + "\n")
    with pytest.raises(DefinitionError, match="file too large"):
        load_workflow(path)


_RETRY = "&retry {max_attempts: 2, backoff: constant}"


def _block_steps(count: int, *, shared_retry: bool = False) -> str:
    """A workflow as people write one, a key per line: ~110 bytes and ~12 values a step."""
    lines = ["name: wide", "concurrency: 64", "stages:", "  - id: s", "    steps:"]
    for i in range(count):
        lines += [
            f"      - id: step{i}",
            "        uses: memory.set",
            *([f"        needs: [step{i - 1}]"] if i % 10 else []),
            *(["        retry: " + ("*retry" if i else _RETRY)] if shared_retry else []),
            "        with:",
            f"          key: key{i}",
            f"          value: {i}",
        ]
    return "\n".join(lines) + "\n"


def test_a_ten_thousand_step_workflow_as_people_write_one_validates(tmp_path: Path) -> None:
    """Over a megabyte and over 100,000 values: both used to be refused as hostile."""
    path = tmp_path / "wide.yaml"
    path.write_text(_block_steps(10_000))
    assert path.stat().st_size > 1 << 20
    result = cli("validate", str(path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 stages, 10000 steps" in result.stderr


def test_aliases_have_a_budget_of_their_own(tmp_path: Path) -> None:
    """A workflow may share a value by anchor on every one of 10,000 steps; aliases that
    add more than MAX_ALIAS_VALUES values between them are still a bomb."""
    path = tmp_path / "shared.yaml"
    path.write_text(_block_steps(10_000, shared_retry=True))
    steps = load_workflow(path).workflow.stages[0].steps
    assert steps[-1].retry is not None and steps[-1].retry.max_attempts == 2
    # one anchor of 1,000 values used 101 times adds 100,899 values: refused, located
    bomb = tmp_path / "bomb.yaml"
    many = "[" + ",".join(["1"] * 999) + "]"
    bomb.write_text(f"name: x\nstages: []\na: &a {many}\nb: [" + ",".join(["*a"] * 101) + "]\n")
    with pytest.raises(DefinitionError) as caught:
        load_workflow(bomb)
    (problem,) = caught.value.problems
    assert f"aliases expand to more than {MAX_ALIAS_VALUES} values" in problem.message
    assert problem.line == 4


@pytest.mark.parametrize(
    "text",
    ["{{ 'a' * 10**9 }}", "{{ 2**20000 }}", "x{{ 'a' * 10**9 }}", "{{ [1] * 10**9 }}"],
)
def test_validation_parses_but_never_evaluates_constant_bombs(text: str) -> None:
    assert syntax_error(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{{ 'a' * 10**9 }}", "repeating to over"),
        ("{{ 2**20000 }}", "too large"),
        ("{{ 10**5000 }}", "too large"),
        ("say {{ 'a' | center(999999999) }}", "over the limit"),
        ("{{ 'a'.ljust(10**9) }}", "over the limit"),
        ("{{ '%0999999999d' % 1 }}", "width or precision"),
        ("{{ 'x' + 'a' * 999999 + 'b' * 999999 }}", "concatenating"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
        ("{{ " + "(" * 400 + "1" + ")" * 400 + " }}", "nested deeper"),
    ],
)
def test_run_time_bombs_fail_as_expression_errors(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(reason)):
        render(text, {}, "wf.yaml:1:1: step a.with")


def test_ordinary_expressions_still_work() -> None:
    scope = {"inputs": {"n": 3, "names": ["b", "a"]}}
    assert render("{{ inputs.n ** 2 }}", scope) == 9
    assert render("{{ 'ab' * inputs.n }}", scope) == "ababab"
    assert render("{{ inputs.names | sort | join(',') }}", scope) == "a,b"
    assert render("v{{ '%05d' % inputs.n }}", scope) == "v00003"
    assert render("{{ inputs.missing | default(500000) }}", {"inputs": {}}) == 500000
    assert render("{{ 'x'.split(',', 200000) }}", scope) == ["x"]


def deep_fallbacks(levels: int) -> str:
    text = "name: deep\nstages:\n  - id: s\n    steps:\n"
    text += "      - id: f0\n        uses: shell\n        with: {run: 'false'}\n"
    for i in range(1, levels + 1):
        pad = " " * (8 + 4 * (i - 1))
        run = "'true'" if i == levels else "'false'"
        text += f"{pad}fallback:\n{pad}  - id: f{i}\n{pad}    uses: shell\n"
        text += f"{pad}    with: {{run: {run}}}\n"
    return text


def test_deep_fallbacks_within_the_limit_validate_and_run(tmp_path: Path) -> None:
    from tests.helpers import run_workflow

    ran = run_workflow(tmp_path, deep_fallbacks(40))
    assert ran.state.status == "succeeded"
    ids = [step.id for _stage, step in ran.runner.loaded.workflow.all_steps()]
    assert ids == [f"f{i}" for i in range(41)]
    assert ran.state.step("f0").via == "f1"  # type: ignore[union-attr]
