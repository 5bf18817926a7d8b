"""A record's equality, hash and repr are exactly what ``dataclasses`` would have written.

Records are declared ``eq=False, repr=False`` (``dataclasses`` would otherwise generate
three methods per event type at import) and get one generic version of each from
``Record``; these tests hold them to a reference: the same fields made into a plain
frozen dataclass, as every payload type was before.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from quarterdeck.core.journal.events import PAYLOADS, PlanStep, RunStarted, StepFinished
from quarterdeck.core.journal.payload import Record
from quarterdeck.core.journal.statuses import StepStatus

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
