"""The runner with real processes, files and a real SQLite journal."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.definition.models import RetryPolicy
from quarterdeck.core.engine.runner import RunOptions, retry_delay
from quarterdeck.core.journal.events import EventType
from tests.helpers import run_workflow

PY = sys.executable


def spans(path: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        name, edge, ts = line.split()
        out.setdefault(name, [0.0, 0.0])[0 if edge == "start" else 1] = float(ts)
    return {k: (v[0], v[1]) for k, v in out.items()}


SPANNER = (
    "import sys, time\n"
    "path, name, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])\n"
    "with open(path, 'a') as f:\n"
    "    f.write(f'{name} start {time.time()}\\n'); f.flush(); time.sleep(secs)\n"
    "    f.write(f'{name} end {time.time()}\\n')\n"
)


def timed_step(step_id: str, log: Path, needs: list[str] | None = None, secs: float = 0.4) -> str:
    script = log.parent / "spanner.py"
    script.write_text(SPANNER)
    needs_line = f"        needs: {json.dumps(needs)}\n" if needs else ""
    run = f"{PY} {script} {log} {step_id} {secs}"
    return (
        f"      - id: {step_id}\n        uses: shell\n{needs_line}"
        f"        with: {{run: {json.dumps(run)}}}\n"
    )


def test_independent_steps_overlap_and_dependents_wait(tmp_path: Path) -> None:
    log = tmp_path / "spans.log"
    text = (
        "name: dag\nstages:\n  - id: s\n    steps:\n"
        + timed_step("a", log)
        + timed_step("b", log)
        + timed_step("c", log, ["a", "b"], 0.05)
    )
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    s = spans(log)
    assert s["a"][0] < s["b"][1] and s["b"][0] < s["a"][1], "a and b ran at the same time"
    assert s["c"][0] >= max(s["a"][1], s["b"][1]), "c waited for both"


def test_concurrency_limit_serialises(tmp_path: Path) -> None:
    log = tmp_path / "spans.log"
    text = (
        "name: dag\nconcurrency: 1\nstages:\n  - id: s\n    steps:\n"
        + timed_step("a", log, secs=0.2)
        + timed_step("b", log, secs=0.2)
    )
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    s = spans(log)
    first, second = sorted(s.values())
    assert second[0] >= first[1], "with concurrency 1 the steps do not overlap"


RETRY = """\
name: retry
stages:
  - id: s
    steps:
      - id: flaky
        uses: shell
        retry: {max_attempts: 4, backoff: exponential, initial_delay: 1s, max_delay: 3s}
        with: {run: "sh -c 'echo attempt >> tries; exit 1'"}
"""


def test_retry_counts_and_exponential_delays(tmp_path: Path) -> None:
    clock = FakeClock()
    ran = run_workflow(tmp_path, RETRY, options=RunOptions(started_by="t", clock=clock))
    assert ran.state.status == "failed"
    assert (tmp_path / "tries").read_text().count("attempt") == 4
    step = ran.state.step("flaky")
    assert step is not None and step.attempts == 4
    assert clock.sleeps == [1.0, 2.0, 3.0]
    retries = [e for e in ran.store.events(ran.state.id) if e.type == EventType.STEP_RETRY]
    assert [e.data["delay"] for e in retries] == [1.0, 2.0, 3.0]


def test_retry_constant_backoff_then_success(tmp_path: Path) -> None:
    text = RETRY.replace("backoff: exponential", "backoff: constant").replace(
        "exit 1", "test $(wc -l < tries) -ge 3"
    )
    clock = FakeClock()
    ran = run_workflow(tmp_path, text, options=RunOptions(started_by="t", clock=clock))
    assert ran.state.status == "succeeded"
    assert clock.sleeps == [1.0, 1.0]
    assert ran.state.step("flaky").attempts == 3  # type: ignore[union-attr]


def test_non_retryable_exit_code_stops_at_once(tmp_path: Path) -> None:
    text = RETRY.replace("max_delay: 3s}", "max_delay: 3s, non_retryable_exit_codes: [1]}")
    clock = FakeClock()
    ran = run_workflow(tmp_path, text, options=RunOptions(started_by="t", clock=clock))
    assert ran.state.status == "failed"
    assert clock.sleeps == []
    assert (tmp_path / "tries").read_text().count("attempt") == 1


def test_missing_command_is_not_retried(tmp_path: Path) -> None:
    text = RETRY.replace("sh -c 'echo attempt >> tries; exit 1'", "no-such-command-qd")
    clock = FakeClock()
    ran = run_workflow(tmp_path, text, options=RunOptions(started_by="t", clock=clock))
    assert ran.state.step("flaky").error == "command not found: no-such-command-qd"  # type: ignore[union-attr]
    assert clock.sleeps == []


def test_retry_delay_jitter_and_cap() -> None:
    import random

    policy = RetryPolicy(max_attempts=5, initial_delay=10, max_delay=15, jitter=0.5)
    rng = random.Random(7)
    delays = [retry_delay(policy, n, rng) for n in range(1, 5)]
    assert all(0 <= d <= 15 for d in delays)
    assert 5 <= delays[0] <= 15
    assert len(set(delays)) > 1, "jitter varies the delay"
    linear = RetryPolicy(backoff="linear", initial_delay=2, max_delay=100)
    assert [retry_delay(linear, n) for n in (1, 2, 3)] == [2, 4, 6]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(") ")[1][0] != "Z"


def test_step_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    text = """\
name: slow
stages:
  - id: s
    steps:
      - id: hang
        uses: shell
        timeout: 1s
        with: {run: "sh -c 'sleep 60 & echo $! > child.pid; sleep 60'"}
