"""A run keeps its definition's data as JSON next to the text (schema v7), and a resume
reads it back instead of parsing the YAML (docs/architecture.md, "Recovery semantics").

The JSON is only ever a faster way to the same definition: its steps' messages name the
same ``file:line:col``; a JSON changed in the store, or one a definition cannot have
(a YAML date), is not used and the text is parsed as before; a v6 store gains the column
and its runs resume from their text. Runs are real ``quarterdeck`` processes on a real
store; the resume that must show the YAML is not parsed runs in-process (CliRunner).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quarterdeck.core.definition import loader, validate
from quarterdeck.core.definition.loader import SourceMap, load_yaml
from quarterdeck.core.journal import definition_data, schema
from quarterdeck.core.journal.store import definition_digest
from quarterdeck.tui.cli import app
from tests.engine.procs import effects
from tests.engine.test_resume_definition import resume, sql, stopped_run

# `gate` fails until `go` exists; once resumed, `after` runs and `late` fails on an
# expression only the run can evaluate, so its message names its place in the file
WORKFLOW = """\
name: kept-data
stages:
  - id: s
    steps:
      - id: first
        uses: memory.set
        with: {key: k, value: 1}
      - id: gate
        needs: [first]
        uses: shell
        with: {shell: true, run: "test -f go && echo gate >> effects.txt"}
  - id: t
    steps:
      - id: after
        uses: shell
        with: {shell: true, run: "echo after >> effects.txt"}
      - id: late
        needs: [after]
        uses: shell
        with: {shell: true, run: "echo {{ memory.nope.x }}"}
"""
LATE_AT = "wf.yaml:17:9: step late.with"  # `- id: late`


def kept(db: Path, rid: str) -> tuple[str, Any]:
    [(digest, compact)] = sql(
        db, "SELECT definition_sha256, definition_data FROM runs WHERE id = ?", (rid,)
    )
    return digest, compact


def test_a_run_keeps_its_definitions_data_and_step_positions(tmp_path: Path) -> None:
    wf, rid = stopped_run(tmp_path, WORKFLOW)
    digest, compact = kept(tmp_path / "qd.db", rid)
    got = definition_data.decode(digest, compact)
    assert got is not None
    data, positions = got
    parsed, source = load_yaml(wf.read_text(), "wf.yaml")
    assert data == parsed
    # every stage and step, where the text has it
    assert positions == {
        loc: source.values[loc]
        for loc in [
            ("stages", 0),
            ("stages", 0, "steps", 0),
            ("stages", 0, "steps", 1),
            ("stages", 1),
            ("stages", 1, "steps", 0),
            ("stages", 1, "steps", 1),
        ]
    }


def test_a_resume_reads_the_kept_data_and_does_not_parse_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No YAML of the run's definition is parsed on the way to its steps, and the message
    of a step that fails still names its line and column in the file."""
    wf, rid = stopped_run(tmp_path, WORKFLOW)
    parsed: list[str] = []

    def spy(text: str, file: str, **kwargs: Any) -> Any:
        parsed.append(file)
        return load_yaml(text, file, **kwargs)

    monkeypatch.setattr(validate, "load_yaml", spy)
    monkeypatch.setattr(loader, "load_yaml", spy)
    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(
        app, ["resume", rid, "--headless", "--store", str(tmp_path / "qd.db")]
    )
    assert resumed.exit_code == 1, resumed.output  # `late` fails, as it should
    assert effects(tmp_path) == ["gate", "after"]
    assert f"{LATE_AT}: expression '{{{{ memory.nope.x }}}}' failed" in resumed.output
    assert str(wf.name) not in " ".join(parsed), parsed


def test_a_kept_json_changed_in_the_store_is_not_used(tmp_path: Path) -> None:
    """The JSON says `after` echoes something else; it no longer matches its digest, so
    the text (which still has its hash) is what runs."""
    _wf, rid = stopped_run(tmp_path, WORKFLOW)
    db = tmp_path / "qd.db"
    sql(db, "UPDATE runs SET definition_data = replace(definition_data, 'echo after', 'echo evil')")
    assert "echo evil" in kept(db, rid)[1]
    code, err = resume(tmp_path, rid)
    assert code == 1, err
    assert "Traceback" not in err
    assert effects(tmp_path) == ["gate", "after"]
    assert LATE_AT in err


