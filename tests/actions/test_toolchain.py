"""A project's own toolchain: errors that name the cause, paths from the project's layout,
no option smuggled in through a path, and ``python.setup`` reusing a project's venv."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarterdeck.core.actions.project_env import detect_layout, mypy_configured_files
from quarterdeck.core.errors import ActionError, NonRetryableError
from tests.actions.conftest import run_action
from tests.helpers import cli


@pytest.fixture(autouse=True, scope="module")
def suite_venv() -> Iterator[None]:
    """These projects have no venv: run the suite's tools, as from an activated shell."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIRTUAL_ENV", sys.prefix)
        yield


def src_project(root: Path, *, importable: bool = False) -> Path:
    """A src-layout package (``src/srcpkg``) with a test that imports it; ``importable``
    adds pytest's ``pythonpath``, as a project that is not installed needs."""
    (root / "src" / "srcpkg").mkdir(parents=True)
    (root / "tests").mkdir()
    pyproject = '[project]\nname = "srcpkg"\nversion = "0.1.0"\n'
    if importable:
        pyproject += '\n[tool.pytest.ini_options]\npythonpath = ["src"]\n'
    (root / "pyproject.toml").write_text(pyproject)
    (root / "src" / "srcpkg" / "__init__.py").write_text(
        "def double(x: int) -> int:\n    return x * 2\n\n\n"
        "def unused(x: int) -> str:\n    return x\n"
    )
    (root / "tests" / "test_double.py").write_text(
        "from srcpkg import double\n\n\ndef test_double() -> None:\n    assert double(2) == 4\n"
    )
    (root / "tests" / "helper_typed.py").write_text("BAD: int = 'tests are not measured'\n")
    return root


def test_a_failing_suite_names_the_first_error_not_the_last_line(tmp_path: Path) -> None:
    """An uninstalled src layout fails every module with ModuleNotFoundError; coverage's
    "No data was collected" warning is the last line, and must not be the message."""
    project = src_project(tmp_path / "proj")
    with pytest.raises(ActionError) as info:
        run_action("pytest", {"path": str(project), "args": ["-p", "no:cacheprovider"]}, tmp_path)
    message = info.value.message
    assert "ModuleNotFoundError: No module named 'srcpkg'" in message, message
    assert "errors while collecting the tests" in message
    assert "No data was collected" not in message


def test_layouts_are_detected(tmp_path: Path) -> None:
    src = detect_layout(src_project(tmp_path / "src"))
    assert (src.kind, src.packages, src.source_paths, src.test_paths) == (
        "src",
        ("srcpkg",),
        ("src/srcpkg",),
        ("tests",),
    )
    flat = tmp_path / "flat"
    (flat / "flatpkg").mkdir(parents=True)
    (flat / "flatpkg" / "__init__.py").write_text("")
    (flat / "tool.py").write_text("")
    for skipped in ("setup.py", "conftest.py", "test_tool.py"):
        (flat / skipped).write_text("")
    (flat / "tests").mkdir()
    (flat / "tests" / "__init__.py").write_text("")
    (flat / "docs").mkdir()
    layout = detect_layout(flat)
    assert (layout.kind, layout.packages, layout.source_paths) == (
        "flat",
        ("flatpkg", "tool"),
        ("flatpkg", "tool.py"),
    )
    assert not mypy_configured_files(flat)
    (flat / "mypy.ini").write_text("[mypy]\nstrict = True\nfiles = flatpkg\n")
    assert mypy_configured_files(flat)


def test_coverage_and_types_follow_the_src_layout(tmp_path: Path) -> None:
    """No ``cov_source`` / ``paths`` given: the package under ``src/`` is measured and
    type-checked, the tests are neither."""
    project = src_project(tmp_path / "proj", importable=True)
    out, _ = run_action(
        "pytest", {"path": str(project), "args": ["-p", "no:cacheprovider"]}, tmp_path
    )
    report = json.loads(Path(out["coverage_report"]).read_text())
    assert sorted(report["files"]) == ["src/srcpkg/__init__.py"], report["files"]
    assert out["coverage"] == 75.0  # unused() never runs
    cache = ["--cache-dir", str(tmp_path / "mypy-cache")]
    out, _ = run_action("typecheck", {"path": str(project), "args": cache}, tmp_path)
    assert out["places"] == ["src/srcpkg/__init__.py:6"], out