"""
    started = time.monotonic()
    ran = run_workflow(tmp_path, text)
    assert time.monotonic() - started < 30
    step = ran.state.step("hang")
    assert ran.state.status == "failed"
    assert step is not None and step.error == "timed out after 1s"
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the grandchild was killed with its process group"


def test_stage_timeout_stops_running_steps(tmp_path: Path) -> None:
    text = """\
name: slow
stages:
  - id: s
    timeout: 1s
    steps:
      - id: hang
        uses: shell
        with: {run: "sleep 60"}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "failed"
    assert ran.state.stages["s"].error == "stage timed out after 1s"
    assert ran.state.step("hang").status == "failed"  # type: ignore[union-attr]


def test_fallback_and_on_failure_order(tmp_path: Path) -> None:
    text = """\
name: order
stages:
  - id: deploy
    steps:
      - id: primary
        uses: shell
        with: {run: "sh -c 'echo primary >> order; exit 3'"}
        fallback:
          - id: secondary
            uses: shell
            with: {run: "sh -c 'echo secondary >> order; exit 4'"}
          - id: tertiary
            uses: shell
            with: {run: "sh -c 'echo tertiary >> order; echo via=tertiary >> $QUARTERDECK_OUTPUT'"}
      - id: verify
        uses: shell
        needs: [primary]
        with: {run: "sh -c 'echo verify-{{ steps.primary.outputs.via }} >> order; exit 1'"}
    on_failure:
      - id: rollback
        uses: shell
        with: {run: "sh -c 'echo rollback >> order'"}
      - id: notify
        uses: shell
        with: {run: "sh -c 'echo notify >> order'"}
"""
    ran = run_workflow(tmp_path, text)
    order = (tmp_path / "order").read_text().split()
    assert order == ["primary", "secondary", "tertiary", "verify-tertiary", "rollback", "notify"]
    assert ran.state.status == "failed"
    primary = ran.state.step("primary")
    assert primary is not None and primary.status == "succeeded" and primary.via == "tertiary"
    assert ran.state.step("rollback").role == "on_failure"  # type: ignore[union-attr]


def test_continue_on_error_lets_the_stage_go_on(tmp_path: Path) -> None:
    text = """\
name: coe
stages:
  - id: s
    steps:
      - id: optional
        uses: shell
        continue_on_error: true
        with: {run: "false"}
      - id: after
        uses: shell
        needs: [optional]
        with: {run: "true"}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    assert ran.state.step("optional").status == "failed"  # type: ignore[union-attr]
    assert ran.state.step("after").status == "succeeded"  # type: ignore[union-attr]


GATE = """\
name: gated
inputs:
  threshold: {type: int, default: 80}
stages:
  - id: test
    steps:
      - id: tests
        uses: shell
        with: {run: "sh -c 'echo coverage=85.5 >> $QUARTERDECK_OUTPUT; echo failed=0 >> $QUARTERDECK_OUTPUT'"}
    gate:
      id: quality
      all: ["{{ steps.tests.outputs.coverage >= inputs.threshold }}", "steps.tests.outputs.failed == 0"]
  - id: after
    steps:
      - id: done
        uses: memory.set
        with: {key: done, value: true}
"""


def test_gate_passes(tmp_path: Path) -> None:
    ran = run_workflow(tmp_path, GATE)
    assert ran.state.status == "succeeded"
    gate = ran.state.stages["test"].gate
    assert gate is not None and gate.status == "passed"
    assert ran.state.memory == {"done": True}


def test_gate_fails_and_stops_the_run(tmp_path: Path) -> None:
    ran = run_workflow(tmp_path, GATE, inputs={"threshold": "90"})
    assert ran.state.status == "failed"
    gate = ran.state.stages["test"].gate
    assert gate is not None and gate.status == "failed"
    assert [r.passed for r in gate.results] == [False, True]
    assert ran.state.stages["after"].status == "pending"
    assert "quality gate 'quality' failed" in (ran.state.error or "")


def test_when_on_stage_and_step(tmp_path: Path) -> None:
    text = """\
