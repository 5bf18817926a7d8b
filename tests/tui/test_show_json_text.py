"""``show --json`` writes exactly the text ``json.dumps(data, indent=2, default=str)``
would, for any shape of data (the C encoder does the work, container by container)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.journal.statuses import StepStatus
from quarterdeck.tui.json_text import _HOLE_TEXT, dumps_indented
from tests.helpers import cli
from tests.tui.test_run_duration import RUN, seed

SHAPES: list[Any] = [
    {},
    [],
    {"a": 1},
    {"a": [], "b": {}, "c": [[]], "d": [{}], "e": ((),)},
    {"steps": [{"id": "s", "outputs": {"k": [1, 2.5, None, True, False]}, "n": 3}]},
    [[1, [2, [3, [4]]]], {"x": {"y": {"z": {}}}}],
    {7: "int key", 2.5: "float", True: "bool", None: "none", "s": {3: [4]}},
    {"nested": {1: {2: [3]}}, "after": "x"},
    {"status": StepStatus.SUCCEEDED, StepStatus.FAILED: [StepStatus.SKIPPED]},
    {"odd": [float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 10**30]},
    {"text": 'ü é \u2603 \n\t"\\ \x00 \U0001f600', "ü": {"\x7f": ["\u2028"]}},
    {"default": Path("/tmp/x"), "when": datetime.date(2026, 11, 30), "set": {1}},
    {"tuple": (1, (2, 3)), "list": [(4,), {"t": ()}]},
    {"marker": _HOLE_TEXT, "also": {"inner": [_HOLE_TEXT]}, "list": [1]},
    {_HOLE_TEXT: {"a": [1]}, "b": [_HOLE_TEXT, {"c": _HOLE_TEXT}]},
    ["x" + _HOLE_TEXT, {"k": "y"}],
    "scalar",
    3.25,
    None,
    # lists of objects, rendered all at once (json_text._render_dicts)
    [{"a": 1}, {"b": {"c": [1, {"d": {}}]}, "e": []}, {"f": [{"g": 1}, {"h": {"i": 2}}]}],
    [{"a": {"x": 1}}, {"a": {"y": [2]}}, {"a": [{"z": {}}, {"z": {"w": None}}]}],
    [{"k": _HOLE_TEXT, "n": {"m": 1}}, {"k": {"deep": _HOLE_TEXT}}],
    [{"a": 1}, {}, {"b": 2}],
    [{"a": 1}, [2], {"b": {"c": 3}}],
    [{"s": "},\n  {"}, {"t": "}},\n    {{", "u": {"v": "},\n      {"}}],
    {"outer": [{"in": [{"x": (1, 2)}, {"y": {3: StepStatus.FAILED}}]}, {"in": []}]},
    # objects with the same keys, their values encoded as one flat list split at NULs
    # (json_text._render_uniform): NULs in the data, holes, odd values, keys not strings
    [{"k": "a\x00b", "n": 1}, {"k": "\x00", "n": {"m": "\x00", "o": [{"p": "\x00"}]}}],
    [{"a": float("nan"), "b": (1,)}, {"a": Path("/p"), "b": ()}, {"a": StepStatus.FAILED, "b": []}],
    [{1: "x", "y": {}}, {1: "z", "y": {2: 3}}],
    [{"a": 1, "b": 2}, {"b": 2, "a": 1}],
    [{"a": [{"x": 1}, {"x": [{"y": {"z": 1}}, {"y": {"z": 2}}]}]}, {"a": [{"x": 3}]}],
    [{"t": _HOLE_TEXT, "u": {"v": _HOLE_TEXT}}, {"t": "}\n", "u": {"v": "]\x00"}}],
    # containers under the first and the last key only, some empty; a key never holding one
    [
        {"o": {"x": 1}, "n": 1, "l": [2]},
        {"o": {}, "n": 2.5, "l": []},
        {"o": {"y": [3]}, "n": 3, "l": [{"z": "\x00"}]},
    ],
    [{"only": 1}, {"only": "}\n  {"}, {"only": None}],
]


@pytest.mark.parametrize("data", SHAPES, ids=range(len(SHAPES)))
def test_the_same_text_as_json_dumps(data: Any) -> None:
    assert dumps_indented(data) == json.dumps(data, indent=2, default=str)


def test_a_wide_and_deep_structure() -> None:
    steps = [
        {"id": f"s{i}", "outputs": {"i": i, "v": [i, {"w": str(i)}]}, "error": None}
        for i in range(300)
    ]
    data = {"stages": [{"id": "a", "steps": steps}, {"id": "b", "steps": []}], "memory": {}}
    assert dumps_indented(data) == json.dumps(data, indent=2, default=str)


def test_show_json_is_indented_json_of_its_own_data(tmp_path: Path) -> None:
    db = tmp_path / "qd.db"
    seed(db)
    shown = cli("show", RUN, "--json", "--store", str(db))
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["stages"][0]["steps"][0]["id"] == "probe"
    assert shown.stdout == json.dumps(data, indent=2) + "\n"
