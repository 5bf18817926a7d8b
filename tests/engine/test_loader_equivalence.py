"""The loader's data is what PyYAML's safe loader constructs, value for value.

The builder takes plain strings straight from the node (most values of a workflow) and
leaves every other scalar to PyYAML's constructor; these tests hold it to PyYAML's own
result for every bundled workflow and for a document with every kind of scalar, anchors
and merge keys. A definition loaded for a resume (not bound-checked again) is the same.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from quarterdeck.core.definition.loader import load_yaml
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
