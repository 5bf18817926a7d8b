"""What a resume does with the run's definition (docs/architecture.md, "Recovery semantics").

The run goes on with the definition it started with, kept in the store with its hash.
When the hash matches, the text is parsed and not validated again (so a rule made
stricter since the run started does not strand it); when it does not, or the run predates
hashes, it is validated in full. A workflow file changed since the start is reported (what
changed, and whether it validates) and not used. Runs are real ``quarterdeck`` processes
on a real store; the resume that must see a stricter rule runs in-process (CliRunner),
where the rule can be made stricter.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quarterdeck.core.definition import validate
from quarterdeck.core.journal import schema
from quarterdeck.tui.cli import app
from tests.engine.procs import effects, finish, run_id, start
from tests.helpers import cli, write_workflow

# `gate` fails until a file `go` exists, so the first run stops (failed, resumable) with
# stage `t` left to do; every shell step records what ran in effects.txt
WORKFLOW = """\
name: stops-once
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
"""


def stopped_run(tmp: Path, text: str = WORKFLOW) -> tuple[Path, str]:
    """A run of ``text`` stopped at ``gate`` (exit 1); then ``go`` is made."""
    wf = write_workflow(tmp, text)
    code, err = finish(start(tmp, "run", str(wf)), tmp)
    assert code == 1, err
    (tmp / "go").touch()
    rid = run_id(tmp)
    assert rid
    return wf, rid


def resume(tmp: Path, rid: str) -> tuple[int, str]:
    return finish(start(tmp, "resume", rid, tag="resume"), tmp, "resume")


def sql(db: Path, statement: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(statement, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def test_the_definition_hash_is_kept_with_the_run(tmp_path: Path) -> None:
    wf, rid = stopped_run(tmp_path)
    [(definition, digest)] = sql(
        tmp_path / "qd.db", "SELECT definition, definition_sha256 FROM runs WHERE id = ?", (rid,)
    )
    assert definition == wf.read_text()
    assert digest == hashlib.sha256(definition.encode()).hexdigest()


def test_a_resume_does_not_check_again_the_definition_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quarterdeck gets stricter after the run started: ``memory.set`` is now refused. The
    run resumes anyway (it was accepted under the rules it started with); the same run
    without its hash (as from an older Quarterdeck) is validated in full and refused."""
    _wf, rid = stopped_run(tmp_path)
    legacy = tmp_path / "legacy.db"
    shutil.copyfile(tmp_path / "qd.db", legacy)
    sql(legacy, "UPDATE runs SET definition_sha256 = NULL")

    stricter = validate._action_problems

    def now_stricter(data: Any, loc: tuple[Any, ...], uses: str, add: Any) -> None:
        if uses == "memory.set":
            add((*loc, "uses"), "memory.set is refused by this stricter Quarterdeck")
        stricter(data, loc, uses, add)

    monkeypatch.setattr(validate, "_action_problems", now_stricter)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    refused = runner.invoke(app, ["resume", rid, "--headless", "--store", str(legacy)])
    assert refused.exit_code == 2, refused.output
    assert "memory.set is refused by this stricter Quarterdeck" in refused.output
    assert effects(tmp_path) == []  # nothing ran

    resumed = runner.invoke(app, ["resume", rid, "--headless", "--store", str(tmp_path / "qd.db")])
    assert resumed.exit_code == 0, resumed.output
    assert effects(tmp_path) == ["gate", "after"], resumed.output
    assert "changed since" not in resumed.output  # the file is the one the run started with


def test_a_changed_workflow_file_is_reported_and_not_used(tmp_path: Path) -> None:
    wf, rid = stopped_run(tmp_path)
    wf.write_text(
        WORKFLOW.replace("value: 1}", "value: 2}")  # `first` changed
        .replace("id: after", "id: extra")  # `after` removed, `extra` added
        .replace("echo after", "echo extra")
        .replace("name: stops-once", "name: stops-once\nconcurrency: 2")
    )
    code, err = resume(tmp_path, rid)
    assert code == 0, err
    assert (
        f"note: {wf} changed since run {rid} started; the run resumes with the definition "
        "it started with (kept in the store), not the file"
    ) in err
    assert "steps added: extra" in err
    assert "steps removed: after" in err
    assert "steps changed: first" in err
    assert "workflow fields changed: concurrency" in err
    assert effects(tmp_path) == ["gate", "after"]  # the definition it started with ran