@pytest.mark.parametrize(
    "compact",
    ["not json at all", "", "0" * 64 + "\n{}", None],
    ids=["garbage", "empty", "digest-of-nothing", "null"],
)
def test_a_corrupt_or_missing_kept_json_falls_back_to_the_text(
    tmp_path: Path, compact: str | None
) -> None:
    _wf, rid = stopped_run(tmp_path, WORKFLOW)
    sql(tmp_path / "qd.db", "UPDATE runs SET definition_data = ?", (compact,))
    code, err = resume(tmp_path, rid)
    assert code == 1, err
    assert "Traceback" not in err
    assert effects(tmp_path) == ["gate", "after"]
    assert LATE_AT in err


def test_a_definition_json_cannot_hold_keeps_none_and_resumes_from_its_text(
    tmp_path: Path,
) -> None:
    """A YAML date would come back from JSON as a string: no JSON is kept for it."""
    text = WORKFLOW.replace("with: {key: k, value: 1}", "with: {key: k, value: 2026-11-30}")
    _wf, rid = stopped_run(tmp_path, text)
    assert kept(tmp_path / "qd.db", rid)[1] is None
    code, err = resume(tmp_path, rid)
    assert code == 1, err
    assert effects(tmp_path) == ["gate", "after"]
    assert LATE_AT in err


def test_encode_keeps_only_data_that_reads_back_as_itself() -> None:
    digest = definition_digest("x")
    assert definition_data.encode(digest, {"a": [1, 2.5, True, None, "é"]}, {}) is not None
    assert definition_data.encode(digest, {1: "int key"}, {}) is None
    assert definition_data.encode(digest, {"s": {1, 2}}, {}) is None
    body = definition_data.encode(digest, {"a": 1}, {("stages", 0): 5})
    assert definition_data.decode(digest, body) == ({"a": 1}, {})  # no stages: no positions
    assert definition_data.decode(definition_digest("y"), body) is None  # another text's


def test_a_v6_store_gains_the_data_column_and_its_runs_resume_from_the_text(
    tmp_path: Path,
) -> None:
    _wf, rid = stopped_run(tmp_path, WORKFLOW)
    db = tmp_path / "qd.db"
    sql(db, "ALTER TABLE runs DROP COLUMN definition_data")  # the v6 shape
    sql(db, "PRAGMA user_version = 6")
    assert schema.latest() >= 7
    v6 = tmp_path / "v6.db"
    shutil.copyfile(db, v6)
    code, err = resume(tmp_path, rid)
    assert code == 1, err
    assert effects(tmp_path) == ["gate", "after"]
    assert LATE_AT in err
    assert sql(db, "PRAGMA user_version") == [(schema.latest(),)]
    assert kept(db, rid)[1] is None  # nothing made up for the old run
    # read-only commands read a v6 store as it is
    shown = CliRunner().invoke(app, ["show", rid, "--json", "--store", str(v6)])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["id"] == rid
    assert sql(v6, "PRAGMA user_version") == [(6,)]


def test_a_map_that_knows_some_positions_finds_the_rest_as_the_text_gives_them() -> None:
    text = WORKFLOW
    _data, full = load_yaml(text, "wf.yaml")
    full.locate((), key=True)  # its keys too
    known = {("stages", 1, "steps", 1): full.values[("stages", 1, "steps", 1)]}
    for loc in [*full.values, ("stages", 1, "steps", 1, "with", "nope")]:
        lazy = SourceMap.of_text("wf.yaml", text, known)
        assert lazy.locate(loc) == full.locate(loc), loc
    for loc in full.keys:
        lazy = SourceMap.of_text("wf.yaml", text, known)
        assert lazy.locate(loc, key=True) == full.locate(loc, key=True), loc
    lazy = SourceMap.of_text("wf.yaml", text, known)
    assert lazy.locate(("stages", 1, "steps", 1)) == (17, 9)
    assert lazy.text is not None  # a known position: the text was not parsed for it


def test_positions_kept_by_a_run_read_back_the_same_in_any_later_version() -> None:
    """A run journals its stages' and steps' positions packed into ints; a resume by a
    later version unpacks them. The packing is part of the journal: this is the row an
    earlier version kept for ``WORKFLOW`` (its stage ``s`` at 4:5), and the file bound is
    set from the packing, so no column of an accepted file spills into its line."""
    text_sha256 = definition_digest(WORKFLOW)
    body = json.dumps({"data": {"name": "kept-data"}, "at": [["stages", 0, 8388613]]})
    kept = f"{definition_data._digest(text_sha256, body)}\n{body}"
    found = definition_data.decode(text_sha256, kept)
    assert found is not None
    assert loader.unpack(found[1][("stages", 0)]) == (4, 5)
    assert loader.pack(4, 5) == 8388613
    assert loader.MAX_BYTES < 1 << loader.COL_BITS
