"""What the demo model says: an answer per persona and prompt, always labelled.

The demo's model (:class:`~quarterdeck.workflows.sandbox.servers.DemoModel`) speaks the
OpenAI chat-completions protocol; this module picks its reply. The persona is read from
the system prompt (each bundled persona's begins "You are a …"), the task from the
prompt's words, and the details (the feature, the test summary, the version) from the
prompt itself — so the backend's API design, the frontend's UI plan and the tester's
review differ and fit what they were asked, as a real model's would. Every reply starts
with ``[demo model]`` so nobody mistakes it for a real model's output.
"""

from __future__ import annotations

import re
from collections.abc import Callable

DEMO_PREFIX = "[demo model]"

PERSONAS = {
    "backend engineer": "backend",
    "frontend engineer": "frontend",
    "testing specialist": "tester",
    "devops engineer": "devops",
    "observability expert": "observability",
    "data scientist": "data",
}

ROOT_CAUSE = (
    "Likely root cause: the latest release changed the exchange-rate cache, and checkout "
    "requests fail while rates are stale. Evidence: the error ratio rose right after the "
    "deploy and the service log shows stale-rate warnings. Suggested fix: revert to the "
    "last good release, then add a test for cache expiry."
)


def persona_of(system: str) -> str:
    """The persona a system prompt belongs to ("" when it is none of the bundled ones)."""
    lowered = system.lower()
    return next((key for text, key in PERSONAS.items() if text in lowered), "")


def _after(prompt: str, pattern: str, default: str) -> str:
    found = re.search(pattern, prompt, re.IGNORECASE)
    if not found:
        return default
    return found.group(1).strip().rstrip(".:") or default


def _feature(prompt: str) -> str:
    return _after(prompt, r"(?:feature|UI for):\s*\"?([^\"\n(]+)", "the feature")


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    stop = {"the", "a", "an", "over", "per", "by", "of", "for", "to", "and", "api"}
    kept = [w for w in words if w not in stop][:1]
    return "-".join(kept) or "items"


def api_design(prompt: str) -> str:
    feature = _feature(prompt)
    path = _slug(feature)
    return (
        f'{{"endpoint": "GET /api/v1/{path}", "request": {{"query": {{"currency": '
        f'"string, optional (ISO 4217)"}}}}, "response": {{"items": [{{"currency": "string", '
        f'"amount": "string (decimal, rounded half-even)"}}]}}, "errors": {{"400": "unknown '
        f'currency", "404": "no {path} yet"}}, "for": "{feature}"}}'
    )


def ui_plan(prompt: str) -> str:
    feature = _feature(prompt)
    fields = re.findall(r'"(\w+)": "string', prompt)
    shown = ", ".join(dict.fromkeys(fields)) or "the contract's fields"
    return (
        f"UI plan for {feature}: a table with one row per item showing {shown}; "
        "amounts right-aligned as the decimal strings the API returns (never re-rounded). "
        "States: loading (skeleton rows), empty (the 404 case: 'nothing here yet' with a "
        "retry), error (400: name the unknown currency). Keyboard: arrows move rows, enter "
        "opens details. Unclear in the contract: whether the list is paginated."
    )


def review(prompt: str) -> str:
    tests = _after(prompt, r"Tests:\s*([^\n]+?)\.\s", "no test summary given")
    lint = _after(prompt, r"Lint findings:\s*(\d+)", "?")
    feature = _after(prompt, r"change for \"([^\"]+)\"", "the change")
    verdict = "no blocking issues" if lint in ("0", "?") else f"fix the {lint} lint finding(s)"
    return (
        f"Review of {feature}: tests {tests}; lint findings {lint}, so {verdict}. "
        "Untested: the empty and unknown-currency paths of the contract; add one test each. "
        "Nothing flaky seen in this run."
    )


def release_notes(prompt: str) -> str:
    what = _after(prompt, r"release notes for\s+([^\n(]+)", "this release")
    kind = _after(prompt, r"\((\w+) release", "")
    changes = [
        line.strip(" -*")
        for line in prompt.splitlines()
        if line.strip().startswith(("-", "*")) and len(line.strip()) > 3
    ]
    first = changes[0] if changes else "fixes and small improvements"
    return (
        f"{what}{f' is a {kind} release' if kind else ''}: {first}. "
        "Upgrade with pip; nothing to change in your code."
    )


def follow_ups(prompt: str) -> str:
    return (
        "- Add a regression test that expires cached rates and checks checkout still answers\n"
        "- Alert when the checkout error ratio stays above 5% for two minutes\n"
        "- Deploy to one canary host and watch its health before the rest"
    )


def spec(prompt: str) -> str:
    what = _after(prompt, r"specification for[:\s]+([^\n]+)", "the change")
    return (
        f"Specification: {what}; amounts are decimals rounded half-even; acceptance: tests "
        "cover every currency and rounding edge case; must not change: existing endpoints."
    )


# (persona or "" for any, words in the prompt, the answer): the first match wins
RULES: list[tuple[str, tuple[str, ...], Callable[[str], str]]] = [
    ("", ("follow-up", "follow up", "postmortem", "post-mortem"), follow_ups),
    ("", ("root cause",), lambda _p: ROOT_CAUSE),
    ("", ("release notes", "changelog"), release_notes),
    ("", ("describe the ui", "ui for"), ui_plan),
    ("", ("api contract", "design the api"), api_design),
    ("", ("review",), review),
    ("", ("specification",), spec),
    ("backend", (), api_design),
    ("frontend", (), ui_plan),
    ("tester", (), review),
]


def demo_reply(prompt: str, system: str = "") -> str:
    """The labelled answer for a prompt from a persona (its system prompt)."""
    lowered = prompt.lower()
    persona = persona_of(system)
    for who, words, answer in RULES:
        if who and who != persona:
            continue
        if words and not any(w in lowered for w in words):
            continue
        return f"{DEMO_PREFIX} {answer(prompt)}"
    first = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "")
    return f"{DEMO_PREFIX} Noted: {first[:160]}"
