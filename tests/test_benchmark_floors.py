"""``benchmarks/floors.py`` keeps working as the code under it changes (no timing is
checked: it prints figures). Its per-step parts run here on a few steps: the load and the
journal it measures are the real ones, so a changed API fails here, not in a note."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def floors():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import floors as module

        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_definition_rows_load_both_shapes(floors) -> None:  # type: ignore[no-untyped-def]
    rows = dict(floors.definition(20))
    assert set(rows) == {
        "libyaml parse only, independent",
        "Quarterdeck's load, independent",
        "libyaml parse only, chained",
        "Quarterdeck's load, chained",
    }
    assert all(seconds > 0 for seconds in rows.values())


def test_the_journal_rows_commit_chained_events(floors, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    made: list[Path] = []

    class Kept:  # the script's scratch folder, kept to read its stores back
        def __enter__(self) -> str:
            path = tmp_path / f"t{len(made)}"
            path.mkdir()
            made.append(path)
            return str(path)

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(floors.tempfile, "TemporaryDirectory", Kept)
    rows = dict(floors.journal(10))
    assert len(rows) == 4
    assert all(seconds > 0 for seconds in rows.values())
    for name in ("1.db", "100.db"):
        conn = sqlite3.connect(made[0] / name)
        runs = conn.execute("SELECT COUNT(DISTINCT run_id), COUNT(*) FROM events").fetchone()
        chained = conn.execute("SELECT COUNT(*) FROM events WHERE hash IS NULL").fetchone()[0]
        conn.close()
        # best of 5: five runs of 10 steps, 3 events each (the last batch of 10 too)
        assert runs == (5, 5 * 3 * 10)
        assert chained == 0
