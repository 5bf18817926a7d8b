"""Which Python runs a project's tests, linters, type checker and build.

Quarterdeck installs as a tool (``pipx``, ``uv tool``) with an interpreter of its own that
holds Quarterdeck's dependencies, not the project's: a suite run with it would miss the
project's pytest plugins, use other ruff and mypy versions than the project pins, and
build without the project's build requirements. So ``pytest``, ``lint``, ``typecheck``,
``python.build`` and ``python.install_check`` run *the project's* interpreter, the first
of:

1. the step's ``python:`` parameter (a path, or a name looked up on ``PATH``): what the
   workflow says always wins; empty means "detect", so a workflow input can default to it;
2. the project's virtual environment, ``.venv/`` then ``venv/``, in the step's project
   directory or a parent of it inside the same git repository (a monorepo's one venv);
3. ``$VIRTUAL_ENV`` — the environment activated where Quarterdeck was started;
4. ``python3``, then ``python``, on ``PATH``.

Each step says which one it used and why (outputs ``python`` and ``python_source``), and
a tool missing from that interpreter is an error that names the interpreter and what to
install there — never a silent fallback to Quarterdeck's own interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from quarterdeck.core.actions.base import ActionContext
from quarterdeck.core.errors import NonRetryableError

Source = Literal["parameter", ".venv", "venv", "VIRTUAL_ENV", "PATH"]
PYTHON_HELP = "Interpreter; default the project's (.venv, venv, $VIRTUAL_ENV, python3 on PATH)"
VENV_DIRS: tuple[Literal[".venv", "venv"], ...] = (".venv", "venv")
_WHY: dict[str, str] = {
    "parameter": "the step's `python:`",
    ".venv": "the project's .venv",
    "venv": "the project's venv",
    "VIRTUAL_ENV": "$VIRTUAL_ENV",
    "PATH": "the first Python on PATH",
}


@dataclass(frozen=True)
class Interpreter:
    """The Python a step runs, and why that one."""

    path: str
    source: Source
    venv: Path | None = None  # the virtual environment it belongs to, if any

    @property
    def why(self) -> str:
        return _WHY[self.source]

    def outputs(self) -> dict[str, Any]:
        """What every step that ran it reports (gates and `show` can read them)."""
        return {"python": self.path, "python_source": self.source}

    def activated(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` as ``source <venv>/bin/activate`` would leave it: the venv's console
        scripts (the project's own CLI, tools its tests start) come first on ``PATH``."""
        if self.venv is None:
            return env
        out = dict(env)
        out["VIRTUAL_ENV"] = str(self.venv)
        out["PATH"] = os.pathsep.join(
            p for p in (str(Path(self.path).parent), env.get("PATH", "")) if p
        )
        out.pop("PYTHONHOME", None)
        return out


def _venv_python(venv: Path) -> Path | None:
    for relative in ("bin/python", "Scripts/python.exe"):
        candidate = venv / relative
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _venv_of(python: Path) -> Path | None:
    """The venv ``python`` lives in (its ``pyvenv.cfg``), without resolving symlinks:
    a venv's ``bin/python`` is a link to the base interpreter."""
    root = python.parent.parent
    return root if (root / "pyvenv.cfg").is_file() else None


def _search_dirs(project: Path) -> list[Path]:
    """``project`` and its parents up to the git repository's root (only ``project``
    outside a repository, so a stray ``~/.venv`` is never picked up)."""
    chain = [project, *project.parents]
    for index, directory in enumerate(chain):
        if (directory / ".git").exists():
            return chain[: index + 1]
    return [project]


