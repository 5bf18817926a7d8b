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
