"""The catalog check a resume runs again on its kept definition (core/definition/validate.py
``persona_problems``): a step using a tool its stage's persona may not use, and unknown
personas. Only a stage with a known persona can have the first kind, so a workflow
with none does not walk every step (a 10,000-step resume spent ~10 ms there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.definition import validate
from quarterdeck.core.definition.validate import load_workflow_text, persona_problems
from quarterdeck.personas.registry import load_catalog

TWO_STAGES = """\
name: w
stages:
  - id: free
    steps:
      - {{id: a, uses: shell, with: {{run: "true"}}}}
  - id: held
    {persona}
    steps:
      - {{id: b, uses: shell, with: {{run: "true"}}}}
      - {{id: c, uses: memory.set, with: {{key: k}}}}
"""


def setup(tmp_path: Path, persona: str) -> tuple[Any, Any]:
    """The workflow loaded (validated, without the catalog) and the project's catalog."""
    folder = tmp_path / ".quarterdeck" / "personas"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scribe.yaml").write_text(
        "name: scribe\ntitle: Scribe\nrole: Takes notes\ntoken_budget: 100\ntools: [shell]\n"
    )
    loaded = load_workflow_text(TWO_STAGES.format(persona=persona), tmp_path / "wf.yaml")
    return loaded, load_catalog(tmp_path)


def problems(found: tuple[Any, Any]) -> list[str]:
    return [p.message for p in persona_problems(*found)]


def test_a_step_its_stages_persona_may_not_use_is_still_found(tmp_path: Path) -> None:
    found = problems(setup(tmp_path, "persona: scribe"))
    assert len(found) == 1
    assert "step 'c' uses 'memory.set', which persona 'scribe' may not use" in found[0]


def test_with_no_known_persona_the_steps_are_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def walked(*_: Any) -> Any:
        raise AssertionError("every step walked")

    none, unknown = setup(tmp_path, ""), setup(tmp_path, "persona: nobody")
    monkeypatch.setattr(validate, "_step_locs", walked)
    assert problems(none) == []
    found = problems(unknown)  # reported without walking the steps
    assert len(found) == 1 and found[0].startswith("unknown persona 'nobody'")
