"""An unexpected exception inside an action is that step's failure, never the run's crash.

Real cases, no mocks: ``shell`` with a ``cwd`` that is a file raises NotADirectoryError
from the OS; the step must fail with the type in its error and the traceback in its log,
and retries, fallbacks, ``continue_on_error`` and ``on_failure`` must apply.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, run_workflow

BROKEN_CWD = "        uses: shell\n        with: {run: 'true', cwd: afile}\n"


def test_an_unexpected_exception_runs_on_failure_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: boom\nstages:\n  - id: deploy\n    steps:\n      - id: broken\n"
        + BROKEN_CWD
        + "    on_failure:\n      - id: rollback\n        uses: shell\n"
        "        with: {run: \"sh -c 'echo rolled-back > rollback.txt'\"}\n"
    )
    db = str(tmp_path / "qd.db")
    ran = cli("run", str(wf), "--headless", "--store", db, "--workdir", str(tmp_path))
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert (tmp_path / "rollback.txt").read_text().strip() == "rolled-back"
    runs = json.loads(cli("runs", "--json", "--store", db).stdout)
    run_id = runs[0]["id"]
    shown = json.loads(cli("show", run_id, "--json", "--store", db).stdout)
    assert shown["status"] == "failed"
    resumed = cli("resume", run_id, "--headless", "--store", db)
    assert "Traceback" not in resumed.stderr
    assert resumed.returncode in (1, 2), resumed.stderr


def test_the_error_names_the_type_and_the_log_keeps_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    ran = run_workflow(
        tmp_path,
        "name: t\nstages:\n  - id: s\n    steps:\n      - id: broken\n"
        + BROKEN_CWD
        + "        continue_on_error: true\n"
        "      - id: after\n        uses: shell\n        needs: [broken]\n"
        "        with: {run: 'true'}\n",
    )
    broken = ran.state.step("broken")
    assert broken is not None and broken.status == "failed"
    assert broken.error.startswith("NotADirectoryError:")
    log = list(broken.tail)
    named = [text for text in log if "traceback in " in text]
    assert named, log
    saved = Path(named[0].rsplit("traceback in ", 1)[1].rstrip(")"))
    assert saved.read_text().startswith("Traceback (most recent call last)")
    assert "NotADirectoryError" in saved.read_text()
    assert ran.state.step("after").status == "succeeded"  # type: ignore[union-attr]
    assert ran.state.status == "succeeded"


def test_retries_and_fallbacks_apply_to_an_unexpected_exception(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    ran = run_workflow(
        tmp_path,
        "name: t\nstages:\n  - id: s\n    steps:\n      - id: broken\n"
        + BROKEN_CWD
        + "        retry: {max_attempts: 2, initial_delay: 0}\n"
        "        fallback:\n          - id: plan-b\n            uses: shell\n"
        "            with: {run: \"sh -c 'echo b >> tries'\"}\n",
    )
    broken = ran.state.step("broken")
    assert broken is not None and broken.status == "succeeded" and broken.via == "plan-b"
    assert broken.attempts == 2
    assert ran.state.status == "succeeded"