name: when
inputs:
  bump: {type: choice, choices: [none, patch], default: none}
stages:
  - id: release
    when: "{{ inputs.bump != 'none' }}"
    steps:
      - {id: r, uses: memory.set, with: {key: released, value: true}}
  - id: always
    steps:
      - {id: a, uses: memory.set, with: {key: a, value: 1}}
      - {id: b, uses: memory.set, needs: [a], when: "memory.a == 2", with: {key: b, value: 1}}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    assert ran.state.stages["release"].status == "skipped"
    assert ran.state.step("b").status == "skipped"  # type: ignore[union-attr]
    assert ran.state.memory == {"a": 1}


def test_memory_is_shared_across_stages_and_personas(tmp_path: Path) -> None:
    text = """\
name: mem
stages:
  - id: backend
    persona: backend-engineer
    steps:
      - {id: contract, uses: memory.set, with: {key: api, value: {path: /users, method: GET}}}
  - id: frontend
    persona: frontend-engineer
    steps:
      - id: use
        uses: shell
        with: {run: "sh -c 'echo route={{ memory.api.method }} >> $QUARTERDECK_OUTPUT'"}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    assert ran.state.step("use").outputs["route"] == "GET"  # type: ignore[union-attr]
    switches = [(s.from_, s.to) for s in ran.state.switches]
    assert switches == [(None, "backend-engineer"), ("backend-engineer", "frontend-engineer")]


def test_undefined_name_is_an_error_naming_the_expression(tmp_path: Path) -> None:
    text = """\
name: undef
stages:
  - id: s
    steps:
      - id: x
        uses: shell
        with: {run: "echo {{ memory.missing }}"}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "failed"
    error = ran.state.step("x").error  # type: ignore[union-attr]
    assert error is not None
    assert "wf.yaml:5:9: step x.with: expression '{{ memory.missing }}' failed: undefined" in error


def test_output_file_with_heredoc_and_types(tmp_path: Path) -> None:
    text = """\
name: outputs
stages:
  - id: s
    steps:
      - id: x
        uses: shell
        shell: false
        with:
          shell: true
          run: "printf 'n=3\\nratio=0.5\\nok=true\\nnotes<<EOF\\nline 1\\nline 2\\nEOF\\n' >> $QUARTERDECK_OUTPUT"
""".replace("        shell: false\n", "")
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded", ran.state.error
    outputs = ran.state.step("x").outputs  # type: ignore[union-attr]
    assert outputs["n"] == 3 and outputs["ratio"] == 0.5 and outputs["ok"] is True
    assert outputs["notes"] == "line 1\nline 2"


def test_python_action_sync_and_async(tmp_path: Path) -> None:
    (tmp_path / "helpers_mod.py").write_text(
        "import asyncio\n"
        "def add(a, b):\n    return {'sum': a + b}\n"
        "async def shout(text):\n    await asyncio.sleep(0)\n    return text.upper()\n"
    )
    text = """\
name: py
stages:
  - id: s
    steps:
      - {id: add, uses: python, with: {call: "helpers_mod:add", args: {a: 2, b: 3}}}
      - id: shout
        uses: python
        needs: [add]
        with: {call: "helpers_mod:shout", args: {text: "sum is {{ steps.add.outputs.sum }}"}}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded", ran.state.error
    assert ran.state.step("add").outputs == {"sum": 5}  # type: ignore[union-attr]
    assert ran.state.step("shout").outputs == {"result": "SUM IS 5"}  # type: ignore[union-attr]


def test_output_lines_are_journaled_in_order(tmp_path: Path) -> None:
    text = """\
name: lines
stages:
  - id: s
    steps:
      - {id: x, uses: shell, with: {run: "seq 1 2000"}}
"""
    ran = run_workflow(tmp_path, text)
    lines = [
        line
        for e in ran.store.events(ran.state.id)
        if e.type == EventType.STEP_OUTPUT
        for line in e.data["lines"]
    ]
    assert lines == [str(n) for n in range(1, 2001)]
    batches = [e for e in ran.store.events(ran.state.id) if e.type == EventType.STEP_OUTPUT]
    assert len(batches) < 100, "lines are batched, not one event each"


@pytest.mark.parametrize(
    "value",
    [
        "; rm -rf /",
        "$(id)",
        "`id`",
        'it\'s "quoted"',
        "line1\nline2",
        "a b  c",
        "*",
        "$HOME",
        "--help",
        "x' ; echo pwned '",
    ],
)
def test_hostile_values_stay_one_argv_element(tmp_path: Path, value: str) -> None:
    text = f"""\
