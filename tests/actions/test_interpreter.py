"""Which Python the quality and packaging actions run: the project's, not Quarterdeck's.

The resolution order is checked on real directories (venv-shaped folders whose
``bin/python`` links to a real interpreter); the end-to-end test runs the ``pytest``
action on a project with its own venv, made with ``python -m venv`` and pip, whose suite
needs a pytest plugin only that venv has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.actions.interpreter import Interpreter, find_python
from quarterdeck.core.errors import NonRetryableError
from tests.actions.conftest import run_action
from tests.helpers import REPO

# --------------------------------------------------------------------------- resolution


def fake_venv(root: Path) -> Path:
    """A venv-shaped folder: ``pyvenv.cfg`` and a ``bin/python`` that runs."""
    (root / "bin").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    (root / "bin" / "python").symlink_to(sys.executable)
    return root / "bin" / "python"


def path_dir(root: Path, *names: str) -> Path:
    """A folder to put on PATH holding executables called ``names``."""
    root.mkdir(parents=True)
    for name in names:
        (root / name).symlink_to(sys.executable)
    return root


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Any]:
    """A git repository with a project in it, plus an activated venv and a PATH python."""
    repo = tmp_path / "repo"
    project = repo / "services" / "api"
    project.mkdir(parents=True)
    (repo / ".git").mkdir()
    active = tmp_path / "active-venv"
    fake_venv(active)
    bin_dir = path_dir(tmp_path / "path-bin", "python3", "python")
    env = {"PATH": str(bin_dir), "VIRTUAL_ENV": str(active)}
    return {"tmp": tmp_path, "repo": repo, "project": project, "active": active, "env": env}


def resolve(layout: dict[str, Any], requested: str | None = None, **env: str) -> Interpreter:
    merged = {**layout["env"], **env}
    return find_python(requested, layout["project"], merged, layout["tmp"])


def test_parameter_wins_over_everything(layout: dict[str, Any]) -> None:
    fake_venv(layout["project"] / ".venv")
    chosen = fake_venv(layout["tmp"] / "chosen")
    found = resolve(layout, str(chosen))
    assert (found.path, found.source) == (str(chosen), "parameter")
    assert found.outputs() == {"python": str(chosen), "python_source": "parameter"}
    # relative to the work dir, and a name is looked up on PATH
    assert resolve(layout, "chosen/bin/python").path == str(chosen)
    named = resolve(layout, "python3")
    assert (named.path, named.source) == (str(layout["tmp"] / "path-bin" / "python3"), "parameter")


def test_the_project_venv_comes_next(layout: dict[str, Any]) -> None:
    project = layout["project"]
    plain = fake_venv(project / "venv")
    assert (resolve(layout).path, resolve(layout).source) == (str(plain), "venv")
    dotted = fake_venv(project / ".venv")
    found = resolve(layout)
    assert (found.path, found.source, found.venv) == (str(dotted), ".venv", project / ".venv")
    assert resolve(layout, "").source == ".venv"  # an empty `python:` means "detect"


def test_a_venv_at_the_repository_root_serves_a_project_below_it(layout: dict[str, Any]) -> None:
    outside = fake_venv(layout["tmp"] / ".venv")  # above the repository: never used
    assert resolve(layout).source == "VIRTUAL_ENV"
    root_venv = fake_venv(layout["repo"] / ".venv")
    assert (resolve(layout).path, resolve(layout).source) == (str(root_venv), ".venv")
    assert resolve(layout).path != str(outside)


def test_virtual_env_then_path(layout: dict[str, Any]) -> None:
    found = resolve(layout)
    assert (found.path, found.source) == (str(layout["active"] / "bin" / "python"), "VIRTUAL_ENV")
    found = resolve(layout, VIRTUAL_ENV=str(layout["tmp"] / "gone"))  # a stale VIRTUAL_ENV
    assert (found.path, found.source) == (str(layout["tmp"] / "path-bin" / "python3"), "PATH")
    only_python = path_dir(layout["tmp"] / "old-bin", "python")
    found = resolve(layout, VIRTUAL_ENV="", PATH=str(only_python))
    assert (found.path, found.source) == (str(only_python / "python"), "PATH")


def test_no_python_at_all_is_a_clear_error(layout: dict[str, Any]) -> None:
    empty = layout["tmp"] / "empty-bin"
    empty.mkdir()
    with pytest.raises(NonRetryableError, match=r"no \.venv or venv there.*python:"):
        resolve(layout, VIRTUAL_ENV="", PATH=str(empty))
    with pytest.raises(NonRetryableError, match=r"'python3\.99' is not on PATH"):
        resolve(layout, "python3.99")
    with pytest.raises(NonRetryableError, match="not found"):
        resolve(layout, "./nowhere/bin/python")


def test_a_venv_interpreter_runs_as_if_activated(layout: dict[str, Any]) -> None:
    on_path = resolve(layout, VIRTUAL_ENV="")  # not in a venv: the environment stays as is
    assert on_path.venv is None and on_path.activated({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}
    python = fake_venv(layout["project"] / ".venv")
    env = resolve(layout).activated({"PATH": "/usr/bin", "PYTHONHOME": "/elsewhere"})
    assert env["VIRTUAL_ENV"] == str(layout["project"] / ".venv")
    assert env["PATH"] == f"{python.parent}{os.pathsep}/usr/bin"
    assert "PYTHONHOME" not in env


# --------------------------------------------------------------------------- a project venv

PLUGIN = '''\
"""A pytest plugin (entry point ``pytest11``) the project's suite depends on."""

