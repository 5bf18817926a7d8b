"""The exact bytes a headless run prints, pinned: CI logs and scripts read them.

Two layers. The narration of a fixed event sequence that reaches every kind of line
(plain for pipes and files, styled for a terminal or FORCE_COLOR) is compared byte for
byte with a recorded copy. Whole ``quarterdeck run`` processes on real workflows (a chain
with output, a retry, a tolerated failure and a failing gate; a gated run stopped at its
approval; GitHub Actions' groups and annotations; ``--json``; a terminal) are compared
after the parts that differ from run to run (times, run ids, temporary paths, durations)
are replaced by placeholders, together with their exit codes and journals.

The recorded copies live in ``tests/data/headless_output/``; after a deliberate change of
format, ``QUARTERDECK_RECORD_OUTPUT=1`` rewrites them (review the diff).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from quarterdeck.tui.headless.ci import GitHubActions
from quarterdeck.tui.headless.render import PlainRenderer
from tests.helpers import cli, cli_on_a_terminal, write_workflow

DATA = Path(__file__).parent / "data" / "headless_output"
RECORD = os.environ.get("QUARTERDECK_RECORD_OUTPUT") == "1"

RUN = "20261121-101500-0123456789abcdef"
T0 = 1_763_720_100.0  # 2025-11-21T10:15:00Z


def matches_recorded(name: str, text: str) -> None:
    config = os.environ.get("QUARTERDECK_CONFIG_DIR")  # the suite's, printed in commands
    if config:
        text = text.replace(config, "<CONFIG>")
    path = DATA / name
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert text == path.read_bytes().decode("utf-8")


def _ev(i: int, type_: str, stage: str | None, step: str | None, data: dict[str, Any]) -> Event:
    return Event(type_, RUN, stage, step, data, T0 + i * 0.7, i + 1)


def every_kind_of_line() -> list[Event]:
    """A plausible run that reaches every branch of the narration."""
    specs: list[tuple[str, str | None, str | None, dict[str, Any]]] = [
        (
            "run.started",
            None,
            None,
            {
                "workflow": "pin",
                "started_by": "alice",
                "plan": [
                    {"id": "build", "persona": "backend-engineer", "steps": [{"id": "make"}]},
                    {"id": "docs", "steps": [{"id": "site"}]},
                    {"id": "release", "approval": "publish", "steps": [{"id": "upload"}]},
                ],
            },
        ),
        ("persona.switched", "build", None, {"to": "backend-engineer", "stage": "build"}),
        ("stage.started", "build", None, {"persona": "backend-engineer"}),
        ("step.started", "build", "make", {"attempt": 1, "uses": "shell"}),
        ("step.output", "build", "make", {"stream": "stdout", "lines": ["one", "two  spaced"]}),
        ("step.output", "build", "make", {"stream": "stderr", "lines": ["warn: ünïcode ✓"]}),
        (
            "step.output",
            "build",
            "make",
            {
                "stream": "stdout",
                "lines": ["\tcol\tumns", "bell\x07 cr\r esc\x1b[31m red", "nbsp\u00a0wide\u3000"],
            },
        ),
        ("step.retry", "build", "make", {"attempt": 1, "delay": 2, "error": "exit 1"}),
        ("step.started", "build", "make", {"attempt": 2, "uses": "shell"}),
        (
            "step.finished",
            "build",
            "make",
            {"status": "succeeded", "attempt": 2, "duration": 0.0421},
        ),
        ("step.started", "build", "alt", {"attempt": 1, "uses": "http", "role": "fallback"}),
        (
            "step.finished",
            "build",
            "alt",
            {"status": "succeeded", "duration": 12.34, "via": "mirror"},
        ),
        ("step.started", "build", "lint", {"attempt": 1, "uses": "shell", "role": "step"}),
        (
            "step.finished",
            "build",
            "lint",
            {"status": "failed", "error": "exit 3", "continue_on_error": True, "duration": 0.5},
        ),
        ("step.started", "build", "slow", {"attempt": 1, "uses": "shell"}),
        ("step.finished", "build", "slow", {"status": "cancelled", "error": "cancelled by bob"}),
        ("step.skipped", "build", "opt", {"reason": "when is false"}),
        (
            "gate.evaluated",
            "build",
            None,
            {
                "gate": "quality",
                "passed": False,
                "results": [
                    {"condition": "{{ a }}", "passed": True},
                    {"condition": "{{ b > 1 }}", "passed": False, "error": "b is undefined"},
                ],
            },
        ),
        ("gate.skipped", "build", None, {"gate": "quality", "by": "bob", "reason": "known"}),
        ("stage.finished", "build", None, {"status": "succeeded"}),
        ("stage.skipped", "docs", None, {"reason": "when is false"}),
        (
            "approval.requested",
            "release",
            None,
            {
                "gate": "publish",
                "prompt": "Publish?",
                "evidence": ["the log", "the diff"],
                "approvers": ["alice", "bob"],
                "min_approvals": 2,
                "timeout_at": T0 + 3600,
                "on_timeout": "reject",
            },
        ),
        (
            "approval.vote",
            "release",
            None,
            {"gate": "publish", "by": "bob", "decision": "approved"},
        ),
        (
            "approval.refused",
            "release",
            None,
            {"gate": "publish", "by": "alice", "decision": "approved", "why": "self-approval"},
        ),
        (
            "approval.decided",
            "release",
            None,
            {"gate": "publish", "decision": "approved", "by": "carol", "reason": "ok"},
        ),
        ("run.paused", None, None, {"by": "bob", "reason": "lunch"}),
        ("run.unpaused", None, None, {"by": "bob"}),
        (
            "signal.received",
            None,
            None,
            {"signal_id": 3, "kind": "note", "by": "bob", "reason": "looks fine"},
        ),
        (
            "tokens.used",
            "release",
            "upload",
            {"persona": "backend-engineer", "total": 120, "budget": 1000, "remaining": 880},
        ),
        (
            "budget",
            "release",
            "upload",
            {
                "persona": "backend-engineer",
                "used": 990,
                "budget": 1000,
                "remaining": 10,
                "policy": "warn",
                "outcome": "warned",
            },
        ),
        ("stage.started", "release", None, {}),
        ("step.started", "release", "upload", {"attempt": 1, "uses": "shell"}),
        ("run.interrupted", None, None, {"reason": "SIGTERM"}),
        ("run.resumed", None, None, {"by": "alice"}),
        ("step.finished", "release", "upload", {"status": "failed", "error": "boom\nsecond"}),
        ("stage.finished", "release", None, {"status": "failed", "error": "step 'upload'"}),
        ("run.finished", None, None, {"status": "failed", "error": "stage release failed"}),
    ]
    return [_ev(i, t, stage, step, data) for i, (t, stage, step, data) in enumerate(specs)]


def narrate(events: list[Event], **renderer: Any) -> str:
    out = io.StringIO()
    state = RunState(id=RUN)
    render = PlainRenderer(state, out, store=Path("/var/qd/q.db"), **renderer)
    for event in events:
        state.apply(event)
        render(event)
    return out.getvalue()


def test_plain_lines_are_unchanged() -> None:
    matches_recorded("plain.txt", narrate(every_kind_of_line(), color=False))


def test_plain_lines_without_step_output() -> None:
    text = narrate(every_kind_of_line(), color=False, show_output=False)
    assert " | " not in text and " ! " not in text
    matches_recorded("plain-no-output.txt", text)


def test_styled_lines_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "COLORTERM", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    text = narrate(every_kind_of_line(), color=True)
    assert "\x1b[" in text
    matches_recorded("styled.txt", text)


def test_lines_written_inside_an_event_loop_keep_their_order() -> None:
    """The narration and GitHub's workflow commands share a stream: delivered from a run's
    loop (as the journal writer does), every line lands in the order of the events."""
    events = every_kind_of_line()
    out = io.StringIO()
    state = RunState(id=RUN)
    github = GitHubActions(out, store="/var/qd/q.db")
    render = PlainRenderer(state, out, color=False, store=Path("/var/qd/q.db"))

    async def deliver() -> None:
        for chunk in (events[:3], events[3:20], events[20:]):
            for event in chunk:
                state.apply(event)
                github(event)
                render(event)
            await asyncio.sleep(0)

    asyncio.run(deliver())
    github.close()
    matches_recorded("github-plain.txt", out.getvalue())


# -- whole processes ------------------------------------------------------------------

CHAIN = """\
name: pin-ci
stages:
  - id: build
    persona: backend-engineer
    steps:
      - id: compile
        uses: shell
        with: {run: "sh -c 'echo compiled; echo twice'"}
      - id: warn
        uses: shell
        needs: [compile]
        with: {run: "sh -c 'echo \\"warn: slow\\" >&2'"}
      - id: flaky
        uses: shell
        needs: [warn]
        retry: {max_attempts: 2, initial_delay: 0.01}
        with: {run: "sh -c 'test -f marker || { touch marker; echo first try; exit 1; }'"}
      - id: lint
        uses: shell
        needs: [flaky]
        continue_on_error: true
        with:
          run: "sh -c 'echo checking; echo \\"E501 100% over: a,b\\"; exit 3'"
      - id: tests
        uses: shell
        needs: [lint]
        with: {run: "sh -c 'echo coverage=75 >> $QUARTERDECK_OUTPUT; echo ran 10 tests'"}
      - id: remember
        uses: memory.set
        needs: [tests]
        with: {key: k, value: 1}
    gate:
      id: quality
      all: ["{{ steps.tests.outputs.coverage >= 80 }}"]
  - id: publish
    steps:
      - id: upload
        uses: shell
        with: {run: "echo never"}
