"""A ``lean`` class behaves exactly as the dataclass ``dataclasses`` would have made.

``lean`` (core/lean.py) skips the method compilation ``dataclasses`` does at import: one
``__eq__`` and ``__repr__`` serve every class and ``__init__`` is written at the first
instance. These tests hold every lean class the journal's state is made of (and a few made
here for the corner cases) to a reference: the same fields made into a plain dataclass.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from collections import deque
from typing import Any

import pytest

from quarterdeck.core.journal import parts
from quarterdeck.core.journal.statuses import StepStatus
from quarterdeck.core.lean import lean

_LEAN = sorted(
    (
        kind
        for kind in vars(parts).values()
        if isinstance(kind, type) and kind.__module__ == parts.__name__
    ),
    key=lambda kind: kind.__name__,
)


def _reference(kind: type) -> Any:
    """``kind``'s fields as a plain dataclass with everything ``dataclasses`` generates."""
    made = dataclasses.make_dataclass(
        kind.__name__,
        [
            (
                f.name,
                f.type,
                dataclasses.field(default=f.default, default_factory=f.default_factory),
            )
            for f in dataclasses.fields(kind)
        ],
    )
    made.__qualname__ = kind.__qualname__
    return made


def _required(kind: type) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(kind)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def _values(kind: type) -> dict[str, Any]:
    return {name: f"v-{name}" for name in _required(kind)}


def test_the_state_parts_are_lean() -> None:
    assert [kind.__name__ for kind in _LEAN] == sorted(
        [
            "StepState",
            "GateState",
            "Vote",
            "Refusal",
            "ApprovalState",
            "StageState",
            "PersonaUsage",
            "Switch",
            "SignalSeen",
            "LogLine",
        ]
    )
    for kind in _LEAN:
        assert kind.__eq__ is parts.StepState.__eq__  # one for all: none written per class


@pytest.mark.parametrize("kind", _LEAN, ids=lambda kind: kind.__name__)
def test_every_part_is_made_compared_and_shown_as_its_dataclass_would_be(kind: type) -> None:
    reference = _reference(kind)
    values = _values(kind)
    ours, theirs = kind(**values), reference(**values)
    assert repr(ours) == repr(theirs)
    assert {f.name: getattr(ours, f.name) for f in dataclasses.fields(kind)} == {
        f.name: getattr(theirs, f.name) for f in dataclasses.fields(reference)
    }
    assert ours == kind(**values)
    assert (ours != kind(**values)) is False
    assert ours != theirs and ours != object()  # another class is never equal
    assert kind.__hash__ is None and reference.__hash__ is None  # mutable: unhashable
    with pytest.raises(TypeError):
        hash(ours)
    assert kind.__match_args__ == reference.__match_args__  # type: ignore[attr-defined]
    # positionally too, in field order
    assert kind(*values.values()) == ours
    # each field compared: a change to any one makes them differ
    for f in dataclasses.fields(kind):
        other = kind(**values)
        setattr(other, f.name, "changed")
        assert other != ours
        assert repr(other) == repr(dataclasses.replace(theirs, **{f.name: "changed"}))
    # default factories give each instance its own value
    factories = [
        f.name for f in dataclasses.fields(kind) if f.default_factory is not dataclasses.MISSING
    ]
    for name in factories:
        assert getattr(kind(**values), name) is not getattr(ours, name)


@pytest.mark.parametrize("kind", _LEAN, ids=lambda kind: kind.__name__)
def test_every_part_refuses_bad_arguments_with_its_dataclass_s_words(kind: type) -> None:
    reference = _reference(kind)
    values = _values(kind)
    bad: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {**values, "no_such_field": 1}),
        (tuple(range(len(dataclasses.fields(kind)) + 1)), {}),  # one positional too many
    ]
    if values:
        bad.append(((), {}))  # required ones missing
        bad.append(((1,), values))  # given twice
    for args, kwargs in bad:
        with pytest.raises(TypeError) as ours:
            kind(*args, **kwargs)
        with pytest.raises(TypeError) as theirs:
            reference(*args, **kwargs)
        assert str(ours.value) == str(theirs.value)


