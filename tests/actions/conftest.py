"""Fixtures for action tests: real git repositories with a bare origin, a tiny Python
package, one wheel built per module, and a real package index (pypiserver) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import make_ctx

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.test",
}


@pytest.fixture(autouse=True)
def git_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private global git config: the machine's (signing, hooks, aliases) never leaks in."""
    home = tmp_path_factory.mktemp("git-home")
    config = home / "gitconfig"
    config.write_text(
        "[user]\n\tname = Test User\n\temail = user@example.test\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n"
        "[tag]\n\tgpgsign = false\n[advice]\n\tdetachedHead = false\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in GIT_IDENTITY:
        monkeypatch.delenv(key, raising=False)
    return config


def git(cwd: Path, *args: str) -> str:
    """Run git and return its stdout (fails the test on a non-zero exit)."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


@dataclass
class Repo:
    """A working clone and its bare origin."""

    path: Path
    origin: Path
    _counter: int = 0

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def commit(self, message: str, *, file: str | None = None, content: str | None = None) -> str:
        """Commit one change (a new line in a file) with ``message``; returns the sha."""
        self._counter += 1
        target = self.path / (file or f"src/change_{self._counter}.txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if content is not None else f"change {self._counter}\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self.git("tag", "-a", name, "-m", f"Release {name}")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def origin_tags(self) -> list[str]:
        out = git(self.origin, "tag", "--list")
        return [t for t in out.splitlines() if t]


def make_repo(root: Path, version: str = "0.1.0") -> Repo:
    """A repo with pyproject.toml at ``version``, one commit, pushed to a bare origin."""
    root.mkdir(parents=True, exist_ok=True)
    origin = root / "origin.git"
    work = root / "work"
    git(root, "init", "-q", "--bare", str(origin))
    git(root, "init", "-q", str(work))
    repo = Repo(work, origin)
    (work / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\n\n'
        f'[project]\nname = "demo"\nversion = "{version}"\n'
        'dependencies = []\n\n[tool.demo]\nversion = "not-this-one"\n'
    )
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "chore: initial commit")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


def run_action(
    name: str, params: dict[str, Any], tmp_path: Path, **ctx_overrides: Any
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate ``params`` with the action's model and run it once, like the runner does."""
    from quarterdeck.core.actions.base import get_action

    spec = get_action(name)
    assert spec is not None, f"action {name} is not registered"
    ctx = make_ctx(tmp_path, **ctx_overrides)
    model = spec.params.model_validate(params)
    outputs = asyncio.run(spec.fn(model, ctx))
    return dict(outputs), ctx.lines  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- packaging

TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "qd-tinypkg"
version = "{version}"
description = "A tiny package the Quarterdeck tests build, install and publish"
readme = "README.md"
requires-python = ">=3.8"
license = {{text = "MIT"}}
classifiers = ["Programming Language :: Python :: 3"]

[project.scripts]
qd-tiny = "qd_tinypkg:main"

[tool.setuptools]
packages = ["qd_tinypkg"]
"""


def make_python_project(root: Path, version: str = "0.3.0") -> Path:
    """A minimal setuptools project: one module, a console script, a README."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(TINY_PYPROJECT.format(version=version))
    (root / "README.md").write_text("# qd-tinypkg\n\nBuilt by the Quarterdeck tests.\n")
    pkg = root / "qd_tinypkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(
        f'"""A tiny package."""\n\n__version__ = "{version}"\n\n\n'
        "def main() -> None:\n    print('qd-tiny says hello')\n"
    )
    return root


@dataclass
class Built:
    project: Path
    outputs: dict[str, Any]
    lines: list[tuple[str, str]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One real build (sdist + wheel) of the tiny package, shared by a test module."""
    root = tmp_path_factory.mktemp("tinypkg")
    project = make_python_project(root / "project")
    outputs, lines = run_action("python.build", {"project": str(project), "isolation": False}, root)
    return Built(project, outputs, lines)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Index:
    url: str  # upload URL (pypiserver takes uploads at its root)
    simple: str
    packages: Path
    username: str
    password: str


@pytest.fixture
def pypi_index(tmp_path: Path) -> Iterator[Index]:
    """A real pypiserver on 127.0.0.1 with upload auth; stopped after the test."""
    import waitress  # noqa: F401  (pypiserver's "auto" server picks waitress when present)

    with warnings.catch_warnings():  # passlib imports the deprecated crypt module
        warnings.simplefilter("ignore", DeprecationWarning)
        from passlib.apache import HtpasswdFile

    packages = tmp_path / "index-packages"
    packages.mkdir()
    htpasswd = tmp_path / "htpasswd"
    users = HtpasswdFile(str(htpasswd), new=True)
    users.set_password("uploader", "s3cret-upload-pw")
    users.save()
    port = free_port()
    server = Path(sys.executable).parent / "pypi-server"
    log = (tmp_path / "pypiserver.log").open("w")
    proc = subprocess.Popen(
        [
            str(server),
            "run",
            "-p",
            str(port),
            "-i",
            "127.0.0.1",
            "-a",
            "update",
            "-P",
            str(htpasswd),
            "--disable-fallback",
            "--server",
            "auto",
            str(packages),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"pypiserver exited early: {(tmp_path / 'pypiserver.log').read_text()}"
                )
            try:
                if httpx.get(f"{base}/simple/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("pypiserver did not start within 20 s")
            time.sleep(0.1)
        yield Index(f"{base}/", f"{base}/simple/", packages, "uploader", "s3cret-upload-pw")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
