"""The demo model answers per persona and prompt, over the real chat-completions protocol."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from quarterdeck.workflows.sandbox.servers import DemoModel

PERSONAS = Path(__file__).resolve().parents[1] / "personas"


def _system(persona: str) -> str:
    return str(yaml.safe_load((PERSONAS / f"{persona}.yaml").read_text())["system_prompt"])


def _ask(model: DemoModel, persona: str, prompt: str) -> str:
    reply = httpx.post(
        f"{model.base_url}/chat/completions",
        json={
            "model": "demo-model",
            "messages": [
                {"role": "system", "content": _system(persona)},
                {"role": "user", "content": prompt},
            ],
        },
        timeout=10,
    ).json()
    assert reply["model"] == "demo-model" and reply["usage"]["total_tokens"] > 0
    text = str(reply["choices"][0]["message"]["content"])
    assert text.startswith("[demo model] ")
    return text


def test_each_persona_answers_its_own_prompt() -> None:
    feature = "balances per currency over the API"
    with DemoModel() as model:
        contract = _ask(
            model,
            "backend-engineer",
            f"Design the API contract for this feature: {feature}.\n"
            "Answer with the endpoint, the request, the response fields and the errors.",
        )
        ui = _ask(
            model,
            "frontend-engineer",
            f"The backend published this API contract:\n{contract}\n"
            f"Describe the UI for: {feature} (components, states, error handling).",
        )
        review = _ask(
            model,
            "testing-specialist",
            f'Review the change for "{feature}" against its contract:\n{contract}\n'
            "Tests: 14 passed. Lint findings: 2.\n",
        )
        notes = _ask(
            model,
            "devops-engineer",
            "Write release notes for ledgerline 1.3.0\n(minor release, tests 14 passed) from "
            "this changelog:\n## 1.3.0\n- balances by currency\nTwo or three short lines.",
        )
    assert len({contract, ui, review, notes}) == 4
    assert "GET /api/v1/balances" in contract and feature in contract
    assert ui.startswith(f"[demo model] UI plan for {feature}") and "currency, amount" in ui
    assert "tests 14 passed" in review and "fix the 2 lint finding(s)" in review
    assert "ledgerline 1.3.0 is a minor release: balances by currency" in notes


def test_postmortem_follow_ups_do_not_repeat_the_root_cause() -> None:
    with DemoModel() as model:
        cause = _ask(
            model,
            "observability-expert",
            "An alert fired: CheckoutErrorRate.\nGive the most likely root cause in three "
            "sentences and the safest fix.",
        )
        follow = _ask(
            model,
            "observability-expert",
            "Follow-ups for the postmortem of: checkout errors (SEV2).\nThe root cause is "
            f"already recorded; do not repeat it: {cause}\nList three follow-ups.",
        )
    assert "root cause" in cause.lower()
    body = cause.removeprefix("[demo model] ")
    lines = follow.removeprefix("[demo model] ").splitlines()
    assert len(lines) == 3 and all(line.startswith("- ") for line in lines)
    assert not any(line[2:] in body or body[:40] in line for line in lines)
