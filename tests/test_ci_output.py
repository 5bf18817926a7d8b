"""Headless output for CI: stdout/stderr discipline, colour, GitHub Actions, event streams.

Every CLI test runs the real ``quarterdeck`` in a subprocess without a terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from quarterdeck.core.journal.events import Event, EventType
from quarterdeck.tui.headless.ci import (
    GitHubActions,
    append_step_summary,
    command,
    escape_data,
    escape_property,
)
from tests.helpers import REPO, cli, cli_on_a_terminal, write_workflow

TS_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[[^\]]+\]")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

FAILING = """\
name: ci-demo
stages:
  - id: build
    persona: backend-engineer
    steps:
      - id: compile
        uses: shell
        with: {run: "echo compiled"}
      - id: lint
        uses: shell
        continue_on_error: true
        with:
          run: "sh -c 'echo checking; echo \\"E501 100% over: a,b\\"; exit 3'"
      - id: tests
        uses: shell
        with: {run: "sh -c 'echo coverage=75 >> $QUARTERDECK_OUTPUT; echo ran 10 tests'"}
    gate:
      id: quality
      all: ["{{ steps.tests.outputs.coverage >= 80 }}"]
  - id: publish
    steps:
      - id: upload
        uses: shell
        with: {run: "echo never"}
