"""package-release end to end on a project that is not the demo's: a src-layout package
with no venv yet, its own ruff configuration (line length 120, its own rule set), tests
that only pass once the package is installed, a bare origin and the demo's loopback
index. No environment tweaks: no `python`, build isolation on, no VIRTUAL_ENV.

Slow (a venv with pip installs, an isolated build, a verify venv): about a minute.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarterdeck.workflows.sandbox.servers import PackageIndex
from tests.helpers import REPO
from tests.workflows.conftest import run_args, run_json, step

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.crypt. is deprecated:DeprecationWarning"),
]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "qd-stripes"
version = "0.1.0"
description = "Stripes (a package the Quarterdeck suite releases)"
readme = "README.md"
requires-python = ">=3.9"

[project.optional-dependencies]
test = ["pytest", "coverage"]

[tool.setuptools.packages.find]
where = ["src"]

[tool.ruff]
line-length = 120

[tool.ruff.lint]
select = ["E", "F", "N", "E501"]

[tool.mypy]
files = ["src"]
strict = true
"""

# 112 characters: fine at the project's line length (120), a finding at ruff's default (88)
LONG = "    " + "return " + " + ".join(["width"] * 13)
STRIPES = f'''"""Stripes."""


def stripe(width: int) -> str:
    """A stripe."""
    return "=" * width


def wide(width: int) -> int:
{LONG}
'''

TESTS = """from stripes import stripe, wide


def test_stripe() -> None:
    assert stripe(3) == "==="


def test_wide() -> None:
    assert wide(1) == 13
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The package's clone (v0.1.0 tagged, one feature since) and its bare origin."""
    assert 100 < len(LONG) <= 120
    origin, work = tmp_path / "origin.git", tmp_path / "stripes"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    for key, value in (("user.name", "Rel Eng"), ("user.email", "releng@example.test")):
        git(work, "config", key, value)
    (work / "src" / "stripes").mkdir(parents=True)
    (work / "tests").mkdir()
    (work / "pyproject.toml").write_text(PYPROJECT)
    (work / "README.md").write_text("# qd-stripes\n\n    pip install qd-stripes==0.1.0\n")
    (work / ".gitignore").write_text("dist/\n*.egg-info/\n__pycache__/\n")
    (work / "src" / "stripes" / "__init__.py").write_text(STRIPES.split("\n\ndef wide")[0] + "\n")
    (work / "src" / "stripes" / "py.typed").write_text("")
    first_tests = TESTS.replace(", wide", "").split("\n\ndef test_wide")[0] + "\n"
    (work / "tests" / "test_stripes.py").write_text(first_tests)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "feat: stripes")
    git(work, "tag", "-a", "v0.1.0", "-m", "Release 0.1.0")
    (work / "src" / "stripes" / "__init__.py").write_text(STRIPES)
    (work / "tests" / "test_stripes.py").write_text(TESTS)
    git(work, "commit", "-qam", "feat: wide stripes")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main", "v0.1.0")
    yield work, origin


def test_package_release_on_a_src_layout_package_with_its_own_toolchain(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    work, origin = project
    with PackageIndex(tmp_path / "index") as index:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CI")}
        env.update(
            {
                "QUARTERDECK_CONFIG_DIR": str(tmp_path / "config"),
                "QUARTERDECK_HOME": str(tmp_path / "state"),
                "QUARTERDECK_PYPI_USERNAME": index.username,
                "QUARTERDECK_PYPI_PASSWORD": index.password,
            }
        )
        inputs = {
            "repo": str(work),
            "repository_url": index.upload_url,  # the simple index next to it is derived
            "notes_dir": str(tmp_path / "notes"),
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "quarterdeck.tui.cli",
                *run_args("package-release", inputs, "--approve", "publish"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(REPO),
            timeout=900,
            check=False,
        )
        run = run_json(result)
        failed = [
            (s["id"], s.get("error")) for st in run["stages"] for s in st["steps"] if s.get("error")
        ]
        assert result.returncode == 0, (failed, result.stderr[-3000:])
        assert run["status"] == "succeeded"
        files = index.files()
    venv_python = str(work / ".venv" / "bin" / "python")
    setup = step(run, "setup")["outputs"]
    assert (setup["created"], setup["python"], setup["extras"]) == (True, venv_python, ["test"])
    tests = step(run, "tests")["outputs"]
    assert (tests["passed"], tests["failed"], tests["errors"]) == (2, 0, 0)
    assert tests["python"] == venv_python and tests["coverage"] == 100.0
    lint = step(run, "lint")["outputs"]
    assert (lint["errors"], lint["python"]) == (0, venv_python)  # 112 columns pass at 120
    assert step(run, "types")["outputs"]["errors"] == 0
    build = step(run, "build")["outputs"]
    wheel = Path(build["wheel"])
    assert files == sorted([wheel.name, "qd_stripes-0.2.0.tar.gz"])
    verify = step(run, "verify")["outputs"]
    assert verify["file"] == wheel.name and verify["matches"] is True
    assert step(run, "publish")["outputs"]["index_url"] == f"{index.url}/simple/"
    assert verify["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert "refs/tags/v0.2.0" in git(work, "ls-remote", "--tags", str(origin))
    assert git(work, "status", "--porcelain") == ""  # the new .venv stays out of git


def test_the_projects_lint_config_is_the_one_applied(tmp_path: Path) -> None:
    """The same 112-column file is a finding under ruff's defaults with E501 (88): the
    step above passing means the project's line-length (120) was applied."""
    source = tmp_path / "wide.py"
    source.write_text(STRIPES)
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E501", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "E501" in done.stdout, done.stdout
