"""``llm.chat`` against a real OpenAI-compatible HTTP server on 127.0.0.1.

Covers a normal reply, a reply without ``usage`` (estimated and marked so), 429 with
``Retry-After``, 500s, a malformed body, a hang past the timeout, the three budget
policies (warn goes on, approve waits on a gate that extends the budget, fail stops
before the call) and that an API key never leaks into the journal, logs or messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.config import Settings
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.state import fold
from quarterdeck.core.policy.budget import estimate_tokens
from quarterdeck.personas.registry import load_catalog
from tests.helpers import cli, make_ctx, make_runner, run_workflow, write_workflow
from tests.llm_server import LLMServer, Reply

CANARY = "sk-canary-7f3a9c1e5b2d4f60"
BACKEND_PROMPT = load_catalog().personas["backend-engineer"].system_prompt.strip()


@pytest.fixture(autouse=True)
def _no_ambient_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as srv:
        yield srv


def settings_for(server: LLMServer, **llm: Any) -> Settings:
    return Settings.model_validate({"llm": {"base_url": server.base_url, "api_key": CANARY, **llm}})


def one_step(
    with_: str, persona: str = "backend-engineer", policy: str | None = None, retry: str = ""
) -> str:
    head = f"budget_policy: {policy}\n" if policy else ""
    return f"""\
