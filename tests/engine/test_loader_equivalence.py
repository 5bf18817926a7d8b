"""The loader's data is what PyYAML's safe loader constructs, value for value.

The builder takes plain strings straight from the node (most values of a workflow) and
leaves every other scalar to PyYAML's constructor; these tests hold it to PyYAML's own
result for every bundled workflow and for a document with every kind of scalar, anchors
and merge keys. A definition loaded for a resume (not bound-checked again) is the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from quarterdeck.core.definition import loader as loader_module
from quarterdeck.core.definition.loader import (
    SourceMap,
    _build_from_nodes,
    _from_events,
    load_yaml,
    pack,
)
from quarterdeck.core.definition.yaml_events import FALLBACK
from quarterdeck.core.errors import DefinitionError

BUNDLED = sorted((Path(__file__).resolve().parents[2] / "workflows").glob("*.yaml"))

MIXED = """\
name: mixed
base: &base {retries: 3, ratio: 0.5, on: yes, off: false, none: null, tilde: ~}
stages:
  - <<: *base
    id: s
    when: "2024-01-02"
    date: 2024-01-02
    hex: 0x1F
    octal: 0o17
    big: 123456789012345678901234567890
    inf: .inf
    quoted: '007'
    block: |
      line one
      line two
    folded: >
      folded
      text
    list: [a, 1, 2.5, true, null, "x: y"]
    again: *base
"""


def test_bundled_workflows_load_as_pyyaml_constructs_them() -> None:
    assert BUNDLED
    for path in BUNDLED:
        text = path.read_text()
        data, _source = load_yaml(text, str(path))
        assert data == yaml.load(text, Loader=yaml.SafeLoader), path
        assert load_yaml(text, str(path), bounded=False)[0] == data


def test_every_kind_of_scalar_loads_as_pyyaml_constructs_it() -> None:
    data, source = load_yaml(MIXED, "mixed.yaml")
    expected = yaml.load(MIXED, Loader=yaml.SafeLoader)
    expected["base"]["true"] = expected["base"].pop(True)  # keys are strings in a workflow
    expected["base"]["false"] = expected["base"].pop(False)
    stage = expected["stages"][0]
    stage["true"] = stage.pop(True)
    stage["false"] = stage.pop(False)
    stage["again"] = expected["base"]
    assert data == expected
    assert source.locate(("stages", 0, "hex")) == (8, 10)
    assert source.locate(("stages", 0, "list", 4)) == (19, 29)


def test_positions_survive_packing_on_far_lines_and_wide_columns() -> None:
    # positions are kept packed in one int: a line past 256 and a column past 65,536
    # (one long flow line) must come back exactly, for values and for keys
    pad = "x" * 66_000
    text = "name: far\n" + "# pad\n" * 70_000 + "wide: {pad: " + pad + ", last: z}\n"
    _data, source = load_yaml(text, "far.yaml")
    line = 70_002
    last_key = len("wide: {pad: ") + len(pad) + len(", ") + 1
    assert source.locate(("wide",)) == (line, 7)
    assert source.locate(("wide", "last")) == (line, last_key + len("last: "))
    assert source.locate(("wide", "last"), key=True) == (line, last_key)
    assert source.locate(("wide", "missing")) == (line, 7)


def test_a_duplicate_key_names_the_line_of_the_first() -> None:
    text = "name: dup\n" + "# pad\n" * 300 + "k: 1\nk: 2\n"
    try:
        load_yaml(text, "dup.yaml")
    except DefinitionError as exc:
        assert [(p.line, p.column, p.message) for p in exc.problems] == [
            (303, 1, "duplicate key 'k' (first at line 302)")
        ]
    else:
        raise AssertionError("a duplicate key must be refused")


PLAIN = """\
name: plain
'quoted key': 1
7: seven
true: yes-key
stages:
  - id: s
    when: "2024-01-02"
    date: 2024-01-02
    hex: 0x1F
    big: 123456789012345678901234567890
    inf: .inf
    tagged: !!str 12
    block: |
      line one
    list: [a, 1, 2.5, true, null, "x: y", [nested, {deep: 1}]]
    steps:
      - {id: a, uses: shell, with: {run: echo}}
      -
        id: b
        empty:
