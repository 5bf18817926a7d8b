"""Run reports for CI: ``run.json``, ``junit.xml``, ``summary.md`` and ``events.jsonl``.

Every report is a pure function of a :class:`~quarterdeck.core.journal.state.RunState` and the run's
journaled events, so ``quarterdeck run --report-dir`` and a later re-render from the
journal give the same files. JUnit is what CI systems already understand (a test suite
per stage, a test case per step, quality gate and approval); Markdown is what a person
reads in a pull request or in ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import json
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.state import ApprovalState, GateState, RunState, StageState, StepState
from quarterdeck.core.journal.statuses import (
    STEP_FAILED,
    ApprovalStatus,
    GateStatus,
    StepStatus,
    look,
)

REPORT_FILES = ("run.json", "junit.xml", "summary.md", "events.jsonl")
FAILURE_TAIL_LINES = 20
#: Characters XML 1.0 cannot hold at all (not even escaped); step output may contain them.
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Colour and cursor sequences tools print on a terminal: noise in a report.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_output(text: str) -> str:
    """Step output for a report: ANSI sequences dropped, control characters marked."""
    return _CONTROL.sub("\ufffd", _ANSI.sub("", text))


def xml_text(text: Any) -> str:
    """``text`` with the characters XML 1.0 forbids replaced, so any parser accepts it."""
    return _XML_INVALID.sub("\ufffd", "" if text is None else str(text))


def run_json(state: RunState) -> dict[str, Any]:
    """The ``run --json`` shape (contract)."""
    return state.to_json()


def events_jsonl(events: Iterable[Event]) -> str:
    """Every journaled event, one JSON object per line (``Event.to_json``)."""
    return "".join([f"{event.to_json()}\n" for event in events])


def _seconds(start: float | None, end: float | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(0.0, end - start)


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts or 0))


def _step_case(suite: ET.Element, stage: StageState, step: StepState, workflow: str) -> str:
    """Add a testcase for ``step``; returns its outcome: passed, failure, skipped."""
    case = ET.SubElement(
        suite,
        "testcase",
        name=xml_text(step.id if step.role == "step" else f"{step.id} [{step.role}]"),
        classname=xml_text(f"{workflow}.{stage.id}"),
        time=f"{_seconds(step.started_at, step.finished_at):.3f}",
    )
    tail = clean_output("\n".join(list(step.tail)[-FAILURE_TAIL_LINES:]))
    if step.status in STEP_FAILED:
        failure = ET.SubElement(
            case,
            "failure",
            message=xml_text(step.error or step.status),
            type=xml_text(step.status),
        )
        body = [f"step {step.id} ({step.uses}) {step.status} after {step.attempts} attempt(s)"]
        if step.error:
            body.append(f"error: {step.error}")
        if tail:
            body.append(f"last output lines:\n{tail}")
        failure.text = xml_text("\n".join(body))
        outcome = "failure"
    elif step.status in (StepStatus.SKIPPED, StepStatus.PENDING):
        reason = step.error or ("not run" if step.status == StepStatus.PENDING else "skipped")
        ET.SubElement(case, "skipped", message=xml_text(reason))
        outcome = "skipped"
    else:
        outcome = "passed"
    if tail:
        ET.SubElement(case, "system-out").text = xml_text(tail)
    return outcome


def _gate_case(suite: ET.Element, stage: StageState, gate: GateState, workflow: str) -> str:
    case = ET.SubElement(
        suite,
        "testcase",
        name=xml_text(f"gate {gate.id}"),
        classname=xml_text(f"{workflow}.{stage.id}"),
        time="0.000",
    )
    lines = [
        f"{'passed' if r.passed else 'FAILED'}: {r.condition}"
        + (f" ({r.error})" if r.error else "")
        for r in gate.results
    ]
    if gate.status == GateStatus.FAILED:
        failed = [r.condition for r in gate.results if not r.passed]
        failure = ET.SubElement(
            case,
            "failure",
            type="quality-gate",
            message=xml_text(f"quality gate {gate.id!r} failed: " + "; ".join(failed)),
        )
        failure.text = xml_text("\n".join(lines))
        return "failure"
    if gate.status in (GateStatus.SKIPPED, GateStatus.PENDING):
        why = (
            f"skipped by {gate.skipped_by}: {gate.reason}"
            if gate.status == GateStatus.SKIPPED
            else "not evaluated"
        )
        ET.SubElement(case, "skipped", message=xml_text(why))
        return "skipped"
    if lines:
        ET.SubElement(case, "system-out").text = xml_text("\n".join(lines))
    return "passed"


def _approval_case(
    suite: ET.Element, stage: StageState, approval: ApprovalState, workflow: str
) -> str:
    case = ET.SubElement(
        suite,
        "testcase",
        name=xml_text(f"approval {approval.id}"),
        classname=xml_text(f"{workflow}.{stage.id}"),
        time=f"{_seconds(approval.requested_at, approval.decided_at):.3f}",
    )
    who = f" by {approval.decided_by}" if approval.decided_by else ""
    why = f": {approval.reason}" if approval.reason else ""
    if approval.status == ApprovalStatus.REJECTED:
        kind = "approval-timeout" if approval.timed_out else "approval-rejected"
        ET.SubElement(
            case,
            "failure",
            type=kind,
            message=xml_text(f"approval {approval.id!r} rejected{who}{why}"),
        )
        return "failure"
    if approval.status != ApprovalStatus.APPROVED:
        ET.SubElement(
            case,
            "skipped",
            message=xml_text(f"approval {approval.id!r} undecided ({approval.status})"),
        )
        return "skipped"
    ET.SubElement(case, "system-out").text = xml_text(f"approved{who}{why}")
    return "passed"


def junit_xml(state: RunState, events: Iterable[Event] = ()) -> str:
    """JUnit XML: a ``testsuite`` per stage; a ``testcase`` per step, gate and approval.

    Failed steps carry their error and last output lines; skipped steps are ``skipped``.
    ``events`` is accepted for symmetry with the other reports (the state holds it all).
    """
    del events
    root = ET.Element("testsuites", name=xml_text(state.workflow or state.id))
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    total_time = 0.0
    for index, stage in enumerate(state.stages.values()):
        duration = _seconds(stage.started_at, stage.finished_at)
        total_time += duration
        suite = ET.SubElement(
            root,
            "testsuite",
            name=xml_text(stage.id),
            id=str(index),
            timestamp=_iso(stage.started_at or state.started_at),
            hostname="localhost",
            time=f"{duration:.3f}",
        )
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("run", state.id),
            ("workflow", state.workflow),
            ("persona", stage.persona or ""),
            ("status", stage.status),
        ):
            ET.SubElement(props, "property", name=name, value=xml_text(value))
        outcomes: list[str] = []
        if stage.approval is not None:
            outcomes.append(_approval_case(suite, stage, stage.approval, state.workflow))
        for step in stage.steps.values():
            outcomes.append(_step_case(suite, stage, step, state.workflow))
        if stage.gate is not None:
            outcomes.append(_gate_case(suite, stage, stage.gate, state.workflow))
        counts = {
            "tests": len(outcomes),
            "failures": outcomes.count("failure"),
            "skipped": outcomes.count("skipped"),
        }
        for key, count in counts.items():
            suite.set(key, str(count))
            totals[key] += count
        suite.set("errors", "0")
        # the common schema orders properties, testcase..., system-out, system-err
        ET.SubElement(suite, "system-out").text = xml_text(
            f"stage {stage.id}: {stage.status}" + (f": {stage.error}" if stage.error else "")
        )
        ET.SubElement(suite, "system-err")
    for key, total in totals.items():
        root.set(key, str(total))
    root.set("errors", "0")
    root.set("time", f"{_seconds(state.started_at, state.finished_at) or total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- Markdown ---------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A value safe inside a Markdown table cell: one line, pipes escaped."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _icon(status: str) -> str:
    return f"{look(status).emoji} {look(status).label}".strip()


def summary_md(
    state: RunState, events: Iterable[Event] = (), *, max_bytes: int | None = None
) -> str:
    """A Markdown summary: stages, personas and tokens, gates, approvals, durations.

    ``max_bytes`` keeps the text under a size cap (``$GITHUB_STEP_SUMMARY`` takes at
    most 1 MiB per step): failure details are cut first, then the step table.
    """
    events = list(events)
    head = [
        f"## {look(state.status).emoji} {state.workflow or 'run'} — {state.status}",
        "",
        f"Run `{state.id}` started by **{_cell(state.started_by) or '?'}** at "
        f"{_iso(state.started_at)}Z, took {format_duration(state.duration)}.",
    ]
    if state.error:
        head += ["", f"> {_cell(state.error)}"]
    stages = [
        "",
        "### Stages",
        "",
        "| Stage | Persona | Status | Steps | Duration |",
        "|---|---|---|---|---|",
    ]
    for stage in state.stages.values():
        steps = [s for s in stage.steps.values() if s.role == "step"]
        done = sum(1 for s in steps if s.status == StepStatus.SUCCEEDED)
        took = (
            format_duration(_seconds(stage.started_at, stage.finished_at))
            if stage.started_at
            else "-"
        )
        stages.append(
            f"| {_cell(stage.id)} | {_cell(stage.persona or '-')} | {_icon(stage.status)} | "
            f"{done}/{len(steps)} | {took} |"
        )
    step_rows = [
        "",
        "### Steps",
        "",
        "| Stage | Step | Action | Status | Attempts | Duration |",
        "|---|---|---|---|---|---|",
    ]
    for step in state.all_steps():
        role = f" ({step.role})" if step.role != "step" else ""
        step_rows.append(
            f"| {_cell(step.stage)} | {_cell(step.id)}{role} | `{_cell(step.uses)}` | "
            f"{_icon(step.status)} | {step.attempts} | "
            f"{format_duration(step.duration) if step.started_at else '-'} |"
        )
    personas = [
        "",
        "### Personas and tokens",
        "",
        "| Persona | Tokens used | Budget | Remaining | Held | Switches |",
        "|---|---|---|---|---|---|",
    ]
    for p in state.persona_summary():
        est = " (estimated)" if p["estimated"] else ""
        personas.append(
            f"| {_cell(p['name'])} | {p['tokens_used']}{est} | {p['budget']} | {p['remaining']}"
            f" | {format_duration(p['seconds'])} | {p['switches']} |"
        )
    gates = ["", "### Quality gates", ""]
    for stage in state.stages.values():
        gate = stage.gate
        if gate is None:
            continue
        gates.append(
            f"- **{_cell(gate.id)}** ({_cell(stage.id)}): {_icon(gate.status)}"
            + (
                f" by {_cell(gate.skipped_by)}: {_cell(gate.reason)}"
                if gate.status == GateStatus.SKIPPED
                else ""
            )
        )
        for r in gate.results:
            mark = "✅" if r.passed else "❌"
            err = f" — {_cell(r.error)}" if r.error else ""
            gates.append(f"  - {mark} `{_cell(r.condition)}`{err}")
    if len(gates) == 3:
        gates.append("_none_")
    approvals = ["", "### Approvals", ""]
    for approval in state.approvals.values():
        who = f" by **{_cell(approval.decided_by)}**" if approval.decided_by else ""
        why = f": {_cell(approval.reason)}" if approval.reason else ""
        timed = " (timed out)" if approval.timed_out else ""
        approvals.append(
            f"- **{_cell(approval.id)}** ({_cell(approval.stage)}): "
            f"{_icon(approval.status)}{who}{timed}{why}"
        )
        for vote in approval.votes:
            approvals.append(
                f"  - {_cell(vote.by)} voted {vote.decision}"
                + (f": {_cell(vote.reason)}" if vote.reason else "")
            )
        for refusal in approval.refusals:
            approvals.append(f"  - refused {_cell(refusal.by)}: {_cell(refusal.why)}")
    if len(approvals) == 3:
        approvals.append("_none_")
    failures = ["", "### Failures", ""]
    for step in state.all_steps():
        if step.status not in STEP_FAILED:
            continue
        failures.append(
            f"<details><summary>{_cell(step.stage)} / {_cell(step.id)}: "
            f"{_cell(step.error or step.status)}</summary>\n"
        )
        tail = clean_output("\n".join(list(step.tail)[-FAILURE_TAIL_LINES:]))
        tail = tail.replace("```", "ʼʼʼ")
        failures.append(f"```text\n{tail or '(no output)'}\n```\n</details>")
    if len(failures) == 3:
        failures = []
    footer = ["", f"<sub>{len(events)} events journaled · quarterdeck</sub>", ""]
    sections = [head, stages, personas, gates, approvals, step_rows, failures, footer]
    text = "\n".join(line for part in sections for line in part)
    if max_bytes is None or len(text.encode()) <= max_bytes:
        return text
    # over the cap: drop the bulky sections, then cut what is left
    for drop in (failures, step_rows):
        sections.remove(drop)
        sections.insert(
            -1,
            [
                "",
                f"_({'failure details' if drop is failures else 'step table'}"
                " left out: the summary size limit was reached)_",
            ],
        )
        text = "\n".join(line for part in sections for line in part)
        if len(text.encode()) <= max_bytes:
            return text
    note = "\n\n_(cut: the summary size limit was reached)_\n"
    budget = max(0, max_bytes - len(note.encode()))
    return text.encode()[:budget].decode("utf-8", errors="ignore") + note


def _indented(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def write_reports(
    directory: Path,
    state: RunState,
    events: Iterable[Event],
    *,
    indented: Callable[[Any], str] = _indented,
) -> list[Path]:
    """Write the four reports into ``directory`` (created); returns their paths.

    ``indented`` writes ``run.json``: exactly ``json.dumps(data, indent=2, default=str)``'s
    text (the CLI passes its faster writer of that same text).
    """
    events = list(events)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    contents = {
        "run.json": indented(run_json(state)) + "\n",
        "junit.xml": junit_xml(state, events),
        "summary.md": summary_md(state, events),
        "events.jsonl": events_jsonl(events),
    }
    written = []
    for name, text in contents.items():
        path = directory / name
        tmp = path.with_name(f".{name}.tmp")
        # reports hold outputs and logs: readable by their owner only (0600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        tmp.replace(path)
        written.append(path)
    return written