def find_python(
    requested: str | None, project: Path, env: Mapping[str, str], workdir: Path
) -> Interpreter:
    """The interpreter for a step on ``project`` (see the module docstring for the order).

    ``env`` is the step's environment (``VIRTUAL_ENV`` and ``PATH`` come from it); a
    relative ``requested`` path is relative to ``workdir``. Raises NonRetryableError when
    the requested interpreter does not exist or no Python is found at all.
    """
    search_path = env.get("PATH", "")
    if requested:
        if os.sep in requested or requested.startswith("~"):
            given = Path(requested).expanduser()
            given = given if given.is_absolute() else workdir / given
            if not given.is_file():
                raise NonRetryableError(f"python: {requested!r} not found (no file {given})")
            return Interpreter(str(given), "parameter", _venv_of(given))
        found = shutil.which(requested, path=search_path)
        if found is None:
            raise NonRetryableError(f"python: {requested!r} is not on PATH")
        return Interpreter(found, "parameter", _venv_of(Path(found)))
    for directory in _search_dirs(project.absolute()):
        for venv_dir in VENV_DIRS:
            python = _venv_python(directory / venv_dir)
            if python is not None:
                return Interpreter(str(python), venv_dir, directory / venv_dir)
    active = env.get("VIRTUAL_ENV")
    if active:
        python = _venv_python(Path(active))
        if python is not None:
            return Interpreter(str(python), "VIRTUAL_ENV", Path(active))
    for command in ("python3", "python"):
        found = shutil.which(command, path=search_path)
        if found is not None:
            return Interpreter(found, "PATH", _venv_of(Path(found)))
    raise NonRetryableError(
        f"no Python for {project}: no .venv or venv there, no $VIRTUAL_ENV, and no python3 "
        "on PATH; set the step's `python:` to an interpreter"
    )


def step_python(ctx: ActionContext, requested: str | None, project: Path) -> Interpreter:
    """:func:`find_python` for a running step, logged so the run shows which one ran."""
    interpreter = find_python(requested, project, ctx.env, ctx.workdir)
    ctx.log(f"python: {interpreter.path} ({interpreter.why})")
    return interpreter


def project_dir(ctx: ActionContext, value: str) -> Path:
    """A step's project directory (relative to the work dir); it must exist."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else ctx.workdir / path
    if not path.is_dir():
        raise NonRetryableError(f"directory not found: {path}")
    return path


#: stderr lines a tool step keeps (``run_process(stderr_tail=...)``) to say why it failed.
STDERR_KEEP = 500


def not_installed(
    lines: Sequence[str], modules: Sequence[str], interpreter: Interpreter
) -> NonRetryableError | None:
    """The error for a tool missing from ``interpreter``, if its output says so.

    It names the interpreter, why that one was chosen, and how to install the package
    into *it* (with pip, or uv for a venv made without pip).
    """
    for module in modules:
        if any(f"No module named {module}" in line for line in lines):
            python = interpreter.path
            return NonRetryableError(
                f"the `{module}` package is not installed for {python} ({interpreter.why}); "
                f"install it there (`{python} -m pip install {module}` or "
                f"`uv pip install --python {python} {module}`) or point the step's "
                "`python:` at an interpreter that has it",
                outputs=interpreter.outputs(),
            )
    return None


# A raised exception as pytest prints it (``E   ModuleNotFoundError: ...``), then as a
# traceback ends (``ModuleNotFoundError: ...``), then a tool's own ``error: ...`` line.
_FIRST_ERROR = (
    re.compile(r"^E\s+(?P<what>[\w.]*(?:Error|Exception|Exit)\b.*)$"),
    re.compile(r"^(?P<what>[\w.]*(?:Error|Exception):\s.*)$"),
    re.compile(r"^(?P<what>(?:[^:\s]+:\d+(?::\d+)?: )?(?:error|ERROR|fatal):\s.*)$"),
)


def first_error(lines: Sequence[str], default: str = "") -> str:
    """The line that says why a tool failed: the *first* error it printed.

    A failing tool's last line is usually a consequence (pytest's "N errors", coverage's
    "No data was collected"), so the message would hide the cause; the first exception or
    ``error:`` line is the one a person looks for. The last non-empty line when none is.
    """
    for pattern in _FIRST_ERROR:
        for line in lines:
            match = pattern.match(line.strip())
            if match:
                return match["what"].strip()
    return next((ln.strip() for ln in reversed(lines) if ln.strip()), default)


def no_options(values: Sequence[str], field: str) -> list[str]:
    """``values`` are paths or names (positionals): one starting with ``-`` would reach the
    tool as an option (``--junitxml=/elsewhere``, ``--output-file=...``), so it is refused."""
    for value in values:
        if value.startswith("-"):
            raise ValueError(
                f"{field}: {value!r} starts with '-', which the tool would read as an option; "
                "list paths and names here, options in `args:`"
            )
    return list(values)


def refuse_args(args: Sequence[str], refused: Sequence[str], tool: str) -> list[str]:
    """``args`` are options, but not the ones the step sets itself and reads back (its
    report file, its output format): overriding them would send the results elsewhere."""
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in refused:
            raise ValueError(
                f"args: {name} is set by the step itself ({tool} reports through it); "
                "remove it from `args:`"
            )
    return list(args)
