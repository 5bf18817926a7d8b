"""The wheel, as a user gets it: built, installed (not editable) into a fresh venv, run.

This is the slow module (a wheel build and a pip install from the registry, about a
minute): everything that needs the installed wheel shares one module-scoped venv. It runs
in the default suite; ``-m "not slow"`` leaves it out while you iterate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from quarterdeck.core import __version__
from tests.helpers import REPO

pytestmark = pytest.mark.slow

PACKAGE_DIRS = ("core", "tui", "screens", "personas", "workflows")
# What a Quarterdeck install must not drag in: the tools a *project* runs (its tests,
# linters, type checker, build) and the demo's package index.
NOT_RUNTIME = ("pytest", "ruff", "mypy", "coverage", "pypiserver", "waitress", "build")


def package_folders() -> list[str]:
    """Every package folder of the source tree as its installed name."""
    found = []
    for top in PACKAGE_DIRS:
        for init in sorted((REPO / top).rglob("__init__.py")):
            folder = init.parent.relative_to(REPO)
            if folder.parts[:3] == ("workflows", "sandbox", "fixtures"):
                continue
            found.append(".".join(("quarterdeck", *folder.parts)))
    return found


def test_every_package_folder_is_listed_for_setuptools() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    missing = [name for name in package_folders() if name not in listed]
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Installed:
    wheel: Path
    venv: Path
    home: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env.pop("CI", None)
        env["QUARTERDECK_HOME"] = str(self.home / "state")
        env["QUARTERDECK_CONFIG_DIR"] = str(self.home / "config")
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return env

    def quarterdeck(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run([str(self.bin / "quarterdeck"), *args], cwd=cwd, env=self.env(), timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Quarterdeck's wheel, built from a copy of the source tree (so nothing lands in the
    checkout's ``build/``), installed with ``pip install -c constraints.txt WHEEL``."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for top in PACKAGE_DIRS:
        shutil.copytree(REPO / top, source / top, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    built = run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), "."],
        cwd=source,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("quarterdeck-*.whl"))
    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    assert made.returncode == 0, made.stderr
    home = root / "home"
    result = Installed(wheel, venv, home)
    constraints = str(REPO / "constraints.txt")
    pip = run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            constraints,
            str(wheel),
        ],
        cwd=root,
        env=result.env(),
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    yield result


def test_the_wheel_has_one_top_level_name_and_the_license(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        info = f"quarterdeck-{__version__}.dist-info"
        assert {name.split("/")[0] for name in names} == {"quarterdeck", info}
        assert f"{info}/licenses/LICENSE" in names
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    assert "quarterdeck/workflows/package-release.yaml" in names
    assert "quarterdeck/personas/backend-engineer.yaml" in names
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [line for line in required if "extra ==" not in line]
    for tool in NOT_RUNTIME:
        assert not [line for line in runtime if line.split()[1].lower().startswith(tool)], tool


def test_the_install_has_no_project_tools(installed: Installed) -> None:
    listed = run(
        [str(installed.bin / "python"), "-m", "pip", "list", "--format=json"],
        cwd=installed.venv,
        env=installed.env(),
    )
    assert listed.returncode == 0, listed.stderr
    names = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert "quarterdeck" in names and "textual" in names
    assert not names & set(NOT_RUNTIME), names & set(NOT_RUNTIME)


def test_the_installed_command_runs(installed: Installed, tmp_path: Path) -> None:
    version = installed.quarterdeck("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"quarterdeck {__version__}\n")

    bundled = sorted(
        (installed.venv / "lib").glob("python3*/site-packages/quarterdeck/workflows/*.yaml")
    )
    assert len(bundled) >= 4
    validated = installed.quarterdeck("validate", *map(str, bundled), cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    workflow = tmp_path / "hello.yaml"
    workflow.write_text(
        "name: hello\nstages:\n  - id: greet\n    steps:\n"
        "      - id: say\n        uses: shell\n"
        "        with: {run: \"sh -c 'echo greeting=hi >> $QUARTERDECK_OUTPUT'\"}\n"
    )
    ran = installed.quarterdeck("run", str(workflow), "--headless", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    step = json.loads(ran.stdout)["stages"][0]["steps"][0]
    assert (step["status"], step["outputs"]["greeting"]) == ("succeeded", "hi")


def test_the_demo_says_to_install_the_demo_extra(installed: Installed, tmp_path: Path) -> None:
    demo = installed.quarterdeck("demo", "release", "--headless", cwd=tmp_path)
    assert demo.returncode == 2, demo.stderr
    assert "the demo needs tools this installation lacks" in demo.stderr
    assert "quarterdeck[demo]" in demo.stderr and "Traceback" not in demo.stderr
