"""Load personas: bundled, then the user's config dir, then the project (last wins).

An override file for an existing persona may name only the fields it changes (say,
``token_budget``); a new persona must give them all.
"""

from __future__ import annotations

import fnmatch
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quarterdeck.core.definition.loader import load_yaml, pydantic_problems, read_text
from quarterdeck.core.errors import DefinitionError, Problem
from quarterdeck.core.lean import lean
from quarterdeck.core.locations import config_home, project_dir

BUNDLED_DIR = Path(__file__).parent


class Persona(BaseModel):
    """A persona (contract): who owns a stage, what it may use, what it may spend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    role: str
    token_budget: int = Field(ge=0)
    tools: list[str] = Field(default_factory=lambda: ["*"])
    model: str = "gpt-4o-mini"
    system_prompt: str = ""
    color: str = "blue"
    budget_policy: Literal["warn", "approve", "fail"] | None = None

    def may_use(self, action: str) -> bool:
        """True when one of the ``tools`` patterns matches ``action``."""
        return any(fnmatch.fnmatchcase(action, pattern) for pattern in self.tools)


@lean
class PersonaCatalog:
    personas: dict[str, Persona] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Persona | None:
        return self.personas.get(name)

    def names(self) -> list[str]:
        return sorted(self.personas)


def persona_dirs(start: Path | None = None) -> list[tuple[str, Path]]:
    dirs = [("bundled", BUNDLED_DIR), ("user", config_home() / "personas")]
    proj = project_dir(start)
    if proj is not None:
        dirs.append(("project", proj / "personas"))
    return dirs


def _load_one(path: Path, existing: Persona | None) -> Persona:
    data, source = load_yaml(read_text(path), str(path))
    if not isinstance(data, dict):
        raise DefinitionError([Problem(str(path), 1, 1, "a persona file must be a YAML mapping")])
    data.setdefault("name", path.stem)
    merged: dict[str, Any] = {**existing.model_dump(), **data} if existing else data
    try:
        return Persona.model_validate(merged)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc, Persona, data, source)) from None


def load_catalog(start: Path | None = None) -> PersonaCatalog:
    """Every persona visible from ``start``; raises :class:`DefinitionError` on bad files."""
    catalog = PersonaCatalog()
    problems: list[Problem] = []
    for origin, directory in persona_dirs(start):
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                persona = _load_one(path, catalog.personas.get(path.stem))
            except DefinitionError as exc:
                problems.extend(exc.problems)
                continue
            catalog.personas[persona.name] = persona
            catalog.origins[persona.name] = f"{origin}: {path}"
    if problems:
        raise DefinitionError(problems)
    return catalog
