"""Typed inputs are strict: what a person types either means exactly one value of the
input's type or is refused with the input named (never a surprising conversion)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quarterdeck.core.definition.inputs import JSON_MAX_DEPTH, coerce, resolve_inputs
from quarterdeck.core.definition.models import InputSpec, Workflow
from quarterdeck.core.errors import InvalidInput
from tests.helpers import cli, write_workflow


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "١٫٥", "1_0.5"])
def test_floats_are_finite_ascii_numbers(text: str) -> None:
    with pytest.raises(InvalidInput, match="'ratio'"):
        coerce("ratio", InputSpec(type="float"), text)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity"])
def test_nan_and_inf_only_when_the_input_asks(text: str) -> None:
    import math

    value = coerce("ratio", InputSpec(type="float", allow_nonfinite=True), text)
    assert not math.isfinite(value)
    with pytest.raises(InvalidInput, match="'ratio'"):  # an overflow is still a mistake
        coerce("ratio", InputSpec(type="float", allow_nonfinite=True), "1e999")
    with pytest.raises(ValueError, match="allow_nonfinite"):
        InputSpec(type="int", allow_nonfinite=True)


@pytest.mark.parametrize(
    ("text", "value"), [("1.5", 1.5), ("-2", -2.0), (".5", 0.5), ("1e3", 1000.0)]
)
def test_plain_floats_still_work(text: str, value: float) -> None:
    assert coerce("ratio", InputSpec(type="float"), text) == value


@pytest.mark.parametrize("text", ["١٢", "１２", "1_000", "12.0", "0x10", ""])
def test_ints_are_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidInput, match="'count'"):
        coerce("count", InputSpec(type="int"), text)


def test_required_means_non_empty() -> None:
    wf = Workflow.model_validate(
        {
            "name": "w",
            "inputs": {"service": {"type": "string", "required": True}},
            "stages": [{"id": "s", "steps": [{"uses": "shell", "with": {"run": "true"}}]}],
        }
    )
    for blank in ("", "   "):
        with pytest.raises(InvalidInput, match="missing input 'service'"):
            resolve_inputs(wf, {"service": blank})
    assert resolve_inputs(wf, {"service": "api"}) == {"service": "api"}


def test_json_inputs_are_depth_limited() -> None:
    spec = InputSpec(type="json")
    fine = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert coerce("alert", spec, fine) is not None
    deep = "[" * (JSON_MAX_DEPTH + 1) + "]" * (JSON_MAX_DEPTH + 1)
    with pytest.raises(InvalidInput, match=r"'alert'.*deeper"):
        coerce("alert", spec, deep)
    with pytest.raises(InvalidInput, match="'alert'"):
        coerce("alert", spec, "[" * 100000 + "]" * 100000)


def test_dry_run_masks_secrets(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """\
name: secretive
inputs:
  token: {type: secret}
  who: {type: string, default: me}
stages:
  - id: s
    steps:
      - id: a
        uses: shell
        with: {run: "true"}
""",
    )
    result = cli("run", str(wf), "-i", "token=hunter2", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("inputs: "))
    assert json.loads(line.removeprefix("inputs: ")) == {"token": "***", "who": "me"}