def test_options_are_refused_where_paths_are_meant(tmp_path: Path) -> None:
    path = tmp_path / "inject.yaml"
    path.write_text("""\
name: inject
stages:
  - id: s
    steps:
      - id: tests
        uses: pytest
        with: {tests: ["--junitxml=/tmp/elsewhere.xml"]}
      - id: cov
        uses: pytest
        with: {cov_source: ["--rcfile=/tmp/x"]}
      - id: report
        uses: pytest
        with: {args: ["--junitxml=/tmp/elsewhere.xml"]}
      - id: lint
        uses: lint
        with: {paths: ["--output-file=/tmp/out"]}
      - id: lint_args
        uses: lint
        with: {args: ["--output-file=/tmp/out"]}
      - id: types
        uses: typecheck
        with: {paths: ["--install-types"]}
      - id: types_args
        uses: typecheck
        with: {args: ["--html-report=/tmp/r"]}
      - id: fine
        uses: lint
        with: {paths: [src], args: ["--select", "E"]}
""")
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    for line in (7, 10, 13, 16, 19, 22, 25):
        assert f"inject.yaml:{line}:" in result.stderr, (line, result.stderr)
    assert "inject.yaml:28:" not in result.stderr
    assert "which the tool would read as an option" in result.stderr
    assert "Traceback" not in result.stderr


def test_setup_reuses_the_projects_venv(tmp_path: Path) -> None:
    """A project with a venv keeps it: nothing is created or installed."""
    project = tmp_path / "proj"
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to(sys.executable)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    out, lines = run_action("python.setup", {"path": str(project)}, tmp_path, env=env)
    assert (out["created"], out["python_source"]) == (False, ".venv")
    assert out["python"] == str(venv / "bin" / "python")
    assert any("using it as it is" in line for _, line in lines)


def test_setup_uses_an_activated_venv_but_never_quarterdecks_own(tmp_path: Path) -> None:
    """``$VIRTUAL_ENV`` is the user's chosen environment — unless it is the one Quarterdeck
    runs in, which does not hold the project: then a ``.venv`` is made (here: refused
    early, the project has nothing to install)."""
    active = tmp_path / "active-venv"
    (active / "bin").mkdir(parents=True)
    (active / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (active / "bin" / "python").symlink_to(sys.executable)
    project = tmp_path / "proj"
    project.mkdir()
    env = {**os.environ, "VIRTUAL_ENV": str(active)}
    out, _ = run_action("python.setup", {"path": str(project)}, tmp_path, env=env)
    assert (out["created"], out["python_source"]) == (False, "VIRTUAL_ENV")
    own = {**os.environ, "VIRTUAL_ENV": sys.prefix}
    with pytest.raises(NonRetryableError, match=r"no pyproject\.toml"):
        run_action("python.setup", {"path": str(project)}, tmp_path, env=own)


def test_coverage_and_types_follow_the_flat_layout(tmp_path: Path) -> None:
    """A flat layout (``flatpkg/`` at the root): measured and type-checked by default where
    the old defaults pointed at a ``src`` that is not there (or at everything)."""
    project = tmp_path / "flat"
    (project / "flatpkg").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "flatpkg"\nversion = "0.1.0"\n')
    (project / "flatpkg" / "__init__.py").write_text(
        "def half(x: int) -> float:\n    return x / 2\n\n\ndef bad() -> int:\n    return 'no'\n"
    )
    (project / "tests" / "test_half.py").write_text(
        "from flatpkg import half\n\nWRONG: int = 'tests are not type-checked'\n\n\n"
        "def test_half() -> None:\n    assert half(4) == 2\n"
    )
    out, _ = run_action(
        "pytest", {"path": str(project), "args": ["-p", "no:cacheprovider"]}, tmp_path
    )
    report = json.loads(Path(out["coverage_report"]).read_text())
    assert sorted(report["files"]) == ["flatpkg/__init__.py"], report["files"]
    cache = ["--cache-dir", str(tmp_path / "mypy-cache")]
    out, _ = run_action("typecheck", {"path": str(project), "args": cache}, tmp_path)
    assert out["places"] == ["flatpkg/__init__.py:6"], out


@pytest.mark.slow  # a real venv with pip, and an isolated build of the project's metadata
def test_setup_makes_a_venv_and_names_why_the_install_failed(tmp_path: Path) -> None:
    """No venv: ``python.setup`` makes ``.venv`` (kept out of git) and installs the project
    there; a dependency pip cannot get is the error, in pip's words."""
    project = tmp_path / "proj"
    (project / "src" / "needy").mkdir(parents=True)
    (project / "src" / "needy" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "needy"\nversion = "0.1.0"\n'
        f'dependencies = ["missing @ file://{tmp_path}/no-such-dir"]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    with pytest.raises(ActionError) as info:
        run_action(
            "python.setup", {"path": str(project), "base_python": sys.executable}, tmp_path, env=env
        )
    message = info.value.message
    assert message.startswith(f"pip could not install . into {project / '.venv'}: ")
    assert "no-such-dir" in message, message
    assert info.value.outputs["created"] is True
    assert (project / ".venv" / "bin" / "python").exists()
    assert (project / ".venv" / ".gitignore").read_text().endswith("*\n")