import pytest


@pytest.fixture
def greeting() -> str:
    return "hello from the project's plugin"
'''

GREET = '''\
"""The plugin distribution's console script (imports nothing)."""


def main() -> None:
    print("qd-greet says hello")
'''

PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "qd-greeting-plugin"
version = "1.0"

[project.entry-points.pytest11]
qd_greeting = "qd_greeting_plugin"

[project.scripts]
qd-greet = "qd_greet:main"

[tool.setuptools]
py-modules = ["qd_greeting_plugin", "qd_greet"]
"""

PROJECT_TESTS = """\
import subprocess


def test_the_plugin_fixture(greeting):
    assert greeting == "hello from the project's plugin"


def test_the_venv_console_script_is_on_path():
    done = subprocess.run(["qd-greet"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "qd-greet says hello"
"""


@pytest.fixture(scope="session")
def venv_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose ``.venv`` (real: ``python -m venv`` + pip) has pytest, coverage and
    a local plugin the suite needs. Session scope: made once, the suite stays fast."""
    root = tmp_path_factory.mktemp("venv-project")
    plugin = root / "plugin"
    plugin.mkdir()
    (plugin / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (plugin / "qd_greeting_plugin.py").write_text(PLUGIN)
    (plugin / "qd_greet.py").write_text(GREET)
    project = root / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_greeting.py").write_text(PROJECT_TESTS)
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    for args in (
        ["-c", str(REPO / "constraints.txt"), "pytest", "coverage", "wheel"],
        # the venv's own setuptools (and wheel) build the plugin
        ["--no-build-isolation", "--no-deps", str(plugin)],
    ):
        done = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return project


def no_active_venv() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    return env


def test_pytest_runs_the_projects_own_venv(venv_project: Path, tmp_path: Path) -> None:
    params = {"path": str(venv_project), "args": ["-p", "no:cacheprovider"]}
    out, lines = run_action("pytest", params, tmp_path, env=no_active_venv())
    assert (out["passed"], out["failed"], out["errors"]) == (2, 0, 0), out
    python = str(venv_project / ".venv" / "bin" / "python")
    assert (out["python"], out["python_source"]) == (python, ".venv")
    assert ("stdout", f"python: {python} (the project's .venv)") in lines
    assert out["coverage"] > 0


def test_the_same_suite_fails_with_quarterdecks_interpreter(
    venv_project: Path, tmp_path: Path
) -> None:
    """The plugin and the console script matter: Quarterdeck's interpreter has neither."""
    params = {
        "path": str(venv_project),
        "args": ["-p", "no:cacheprovider"],
        "python": sys.executable,
        "coverage": False,
    }
    out, _ = run_action("pytest", params, tmp_path, env=no_active_venv())
    assert (out["passed"], out["failed"], out["errors"]) == (0, 1, 1), out
    assert (out["python"], out["python_source"]) == (sys.executable, "parameter")


def test_a_tool_missing_from_the_project_venv_names_it(venv_project: Path, tmp_path: Path) -> None:
    python = str(venv_project / ".venv" / "bin" / "python")
    with pytest.raises(NonRetryableError) as info:
        run_action("lint", {"path": str(venv_project)}, tmp_path, env=no_active_venv())
    message = info.value.message
    assert f"`ruff` package is not installed for {python} (the project's .venv)" in message
    assert f"`{python} -m pip install ruff`" in message
    assert info.value.outputs == {"python": python, "python_source": ".venv"}


def test_install_check_builds_its_venv_from_the_projects_python(
    venv_project: Path, tmp_path: Path
) -> None:
    """A wheel in the project's ``dist/`` is checked with the project's Python (the venv at
    the root of the wheel's git repository)."""
    dist = tmp_path / "project-copy"
    shutil.copytree(venv_project, dist, symlinks=True)
    subprocess.run(["git", "init", "-q", str(dist)], check=True, timeout=60)  # dist/ is inside it
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist / "dist"), str(venv_project.parent / "plugin")],
        check=True,
        timeout=300,
        capture_output=True,
    )  # fmt: skip
    wheel = next((dist / "dist").glob("*.whl"))
    out, _ = run_action(
        "python.install_check",
        {"wheel": str(wheel), "module": "qd_greet", "smoke": ["qd-greet"]},
        tmp_path,
        env=no_active_venv(),
    )
    assert out["imported"] and out["version"] == "1.0"
    assert (out["python"], out["python_source"]) == (
        str(dist / ".venv" / "bin" / "python"),
        ".venv",
    )


def test_bundled_workflows_pass_their_python_input_to_every_tool_step() -> None:
    """Each bundled workflow that runs a project's tools lets the caller choose the Python."""
    import yaml

    tools = {"pytest", "lint", "typecheck", "python.build", "python.install_check"}
    for path in sorted((REPO / "workflows").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        steps = [s for stage in data["stages"] for s in stage.get("steps", [])]
        used = [s for s in steps if s.get("uses") in tools]
        if not used:
            continue
        assert data["inputs"]["python"]["default"] == "", path.name
        for step in used:
            assert step["with"]["python"] == "{{ inputs.python }}", (path.name, step["id"])
