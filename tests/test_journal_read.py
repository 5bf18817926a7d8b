"""Reading a run's events back: each row's data decodes exactly as ``json.loads`` would,
through the store's real SQLite file, and anything odd still gets ``json.loads``'s answer
(its value or its error)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.store import Store, _load_data

ODD = [
    '{"a":1}',
    ' {"a": 1} ',
    '{"a":1}\n',
    '"text"',
    "[1,2.5,null,true]",
    "[NaN,-Infinity]",
    '{"ü":"\\u00e9","n":{"x":[{}]}}',
    "3",
]
BAD = ["", "{", '{"a":1}x', '{"a":1} {"b":2}', "  ", "nope"]


@pytest.mark.parametrize("text", ODD)
def test_data_decodes_as_json_loads(text: str) -> None:
    assert repr(_load_data(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", BAD)
def test_bad_data_fails_as_json_loads(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        _load_data(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def _store_with_run(tmp_path: Path) -> Store:
    """A store holding run ``r1`` and no events yet."""
    store = Store(tmp_path / "q.db")
    store.create_run(
        "r1",
        workflow="wf",
        title="wf",
        workflow_path="wf.yaml",
        definition="name: wf\n",
        workdir=str(tmp_path),
        inputs={},
        started_by="me",
        started_at=1.0,
    )
    return store


def test_events_read_back_as_written(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)
    written = [
        Event(
            "step.finished", "r1", "s", "a", {"status": "succeeded", "outputs": {"k": [1]}}, seq=1
        ),
        Event("memory.set", "r1", None, None, {"key": "ü", "value": None}, seq=2),
    ]
    store.append_many(written)
    read = store.events("r1")
    assert [e.data for e in read] == [e.data for e in written]
    assert [e.seq for e in read] == [1, 2]
    store.conn.execute("UPDATE events SET data = ? WHERE seq = 2", (' {"key": "x"} ',))
    assert store.events("r1")[1].data == {"key": "x"}


def test_raw_rows_read_once_fold_and_verify_as_read_twice(tmp_path: Path) -> None:
    from quarterdeck.core.journal.integrity import verify_run

    store = _store_with_run(tmp_path)
    store.append_many(
        Event("memory.set", "r1", None, None, {"key": f"k{i}", "value": i}, seq=i)
        for i in range(1, 4)
    )
    rows = store.raw_events("r1")
    assert store.events_of(rows) == store.events("r1")
    assert verify_run(store, "r1", rows=rows).to_json() == verify_run(store, "r1").to_json()
    assert verify_run(store, "r1", rows=rows).ok
    edited = [rows[0], (*rows[1][:6], '{"key":"k2","value":99}', rows[1][7]), rows[2]]
    result = verify_run(store, "r1", rows=edited)
    assert result.problems == [
        "event 2 (memory.set): hash mismatch — edited after it was journaled"
    ]


ROWS: list[tuple[Any, ...]] = [
    ("r1", 1, 1.5, "memory.set", None, None, '{"key":"k"}'),
    ("r1", 2, 1796065344.1329813, "step.finished", "stage ü", 'step "q"', '{"a":"\\u00e9"}'),
    ("r1", 3, 2.0, "t", "s", None, "{}"),
    ("r1", 4, 3, "t", "s", "p", "{}"),  # an int ts: json's own encoding
    ("r1", 5, float("nan"), "t", None, None, "{}"),
    ("r1", 6, 1e-7, "t\u2028", None, "\x00", '{"x":[1,2]}'),
    ("r1", True, 1.0, "t", None, None, "{}"),
]


@pytest.mark.parametrize("row", ROWS, ids=range(len(ROWS)))
def test_verifys_link_is_the_stores_event_hash(row: tuple[Any, ...], tmp_path: Path) -> None:
    """Each row's link as ``verify_run`` computes it (spelled out, or ``event_hash`` for a
    row not as the writer makes it) is the store's ``event_hash``: at the chain's start and
    after another row."""
    from quarterdeck.core.journal.integrity import verify_run
    from quarterdeck.core.journal.store import GENESIS, Store, event_hash

    first = ("r1", 0, 1.0, "t", None, None, "{}")
    after = event_hash(GENESIS, first)
    for rows in (
        [(*row, event_hash(GENESIS, row))],
        [(*first, after), (*row, event_hash(after, row))],
    ):
        with Store(tmp_path / "qd.db") as store:
            found = verify_run(store, "r1", rows=rows, snapshot=False).problems
        assert [p for p in found if "hash mismatch" in p] == []


def test_events_are_built_from_rows_by_position() -> None:
    """``Store.events_of`` passes a row's columns to ``Event`` by position (quicker than by
    keyword): its first fields must stay in this order."""
    names = [f.name for f in fields(Event)][:7]
    assert names == ["type", "run_id", "stage", "step", "data", "ts", "seq"]


def test_verify_run_finds_each_changed_row_by_its_own_link(tmp_path: Path) -> None:
    """``verify_run`` checks each row by its own link: the rows above, chained with
    ``event_hash``, verify; each one changed alone breaks its own link only, and so does a
    row under another run's id."""
    from quarterdeck.core.journal.integrity import verify_run
    from quarterdeck.core.journal.store import GENESIS, Store, event_hash

    def chained(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        out, prev = [], GENESIS
        for row in rows:
            prev = event_hash(prev, row)
            out.append((*row, prev))
        return out

    def mismatches(rows: list[tuple[Any, ...]]) -> list[str]:
        with Store(tmp_path / "qd.db") as store:
            found = verify_run(store, "r1", rows=rows, snapshot=False).problems
        return [p for p in found if "hash mismatch" in p]

    rows = [*ROWS, ("r2", 8, 4.0, "t", None, None, "{}"), ("r1", 9, 5.0, "t", None, None, "{}")]
    good = chained(rows)
    assert mismatches(good) == []
    for i, row in enumerate(rows):
        changed = list(good)
        changed[i] = (*row[:6], row[6] + " ", good[i][7])  # its data, its stored hash kept
        assert len(mismatches(changed)) == 1, i
    other = list(good)
    other[-1] = ("r2", *good[-1][1:])  # the same row under the run id before it
    assert len(mismatches(other)) == 1
