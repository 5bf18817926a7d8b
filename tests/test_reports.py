"""Reports: run.json, junit.xml, summary.md, events.jsonl — pure functions of a run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.observability.reports import (
    events_jsonl,
    junit_xml,
    run_json,
    summary_md,
    write_reports,
)
from tests.helpers import Ran, cli, run_workflow, write_workflow

TOKENS_MODULE = """
async def use(ctx):
    await ctx.emit_event("tokens.used", {"persona": "backend-engineer", "model": "m",
                                         "prompt": 100, "completion": 20, "total": 120,
                                         "used": 120, "budget": 2000, "remaining": 1880})
    return {"ok": True}
"""

MIXED = """\
name: mixed
stages:
  - id: build
    persona: backend-engineer
    steps:
      - id: think
        uses: python
        with: {call: "tokmod:use"}
      - id: noisy
        uses: shell
        retry: {max_attempts: 2, initial_delay: 10ms}
        continue_on_error: true
        with:
          run: "sh noisy.sh"
      - id: optional
        uses: shell
        when: "{{ inputs.extra }}"
        with: {run: "echo extra"}
      - id: primary
        uses: shell
        with: {run: "sh -c 'exit 2'"}
        fallback:
          - id: backup
            uses: shell
            with: {run: "echo backup ok"}
    gate:
      id: quality
      all: ["{{ steps.think.outputs.ok }}"]
  - id: ship
    persona: devops-engineer
    approval:
      id: publish
      approvers: [alice]
    steps:
      - id: upload
        uses: shell
        with: {run: "echo 'uploaded | done'"}
inputs:
  extra: {type: bool, default: false}
"""


@pytest.fixture()
def mixed(tmp_path: Path) -> Ran:
    (tmp_path / "tokmod.py").write_text(TOKENS_MODULE)
    (tmp_path / "noisy.sh").write_text(
        "printf '\\033[31mred\\033[0m bell\\007 nul-ish\\001 <tag> & done\\n'\necho line2\nexit 4\n"
    )
    options = RunOptions(
        started_by="ci-bot", decisions={"publish": ("approve", "alice", "release train")}
    )
    return run_workflow(tmp_path, MIXED, options=options)


def test_run_finished_as_expected(mixed: Ran) -> None:
    state = mixed.state
    assert state.status == "succeeded"
    assert state.step("noisy").status == "failed"
    assert state.step("optional").status == "skipped"
    assert state.step("primary").via == "backup"


def test_junit_structure_and_outcomes(mixed: Ran, tmp_path: Path) -> None:
    state = mixed.state
    text = junit_xml(state, mixed.store.events(state.id))
    path = tmp_path / "junit.xml"
    path.write_text(text)
    xml = JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert list(suites) == ["build", "ship"]
    build = {c.name: c for c in suites["build"]}
    assert list(build) == [
        "think",
        "noisy",
        "optional",
        "primary",
        "backup [fallback]",
        "gate quality",
    ]
    noisy = build["noisy"].result[0]
    assert isinstance(noisy, Failure)
    assert noisy.message == "sh exited with code 4: line2"
    assert "failed after 2 attempt(s)" in noisy.text
    assert "<tag> & done" in noisy.text and "line2" in noisy.text
    assert "red bell\ufffd nul-ish\ufffd <tag>" in noisy.text  # ANSI gone, controls marked
    assert isinstance(build["optional"].result[0], Skipped)
    assert build["optional"].result[0].message == "when is false"
    assert build["primary"].is_passed and build["backup [fallback]"].is_passed
    assert build["gate quality"].is_passed
    assert build["think"].classname == "mixed.build"
    assert float(build["think"].time) >= 0
    ship = {c.name: c for c in suites["ship"]}
    assert list(ship) == ["approval publish", "upload"]
    assert ship["approval publish"].is_passed
    s = suites["build"]
    assert (s.tests, s.failures, s.errors, s.skipped) == (6, 1, 0, 1)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (8, 1, 0, 1)

    # the element order the common JUnit schema requires inside a testsuite
    root = ET.fromstring(text)
    for suite in root.iter("testsuite"):
        tags = [child.tag for child in suite]
        assert tags[0] == "properties" and tags[-2:] == ["system-out", "system-err"]
        assert set(tags[1:-2]) == {"testcase"}
        for attr in (
            "name",
            "tests",
            "failures",
            "errors",
            "skipped",
            "time",
            "timestamp",
            "hostname",
            "id",
        ):
            assert suite.get(attr) is not None, attr
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").iter("property")}
    assert props == {
        "run": state.id,
        "workflow": "mixed",
        "persona": "backend-engineer",
        "status": "succeeded",
    }


def test_junit_rejected_approval_and_failed_gate(tmp_path: Path) -> None:
    ran = run_workflow(
        tmp_path,
        """\
