"""One test per exit code of the contract, each a subprocess run of the real CLI.

0 succeeded · 1 failed · 2 invalid · 3 rejected or approval timed out · 4 cancelled ·
130 interrupted (resumable).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli, cli_popen, gated_workflow, write_workflow


def _gated(extra: str) -> str:
    """The gated workflow that only alice may approve, plus ``extra`` gate policy."""
    return gated_workflow("approvers: [alice]", extra)


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GITHUB_STEP_SUMMARY",
        "TRACEPARENT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "GITHUB_ACTOR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", "true")


def _run(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    wf = write_workflow(tmp_path, text)
    return cli("run", str(wf), "--store", str(tmp_path / "qd.db"), *args)


def test_help_documents_the_exit_codes() -> None:
    for command in ("run", "resume"):
        proc = cli(command, "--help")
        assert proc.returncode == 0
        text = " ".join(proc.stdout.split())
        assert (
            "Exit codes: 0 succeeded · 1 failed (a step or gate) · 2 invalid input or "
            "definition · 3 rejected or approval timed out · 4 cancelled · 130 "
            "interrupted (resumable)."
        ) in text


def test_exit_0_succeeded(tmp_path: Path) -> None:
    proc = _run(tmp_path, _gated(""), "--approve", "publish", "--as", "alice", "--json")
    # alice starts the run and may not approve her own run: that is invalid input (2) …
    assert proc.returncode == 2
    assert "does not allow self-approval" in proc.stderr
    # … so an approver who did not start it is needed, or a gate that allows it
    proc = _run(
        tmp_path,
        _gated("allow_self_approval: true"),
        "--approve",
        "publish",
        "--as",
        "alice",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "succeeded"


def test_exit_1_failed(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        """\
name: failing
stages:
  - id: s
    steps:
      - id: boom
        uses: shell
        with: {run: "sh -c 'exit 9'"}
""",
    )
    assert proc.returncode == 1
    assert "boom: failed: sh exited with code 9" in proc.stderr


def test_exit_2_invalid_definition(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        """\
name: broken
stages:
  - id: s
    steps:
      - id: x
        uses: shell
        wiht: {run: "true"}
""",
    )
    assert proc.returncode == 2
    assert "wf.yaml:7:" in proc.stderr and "wiht" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_exit_2_invalid_input(tmp_path: Path) -> None:
    proc = _run(tmp_path, _gated(""), "--approve", "nosuchgate")
    assert proc.returncode == 2
    assert "no approval gate 'nosuchgate'" in proc.stderr


def test_exit_3_rejected(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        _gated(""),
        "--reject",
        "publish",
        "--as",
        "alice",
        "--reason",
        "not today",
        "--json",
    )
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "rejected"
    approval = data["approvals"][0]
    assert (approval["decided_by"], approval["reason"]) == ("alice", "not today")


def test_exit_3_approval_timed_out(tmp_path: Path) -> None:
    proc = _run(tmp_path, _gated("timeout: 300ms"), "--json")
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "rejected"
    assert data["approvals"][0]["timed_out"] is True


def test_exit_3_no_wait_names_the_gate_and_the_flag(tmp_path: Path) -> None:
    proc = _run(tmp_path, _gated(""), "--no-wait")
    assert proc.returncode == 3, proc.stderr
    assert "approval 'publish' is undecided and --no-wait was given" in proc.stderr
    assert "--approve publish" in proc.stderr and "--reject publish" in proc.stderr
    assert proc.stdout == ""


def test_exit_4_cancelled(tmp_path: Path) -> None:
    store = tmp_path / "qd.db"
    proc = _run(
        tmp_path,
        f"""\
name: cancelled
stages:
  - id: s
    steps:
      - id: cancel-me
        uses: shell
        with:
          run: >-
            {sys.executable} -m quarterdeck.tui.cli cancel {{{{ run.id }}}} --store {store}
            --as ops --reason drill
      - id: later
        needs: [cancel-me]
        uses: wait
        with: {{duration: 30s}}
""",
        "--json",
    )
    assert proc.returncode == 4, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "cancelled"
    assert "cancelled by ops: drill" in data["error"]


def test_exit_130_interrupted_and_resumable(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """\
name: long
stages:
  - id: s
    steps:
      - id: sleepy
        uses: shell
        with: {run: "sleep 60"}
""",
    )
    proc = cli_popen(
        "run",
        str(wf),
        "--events",
        "-",
        "--store",
        str(tmp_path / "qd.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    run_id = None
    for line in proc.stdout:  # bounded: the run cannot end by itself within the test
        event = json.loads(line)
        run_id = event["run_id"]
        if event["type"] == "step.started" and event["step"] == "sleepy":
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert json.loads(rest.splitlines()[-1])["type"] == "run.interrupted"
    assert f"quarterdeck resume {run_id}" in err
    shown = cli("show", str(run_id), "--json", "--store", str(tmp_path / "qd.db"))
    assert json.loads(shown.stdout)["status"] == "interrupted"
