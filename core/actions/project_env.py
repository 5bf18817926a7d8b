"""A project's layout and its own environment: ``python.setup``.

Quality and build steps run the project's interpreter (:mod:`.interpreter`). A release on
a fresh clone has none: its package is not importable (a src layout fails every test
module with ``ModuleNotFoundError``) and its pytest plugins, ruff and mypy are missing.
``python.setup`` makes the environment a developer would: a ``.venv`` in the project with
the project installed (editable) with its test extras, so later steps find it there.

Which paths a step measures or checks comes from the layout (:func:`detect_layout`), not
from a hard-coded ``src``: a src layout's packages live under ``src/``, a flat layout's at
the root.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.interpreter import (
    STDERR_KEEP,
    VENV_DIRS,
    Interpreter,
    find_python,
    first_error,
    no_options,
    project_dir,
    step_python,
)
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.factories import empty_list
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import tomllib
else:  # loaded when a project's pyproject is read, not when `validate` reads parameters
    tomllib = lazy_module("tomllib")

# Folders at a project's root that are never its importable code.
_NOT_SOURCE = {
    "tests", "test", "testing", "docs", "doc", "examples", "example", "scripts", "tools",
    "benchmarks", "build", "dist", "site", "node_modules", "venv", "env",
}  # fmt: skip
_NOT_MODULE = {"setup", "conftest", "noxfile", "tasks", "fabfile", "manage"}
# Extras that hold what a project's tests need, in the order they are looked for.
TEST_EXTRAS = ("test", "tests", "testing", "dev")


@dataclass(frozen=True)
class Layout:
    """Where a project's code and tests are."""

    kind: Literal["src", "flat", "unknown"]
    packages: tuple[str, ...]  # import names (coverage's --source)
    source_paths: tuple[str, ...]  # relative paths of that code (mypy's paths)
    test_paths: tuple[str, ...]


def _importable(path: Path) -> str | None:
    """The import name of a package folder or a module file, if it is one."""
    name = path.name
    if name.startswith((".", "_")) or name.endswith(".egg-info"):
        return None
    if path.is_dir() and (path / "__init__.py").is_file() and name.isidentifier():
        return name
    if path.is_file() and path.suffix == ".py" and path.stem.isidentifier():
        return path.stem
    return None


def detect_layout(project: Path) -> Layout:
    """The project's layout: ``src/<pkg>`` (src layout), else ``<pkg>/`` at the root (flat)."""
    tests = tuple(name for name in ("tests", "test") if (project / name).is_dir())
    src = project / "src"
    if src.is_dir():
        found = sorted(
            (name, child) for child in src.iterdir() if (name := _importable(child)) is not None
        )
        if found:
            return Layout(
                "src",
                tuple(name for name, _ in found),
                tuple(str(child.relative_to(project)) for _, child in found),
                tests,
            )
    found = []
    for child in project.iterdir():
        name = _importable(child)
        if name is None or child.name.lower() in _NOT_SOURCE:
            continue
        if child.is_file() and (name in _NOT_MODULE or name.startswith("test")):
            continue
        found.append((name, child))
    found.sort()
    if not found:
        return Layout("unknown", (), (), tests)
    return Layout(
        "flat",
        tuple(name for name, _ in found),
        tuple(child.name for _, child in found),
        tests,
    )


def _pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise NonRetryableError(f"{path}: not valid TOML ({exc})") from None


def mypy_configured_files(project: Path) -> bool:
    """Whether the project's mypy configuration names what to check (``files`` /
    ``packages`` / ``modules``), so mypy runs with no paths and the config decides."""
    section = _pyproject(project).get("tool", {}).get("mypy", {})
    if any(key in section for key in ("files", "packages", "modules")):
        return True
    for name in ("mypy.ini", ".mypy.ini", "setup.cfg"):
        path = project / name
        if path.is_file():
            text = path.read_text(errors="replace")
            block = re.search(r"^\[mypy\]\s*$(?P<body>.*?)(?=^\[|\Z)", text, re.M | re.S)
            if block and re.search(r"^\s*(files|packages|modules)\s*=", block["body"], re.M):
                return True
    return False


