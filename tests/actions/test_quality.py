"""Quality actions run the real tools (pytest + coverage, ruff, mypy) on small projects."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarterdeck.core.errors import ActionError, NonRetryableError
from tests.actions.conftest import Repo, run_action
from tests.helpers import cli, run_workflow


@pytest.fixture(autouse=True, scope="module")
def suite_venv() -> Iterator[None]:
    """These projects have no venv of their own: run them as if the suite's venv (which has
    the tools) were activated, the way a developer runs Quarterdeck from a shell. Module
    scope, so the module's shared fixtures (one build per module) see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIRTUAL_ENV", sys.prefix)
        yield


CALC = """\
def add(a, b):
    return a + b


def divide(a, b):
    if b == 0:
        raise ZeroDivisionError("b is zero")
    return a / b


def unused_branch(x):
    if x > 100:
        return "big"
    return "small"
"""

TESTS = """\
import pytest

from calc import add, divide


def test_add():
    assert add(1, 2) == 3


def test_divide():
    assert divide(6, 3) == 2


def test_wrong():
    assert add(2, 2) == 5


@pytest.mark.skip(reason="not yet")
def test_later():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


def test_uses_broken(broken):
    pass
"""


def make_suite(root: Path, *, failing: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(CALC)
    tests = TESTS if failing else TESTS.split("def test_wrong")[0]
    (root / "test_calc.py").write_text(tests)
    return root


def test_pytest_counts_coverage_and_failing_ids(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite")
    out, lines = run_action("pytest", {"path": str(suite)}, tmp_path)
    assert (out["passed"], out["failed"], out["skipped"], out["errors"], out["total"]) == (
        2,
        1,
        1,
        1,
        5,
    )
    assert out["failing"] == ["test_calc.py::test_wrong", "test_calc.py::test_uses_broken"]
    assert isinstance(out["coverage"], float)
    assert 50 < out["coverage"] < 100  # unused_branch is never called
    assert isinstance(out["duration"], float)
    assert out["exit_code"] == 1
    assert Path(out["junit"]).is_file()
    assert out["summary"].startswith("2 passed, 1 failed, 1 skipped, 1 errors; coverage ")
    assert any("test_wrong" in line for _, line in lines)  # pytest's output was streamed


def test_pytest_can_fail_the_step_and_reports_usage_errors(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite")
    with pytest.raises(ActionError, match="tests failed") as info:
        run_action(
            "pytest", {"path": str(suite), "fail_on_failures": True, "coverage": False}, tmp_path
        )
    assert info.value.outputs["failed"] == 1
    with pytest.raises(ActionError, match="usage error"):
        run_action("pytest", {"path": str(suite), "args": ["--no-such-option"]}, tmp_path)


def test_lint_counts_by_rule(tmp_path: Path) -> None:
    project = tmp_path / "lintme"
    project.mkdir()
    (project / "a.py").write_text("import os\nimport sys\n\n\ndef f(x):\n    return x == None\n")
    (project / "b.py").write_text("def g():\n    return undefined_name\n")
    (project / "clean.py").write_text("VALUE = 1\n")
    out, lines = run_action(
        "lint", {"path": str(project), "args": ["--isolated", "--select", "E,F"]}, tmp_path
    )
    assert out["by_rule"] == {"E711": 1, "F401": 2, "F821": 1}
    assert out["errors"] == 4
    assert out["files"] == 2
    assert "a.py:1:8 F401" in out["places"]
    assert any(line.startswith("b.py:2:12: F821") for _, line in lines)
    assert not any(line.lstrip().startswith("[") for _, line in lines)  # no raw JSON


def test_typecheck_counts_errors(tmp_path: Path) -> None:
    project = tmp_path / "typed"
    project.mkdir()
    (project / "good.py").write_text("def ok(x: int) -> int:\n    return x + 1\n")
    (project / "bad.py").write_text(
        textwrap.dedent("""\
        def name(x: int) -> str:
            return x


        def call() -> None:
            name("not an int")
        """)
    )
    out, lines = run_action(
        "typecheck",
        {"path": str(project), "args": ["--cache-dir", str(tmp_path / "mypy-cache")]},
        tmp_path,
    )
    assert out["errors"] == 2
    assert out["by_code"] == {"arg-type": 1, "return-value": 1}
    assert out["places"] == ["bad.py:2", "bad.py:6"]
    assert out["files"] == 1
    assert any("bad.py:2" in line for _, line in lines)


def fake(prefix: str, body: str) -> str:
    """Build secret-shaped strings at run time, so this file holds none literally."""
    return prefix + body


def test_secrets_scan_finds_committed_secrets_without_printing_them(
    repo: Repo, tmp_path: Path
) -> None:
    aws = fake("AKIA", "QWERTYUIOPASDFGH")
    ghp = fake("ghp_", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5")
    password = fake("Zx9!", "qP4rT8vW2yB6nM1k")
    (repo.path / "config.py").write_text(
        f'AWS_KEY = "{aws}"\nDEBUG = True\nDB_PASSWORD = "{password}"\n'
        'EXAMPLE_PASSWORD = "changeme-changeme"\n'
        f'ALLOWED = "{ghp}"  # pragma: allowlist secret\n'
    )
    (repo.path / "deploy").mkdir()
    (repo.path / "deploy" / "id_rsa").write_text(
        fake("-----BEGIN RSA ", "PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n")
    )
    (repo.path / "notes.md").write_text(f"token {ghp}\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "add config")
    (repo.path / "untracked.env").write_text(f"{aws}\n")  # not committed: not reported
    # committed once, then removed: only a history scan sees it
    (repo.path / "old.txt").write_text(fake("xoxb-", "1234567890-abcdefghij") + "\n")
    repo.git("add", "old.txt")
    repo.git("commit", "-qm", "oops")
    repo.git("rm", "-q", "old.txt")
    repo.git("commit", "-qm", "remove oops")

    out, lines = run_action("secrets.scan", {"path": str(repo.path)}, tmp_path)
    assert sorted(out["places"]) == ["config.py:1", "config.py:3", "deploy/id_rsa:1", "notes.md:1"]
    assert out["count"] == 4
    assert out["by_rule"] == {
        "aws-access-key-id": 1,
        "generic-secret": 1,
        "private-key": 1,
        "github-token": 1,
    }
    text = json.dumps(out) + "\n".join(line for _, line in lines)
    for secret in (aws, ghp, password, "MIIE"):
        assert secret not in text

    history, _ = run_action(
        "secrets.scan", {"path": str(repo.path), "history": True, "exclude": ["deploy/*"]}, tmp_path
    )
    assert "deploy/id_rsa:1" not in history["places"]
    slack = [f for f in history["findings"] if f["rule"] == "slack-token"]
    assert len(slack) == 1 and slack[0]["file"] == "old.txt" and slack[0]["line"] == 1
    assert len(slack[0]["commit"]) == 7
    assert history["count"] == 4  # 3 current (deploy excluded) + 1 from history


def test_quality_gate_compares_numbers(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite", failing=False)
    workflow = f"""
name: quality
stages:
  - id: check
    steps:
      - id: tests
        uses: pytest
        with: {{path: "{suite}"}}
      - id: lint
        uses: lint
        with: {{path: "{suite}", args: ["--isolated"]}}
    gate:
      id: quality
      all:
        - "{{{{ steps.tests.outputs.coverage >= 60 }}}}"
        - "{{{{ steps.tests.outputs.failed == 0 }}}}"
        - "{{{{ steps.lint.outputs.errors <= 1 }}}}"
"""
    (tmp_path / "ok").mkdir()
    ran = run_workflow(tmp_path / "ok", workflow)
    assert ran.state.status == "succeeded", [(s.id, s.error) for s in ran.state.all_steps()]
    strict = workflow.replace("coverage >= 60", "coverage >= 99.5")
    (tmp_path / "strict").mkdir()
    ran = run_workflow(tmp_path / "strict", strict)
    assert ran.state.status == "failed"


def test_bad_quality_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""\
name: bad-quality
stages:
  - id: s
    steps:
      - id: tests
        uses: pytest
        with: {coverage: "sometimes"}
      - id: lint
        uses: lint
        with: {paths: "."}
      - id: types
        uses: typecheck
        with: {strictness: high}
      - id: secrets
        uses: secrets.scan
        with: {history: maybe}
""")
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    for line in (7, 10, 13, 16):
        assert f"bad.yaml:{line}:" in result.stderr, (line, result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_tools_say_how_to_install_them(tmp_path: Path) -> None:
    import subprocess
    import sys

    bare = tmp_path / "bare-venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60
    )
    python = str(bare / "bin" / "python")
    suite = make_suite(tmp_path / "suite", failing=False)
    for name in ("pytest", "lint", "typecheck"):
        with pytest.raises(NonRetryableError, match=r"is not installed for .*pip install"):
            run_action(name, {"path": str(suite), "python": python}, tmp_path)