"""


@pytest.fixture(autouse=True)
def _clean_ci_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests decide which CI variables the subprocess sees, not the host's CI."""
    for name in (
        "GITHUB_STEP_SUMMARY",
        "TRACEPARENT",
        "TRACESTATE",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "NO_COLOR",
        "FORCE_COLOR",
        "CLICOLOR_FORCE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_github_actions_run_with_failing_step_and_gate(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, FAILING)
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier step content\n")
    reports = tmp_path / "reports"
    proc = cli(
        "run",
        str(wf),
        "--json",
        "--report-dir",
        str(reports),
        "--store",
        str(tmp_path / "qd.db"),
        env={
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_STEP_SUMMARY": str(summary),
            "TERM": "xterm-256color",
        },
    )
    assert proc.returncode == 1, proc.stderr

    # stdout: data only — exactly the --json object
    data = json.loads(proc.stdout)
    assert data["status"] == "failed"
    assert [s["status"] for s in data["stages"]] == ["failed", "pending"]
    assert "::" not in proc.stdout and "stage started" not in proc.stdout

    # stderr: narration, plain (no colour, no animation), timestamped, with stage/persona/step
    err = proc.stderr
    assert not ANSI.search(err)
    lines = err.splitlines()
    narration = [ln for ln in lines if not ln.startswith("::")]
    assert any(
        TS_LINE.match(ln) and "[build · backend-engineer] lint: failed:" in ln for ln in narration
    )
    assert any("[build · backend-engineer] tests: | ran 10 tests" in ln for ln in narration)
    for ln in narration:
        if ln.startswith(("reports written", " ")):
            continue
        assert TS_LINE.match(ln), ln

    # one group per stage that ran, opened before its lines and closed after
    assert lines.count("::group::stage build") == 1
    opened = lines.index("::group::stage build")
    closed = lines.index("::endgroup::")
    assert opened < closed
    inside = lines[opened:closed]
    assert any("stage failed" in ln for ln in inside)
    assert any("persona - → backend-engineer" in ln for ln in inside)

    # annotations: the failed step and the failed gate, escaped per GitHub's rules
    errors = [ln for ln in lines if ln.startswith("::error")]
    assert len(errors) == 2, errors
    step_error = next(ln for ln in errors if "lint" in ln)
    assert step_error.startswith("::error title=ci-demo%3A build / lint failed (continue_on_error")
    assert "%3A" in step_error.split("::")[1]  # ':' escaped inside the title property
    message = step_error.split("::", 2)[2]
    assert "sh exited with code 3" in message
    assert "100%25 over: a,b" in message  # '%' escaped in data; ':' and ',' left alone
    gate_error = next(ln for ln in errors if "quality gate" in ln)
    assert gate_error == (
        "::error title=ci-demo%3A quality gate quality failed (stage build)"
        "::{{ steps.tests.outputs.coverage >= 80 }}"
    )

    # the step summary was appended to, not replaced
    text = summary.read_text()
    assert text.startswith("# earlier step content\n")
    assert "## ❌ ci-demo — failed" in text
    assert "| build | backend-engineer | ❌ failed |" in text
    assert "**quality** (build): ❌ failed" in text

    # junit.xml as a real JUnit consumer reads it
    xml = JUnitXml.fromfile(str(reports / "junit.xml"))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"build", "publish"}
    build = suites["build"]
    assert (build.tests, build.failures, build.skipped) == (4, 2, 0)
    cases = {case.name: case for case in build}
    assert cases["compile"].is_passed and cases["tests"].is_passed
    lint_failure = cases["lint"].result[0]
    assert isinstance(lint_failure, Failure)
    assert "sh exited with code 3" in lint_failure.message
    assert "last output lines:" in lint_failure.text
    assert "checking" in lint_failure.text and "E501 100% over: a,b" in lint_failure.text
    gate_failure = cases["gate quality"].result[0]
    assert isinstance(gate_failure, Failure)
    assert "steps.tests.outputs.coverage >= 80" in gate_failure.message
    publish = {case.name: case for case in suites["publish"]}
    assert isinstance(publish["upload"].result[0], Skipped)
    assert (xml.tests, xml.failures) == (5, 2)

    # the other reports
    assert json.loads((reports / "run.json").read_text()) == data
    events = [json.loads(ln) for ln in (reports / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "quality" in (reports / "summary.md").read_text()


def test_no_github_commands_outside_github_actions(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, FAILING)
    proc = cli("run", str(wf), "--store", str(tmp_path / "qd.db"), env={"CI": "true"})
    assert proc.returncode == 1
    assert "::group::" not in proc.stderr and "::error" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.rstrip().splitlines()[-1].endswith(": failed")


@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        ({"FORCE_COLOR": "1"}, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        ({"FORCE_COLOR": "", "NO_COLOR": ""}, False),
        ({"TERM": "dumb"}, False),
    ],
)
def test_colour_switches(tmp_path: Path, env: dict[str, str], coloured: bool) -> None:
    wf = write_workflow(tmp_path, FAILING)
    proc = cli("run", str(wf), "--store", str(tmp_path / "qd.db"), env={"CI": "true", **env})
    assert proc.returncode == 1
    assert bool(ANSI.search(proc.stderr)) is coloured
    assert proc.stdout == ""


def test_ci_on_a_terminal_runs_plain_without_prompts_or_animation(tmp_path: Path) -> None:
    """With CI set, even a terminal gets plain lines: no cockpit, no live view."""
    wf = write_workflow(tmp_path, FAILING)
    env = dict(os.environ, CI="true", TERM="xterm-256color")
    code, out = cli_on_a_terminal(["run", str(wf), "--store", str(tmp_path / "qd.db")], env)
    assert code == 1
    assert "\x1b[?25l" not in out  # a live view hides the cursor; plain output never does
    plain = [ANSI.sub("", ln).rstrip("\r") for ln in out.splitlines()]
    assert any(TS_LINE.match(ln) and "lint: failed" in ln for ln in plain)


def test_events_stream_on_stdout_as_the_run_goes(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, FAILING)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(wf),
            "--events",
            "-",
            "--store",
            str(tmp_path / "qd.db"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "true"},
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # arrives before the run ends
    assert first["type"] == "run.started" and first["seq"] == 1
    # read the rest through the same buffered reader: communicate() reads the raw pipe
    # and would lose what readline() had already buffered
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    rest = proc.stdout.read()
    proc.wait(timeout=60)
    reader.join(timeout=60)
    err = errors[0] if errors else ""
    assert proc.returncode == 1
    events = [first] + [json.loads(ln) for ln in rest.splitlines()]
    assert events[-1]["type"] == "run.finished"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {"step.output", "gate.evaluated", "persona.switched"} <= {e["type"] for e in events}
    assert "stage started" in err  # narration stays on stderr


def test_events_to_stdout_and_json_are_exclusive(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, FAILING)
    proc = cli("run", str(wf), "--events", "-", "--json", "--store", str(tmp_path / "qd.db"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--events - and --json both write to stdout" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_events_to_a_file_keep_json_on_stdout(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, FAILING)
    log = tmp_path / "out" / "events.jsonl"
    proc = cli("run", str(wf), "--events", str(log), "--json", "--store", str(tmp_path / "qd.db"))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"] == "failed"
    types = [json.loads(ln)["type"] for ln in log.read_text().splitlines()]
    assert types[0] == "run.started" and types[-1] == "run.finished"


# --- workflow command escaping and limits ----------------------------------------------


def test_escaping_follows_githubs_rules() -> None:
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert command("error", "x%y\nz", title="t: 1, 2") == "::error title=t%3A 1%2C 2::x%25y%0Az"
    assert command("warning", "plain") == "::warning::plain"


def _failed(step: str, n: int) -> Event:
    return Event(
        EventType.STEP_FINISHED, "r", "s", step, {"status": "failed", "error": "boom"}, 0.0, n
    )


def test_annotations_stay_within_githubs_per_step_limit(tmp_path: Path) -> None:
    out = tmp_path / "log"
    with out.open("w") as stream:
        gh = GitHubActions(stream)
        gh(Event(EventType.RUN_STARTED, "r", data={"workflow": "wf"}, seq=1))
        for i in range(13):
            gh(_failed(f"step{i}", i + 2))
        for i in range(11):
            gh(
                Event(
                    EventType.GATE_SKIPPED,
                    "r",
                    "s",
                    None,
                    {"gate": f"g{i}", "by": "amy", "reason": "known"},
                    0.0,
                    20 + i,
                )
            )
        gh(Event(EventType.RUN_FINISHED, "r", data={"status": "failed"}, seq=40))
    lines = out.read_text().splitlines()
    assert sum(ln.startswith("::error") for ln in lines) == 10
    assert sum(ln.startswith("::warning") for ln in lines) == 10
    assert (
        "3 more error annotation(s) left out (GitHub shows 10 per step); see the step summary"
        in lines
    )
    assert (
        "1 more warning annotation(s) left out (GitHub shows 10 per step); see the step "
        "summary" in lines
    )


def test_step_summary_never_exceeds_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_bytes(b"x" * 900)
    written = append_step_summary(path, "é" * 5000, limit=1000)
    assert path.stat().st_size <= 1000
    assert written == path.stat().st_size - 900
    path.read_bytes().decode("utf-8")  # never cut inside a character


def test_interrupted_runs_annotation_resume_hint_carries_the_store(tmp_path: Path) -> None:
    """The ``::warning`` a GitHub job shows for an interrupted run is pasted into another
    shell: it must name the run's store, or ``resume`` looks in the default one."""
    import signal

    wf = write_workflow(
        tmp_path,
        "name: long\nstages:\n  - id: s\n    steps:\n      - id: sleepy\n"
        '        uses: shell\n        with: {run: "sleep 60"}\n',
    )
    store = tmp_path / "qd.db"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "CI": "true"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            str(wf),
            "--events",
            "-",
            "--store",
            str(store),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    run_id = None
    for line in proc.stdout:  # bounded: the run cannot end by itself within the test
        event = json.loads(line)
        run_id = event["run_id"]
        if event["type"] == "step.started" and event["step"] == "sleepy":
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    (warning,) = [ln for ln in err.splitlines() if ln.startswith("::warning title=long%3A run")]
    assert f" quarterdeck resume {run_id} --store {store.resolve()}`" in warning