def test_extras(project: Path) -> list[str]:
    """The project's extras that hold its test tools (``[project.optional-dependencies]``)."""
    declared = _pyproject(project).get("project", {}).get("optional-dependencies", {})
    return [name for name in TEST_EXTRAS if name in declared]


_EXTRA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SetupParams(ActionParams):
    path: str = Field(default=".", description="Project directory (pyproject.toml)")
    python: str | None = Field(
        default=None,
        description="An interpreter to use as is (nothing is created); empty finds the "
        "project's venv and makes one when there is none",
    )
    base_python: str = Field(default="python3", description="The Python the venv is made from")
    extras: list[str] | None = Field(
        default=None, description="Extras to install; default the test extras the project has"
    )
    tools: list[str] = Field(
        default_factory=empty_list,
        description="Packages installed next to the project (its own pins win)",
    )
    editable: bool = True

    @field_validator("extras")
    @classmethod
    def _extras(cls, value: list[str] | None) -> list[str] | None:
        for extra in value or []:
            if not _EXTRA.match(extra):
                raise ValueError(f"extras: {extra!r} is not an extra's name")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        return no_options(value, "tools")


def _venv_gitignore(venv: Path) -> None:
    """Keep the venv out of ``git add -A`` (Python 3.13's venv writes the same file)."""
    ignore = venv / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by quarterdeck python.setup\n*\n")


@action("python.setup", SetupParams)
async def setup(params: SetupParams, ctx: ActionContext) -> dict[str, Any]:
    """Give the project an environment of its own: reuse its venv, or make ``.venv`` and
    install the project (editable) with its test extras and the tools the steps run."""
    project = project_dir(ctx, params.path)
    env = child_env(ctx, {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    env.pop("PYTHONPATH", None)
    if params.python:
        interpreter = step_python(ctx, params.python, project)
        return {**interpreter.outputs(), "created": False, "venv": str(interpreter.venv or "")}
    found = find_python(None, project, env, ctx.workdir)
    # An activated venv is the user's choice, unless it is Quarterdeck's own environment
    # (a dev checkout run from its venv): that one never holds the project.
    own = found.venv is not None and found.venv.resolve() == Path(sys.prefix).resolve()
    if found.source in (*VENV_DIRS, "VIRTUAL_ENV") and not own:
        ctx.log(f"python: {found.path} ({found.why}); using it as it is")
        return {**found.outputs(), "created": False, "venv": str(found.venv)}
    if not (project / "pyproject.toml").is_file() and not (project / "setup.py").is_file():
        raise NonRetryableError(f"no pyproject.toml (or setup.py) in {project} to install")
    base = find_python(params.base_python, project, env, ctx.workdir)
    venv = project / ".venv"
    env.pop("VIRTUAL_ENV", None)
    code, lines = await run_process(
        [base.path, "-m", "venv", str(venv)], ctx, cwd=project, env=env, tail=50
    )
    if code != 0:
        raise ActionError(
            f"cannot create {venv} with {base.path}: {first_error(lines, f'exit {code}')}",
            retryable=False,
        )
    _venv_gitignore(venv)
    python = str(venv / "bin" / "python")
    interpreter = Interpreter(python, ".venv", venv)
    extras = test_extras(project) if params.extras is None else params.extras
    target = f".[{','.join(extras)}]" if extras else "."
    argv = [python, "-m", "pip", "install", "--quiet"]
    argv += ["--editable", target] if params.editable else [target]
    argv += params.tools
    tools = f" with {', '.join(params.tools)}" if params.tools else ""
    ctx.log(f"installing {target} into {venv}{tools}")
    errors: list[str] = []
    code, lines = await run_process(
        argv,
        ctx,
        cwd=project,
        env=interpreter.activated(env),
        tail=500,
        stderr_tail=errors,
        stderr_keep=STDERR_KEEP,
    )
    if code != 0:
        raise ActionError(
            f"pip could not install {target} into {venv}: "
            f"{first_error([*errors, *lines], f'exit {code}')}",
            retryable=False,
            outputs={**interpreter.outputs(), "created": True, "venv": str(venv)},
        )
    return {
        **interpreter.outputs(),
        "created": True,
        "venv": str(venv),
        "extras": extras,
        "installed": target,
    }
