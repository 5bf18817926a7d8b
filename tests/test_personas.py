"""The persona catalog (bundled, user and project overrides), tool allow-lists, persona
switches at stage boundaries and the per-persona summary in ``show``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from quarterdeck.core.clock import FakeClock
from quarterdeck.core.config import Settings
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.state import fold
from quarterdeck.personas.registry import load_catalog
from tests.helpers import cli, run_workflow, write_workflow
from tests.llm_server import LLMServer, Reply

BUNDLED = {
    "backend-engineer": 2000,
    "frontend-engineer": 1800,
    "devops-engineer": 1800,
    "testing-specialist": 1500,
    "observability-expert": 2000,
    "data-scientist": 1700,
}


def persona_file(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_the_six_bundled_personas_and_their_budgets(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path)
    assert {n: catalog.personas[n].token_budget for n in BUNDLED} == BUNDLED
    for name in BUNDLED:
        assert catalog.origins[name].startswith("bundled: ")
        assert catalog.personas[name].may_use("llm.chat")


def test_a_project_override_changes_the_budget_a_run_sees(tmp_path: Path) -> None:
    persona_file(tmp_path / ".quarterdeck" / "personas", "backend-engineer", "token_budget: 77\n")
    text = """\
name: small
stages:
  - id: think
    persona: backend-engineer
    steps:
      - {id: ask, uses: llm.chat, with: {prompt: "hi"}}
"""
    with LLMServer() as server:
        server.script(Reply(prompt_tokens=20, completion_tokens=10))
        settings = Settings.model_validate(
            {"llm": {"base_url": server.base_url, "api_key": "k-test"}}
        )
        ran = run_workflow(tmp_path, text, settings=settings)
    assert ran.state.status == "succeeded"
    usage = ran.state.personas["backend-engineer"]
    assert (usage.budget, usage.tokens_used, usage.remaining) == (77, 30, 47)
    (used,) = [e.data for e in ran.store.events(ran.state.id) if e.type == "tokens.used"]
    assert (used["budget"], used["remaining"]) == (77, 47)
    # the rest of the persona is the bundled one
    override = load_catalog(tmp_path).personas["backend-engineer"]
    assert override.tools == load_catalog(tmp_path / "elsewhere").personas["backend-engineer"].tools

    shown = cli("personas", "backend-engineer", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["token_budget"] == 77
    assert data["origin"].startswith("project: ")
    listing = cli("personas", cwd=tmp_path)
    line = next(x for x in listing.stdout.splitlines() if x.startswith("backend-engineer"))
    assert "77 tokens" in line


def test_user_overrides_apply_and_the_project_wins(
    tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    monkeypatch.setenv("QUARTERDECK_CONFIG_DIR", str(config))
    persona_file(config / "personas", "devops-engineer", "token_budget: 900\n")
    persona_file(config / "personas", "data-scientist", "token_budget: 111\n")
    persona_file(
        config / "personas",
        "release-captain",
        """\
title: Release captain
role: Decides when to ship
token_budget: 500
tools: ["shell", "wait"]
""",
    )
    project = tmp_path / "project"
    persona_file(project / ".quarterdeck" / "personas", "devops-engineer", "token_budget: 1200\n")
    catalog = load_catalog(project)
    assert catalog.personas["devops-engineer"].token_budget == 1200
    assert catalog.origins["devops-engineer"].startswith("project: ")
    assert catalog.personas["data-scientist"].token_budget == 111
    assert catalog.origins["data-scientist"].startswith("user: ")
    captain = catalog.personas["release-captain"]
    assert (captain.token_budget, captain.tools) == (500, ["shell", "wait"])

    listed = cli("personas", "--json", cwd=project, env={"QUARTERDECK_CONFIG_DIR": str(config)})
    budgets = {p["name"]: p["token_budget"] for p in json.loads(listed.stdout)}
    assert budgets["devops-engineer"] == 1200
    assert budgets["data-scientist"] == 111
    assert budgets["release-captain"] == 500


def test_bad_persona_files_are_reported_with_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / ".quarterdeck" / "personas"
    bad_budget = persona_file(folder, "backend-engineer", "title: Backend\ntoken_budget: lots\n")
    bad_name = persona_file(
        folder, "newbie", "name: Bad Name\ntitle: x\nrole: y\ntoken_budget: 3\n"
    )
    missing = persona_file(folder, "half", "title: Half a persona\n")
    result = cli("personas", cwd=tmp_path)
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    assert f"{bad_budget}:2:15: token_budget: input should be a valid integer" in err
    assert f"{bad_name}:1:7: name: string should match pattern" in err
    assert f"{missing}:" in err and "role" in err and "token_budget" in err
    assert "problems found" in err
    # a workflow cannot be validated against a broken catalog either
    wf = write_workflow(
        tmp_path,
        "name: x\nstages:\n  - id: a\n    steps:\n"
        "      - {id: s, uses: shell, with: {run: 'true'}}\n",
    )
    validated = cli("validate", str(wf), cwd=tmp_path)
    assert validated.returncode == 2
    assert f"{bad_budget}:2:15" in validated.stderr


def test_a_stage_using_an_action_its_persona_may_not_use_fails_validation(
    tmp_path: Path,
) -> None:
    persona_file(
        tmp_path / ".quarterdeck" / "personas", "testing-specialist", 'tools: ["shell", "pytest"]\n'
    )
    path = write_workflow(
        tmp_path,
        """\