def test_copies_pickles_replace_and_asdict_work_as_on_a_dataclass() -> None:
    step = parts.StepState(id="a", stage="s", needs=["b"], status=StepStatus.FAILED)
    step.tail = deque(["line"], maxlen=parts.LOG_TAIL)
    for made in (copy.copy(step), copy.deepcopy(step), pickle.loads(pickle.dumps(step))):
        assert made == step and made is not step
    assert dataclasses.replace(step, attempts=3).attempts == 3
    assert dataclasses.asdict(parts.Vote("ann", "approved", "ok", 1.0))["by"] == "ann"  # type: ignore[arg-type]
    assert not hasattr(step, "__dict__")  # slotted, as before
    assert hasattr(parts.Vote("ann", "approved", "ok", 1.0), "__dict__")  # type: ignore[arg-type]


def test_a_self_containing_value_shows_as_dots_as_in_a_dataclass() -> None:
    stage = parts.StageState(id="s")
    reference = _reference(parts.StageState)(id="s")
    stage.steps["me"] = stage  # type: ignore[assignment]
    reference.steps["me"] = reference
    assert repr(stage) == repr(reference)
    assert "steps={'me': ...}" in repr(stage)


def test_field_options_and_post_init_are_honoured() -> None:
    @lean
    class Thing:
        """A thing."""

        a: int
        b: list[int] = dataclasses.field(default_factory=list)
        hidden: int = dataclasses.field(default=0, repr=False, compare=False)
        later: int = dataclasses.field(default=5, init=False)
        made: list[int] = dataclasses.field(default_factory=list, init=False)

        def __post_init__(self) -> None:
            self.b.append(self.a)

    @dataclasses.dataclass
    class Reference:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)
        hidden: int = dataclasses.field(default=0, repr=False, compare=False)
        later: int = dataclasses.field(default=5, init=False)
        made: list[int] = dataclasses.field(default_factory=list, init=False)

        def __post_init__(self) -> None:
            self.b.append(self.a)

    thing, reference = Thing(1, hidden=3), Reference(1, hidden=3)
    assert repr(thing).replace("Thing", "Reference") == repr(reference)
    assert (thing.b, thing.later, thing.made) == ([1], 5, [])
    assert thing == Thing(1, hidden=4)  # not compared
    with pytest.raises(TypeError) as ours:
        Thing(1, later=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError) as theirs:
        Reference(1, later=2)  # type: ignore[call-arg]
    assert str(ours.value).replace("Thing", "Reference") == str(theirs.value)


def test_a_required_field_after_a_default_is_refused_at_once_as_dataclasses_does() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @lean
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_importing_the_state_parts_compiles_no_method() -> None:
    """A fresh process: importing the parts compiles no ``__init__``/``__eq__``/``__repr__``
    (``dataclasses`` compiled three per class); the first instance writes its ``__init__``."""
    probe = """
import builtins, sys
compiled = []
real_exec = builtins.exec
def spy(source, *args, **kwargs):
    if isinstance(source, str):
        compiled.append(source.split("(")[0])
    return real_exec(source, *args, **kwargs)
import quarterdeck.core.journal.events  # its records and their imports: not what is probed
builtins.exec = spy
import quarterdeck.core.journal.parts as parts
builtins.exec = real_exec
print(len(compiled))
builtins.exec = spy
parts.Vote("ann", "approved", "ok", 1.0)
parts.Vote("bob", "approved", "ok", 2.0)
builtins.exec = real_exec
print(compiled)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    at_import, first_use = done.stdout.splitlines()
    assert at_import == "0"
    assert first_use == "['def __init__']"  # once, for the first Vote