"""


def _both_paths(text: str) -> tuple[Any, SourceMap, Any, SourceMap]:
    events, nodes = SourceMap("f.yaml"), SourceMap("f.yaml")
    data = _from_events(text, events, keys=True)
    return data, events, _build_from_nodes(text, nodes), nodes


@pytest.mark.parametrize("parser", ["libyaml", "pure"])
def test_the_event_path_builds_what_the_node_path_builds_with_every_position(
    parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a plain document is built from the parser's events (no node tree in memory): the
    # data, every value's position and every key's position match the node tree's, with
    # libyaml's parser and with PyYAML's pure one (used where libyaml is missing)
    if parser == "pure":
        monkeypatch.setattr(loader_module, "_Loader", yaml.SafeLoader)
    for text in [PLAIN, *(path.read_text() for path in BUNDLED)]:
        data, events, expected, nodes = _both_paths(text)
        assert data is not FALLBACK
        assert data == expected
        assert events.values == nodes.values
        assert events.keys == nodes.keys


def test_anything_but_a_plain_document_goes_the_node_tree_way() -> None:
    # anchors and aliases, merge keys (even without an anchor), several documents,
    # non-scalar and duplicate keys, control characters, unknown tags, bad YAML: the node
    # path builds these or reports them, exactly as before
    for text in (
        MIXED,
        "a: &x 1\nb: *x\n",
        "a: {<<: {b: 1}, c: 2}\n",
        "a: 1\n---\nb: 2\n",
        "? [a, b]\n: 1\n",
        "a: 1\na: 2\n",
        'a: "bell\\a"\n',
        "a: !custom 1\n",
        "a: [1, 2\n",
        "# only a comment\n",
    ):
        assert _from_events(text, SourceMap("f.yaml")) is FALLBACK, text
    with pytest.raises(DefinitionError) as info:
        load_yaml("a: 1\n---\nb: 2\n", "multi.yaml")
    assert "expected a single document" in info.value.problems[0].message


def test_key_positions_are_found_from_the_text_when_first_asked() -> None:
    # a plain document keeps no key positions (memory for the whole run); a message about
    # a key still points at the key, not at its value
    text = "name: k\nstages:\n  - {id: s, steps: [{uses: shell, wiht: {run: x}}]}\n"
    _data, source = load_yaml(text, "k.yaml")
    assert source.keys == {}
    assert source.locate(("stages", 0, "steps", 0, "wiht"), key=True) == (3, 35)
    assert source.locate(("stages", 0, "steps", 0, "wiht")) == (3, 41)
    assert source.keys[("name",)] == pack(1, 1)


SCALARS = """\
name: scalars
ints: [0, 7, 10, 007, 010, 0x1F, 0o17, 0b101, 1_000, +5, -3, "12", '9', 1:30, 12345678901234567890]
more: {a: 1, b: 19, c: 1234567890123456789, d: 99999999999999999999999, e: 1.5, f: 1e3}
again: [0, 7, 10, 007, 1_000, 1:30, yes, no, ~, null, true, 2024-01-02]
keys: {1: a, 010: b, 0x10: c, "2": d}
"""


def test_plain_integers_and_repeated_scalars_load_as_pyyaml_constructs_them() -> None:
    # the event path takes plain decimals without the constructor and remembers each
    # scalar's resolved tag: every other spelling of an int, and every repeat, must still
    # come out as PyYAML's safe loader makes it
    data = _from_events(SCALARS, SourceMap("f.yaml"), keys=True)
    expected = yaml.load(SCALARS, Loader=yaml.SafeLoader)
    expected["keys"] = {
        str(k).lower() if isinstance(k, bool) else str(k): v for k, v in expected["keys"].items()
    }
    assert data == expected
    assert [type(v) for v in data["ints"]] == [type(v) for v in expected["ints"]]


class _CountingLoader(loader_module._Loader):  # type: ignore[name-defined,misc]
    made = 0

    def __init__(self, stream: str) -> None:
        type(self).made += 1
        super().__init__(stream)


def test_a_plain_document_is_parsed_once_bounds_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the bounds are checked while the data is built from the same events: one parser per
    # plain file (it was two: check_bounds's pass, then the build's)
    monkeypatch.setattr(loader_module, "_Loader", _CountingLoader)
    for path in BUNDLED:
        _CountingLoader.made = 0
        load_yaml(path.read_text(), str(path))
        assert _CountingLoader.made == 1, path


def _refusal(call: Any) -> tuple[int, int, str]:
    with pytest.raises(DefinitionError) as info:
        call()
    (problem,) = info.value.problems
    return problem.line, problem.column, problem.message


@pytest.mark.parametrize(
    "text",
    [
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 110)),  # deep block nesting
        "a: " + "[" * 99 + "1" + "]" * 99 + "\n",  # 100 levels with the root: within bounds
        "a: " + "[" * 100 + "1" + "]" * 100 + "\n",  # 101: one too deep
        "a: " + "{k: " * 100 + "1" + "}" * 100 + "\n",
        "wide: [" + "1," * 99_997 + "1]\n",  # exactly at the bound: accepted
        "wide: [" + "1," * 99_998 + "1]\n",  # one past it
        "wide:\n" + "".join(f"  k{i}: v\n" for i in range(50_000)),  # keys count too
        "x: &a [1, 2]\ny: *a\n" + "wide: [" + "1," * 99_995 + "1]\n",  # an alias: falls back
    ],
)
def test_bounds_checked_while_building_refuse_what_check_bounds_refuses(text: str) -> None:
    # the same message at the same event as check_bounds gives (the path every document
    # that is not plain still takes), and nothing refused that it accepts
    try:
        loader_module.check_bounds(text, "f.yaml")
    except DefinitionError as exc:
        (expected,) = exc.problems
        assert _refusal(lambda: load_yaml(text, "f.yaml")) == (
            expected.line,
            expected.column,
            expected.message,
        )
    else:
        data, _source = load_yaml(text, "f.yaml")
        assert data == yaml.load(text, Loader=yaml.SafeLoader)


def test_a_plain_document_keeps_container_positions_and_finds_a_scalars_when_asked() -> None:
    # a workflow's map holds its mappings' and sequences' positions (every stage and step,
    # for the run's messages), not each scalar's: a message about a scalar finds it from
    # the text, at the same line and column as a map that held them all
    for path in BUNDLED:
        text = path.read_text()
        data, lean = load_yaml(text, str(path))
        full = SourceMap(str(path))
        assert _from_events(text, full, keys=True) is not FALLBACK
        assert set(lean.values) < set(full.values), path
        assert all(isinstance(data_at(data, loc), dict | list) for loc in lean.values)
        assert lean.text is not None
        for loc in list(full.values)[::5]:  # (a fresh parse each: a sample)
            fresh = load_yaml(text, str(path))[1]
            assert fresh.locate(loc) == full.locate(loc), (path, loc)
        for loc in lean.values:  # a container's position: no second parse
            assert lean.locate(loc) == full.locate(loc)
        assert lean.text is not None


def data_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data