name: overreach
stages:
  - id: check
    persona: testing-specialist
    steps:
      - {id: tests, uses: shell, with: {run: "true"}}
      - id: ask
        uses: llm.chat
        with: {prompt: "may I?"}
""",
    )
    result = cli("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        f"{path}:8:15: stages[check].steps[ask].uses: step 'ask' uses 'llm.chat', "
        "which persona 'testing-specialist' may not use"
    ) in result.stderr
    assert "its tools: shell, pytest" in result.stderr
    db = tmp_path / "qd.db"
    ran = cli("run", str(path), "--headless", "--store", str(db), cwd=tmp_path)
    assert ran.returncode == 2
    assert "may not use" in ran.stderr
    assert json.loads(cli("runs", "--json", "--store", str(db)).stdout) == []  # nothing ran


SWITCHING = """\
name: relay
stages:
  - id: design
    persona: backend-engineer
    steps: [{id: d, uses: wait, with: {duration: 2s}}]
  - id: build
    persona: backend-engineer
    steps: [{id: b, uses: wait, with: {duration: 1s}}]
  - id: verify
    persona: testing-specialist
    steps: [{id: v, uses: wait, with: {duration: 4s}}]
  - id: fix
    persona: backend-engineer
    steps: [{id: f, uses: wait, with: {duration: 500ms}}]
"""


def test_persona_switches_are_journaled_with_the_time_each_persona_held(tmp_path: Path) -> None:
    clock = FakeClock()
    ran = run_workflow(tmp_path, SWITCHING, options=RunOptions(started_by="tester", clock=clock))
    assert ran.state.status == "succeeded"
    switches = [
        (e.stage, e.data) for e in ran.store.events(ran.state.id) if e.type == "persona.switched"
    ]
    assert switches == [
        (
            "design",
            {"from": None, "to": "backend-engineer", "stage": "design", "held_seconds": None},
        ),
        (
            "verify",
            {
                "from": "backend-engineer",
                "to": "testing-specialist",
                "stage": "verify",
                "held_seconds": 3.0,
            },
        ),
        (
            "fix",
            {
                "from": "testing-specialist",
                "to": "backend-engineer",
                "stage": "fix",
                "held_seconds": 4.0,
            },
        ),
    ]
    summary = {p["name"]: p for p in ran.state.persona_summary()}
    assert summary["backend-engineer"] == {
        "name": "backend-engineer",
        "tokens_used": 0,
        "budget": 2000,
        "remaining": 2000,
        "seconds": 3.5,
        "estimated": False,
        "switches": 2,
    }
    assert summary["testing-specialist"]["seconds"] == 4.0
    assert summary["testing-specialist"]["switches"] == 1

    db = str(tmp_path / "qd.db")
    data = json.loads(cli("show", ran.state.id, "--json", "--store", db).stdout)
    by_name = {p["name"]: p for p in data["personas"]}
    assert {
        k: by_name["backend-engineer"][k]
        for k in ("name", "tokens_used", "budget", "remaining", "seconds")
    } == {
        "name": "backend-engineer",
        "tokens_used": 0,
        "budget": 2000,
        "remaining": 2000,
        "seconds": 3.5,
    }
    text = cli("show", ran.state.id, "--store", db).stdout
    line = next(x for x in text.splitlines() if x.strip().startswith("testing-specialist"))
    assert "0/1500 tokens" in line and "1500 left" in line and "switches 1" in line


def test_time_held_carries_on_after_a_resume_without_counting_the_gap(tmp_path: Path) -> None:
    text = """\
name: paused-relay
stages:
  - id: one
    persona: backend-engineer
    steps: [{id: a, uses: wait, with: {duration: 2s}}]
  - id: two
    persona: backend-engineer
    approval: {id: go, allow_self_approval: true}
    steps: [{id: b, uses: wait, with: {duration: 3s}}]
"""
    clock = FakeClock()
    ran = run_workflow(
        tmp_path, text, options=RunOptions(started_by="t", clock=clock, no_wait=True)
    )
    assert ran.state.status == "interrupted"
    clock.advance(100)  # nobody held the run while it was stopped
    ran.store.send_signal(ran.state.id, "approve", actor="alice", target="go")
    prior = fold(ran.state.id, ran.store.events(ran.state.id))
    runner = Runner(
        ran.runner.loaded,
        ran.store,
        inputs={},
        personas=ran.runner.personas,
        prior=prior,
        options=RunOptions(started_by="t", clock=clock, workdir=tmp_path),
    )
    state = asyncio.run(runner.run())
    assert state.status == "succeeded"
    again = fold(state.id, ran.store.events(state.id))
    (backend,) = again.persona_summary()
    assert backend["seconds"] == 5.0
