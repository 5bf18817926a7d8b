"""``dumps_indented`` against ``json.dumps(data, indent=2, default=str)`` on generated data
(fixed seeds: the same cases every run) made of what tends to break a hand-written encoder:
keys json converts, odd floats, subclasses, objects that need ``default=str``, the marker's
own text, separators and NULs in strings, lists of objects of the same and of differing keys."""

from __future__ import annotations

import datetime
import enum
import json
import random
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.tui.json_text import _HOLE_TEXT, dumps_indented


class Num(enum.IntEnum):
    ONE = 1
    MINUS = -7


class Word(enum.StrEnum):
    X = "x"
    HOLE = _HOLE_TEXT


class Half(float, enum.Enum):
    HALF = 1.5


class SubDict(dict[Any, Any]):
    pass


class SubList(list[Any]):
    pass


class SubTuple(tuple[Any, ...]):
    pass


class SubFloat(float):
    def __repr__(self) -> str:
        return "not json"


class SubInt(int):
    def __repr__(self) -> str:
        return "not json"


class SubStr(str):
    def __str__(self) -> str:
        return "not json"


class Reversed(list[Any]):
    """Iterated backwards: json.dumps iterates, the C encoder reads the storage."""

    def __iter__(self) -> Any:
        return reversed(list(super().__iter__()))


class HoleText:
    def __str__(self) -> str:
        return _HOLE_TEXT


class Separators:
    def __str__(self) -> str:
        return 'o"},\n  {\\'


STRINGS: list[Any] = [
    "",
    "a",
    "\x00",
    _HOLE_TEXT,
    '"' + _HOLE_TEXT,
    _HOLE_TEXT + '"',
    "x" + _HOLE_TEXT,
    "},\n",
    "},\n  {",
    '"',
    "\\",
    '\\"',
    "ü",
    "\u2028",
    "\ud800",
    "\udfff",
    "\U0001f600",
    "\x7f",
    "\n\t\r",
    "]\x00[",
    "null",
    SubStr("sub"),
    Word.X,
    Word.HOLE,
]
ODD: list[Any] = [
    float("nan"),
    float("inf"),
    -float("inf"),
    -0.0,
    1e300,
    5e-324,
    10**30,
    -(10**100),
    2**63,
    True,
    False,
    None,
    Num.ONE,
    Num.MINUS,
    Half.HALF,
    SubFloat(2.5),
    SubFloat("nan"),
    SubInt(3),
    Path("/tmp/x"),
    datetime.datetime(2026, 12, 1, 6, 0),
    datetime.date(2026, 1, 1),
    HoleText(),
    Separators(),
    {1, 2},
    frozenset(),
    b"bytes",
    1j,
    {},
    [],
    (),
    SubDict(),
    SubList(),
    SubTuple(),
    Reversed(),
]
KEYS: list[Any] = [
    "a",
    "b",
    1,
    2.5,
    True,
    False,
    None,
    -0.0,
    float("nan"),
    float("inf"),
    -float("inf"),
    10**20,
    Num.ONE,
    Word.X,
    SubStr("k"),
    SubFloat(1.25),
    SubInt(9),
    _HOLE_TEXT,
    "\x00",
    "},\n",
    '"',
    "ü",
    "\ud800",
]
LIST_KEYS = ["a", "b", "c", _HOLE_TEXT, "\x00", "},\n  {", '"']
LISTS = [list, list, SubList, SubTuple, tuple, Reversed]


def scalar(r: random.Random) -> Any:
    return r.choice(STRINGS) if r.random() < 0.5 else r.choice(ODD)


def objects(r: random.Random, depth: int) -> list[Any]:
    """Objects mostly of one set of keys (json_text's one-call paths), some reordered, one
    key short or long, a subclass or an empty one among them."""
    keys: list[Any] = r.sample(LIST_KEYS, r.randint(1, 4))
    if r.random() < 0.15:
        keys.append(r.choice([1, None, 2.5]))
    out: list[Any] = []
    for _ in range(r.choice([2, 3, 5])):
        these = list(keys)
        how = r.random()
        if how < 0.1:
            r.shuffle(these)
        elif how < 0.2:
            these = these[:-1] or these
        elif how < 0.25:
            these.append("extra")
        one: Any = {k: data(r, depth - 1) for k in these}
        if r.random() < 0.05:
            one = SubDict(one)
        elif r.random() < 0.03:
            one = {}
        out.append(one)
    return out


def data(r: random.Random, depth: int) -> Any:
    if depth <= 0 or r.random() < 0.3:
        return scalar(r)
    kind = r.randrange(6)
    size = r.choice([0, 1, 2, 3])
    if kind <= 1:
        mapping = {r.choice(KEYS): data(r, depth - 1) for _ in range(size)}
        return SubDict(mapping) if r.random() < 0.1 else mapping
    if kind == 2:
        return r.choice(LISTS)(data(r, depth - 1) for _ in range(size))
    return objects(r, depth)


def answer(dump: Any, value: Any) -> Any:
    try:
        return dump(value)
    except Exception as error:  # the same error, if it is one
        return type(error), str(error)


@pytest.mark.parametrize("seed", range(8))
def test_generated_data_the_same_text_as_json_dumps(seed: int) -> None:
    r = random.Random(seed)
    for _ in range(250):
        value = data(r, 4)
        expected = answer(lambda v: json.dumps(v, indent=2, default=str), value)
        assert answer(dumps_indented, value) == expected, repr(value)


class Falsy(list[Any]):
    """Items in its storage, yet empty to len(): json.dumps writes []."""

    def __len__(self) -> int:
        return 0


class FalsyDict(dict[Any, Any]):
    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize(
    "value",
    [
        {"k": Falsy([1, 2])},
        [Falsy([1])],
        {"k": FalsyDict(a=1)},
        [FalsyDict(a=1), 2],
        [{"a": Falsy([1])}, {"a": Falsy([2])}],
        [{"a": FalsyDict(b=1)}, {"c": Falsy([2])}],
    ],
    ids=range(6),
)
def test_a_container_empty_to_len_as_json_dumps(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, default=str)


def test_lists_of_objects_nested_deep_as_json_dumps() -> None:
    value: Any = 1
    for _ in range(300):  # 600 containers deep: json.dumps writes it
        value = [{"a": value}, {"a": 1}]
    assert dumps_indented(value) == json.dumps(value, indent=2, default=str)


def test_a_cycle_is_json_dumps_error() -> None:
    cycle: list[Any] = [1]
    cycle.append({"back": cycle})
    with pytest.raises(ValueError, match="Circular reference detected"):
        dumps_indented(cycle)