name: ask
{head}stages:
  - id: think
    persona: {persona}
    steps:
      - id: ask
        uses: llm.chat
        with: {with_}
{retry}"""


def events_of(ran: Any, type_: str) -> list[dict[str, Any]]:
    return [e.data for e in ran.store.events(ran.state.id) if e.type == type_]


def override_budget(tmp_path: Path, persona: str, budget: int, **extra: Any) -> None:
    folder = tmp_path / ".quarterdeck" / "personas"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"token_budget: {budget}", *(f"{k}: {v}" for k, v in extra.items())]
    (folder / f"{persona}.yaml").write_text("\n".join(lines) + "\n")


# -- replies -------------------------------------------------------------------------


def test_normal_reply_charges_the_persona_and_uses_its_model_and_prompt(
    tmp_path: Path, server: LLMServer
) -> None:
    server.script(Reply(content="Ship it.", prompt_tokens=30, completion_tokens=12))
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "Ready?", max_tokens: 64, temperature: 0.2}'),
        settings=settings_for(server),
    )
    assert ran.state.status == "succeeded"
    step = ran.state.step("ask")
    assert step is not None
    assert step.outputs["text"] == "Ship it."
    assert step.outputs["usage"] == {
        "prompt": 30,
        "completion": 12,
        "total": 42,
        "estimated": False,
    }
    assert step.outputs["budget_remaining"] == 2000 - 42
    assert "json" not in step.outputs

    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": BACKEND_PROMPT},
            {"role": "user", "content": "Ready?"},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    }
    (used,) = events_of(ran, "tokens.used")
    assert used == {
        "persona": "backend-engineer",
        "model": "gpt-4o-mini",
        "prompt": 30,
        "completion": 12,
        "total": 42,
        "used": 42,
        "budget": 2000,
        "remaining": 1958,
        "estimated": False,
    }
    summary = {p["name"]: p for p in ran.state.persona_summary()}
    assert summary["backend-engineer"]["tokens_used"] == 42
    assert summary["backend-engineer"]["remaining"] == 1958
    assert summary["backend-engineer"]["estimated"] is False


def test_step_overrides_model_and_system_prompt_and_json_is_parsed(
    tmp_path: Path, server: LLMServer
) -> None:
    server.script(Reply(content='{"version": "1.4.0", "risky": false}'))
    ran = run_workflow(
        tmp_path,
        one_step(
            '{prompt: "Next version?", model: "local-7b", system: "Answer in JSON.", '
            "response_format: json}"
        ),
        settings=settings_for(server),
    )
    step = ran.state.step("ask")
    assert step is not None and step.status == "succeeded"
    assert step.outputs["json"] == {"version": "1.4.0", "risky": False}
    body = server.requests[0].body
    assert body is not None
    assert body["model"] == "local-7b"
    assert body["messages"][0] == {"role": "system", "content": "Answer in JSON."}
    assert body["response_format"] == {"type": "json_object"}
    assert events_of(ran, "tokens.used")[0]["model"] == "local-7b"


def test_json_asked_for_but_not_given_is_reported_not_invented(
    tmp_path: Path, server: LLMServer
) -> None:
    server.script(Reply(content="sure! version 2"))
    ran = run_workflow(
        tmp_path, one_step('{prompt: "v?", response_format: json}'), settings=settings_for(server)
    )
    step = ran.state.step("ask")
    assert step is not None and step.status == "succeeded"
    assert "json" not in step.outputs
    assert "not valid JSON" in step.outputs["json_error"]


def test_reply_without_usage_is_estimated_and_marked_everywhere(
    tmp_path: Path, server: LLMServer
) -> None:
    reply = "A reply of a known length."
    server.script(Reply("no_usage", content=reply))
    ran = run_workflow(
        tmp_path, one_step('{prompt: "Estimate me", max_tokens: 20}'), settings=settings_for(server)
    )
    prompt = estimate_tokens(BACKEND_PROMPT) + estimate_tokens("Estimate me")
    completion = estimate_tokens(reply)
    (used,) = events_of(ran, "tokens.used")
    assert used["estimated"] is True
    assert (used["prompt"], used["completion"]) == (prompt, completion)
    assert used["used"] == prompt + completion
    step = ran.state.step("ask")
    assert step is not None
    assert step.outputs["estimated"] is True
    assert step.outputs["usage"]["estimated"] is True

    run_id = ran.state.id
    db = str(tmp_path / "qd.db")
    shown = cli("show", run_id, "--store", db)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.strip().startswith("backend-engineer"))
    assert f"{prompt + completion}/2000 tokens (estimated)" in line
    data = json.loads(cli("show", run_id, "--store", db, "--json").stdout)
    (persona,) = data["personas"]
    assert persona["estimated"] is True
    assert persona["tokens_used"] == prompt + completion
    assert data["stages"][0]["steps"][0]["outputs"]["usage"]["estimated"] is True


def test_429_is_retried_after_the_servers_retry_after(tmp_path: Path, server: LLMServer) -> None:
    server.script(
        Reply("rate_limit", retry_after="7"),
        Reply("rate_limit", retry_after="3"),
        Reply(content="finally", prompt_tokens=5, completion_tokens=1),
    )
    clock = FakeClock()
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi"}'),
        settings=settings_for(server),
        options=RunOptions(started_by="tester", clock=clock),
    )
    assert ran.state.status == "succeeded"
    assert clock.sleeps == [7.0, 3.0]
    assert len(server.requests) == 3
    step = ran.state.step("ask")
    assert step is not None and step.outputs["text"] == "finally"
    assert step.attempts == 1  # retried inside the action, one step attempt
    assert any("rate limited (429)" in line and "in 7s" in line for line in step.tail)


def test_retry_after_as_an_http_date(tmp_path: Path, server: LLMServer) -> None:
    clock = FakeClock(start=1_700_000_000.0)
    # 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT; ask for 12 seconds later
    server.script(Reply("rate_limit", retry_after="Tue, 14 Nov 2023 22:13:32 GMT"), Reply())
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi"}'),
        settings=settings_for(server),
        options=RunOptions(started_by="tester", clock=clock),
    )
    assert ran.state.status == "succeeded"
    assert clock.sleeps == [12.0]


def test_500s_back_off_then_give_up_with_a_clear_error(tmp_path: Path, server: LLMServer) -> None:
    server.script(*[Reply("error", content="overloaded")] * 3)
    clock = FakeClock()
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi", max_tokens: 10}'),
        settings=settings_for(server, max_retries=2),
        options=RunOptions(started_by="tester", clock=clock),
    )
    assert ran.state.status == "failed"
    step = ran.state.step("ask")
    assert step is not None and step.status == "failed"
    assert step.error is not None
    assert "server error (500): overloaded" in step.error
    assert "gave up after 3 attempts" in step.error
    assert clock.sleeps == [1.0, 2.0]
    assert len(server.requests) == 3
    assert events_of(ran, "tokens.used") == []  # nothing charged for a call with no reply
    assert ran.state.personas["backend-engineer"].tokens_used == 0


def test_a_500_then_a_reply_succeeds(tmp_path: Path, server: LLMServer) -> None:
    server.script(Reply("error"), Reply(content="ok", prompt_tokens=3, completion_tokens=1))
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi"}'),
        settings=settings_for(server),
        options=RunOptions(started_by="tester", clock=FakeClock()),
    )
    assert ran.state.status == "succeeded"
    assert events_of(ran, "tokens.used")[0]["total"] == 4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"id": "x", "choices": [', "not JSON"),
        ('{"id": "x", "choices": []}', "expected choices[0].message.content"),
        ('{"choices": [{"message": {"role": "assistant"}}]}', "expected choices[0].message"),
    ],
)
def test_a_malformed_reply_is_a_clear_step_error_and_not_retried(
    tmp_path: Path, server: LLMServer, body: str, expected: str
) -> None:
    server.script(Reply("malformed", body=body))
    retry = "        retry: {max_attempts: 3, initial_delay: 1s}\n"
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi"}', retry=retry),
        settings=settings_for(server),
        options=RunOptions(started_by="tester", clock=FakeClock()),
    )
    step = ran.state.step("ask")
    assert step is not None and step.status == "failed"
    assert step.error is not None
    assert "malformed reply from the LLM server 127.0.0.1" in step.error
    assert expected in step.error
    assert len(server.requests) == 1
    assert ran.state.personas["backend-engineer"].tokens_used == 0


def test_a_hang_past_the_timeout_fails_the_step(tmp_path: Path, server: LLMServer) -> None:
    server.script(Reply("hang"))
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi", timeout: 300ms}'),
        settings=settings_for(server, max_retries=0),
    )
    step = ran.state.step("ask")
    assert step is not None and step.status == "failed"
    assert step.error == (
        f"no reply from the LLM server 127.0.0.1:{server.port} within 0.3s "
        "(gave up after 1 attempt)"
    )


def test_a_stage_without_a_persona_uses_the_default_model_and_charges_nobody(
    tmp_path: Path, server: LLMServer
) -> None:
    server.script(Reply(prompt_tokens=4, completion_tokens=2))
    text = one_step('{prompt: "hi"}').replace("    persona: backend-engineer\n", "")
    ran = run_workflow(tmp_path, text, settings=settings_for(server))
    assert ran.state.status == "succeeded"
    assert server.requests[0].body["messages"] == [{"role": "user", "content": "hi"}]
    (used,) = events_of(ran, "tokens.used")
    assert used["persona"] is None and used["total"] == 6
    assert ran.state.personas == {}


@pytest.mark.asyncio
async def test_no_key_for_the_hosted_default_is_a_clear_error(tmp_path: Path) -> None:
    from quarterdeck.core.actions.llm import ChatParams, llm_chat
    from quarterdeck.core.errors import NonRetryableError

    ctx = make_ctx(tmp_path, settings=Settings())
    with pytest.raises(NonRetryableError, match="no API key for the LLM"):
        await llm_chat(ChatParams(prompt="hi"), ctx)


def test_the_workflow_file_cannot_carry_a_url_or_key(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path, one_step('{prompt: "hi", api_key: "sk-x", base_url: "http://evil"}')
    )
    result = cli("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}:8:30: stages[think].steps[ask].with.api_key" in result.stderr
    assert "api_key" in result.stderr and "base_url" in result.stderr


# -- budgets ---------------------------------------------------------------------------


def test_warn_policy_goes_on_over_budget_and_says_so(tmp_path: Path, server: LLMServer) -> None:
    override_budget(tmp_path, "backend-engineer", 40)
    server.script(Reply(prompt_tokens=35, completion_tokens=20))
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi", max_tokens: 50}', policy="warn"),
        settings=settings_for(server),
    )
    assert ran.state.status == "succeeded"
    need = estimate_tokens(BACKEND_PROMPT) + estimate_tokens("hi") + 50
    budget_events = events_of(ran, "budget")
    assert budget_events[0] == {
        "persona": "backend-engineer",
        "used": 0,
        "budget": 40,
        "remaining": 40,
        "policy": "warn",
        "need": need,
        "reserved": 0,
        "outcome": "warned",
    }
    assert budget_events[1]["outcome"] == "exceeded"
    assert budget_events[1]["remaining"] == 40 - 55
    (used,) = events_of(ran, "tokens.used")
    assert (used["used"], used["budget"], used["remaining"]) == (55, 40, -15)
    assert len(server.requests) == 1


def test_fail_policy_stops_before_the_call(tmp_path: Path, server: LLMServer) -> None:
    override_budget(tmp_path, "backend-engineer", 40, budget_policy="fail")
    ran = run_workflow(
        tmp_path, one_step('{prompt: "hi", max_tokens: 50}'), settings=settings_for(server)
    )
    assert ran.state.status == "failed"
    step = ran.state.step("ask")
    assert step is not None and step.error is not None
    assert "token budget exceeded: persona 'backend-engineer'" in step.error
    assert "(budget_policy: fail)" in step.error
    assert server.requests == []
    (stopped,) = events_of(ran, "budget")
    assert stopped["outcome"] == "stopped" and stopped["policy"] == "fail"
    assert events_of(ran, "tokens.used") == []


def test_the_workflow_policy_wins_over_the_personas(tmp_path: Path, server: LLMServer) -> None:
    override_budget(tmp_path, "backend-engineer", 40, budget_policy="fail")
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi", max_tokens: 50}', policy="warn"),
        settings=settings_for(server),
    )
    assert ran.state.status == "succeeded"
    assert events_of(ran, "budget")[0]["outcome"] == "warned"


async def _wait_for_gate(runner: Runner, gate: str) -> None:
    for _ in range(1000):
        approval = runner.state.approvals.get(gate)
        opened = approval is not None and approval.status == "waiting"
        # the run row says so once the request is committed, a moment after the fold
        if opened and runner.store.get_run(runner.run_id).status == "waiting":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gate {gate} never opened; status {runner.state.status}")


@pytest.mark.asyncio
async def test_approve_policy_waits_on_a_gate_approved_from_another_process(
    tmp_path: Path, server: LLMServer
) -> None:
    override_budget(tmp_path, "backend-engineer", 80)
    server.script(
        Reply(content="first", prompt_tokens=10, completion_tokens=10),
        Reply(content="second", prompt_tokens=30, completion_tokens=20),
    )
    text = (
        one_step('{prompt: "hi", max_tokens: 10}')
        + """\
      - id: again
        uses: llm.chat
        needs: [ask]
        with: {prompt: "more", max_tokens: 50}
