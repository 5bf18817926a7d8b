"""``verify_run`` spells each link out in its loop, keeping the JSON of the strings a run
repeats (its id, event types, stages, steps): whatever the rows hold, it finds exactly the
problems that checking each row with the store's own ``event_hash`` finds."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from quarterdeck.core.journal.integrity import verify_run
from quarterdeck.core.journal.store import GENESIS, Store, event_hash


def _expected(rows: list[tuple[Any, ...]]) -> list[str]:
    """The problems, each row checked with ``event_hash`` (the documented link)."""
    found, prev, expected_seq = [], GENESIS, 1
    for *row, stored in rows:
        seq = row[1]
        if seq != expected_seq:
            found.append(f"event {seq}: expected seq {expected_seq} (an event is missing)")
        expected_seq = seq + 1
        if event_hash(prev, tuple(row)) != stored:
            found.append(f"event {seq} ({row[3]}): hash mismatch — edited after it was journaled")
        prev = stored
    return found


def test_the_kept_spellings_find_what_event_hash_finds(tmp_path: Path) -> None:
    rng = random.Random(16)
    texts = ["s", "s ü", 'q"t', "t\u2028", "\x00", "é✓🚀", "step.finished"]
    rows: list[tuple[Any, ...]] = []
    prev = GENESIS
    for seq in range(1, 400):
        row = (
            rng.choice(["r1", "r1", "r2"]),
            rng.choice([seq, seq, True]) if seq == 1 else seq,
            rng.choice([1.5, 1796065344.1329813, 3, float("nan"), 1e-7]),
            rng.choice(texts),
            rng.choice([None, *texts]),
            rng.choice([None, *texts]),
            '{"k":"' + rng.choice(texts).replace('"', "") + '"}',
        )
        prev = event_hash(prev, row)
        rows.append((*row, prev))
    changed = list(rows)
    for i in rng.sample(range(len(rows)), 40):  # data, a stage or a step edited; a row gone
        row = list(changed[i])
        row[rng.choice([4, 5, 6])] = rng.choice(["s", "x", None, '{"k":"x"}'])
        changed[i] = tuple(row)
    del changed[200]
    with Store(tmp_path / "qd.db") as store:
        for checked in (rows, changed):
            found = verify_run(store, "r1", rows=checked, snapshot=False)
            assert found.problems == _expected(checked)
            assert found.events == len(checked)
    assert _expected(rows) == [] and len(_expected(changed)) > 20


def test_a_row_event_hash_cannot_encode_is_a_mismatch_not_an_error(tmp_path: Path) -> None:
    """A lone surrogate (not UTF-8) or bytes in a row: ``event_hash`` raises for it, so it
    has no link and does not verify, on the spelled-out path and on ``event_hash``'s; the
    rows after it are checked as usual."""
    good = ("r1", 2, 2.5, "t", None, None, "{}")
    for row in [
        ("r1", 1, 1.5, "t", None, None, '{"k":"\ud800"}'),  # spelled out
        ("r1", 1, 1.5, "t", "\udfff", None, "{}"),
        ("r1", 1, 1, "t", None, None, '{"k":"\ud800"}'),  # an int ts: event_hash's way
        ("r1", 1, 1.5, "t", b"stage", None, "{}"),
    ]:
        rows = [(*row, "0" * 64), (*good, event_hash("0" * 64, good))]
        with Store(tmp_path / "qd.db") as store:
            found = verify_run(store, "r1", rows=rows, snapshot=False).problems
        assert found == ["event 1 (t): hash mismatch — edited after it was journaled"], row