name: hostile
inputs:
  v: {{type: string}}
stages:
  - id: s
    steps:
      - id: plain
        uses: shell
        with: {{run: "{PY} -c 'import sys,json; print(json.dumps(sys.argv[1:]))' {{{{ inputs.v }}}} tail"}}
      - id: inside-word
        uses: shell
        with: {{run: "{PY} -c 'import sys,json; print(json.dumps(sys.argv[1:]))' pre-{{{{ inputs.v }}}}-post"}}
      - id: via-shell
        uses: shell
        with:
          shell: true
          run: "{PY} -c 'import sys,json; print(json.dumps(sys.argv[1:]))' {{{{ inputs.v }}}}"
"""
    ran = run_workflow(tmp_path, text, inputs={"v": value})
    assert ran.state.status == "succeeded", ran.state.error

    def argv(step: str) -> list[str]:
        s = ran.state.step(step)
        assert s is not None
        return json.loads(s.outputs["stdout"])

    assert argv("plain") == [value, "tail"]
    assert argv("inside-word") == [f"pre-{value}-post"]
    assert argv("via-shell") == [value]
    assert not (tmp_path / "pwned").exists()


def test_secret_inputs_are_redacted_from_the_journal(tmp_path: Path) -> None:
    text = """\
name: secret
inputs:
  token: {type: secret}
stages:
  - id: s
    steps:
      - {id: x, uses: shell, with: {run: "echo token is {{ inputs.token }}"}}
"""
    canary = "canary-5ec2e7-value"
    ran = run_workflow(tmp_path, text, inputs={"token": canary})
    assert ran.state.status == "succeeded"
    dump = json.dumps([e.to_dict() for e in ran.store.events(ran.state.id)])
    assert canary not in dump
    assert "token is ***" in dump
    row = ran.store.get_run(ran.state.id)
    assert canary not in json.dumps(row.inputs)


def test_an_action_may_end_its_step_skipped(tmp_path: Path) -> None:
    (tmp_path / "skipper.py").write_text(
        "from quarterdeck.core.errors import StepSkipped\n"
        "def maybe():\n    raise StepSkipped('no token configured', outputs={'skipped': True})\n"
    )
    text = """\
name: skip
stages:
  - id: s
    steps:
      - {id: release, uses: python, with: {call: "skipper:maybe"}}
      - {id: after, uses: memory.set, needs: [release], with: {key: ran, value: true}}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    step = ran.state.step("release")
    assert step is not None and step.status == "skipped"
    assert step.error == "no token configured" and step.outputs == {"skipped": True}
    assert ran.state.memory == {"ran": True}


def test_sync_python_function_may_log_from_its_thread(tmp_path: Path) -> None:
    (tmp_path / "logger_mod.py").write_text(
        "def work(ctx):\n    for n in range(3):\n        ctx.log(f'line {n}')\n    return {'n': 3}\n"
    )
    text = """\
name: logs
stages:
  - id: s
    steps:
      - {id: work, uses: python, with: {call: "logger_mod:work"}}
"""
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded", ran.state.error
    lines = [
        line
        for e in ran.store.events(ran.state.id)
        if e.type == EventType.STEP_OUTPUT
        for line in e.data["lines"]
    ]
    assert lines == ["line 0", "line 1", "line 2"]


def test_persona_details_are_folded_from_the_journal(tmp_path: Path) -> None:
    text = """\
name: who
stages:
  - id: s
    persona: devops-engineer
    steps:
      - {id: a, uses: memory.set, with: {key: a, value: 1}}
"""
    ran = run_workflow(tmp_path, text)
    from quarterdeck.core.journal.state import fold

    state = fold(ran.state.id, ran.store.events(ran.state.id))
    usage = state.personas["devops-engineer"]
    assert (usage.title, usage.color, usage.budget) == ("DevOps Engineer", "green", 1800)
    assert usage.role.startswith("Tags, publishes, deploys")


def test_a_failed_command_says_what_it_printed_on_stderr(tmp_path: Path) -> None:
    text = """\
name: fails
stages:
  - id: s
    steps:
      - {id: x, uses: shell, with: {run: "sh -c 'echo working; echo fatal: not a repository >&2; exit 128'"}}
"""
    ran = run_workflow(tmp_path, text)
    step = ran.state.step("x")
    assert step is not None and step.error == "sh exited with code 128: fatal: not a repository"
    assert step.outputs["exit_code"] == 128 and step.outputs["stdout"] == "working"