"""
    )
    runner = make_runner(
        tmp_path,
        text,
        settings=settings_for(server),
        options=RunOptions(started_by="tester", signal_poll_interval=0.02),
    )
    task = asyncio.create_task(runner.run())
    gate = "budget-backend-engineer-1"
    await _wait_for_gate(runner, gate)
    assert len(server.requests) == 1  # the second call waits for the gate
    assert runner.store.get_run(runner.run_id).status == "waiting"
    approval = runner.state.approvals[gate]
    assert approval.kind == "budget"
    need = estimate_tokens(BACKEND_PROMPT) + estimate_tokens("more") + 50
    extend_by = max(need - (80 - 20), 80 // 2)
    assert approval.data["extend_by"] == extend_by
    assert f"Extend its budget by {extend_by} tokens (to {80 + extend_by})?" in approval.prompt

    approved = await asyncio.to_thread(
        cli,
        "approve",
        runner.run_id,
        gate,
        "--as",
        "alice",
        "--reason",
        "worth it",
        "--store",
        str(tmp_path / "qd.db"),
    )
    assert approved.returncode == 0, approved.stderr
    state = await asyncio.wait_for(task, 30)
    assert state.status == "succeeded"
    assert len(server.requests) == 2
    assert state.approvals[gate].status == "approved"
    assert state.approvals[gate].decided_by == "alice"
    events = runner.store.events(runner.run_id)
    extended = [e.data for e in events if e.type == "budget" and e.data["outcome"] == "extended"]
    assert extended == [
        {
            "persona": "backend-engineer",
            "used": 20,
            "budget": 80 + extend_by,
            "remaining": 60 + extend_by,
            "policy": "approve",
            "outcome": "extended",
            "gate": gate,
            "extend_by": extend_by,
        }
    ]
    last = [e.data for e in events if e.type == "tokens.used"][-1]
    assert (last["used"], last["budget"]) == (70, 80 + extend_by)
    assert state.personas["backend-engineer"].budget == 80 + extend_by
    assert state.personas["backend-engineer"].remaining == 80 + extend_by - 70


@pytest.mark.asyncio
async def test_a_rejected_extension_fails_the_step_without_calling(
    tmp_path: Path, server: LLMServer
) -> None:
    override_budget(tmp_path, "backend-engineer", 30)
    runner = make_runner(
        tmp_path,
        one_step('{prompt: "hi", max_tokens: 50}'),
        settings=settings_for(server),
        options=RunOptions(started_by="tester", signal_poll_interval=0.02),
    )
    task = asyncio.create_task(runner.run())
    await _wait_for_gate(runner, "budget-backend-engineer-1")
    runner.store.send_signal(
        runner.run_id,
        "reject",
        actor="bob",
        target="budget-backend-engineer-1",
        reason="too pricey",
    )
    state = await asyncio.wait_for(task, 30)
    assert state.status == "failed"
    step = state.step("ask")
    assert step is not None and step.error is not None
    assert "was rejected by bob: too pricey" in step.error
    assert server.requests == []
    outcomes = [e.data["outcome"] for e in runner.store.events(runner.run_id) if e.type == "budget"]
    assert outcomes == ["approval_requested", "rejected"]


def test_no_wait_stops_at_a_budget_gate_and_resume_reuses_it(
    tmp_path: Path, server: LLMServer
) -> None:
    override_budget(tmp_path, "backend-engineer", 30)
    server.script(Reply(content="done", prompt_tokens=20, completion_tokens=20))
    ran = run_workflow(
        tmp_path,
        one_step('{prompt: "hi", max_tokens: 50}'),
        settings=settings_for(server),
        options=RunOptions(started_by="tester", no_wait=True),
    )
    assert ran.state.status == "interrupted"
    (stopped,) = events_of(ran, "run.interrupted")
    assert "budget approval 'budget-backend-engineer-1' is undecided" in stopped["reason"]
    assert server.requests == []
    ran.store.send_signal(
        ran.state.id, "approve", actor="alice", target="budget-backend-engineer-1"
    )

    prior = fold(ran.state.id, ran.store.events(ran.state.id))
    runner = Runner(
        ran.runner.loaded,
        ran.store,
        inputs={},
        settings=settings_for(server),
        personas=ran.runner.personas,
        prior=prior,
        options=RunOptions(started_by="tester", workdir=tmp_path),
    )
    state = asyncio.run(runner.run())
    assert state.status == "succeeded"
    assert list(state.approvals) == ["budget-backend-engineer-1"]  # no second gate
    assert state.personas["backend-engineer"].tokens_used == 40
    assert state.personas["backend-engineer"].budget > 30


# -- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["OPENAI_API_KEY", "QUARTERDECK_LLM_API_KEY", "config", "custom-env"]
)
def test_the_api_key_never_reaches_journal_logs_or_errors(
    tmp_path: Path, server: LLMServer, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    llm: dict[str, Any] = {"base_url": server.base_url, "max_retries": 0}
    if source == "config":
        llm["api_key"] = CANARY
    elif source == "custom-env":
        llm["api_key_env"] = "MY_TEAM_LLM_KEY"
        monkeypatch.setenv("MY_TEAM_LLM_KEY", CANARY)
    else:
        monkeypatch.setenv(source, CANARY)
    settings = Settings.model_validate({"llm": llm})
    # the first call succeeds; the second gets an error body that echoes the key back
    server.script(Reply(content=f"I saw {CANARY}"), Reply("echo_auth"))
    text = (
        one_step('{prompt: "hi"}')
        + """\
      - id: leak
        uses: llm.chat
        needs: [ask]
        with: {prompt: "again"}
