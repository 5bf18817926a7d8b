"""The compiled read of a plain dict (every event read back from the store) gives the very
record the general read of any mapping gives: same fields, same key order for writing
back, defaults not shared between records, the same errors, the same size."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from quarterdeck.core.journal.events import (
    PAYLOADS,
    RunStarted,
    StepFinished,
    StepOutput,
    StepStarted,
)
from quarterdeck.core.journal.payload import PayloadError
from quarterdeck.core.journal.statuses import StepStatus


class _Mapping(Mapping[str, Any]):
    """Not a dict: takes the general path."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


SAMPLES: list[tuple[type[Any], dict[str, Any]]] = [
    (StepFinished, {"status": "succeeded", "outputs": {"a": 1}, "attempt": 2, "duration": 0.5}),
    (StepFinished, {"duration": 0.5, "status": "failed", "error": "boom", "zzz": 1}),
    (StepFinished, {}),
    (StepStarted, {"attempt": "3", "uses": "shell", "role": "fallback", "parent": "x"}),
    (StepOutput, {"lines": ["a", "b"], "stream": "stderr"}),
    (
        RunStarted,
        {
            "workflow": "w",
            "plan": [{"id": "s", "steps": [{"id": "a", "uses": "shell", "needs": []}]}],
            "inputs": {"n": 1},
        },
    ),
]


@pytest.mark.parametrize(("kind", "data"), SAMPLES)
def test_plain_dict_reads_as_any_mapping(kind: type[Any], data: dict[str, Any]) -> None:
    quick = kind.from_data(data)
    general = kind.from_data(_Mapping(data))
    assert quick == general
    assert quick._order == general._order
    assert quick.to_data() == general.to_data()
    assert list(quick.to_data()) == list(general.to_data())


def test_every_payload_type_reads_an_empty_dict_as_any_mapping() -> None:
    for kind in set(PAYLOADS.values()):
        assert kind.from_data({}) == kind.from_data(MappingProxyType({})), kind


def test_defaults_are_not_shared_between_records() -> None:
    one, two = StepOutput.from_data({}), StepOutput.from_data({})
    one.lines.append("x")
    assert two.lines == []


def test_an_enum_value_reads_as_its_member_and_a_bad_one_is_refused() -> None:
    assert StepFinished.from_data({"status": "skipped"}).status is StepStatus.SKIPPED
    with pytest.raises(PayloadError, match=r"StepFinished\.status"):
        StepFinished.from_data({"status": "nope"})
    with pytest.raises(PayloadError, match=r"StepFinished\.status"):
        StepFinished.from_data({"status": ["unhashable"]})
    with pytest.raises(PayloadError, match=r"StepStarted\.attempt"):
        StepStarted.from_data({"attempt": "x"})


def test_a_compiled_read_is_the_size_of_a_constructed_record() -> None:
    """Set as the dataclass ``__init__`` sets it: slots only, no instance dict."""
    read = StepFinished.from_data({"status": "succeeded", "attempt": 1, "duration": 0.1})
    made = StepFinished(status=StepStatus.SUCCEEDED, attempt=1, duration=0.1)
    assert read == made
    assert not hasattr(read, "__dict__")
    assert sys.getsizeof(read) == sys.getsizeof(made)


def test_records_read_with_the_same_keys_share_one_key_order() -> None:
    one = StepStarted.from_data({"attempt": 1, "uses": "shell"})
    two = StepStarted.from_data({"attempt": 2, "uses": "python"})
    assert one._order == ("attempt", "uses")
    assert one._order is two._order