name: strict
stages:
  - id: a
    steps:
      - id: one
        uses: shell
        with: {run: "echo 1"}
    gate:
      id: never
      all: ["{{ steps.one.outputs.exit_code == 1 }}", "{{ 1 < 2 }}"]
      any: ["{{ nosuchname }}"]
""",
    )
    root = ET.fromstring(junit_xml(ran.state))
    case = next(c for c in root.iter("testcase") if c.get("name") == "gate never")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "quality-gate"
    assert "steps.one.outputs.exit_code == 1" in failure.get("message")
    assert "passed: {{ 1 < 2 }}" in failure.text
    assert "nosuchname" in failure.text and "undefined" in failure.text

    second = tmp_path / "second"
    second.mkdir()
    ran = run_workflow(
        second,
        """\
name: gated
stages:
  - id: ship
    approval: {id: publish, approvers: [bob]}
    steps:
      - id: up
        uses: shell
        with: {run: "echo up"}
""",
        options=RunOptions(started_by="ci", decisions={"publish": ("reject", "bob", "no")}),
    )
    root = ET.fromstring(junit_xml(ran.state))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert (
        cases["approval publish"].find("failure").get("message")
        == "approval 'publish' rejected by bob: no"
    )
    assert cases["up"].find("skipped") is not None


def test_summary_has_stages_personas_tokens_gates_approvals(mixed: Ran) -> None:
    state = mixed.state
    events = mixed.store.events(state.id)
    text = summary_md(state, events)
    assert text.startswith("## ✅ mixed — succeeded")
    assert "started by **ci-bot**" in text
    assert "| build | backend-engineer | ✅ succeeded | 2/4 |" in text
    assert "| ship | devops-engineer | ✅ succeeded | 1/1 |" in text
    assert "| backend-engineer | 120 | 2000 | 1880 |" in text
    assert "- **quality** (build): ✅ passed" in text
    assert "- **publish** (ship): ✅ approved by **alice**: release train" in text
    assert "  - alice voted approved: release train" in text
    assert "| build | noisy | `shell` | ❌ failed | 2 |" in text
    assert "| build | backup (fallback) | `shell` | ✅ succeeded | 1 |" in text
    assert "<summary>build / noisy: sh exited with code 4: line2</summary>" in text
    assert "red bell\ufffd nul-ish\ufffd <tag> & done" in text
    assert f"{len(events)} events journaled" in text


def test_summary_respects_a_size_cap(mixed: Ran) -> None:
    state = mixed.state
    full = summary_md(state)
    for cap in (len(full.encode()) - 1, 900, 200):
        text = summary_md(state, max_bytes=cap)
        assert len(text.encode()) <= cap
        assert "limit was reached" in text
    assert summary_md(state, max_bytes=10**6) == full


def test_events_and_run_json(mixed: Ran, tmp_path: Path) -> None:
    state = mixed.state
    events = mixed.store.events(state.id)
    lines = events_jsonl(events).splitlines()
    assert lines == [e.to_json() for e in events]
    assert [json.loads(ln)["seq"] for ln in lines] == list(range(1, len(events) + 1))
    written = write_reports(tmp_path / "out", state, events)
    assert sorted(p.name for p in written) == [
        "events.jsonl",
        "junit.xml",
        "run.json",
        "summary.md",
    ]
    assert json.loads((tmp_path / "out" / "run.json").read_text()) == json.loads(
        json.dumps(run_json(state), default=str)
    )
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_report_dir_from_config_with_run_placeholder(tmp_path: Path, isolated_home: Path) -> None:
    import os

    config = Path(os.environ["QUARTERDECK_CONFIG_DIR"]) / "config.yaml"
    config.write_text(f"report_dir: {tmp_path / 'reports' / '{run}'}\n")
    wf = write_workflow(
        tmp_path,
        """\
name: tiny
stages:
  - id: s
    steps:
      - id: hello
        uses: shell
        with: {run: "echo hi"}
""",
    )
    proc = cli("run", str(wf), "--json", "--store", str(tmp_path / "qd.db"))
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["id"]
    folder = tmp_path / "reports" / run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "events.jsonl",
        "junit.xml",
        "run.json",
        "summary.md",
    ]
    assert f"reports written to {folder}" in proc.stderr