"""
    )
    ran = run_workflow(tmp_path, text, settings=settings)
    assert [r.headers["Authorization"] for r in server.requests] == [f"Bearer {CANARY}"] * 2
    assert ran.state.status == "failed"
    leak = ran.state.step("leak")
    assert leak is not None and leak.error is not None
    assert "refused the request (HTTP 401)" in leak.error
    assert "Bearer ***" in leak.error
    assert ran.state.step("ask").outputs["text"] == "I saw ***"  # type: ignore[union-attr]

    for event in ran.store.events(ran.state.id):
        assert CANARY not in event.to_json()
    ran.store.close()
    assert CANARY.encode() not in (tmp_path / "qd.db").read_bytes()
    for path in ran.runner.run_dir.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    for args in (("show", ran.state.id), ("show", ran.state.id, "--json")):
        shown = cli(*args, "--store", str(tmp_path / "qd.db"))
        assert shown.returncode == 0
        assert CANARY not in shown.stdout + shown.stderr
        assert "***" in shown.stdout


def test_the_api_key_never_reaches_cli_output(tmp_path: Path, server: LLMServer) -> None:
    server.script(Reply("echo_auth"), Reply("echo_auth"))
    path = write_workflow(tmp_path, one_step('{prompt: "hi"}'))
    env = {"OPENAI_API_KEY": CANARY, "QUARTERDECK_LLM_BASE_URL": server.base_url}
    for args in (("run", str(path), "--headless"), ("run", str(path), "--headless", "--json")):
        result = cli(*args, "--store", str(tmp_path / "qd.db"), env=env, cwd=tmp_path)
        assert result.returncode == 1
        assert CANARY not in result.stdout + result.stderr
        assert "HTTP 401" in result.stdout + result.stderr
    assert len(server.requests) == 2
    assert all(r.headers["Authorization"] == f"Bearer {CANARY}" for r in server.requests)
