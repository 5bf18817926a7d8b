"""Find workflows: bundled here, in the user's config dir, and in the project.

A project workflow with the same name as a bundled one wins (user beats bundled too).
"""

from __future__ import annotations

from pathlib import Path

from quarterdeck.core.definition.loader import did_you_mean, load_yaml, read_text
from quarterdeck.core.errors import DefinitionError, InvalidInput
from quarterdeck.core.lean import lean
from quarterdeck.core.locations import config_home, project_dir

BUNDLED_DIR = Path(__file__).parent


@lean(frozen=True)
class CatalogEntry:
    name: str
    path: Path
    origin: str  # bundled | user | project
    title: str = ""
    description: str = ""
    error: str | None = None


def workflow_dirs(start: Path | None = None) -> list[tuple[str, Path]]:
    dirs = [("bundled", BUNDLED_DIR), ("user", config_home() / "workflows")]
    proj = project_dir(start)
    if proj is not None:
        dirs.append(("project", proj / "workflows"))
    return dirs


def list_workflows(start: Path | None = None) -> list[CatalogEntry]:
    """Every workflow file visible from ``start``, later origins overriding earlier."""
    found: dict[str, CatalogEntry] = {}
    for origin, directory in workflow_dirs(start):
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            name, title, description, error = path.stem, "", "", None
            try:
                data, _ = load_yaml(read_text(path), str(path))
                if isinstance(data, dict):
                    name = str(data.get("name") or path.stem)
                    title = str(data.get("title") or "")
                    description = str(data.get("description") or "")
            except DefinitionError as exc:
                error = str(exc.problems[0]) if exc.problems else "invalid"
            found[name] = CatalogEntry(name, path, origin, title, description, error)
    return sorted(found.values(), key=lambda e: e.name)


def resolve_workflow(ref: str, start: Path | None = None) -> Path:
    """A workflow file from a path or a catalog name; a helpful error otherwise."""
    candidate = Path(ref).expanduser()
    if candidate.suffix in (".yaml", ".yml") or "/" in ref or candidate.exists():
        if not candidate.exists():
            raise InvalidInput(f"workflow file not found: {ref}")
        return candidate
    entries = list_workflows(start)
    for entry in entries:
        if entry.name == ref or entry.path.stem == ref:
            return entry.path
    names = [e.name for e in entries]
    raise InvalidInput(
        f"no workflow named {ref!r}{did_you_mean(ref, names)}",
        hint="`quarterdeck workflows` lists them; or pass a path to a .yaml file",
    )