"""

GATED = """\
name: pin-gated
stages:
  - id: build
    persona: devops-engineer
    steps:
      - id: make
        uses: shell
        with: {run: "echo built"}
  - id: skipped
    when: false
    steps:
      - id: never
        uses: shell
        with: {run: "echo never"}
  - id: release
    approval:
      id: publish
      prompt: "Publish?"
      evidence: ["the build log", "the changelog"]
      approvers: [alice, bob]
      min_approvals: 2
    steps:
      - id: upload
        uses: shell
        with: {run: "echo uploaded"}
"""

_VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)"), "<TS>"),
    (re.compile(r"\d{8}-\d{6}-[0-9a-f]{16}"), "<RUN>"),
    (re.compile(r"succeeded \((\d+ms|\d+\.\d+s)\)"), "succeeded (<D>)"),
    (re.compile(r'"(started_at|finished_at|duration|seconds|ts)": [0-9.e+-]+'), r'"\1": <N>'),
    (re.compile(r"\b(pid|pgid)=\d+"), r"\1=<N>"),
]


def normalised(text: str, tmp_path: Path) -> str:
    text = text.replace(str(tmp_path), "<TMP>")
    for pattern, placeholder in _VARYING:
        text = pattern.sub(placeholder, text)
    return text


def journal(db: Path) -> str:
    """The journal's events in order; a step's output lines may be journaled in one event
    or several (as they arrive), so a run of ``step.output`` counts as one entry."""
    with Store(db, readonly=True) as store:
        (run,) = store.list_runs()
        rows = [(e.type, e.stage, e.step) for e in store.events(run.id)]
    kept = [
        row for i, row in enumerate(rows) if i == 0 or row[0] != "step.output" or row != rows[i - 1]
    ]
    return "".join(f"{row}\n" for row in kept)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in (
        "CI",
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "NO_COLOR",
        "FORCE_COLOR",
        "CLICOLOR_FORCE",
        "COLORTERM",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "TRACEPARENT",
    ):
        monkeypatch.delenv(name, raising=False)
    return {"QUARTERDECK_HOME": str(tmp_path / "home"), "QUARTERDECK_USER": "alice"}


@pytest.mark.parametrize(
    ("case", "extra", "env"),
    [
        ("chain", [], {}),
        ("chain-json", ["--json"], {}),
        ("chain-github", [], {"GITHUB_ACTIONS": "true"}),
        ("chain-ci", [], {"CI": "true"}),
    ],
)
def test_a_whole_run_prints_the_same(
    tmp_path: Path, clean_env: dict[str, str], case: str, extra: list[str], env: dict[str, str]
) -> None:
    wf = write_workflow(tmp_path, CHAIN)
    work = tmp_path / "work"
    work.mkdir()
    db = tmp_path / "q.db"
    proc = cli(
        "run",
        str(wf),
        "--headless",
        "--store",
        str(db),
        "--workdir",
        str(work),
        *extra,
        env={**clean_env, **env},
    )
    assert proc.returncode == 1, proc.stderr
    matches_recorded(f"{case}.stderr", normalised(proc.stderr, tmp_path))
    matches_recorded(f"{case}.stdout", normalised(proc.stdout, tmp_path))
    matches_recorded("chain.journal", journal(db))
    if extra == ["--json"]:
        assert json.loads(proc.stdout)["status"] == "failed"


def test_a_run_stopped_at_its_approval_prints_the_same(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    wf = write_workflow(tmp_path, GATED)
    db = tmp_path / "q.db"
    proc = cli("run", str(wf), "--headless", "--no-wait", "--store", str(db), env=clean_env)
    assert proc.returncode == 3, proc.stderr
    matches_recorded("gated.stderr", normalised(proc.stderr, tmp_path))
    assert proc.stdout == ""
    matches_recorded("gated.journal", journal(db))


def test_a_run_on_a_terminal_prints_the_same(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """With CI set a terminal gets the styled plain lines (no live view): pinned as bytes."""
    wf = write_workflow(tmp_path, CHAIN)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, **clean_env, "CI": "true", "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    argv = ["run", str(wf), "--store", str(tmp_path / "q.db"), "--workdir", str(work)]
    code, out = cli_on_a_terminal(argv, env)
    assert code == 1
    assert "\x1b[" in out
    matches_recorded("chain-tty.out", normalised(out, tmp_path))


def test_event_lines_are_event_to_json(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """``--events FILE`` and the report's ``events.jsonl``: each event's ``to_json`` text."""
    from quarterdeck.core.observability.reports import events_jsonl

    wf = write_workflow(tmp_path, CHAIN)
    work = tmp_path / "work"
    work.mkdir()
    db, lines, reports = tmp_path / "q.db", tmp_path / "events.jsonl", tmp_path / "reports"
    proc = cli(
        "run",
        str(wf),
        "--headless",
        "--store",
        str(db),
        "--workdir",
        str(work),
        "--events",
        str(lines),
        "--report-dir",
        str(reports),
        env=clean_env,
    )
    assert proc.returncode == 1, proc.stderr
    with Store(db, readonly=True) as store:
        (run,) = store.list_runs()
        stored = store.events(run.id)
    expected = "".join(f"{event.to_json()}\n" for event in stored)
    assert lines.read_text(encoding="utf-8") == expected
    assert (reports / "events.jsonl").read_text(encoding="utf-8") == expected
    run_json = (reports / "run.json").read_text(encoding="utf-8")
    assert run_json == json.dumps(json.loads(run_json), indent=2) + "\n"
    matches_recorded("chain-run.json", normalised(run_json, tmp_path))
    odd = [
        Event("custom", RUN, "s", "x", {"t": (1, 2), "é": "✓\n\x00", "n": {"k": [1.5, None]}}),
        Event("custom", RUN, None, None, {"when": Path("/x"), 3: True}, T0, 7),
    ]
    assert events_jsonl(odd) == "".join(f"{event.to_json()}\n" for event in odd)
