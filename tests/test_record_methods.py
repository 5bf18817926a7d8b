"""A record's methods are exactly what ``dataclasses`` would have written.

Records are declared with ``record`` (``dataclasses`` would otherwise compile every method
of every event type at import): equality, hash, repr and frozenness come from ``Record``,
and a type's ``__init__`` is written when its first record is made. These tests hold
them to a reference: the same fields made into a plain frozen dataclass, as every payload
type was before.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import field
from typing import Any

import pytest

from quarterdeck.core.journal.events import PAYLOADS, PlanStep, RunStarted, StepFinished
from quarterdeck.core.journal.payload import Record, meta, record
from quarterdeck.core.journal.statuses import StepStatus
from tests.helpers import fresh_python

_KINDS = sorted({kind for kind in PAYLOADS.values()}, key=lambda kind: kind.__name__)


def _reference(kind: type[Record]) -> Any:
    """``kind``'s fields as a frozen dataclass with everything ``dataclasses`` generates."""
    made = dataclasses.make_dataclass(
        kind.__name__,
        [
            (
                f.name,
                f.type,
                dataclasses.field(default=f.default, default_factory=f.default_factory),
            )
            for f in dataclasses.fields(kind)  # type: ignore[arg-type]
        ],
        frozen=True,
        kw_only=True,
    )
    made.__qualname__ = kind.__qualname__
    return made


def _as_reference(record: Record) -> Any:
    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}  # type: ignore[arg-type]
    return _reference(type(record))(**values)


@pytest.mark.parametrize("kind", _KINDS, ids=lambda kind: kind.__name__)
def test_every_payload_type_compares_hashes_and_shows_as_its_dataclass_would(
    kind: type[Record],
) -> None:
    empty = kind.from_data({})
    again = kind.from_data({})
    assert empty == again
    assert (empty != again) is False
    assert repr(empty) == repr(_as_reference(empty))
    assert empty != object() and empty != _as_reference(empty)  # another type is never equal
    try:
        expected: int | type[TypeError] = hash(_as_reference(empty))
    except TypeError:
        expected = TypeError
    if expected is TypeError:
        with pytest.raises(TypeError):
            hash(empty)
    else:
        assert hash(empty) == expected


def test_the_order_keys_were_given_in_is_not_compared_but_every_field_is() -> None:
    one = StepFinished(status=StepStatus.SUCCEEDED, attempt=1, duration=0.5)
    same = StepFinished(duration=0.5, attempt=1, status=StepStatus.SUCCEEDED)
    assert one == same
    assert list(one.to_data()) != list(same.to_data())  # the order is kept for writing back
    assert one != StepFinished(status=StepStatus.SUCCEEDED, attempt=2, duration=0.5)
    assert one != StepFinished(status=StepStatus.FAILED, attempt=1, duration=0.5)
    assert repr(one) == repr(same) == repr(_as_reference(one))
    assert repr(one).startswith("StepFinished(status=<StepStatus.SUCCEEDED: 'succeeded'>, ")


def test_nested_records_compare_and_show_by_their_fields() -> None:
    plan = [{"id": "s", "steps": [{"id": "a", "uses": "shell", "needs": ["b"]}]}]
    first = RunStarted.from_data({"workflow": "w", "plan": plan})
    second = RunStarted.from_data({"plan": plan, "workflow": "w"})
    assert first == second
    assert first != RunStarted.from_data({"workflow": "w2", "plan": plan})
    assert "PlanStep(id='a', uses='shell', needs=['b'])" in repr(first)
    assert PlanStep(id="a") == PlanStep(id="a") != PlanStep(id="b")
    with pytest.raises(TypeError):  # a list field: unhashable, as the dataclass was
        hash(PlanStep(id="a"))


def test_records_stay_frozen() -> None:
    step = PlanStep(id="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.id = "b"  # type: ignore[misc]


def _required(kind: type[Record]) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(kind)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


@pytest.mark.parametrize("kind", _KINDS, ids=lambda kind: kind.__name__)
def test_every_payload_type_is_made_and_refused_as_its_dataclass_would_be(
    kind: type[Record],
) -> None:
    reference = _reference(kind)
    empty = kind.from_data({})
    values = {f.name: getattr(empty, f.name) for f in dataclasses.fields(empty)}  # type: ignore[arg-type]
    made = kind(**values)
    assert made == empty and repr(made) == repr(reference(**values))
    # the same errors, word for word: an unknown field, a positional value, a missing one
    bad: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {**values, "no_such_field": 1}),
        ((1,), values),
    ]
    if _required(kind):
        bad.append(((), {k: v for k, v in values.items() if k not in _required(kind)}))
    for bad_args, bad_kwargs in bad:
        with pytest.raises(TypeError) as ours:
            kind(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError) as theirs:
            reference(*bad_args, **bad_kwargs)
        assert str(ours.value) == str(theirs.value)
    for f in dataclasses.fields(kind):  # type: ignore[arg-type]
        with pytest.raises(dataclasses.FrozenInstanceError) as ours_frozen:
            setattr(made, f.name, None)
        with pytest.raises(dataclasses.FrozenInstanceError) as theirs_frozen:
            setattr(reference(**values), f.name, None)
        assert str(ours_frozen.value) == str(theirs_frozen.value)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(made, f.name)


def test_a_default_factory_gives_each_record_its_own_value() -> None:
    one, two = PlanStep(id="a"), PlanStep(id="b")
    assert one.needs == [] and one.needs is not two.needs
    given = ["x"]
    assert PlanStep(id="c", needs=given).needs is given  # a value given is kept, as given


def test_copies_and_pickles_are_equal_frozen_and_keep_the_key_order() -> None:
    step = StepFinished(duration=0.5, status=StepStatus.SUCCEEDED, attempt=1)
    for again in (copy.copy(step), copy.deepcopy(step), pickle.loads(pickle.dumps(step))):
        assert again == step and again is not step
        assert list(again.to_data()) == list(step.to_data()) == ["duration", "status", "attempt"]
        with pytest.raises(dataclasses.FrozenInstanceError):
            again.attempt = 2  # type: ignore[misc]


def test_importing_the_event_types_compiles_no_method() -> None:
    """What ``record`` is for: a command pays to write a type's ``__init__`` only when it
    makes a record of that type (``dataclasses`` compiled one per type at import)."""
    probe = (
        "from quarterdeck.core.journal import events\n"
        "from quarterdeck.core.journal.payload import Record\n"
        "kinds = {*events.PAYLOADS.values(), events.PlanStep, events.PlanStage}\n"
        "written = lambda: sorted(k.__name__ for k in kinds if k.__init__ is not Record.__init__)\n"
        "print(written())\n"
        "events.PlanStep(id='a')\n"
        "print(written())\n"
    )
    done = fresh_python(probe)
    assert done.stdout.splitlines() == ["[]", "['PlanStep']"]


def test_a_record_type_made_from_another_gets_its_own_init() -> None:
    @record
    class Base(Record):
        a: int = 1

    @record
    class Sub(Base):
        b: str = field(metadata=meta("?"))

    assert Base(a=2).a == 2  # Base's __init__ is written first
    sub = Sub(a=3, b="x")
    assert (sub.a, sub.b) == (3, "x")
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'b'"):
        Sub(a=3)  # type: ignore[call-arg]
