"""All SQL lives in the journal package: nothing else runs statements on the store."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "tui", "screens", "personas", "workflows")
SQL = re.compile(
    r"\.(execute|executemany|executescript)\(|[\"'](SELECT|INSERT INTO|UPDATE \w+ SET|"
    r"DELETE FROM|CREATE TABLE|BEGIN(?: IMMEDIATE| EXCLUSIVE| DEFERRED| TRANSACTION)?[\"'])"
)


def test_no_sql_outside_core_journal() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO)
            if rel.parts[:2] == ("core", "journal") or "sandbox" in rel.parts:
                continue  # the demo sandbox's loopback servers keep their own databases
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SQL.search(line):
                    found.append(f"{rel}:{number}: {line.strip()}")
    assert found == [], "SQL outside core/journal:\n" + "\n".join(found)