def test_a_changed_file_that_no_longer_validates_is_reported(tmp_path: Path) -> None:
    wf, rid = stopped_run(tmp_path)
    wf.write_text(WORKFLOW.replace("needs: [first]", "needs: [frist]"))
    code, err = resume(tmp_path, rid)
    assert code == 0, err
    assert f"note: {wf} changed since run {rid} started" in err
    assert "the file as it is now does not validate:" in err
    assert "unknown step 'frist' in needs" in err
    assert effects(tmp_path) == ["gate", "after"]


def test_a_comment_only_change_says_nothing_else_changed(tmp_path: Path) -> None:
    wf, rid = stopped_run(tmp_path)
    wf.write_text("# reviewed\n" + WORKFLOW)
    code, err = resume(tmp_path, rid)
    assert code == 0, err
    assert "the same stages, steps and settings (comments or layout differ)" in err


def test_a_definition_changed_in_the_store_is_validated_again(tmp_path: Path) -> None:
    """The row's text no longer has the hash it started with: it is checked in full, and
    a broken one is refused with its problem, naming the store."""
    _wf, rid = stopped_run(tmp_path)
    db = tmp_path / "qd.db"
    sql(db, "UPDATE runs SET definition = replace(definition, 'needs: [first]', 'needs: [nope]')")
    code, err = resume(tmp_path, rid)
    assert code == 2, err
    assert "does not match the hash it was started with (changed in the store since)" in err
    assert str(db) in err
    assert "unknown step 'nope' in needs" in err
    assert "Traceback" not in err
    assert effects(tmp_path) == []


def test_a_v5_store_gains_the_hash_column_and_its_runs_resume(tmp_path: Path) -> None:
    """A store written before the hash was kept (schema v5): opening it to resume adds the
    column; its run has no hash, so it is validated in full and resumes; a new run in the
    same store keeps its hash."""
    _wf, rid = stopped_run(tmp_path)
    db = tmp_path / "qd.db"
    sql(db, "ALTER TABLE runs DROP COLUMN definition_sha256")  # the v5 shape
    sql(db, "PRAGMA user_version = 5")
    assert schema.latest() > 5
    code, err = resume(tmp_path, rid)
    assert code == 0, err
    assert effects(tmp_path) == ["gate", "after"]
    assert sql(db, "PRAGMA user_version") == [(schema.latest(),)]
    assert sql(db, "SELECT definition_sha256 FROM runs WHERE id = ?", (rid,)) == [(None,)]
    code, err = finish(start(tmp_path, "run", str(tmp_path / "wf.yaml"), tag="again"), tmp_path)
    assert code == 0, err
    [(definition, digest)] = sql(
        db, "SELECT definition, definition_sha256 FROM runs WHERE id != ?", (rid,)
    )
    assert digest == hashlib.sha256(definition.encode()).hexdigest()


def test_show_reads_a_v5_store_read_only_without_migrating_it(tmp_path: Path) -> None:
    _wf, rid = stopped_run(tmp_path)
    db = tmp_path / "qd.db"
    sql(db, "ALTER TABLE runs DROP COLUMN definition_sha256")
    sql(db, "PRAGMA user_version = 5")
    shown = cli("show", rid, "--store", str(db))
    assert shown.returncode == 0, shown.stderr
    assert rid in shown.stdout
    assert sql(db, "PRAGMA user_version") == [(5,)]


def test_a_persona_narrowed_since_the_start_is_checked_on_resume(tmp_path: Path) -> None:
    """The catalogs are not part of the hashed text: a persona's tools narrowed since the
    run started apply to the steps still to run, and the resume is refused."""
    personas = tmp_path / ".quarterdeck" / "personas"
    personas.mkdir(parents=True)
    tester = personas / "testing-specialist.yaml"
    tester.write_text('tools: ["shell"]\n')
    _wf, rid = stopped_run(
        tmp_path, WORKFLOW.replace("  - id: t\n", "  - id: t\n    persona: testing-specialist\n")
    )
    tester.write_text('tools: ["pytest"]\n')
    code, err = resume(tmp_path, rid)
    assert code == 2, err
    assert (
        "stages[t].steps[after].uses: step 'after' uses 'shell', which persona "
        "'testing-specialist' may not use (its tools: pytest)"
    ) in err
    assert effects(tmp_path) == []
    tester.write_text('tools: ["shell"]\n')
    code, err = resume(tmp_path, rid)
    assert code == 0, err
    assert effects(tmp_path) == ["gate", "after"]
