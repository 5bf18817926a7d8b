"""Quality actions: ``pytest``, ``lint`` (ruff) and ``typecheck`` (mypy).

Their outputs are numbers a quality gate can compare (``steps.tests.outputs.coverage >=
80``, ``steps.lint.outputs.errors == 0``), so by default a failing test or a lint finding
does not fail the step: the step reports, the gate decides. ``fail_on_*: true`` makes
the step itself fail. A tool that could not run at all (not installed, bad arguments,
a crash) is always a step failure, with a message saying what to do.

The tools run with the *project's* interpreter (its ``.venv``, ``$VIRTUAL_ENV``, ``PATH``,
or the step's ``python:``; see :mod:`quarterdeck.core.actions.interpreter`), so a suite
gets its own plugins and configuration; outputs ``python`` and ``python_source`` say
which interpreter ran and why.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.interpreter import (
    PYTHON_HELP,
    STDERR_KEEP,
    first_error,
    no_options,
    not_installed,
    project_dir,
    refuse_args,
    step_python,
)
from quarterdeck.core.actions.project_env import detect_layout, mypy_configured_files
from quarterdeck.core.errors import ActionError
from quarterdeck.core.factories import empty_list


def _reports_dir(ctx: ActionContext) -> Path:
    path = ctx.run_dir / "reports" / f"{ctx.step_id}-{ctx.attempt}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _command(value: list[str] | str | None, python: str, module: str) -> list[str]:
    if value is None:
        return [python, "-m", module]
    return shlex.split(value) if isinstance(value, str) else list(value)


# --------------------------------------------------------------------------- pytest


class PytestParams(ActionParams):
    path: str = Field(default=".", description="Project directory (the working directory)")
    tests: list[str] = Field(default_factory=empty_list, description="Test paths or node ids")
    args: list[str] = Field(default_factory=empty_list, description="Extra pytest arguments")
    python: str | None = Field(default=None, description=PYTHON_HELP)
    coverage: bool = True
    cov_source: list[str] = Field(
        default_factory=empty_list,
        description="Packages/dirs to measure; default the project's packages (src or flat layout)",
    )
    fail_on_failures: bool = False
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("tests", "cov_source")
    @classmethod
    def _positional(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return no_options(value, info.field_name or "tests")

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        return refuse_args(value, ("--junitxml", "--junit-xml", "--junit-prefix"), "pytest")


@dataclass
class JUnitCounts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0
    failing: tuple[str, ...] = ()


def parse_junit(path: Path) -> JUnitCounts:
    """Totals over every ``<testsuite>`` in a JUnit XML file (as pytest writes it)."""
    import xml.etree.ElementTree as ET  # only a JUnit report needs it

    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = JUnitCounts()
    failing: list[str] = []
    for suite in suites:
        counts.tests += int(suite.get("tests", 0))
        counts.failures += int(suite.get("failures", 0))
        counts.errors += int(suite.get("errors", 0))
        counts.skipped += int(suite.get("skipped", 0))
        counts.time += float(suite.get("time", 0.0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failing.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    counts.failing = tuple(failing)
    return counts


_SUMMARY_ID = re.compile(r"^(?:FAILED|ERROR) (?P<id>\S+)")
_PYTEST_CRASH = {2: "interrupted", 3: "an internal error", 4: "a usage error"}


@action("pytest", PytestParams)
async def pytest_action(params: PytestParams, ctx: ActionContext) -> dict[str, Any]:
    """Run a test suite with coverage and JUnit XML; outputs counts gates can compare."""
    cwd = project_dir(ctx, params.path)
    interpreter = step_python(ctx, params.python, cwd)
    python = interpreter.path
    reports = _reports_dir(ctx)
    junit = reports / "junit.xml"
    data_file = reports / ".coverage"
    # `--` ends the options: a test path is never read as one.
    pytest_args = ["-rfE", f"--junitxml={junit}", *params.args]
    pytest_args += ["--", *params.tests] if params.tests else []
    if params.coverage:
        measured = params.cov_source or list(detect_layout(cwd).packages) or ["."]
        ctx.log(f"coverage measures {', '.join(measured)}")
        source = f"--source={','.join(measured)}"
        argv = [
            python,
            "-m",
            "coverage",
            "run",
            f"--data-file={data_file}",
            source,
            "-m",
            "pytest",
            *pytest_args,
        ]
    else:
        argv = [python, "-m", "pytest", *pytest_args]
    env = interpreter.activated(child_env(ctx, params.env))
    errors: list[str] = []
    code, lines = await run_process(
        argv, ctx, cwd=cwd, env=env, tail=10_000, stderr_tail=errors, stderr_keep=STDERR_KEEP
    )
    tools = ("coverage", "pytest") if params.coverage else ("pytest",)
    missing = not_installed([*lines, *errors], tools, interpreter)
    if missing is not None and not junit.exists():
        raise missing
    if code in _PYTEST_CRASH or not junit.exists():
        what = _PYTEST_CRASH.get(code, f"exit code {code}")
        if any("error during collection" in ln or "errors during collection" in ln for ln in lines):
            what = "errors while collecting the tests"
        raise ActionError(
            f"pytest stopped with {what}: {first_error([*lines, *errors])}",
            retryable=False,
            outputs={"exit_code": code, **interpreter.outputs()},
        )
    counts = parse_junit(junit)
    ids = [m["id"] for m in (_SUMMARY_ID.match(ln) for ln in lines) if m]
    failing = ids or list(counts.failing)
    outputs: dict[str, Any] = {
        "passed": counts.tests - counts.failures - counts.errors - counts.skipped,
        "failed": counts.failures,
        "skipped": counts.skipped,
        "errors": counts.errors,
        "total": counts.tests,
        "duration": round(counts.time, 3),
        "failing": failing,
        "exit_code": code,
        "junit": str(junit),
        **interpreter.outputs(),
    }
    if params.coverage:
        cov_json = reports / "coverage.json"
        ccode, clines = await run_process(
            [
                python,
                "-m",
                "coverage",
                "json",
                f"--data-file={data_file}",
                "-o",
                str(cov_json),
                "--quiet",
            ],
            ctx,
            cwd=cwd,
            env=env,
            tail=20,
        )
        if ccode != 0 or not cov_json.exists():
            raise ActionError(
                f"coverage json failed: {clines[-1] if clines else ccode}",
                retryable=False,
                outputs=outputs,
            )
        totals = json.loads(cov_json.read_text())["totals"]
        outputs["coverage"] = round(float(totals["percent_covered"]), 2)
        outputs["coverage_report"] = str(cov_json)
    summary = (
        f"{outputs['passed']} passed, {outputs['failed']} failed, "
        f"{outputs['skipped']} skipped, {outputs['errors']} errors"
    )
    if "coverage" in outputs:
        summary += f"; coverage {outputs['coverage']}%"
    outputs["summary"] = summary
    ctx.log(summary)
    if params.fail_on_failures and (counts.failures or counts.errors):
        raise ActionError(f"tests failed: {summary}", retryable=False, outputs=outputs)
    return outputs


# --------------------------------------------------------------------------- lint


class LintParams(ActionParams):
    path: str = "."
    paths: list[str] = Field(
        default_factory=empty_list, description="Default: what the project's ruff config includes"
    )
    args: list[str] = Field(default_factory=empty_list, description="Extra `ruff check` arguments")
    ruff: list[str] | str | None = Field(
        default=None, description="Command; default python -m ruff"
    )
    python: str | None = Field(default=None, description=PYTHON_HELP)
    fail_on_errors: bool = False

    @field_validator("paths")
    @classmethod
    def _positional(cls, value: list[str]) -> list[str]:
        return no_options(value, "paths")

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        refused = ("--output-file", "-o", "--output-format", "--fix", "--add-noqa", "--watch")
        return refuse_args(value, refused, "ruff")


@action("lint", LintParams)
async def lint(params: LintParams, ctx: ActionContext) -> dict[str, Any]:
    """Run ``ruff check``; outputs the number of findings, by rule."""
    cwd = project_dir(ctx, params.path)
    interpreter = step_python(ctx, params.python, cwd)
    argv = [
        *_command(params.ruff, interpreter.path, "ruff"),
        "check",
        "--output-format=json",
        "--exit-zero",
        "--no-cache",
        *params.args,
    ]
    argv += ["--", *params.paths] if params.paths else []
    quiet: list[str] = []

    def keep(stream: str, line: str) -> None:
        if stream == "stderr":
            ctx.emit_line(stream, line)
        quiet.append(line)

    silent = replace(ctx, emit_line=keep)  # ruff's JSON is parsed, not streamed
    env = interpreter.activated(child_env(ctx, {}))
    code, lines = await run_process(argv, silent, cwd=cwd, env=env, tail=1_000_000)
    if code != 0:
        missing = not_installed(quiet, ("ruff",), interpreter)
        if missing is not None:
            raise missing
        raise ActionError(
            f"ruff failed (exit {code}): {first_error(quiet)}",
            retryable=False,
            outputs={"exit_code": code, **interpreter.outputs()},
        )
    try:
        findings = json.loads("\n".join(lines) or "[]")
    except ValueError:
        raise ActionError("ruff did not print JSON; check `args:`", retryable=False) from None
    by_rule: Counter[str] = Counter()
    places: list[str] = []
    fixable = 0
    files: set[str] = set()
    for item in findings:
        rule = item.get("code") or "syntax-error"
        by_rule[rule] += 1
        fixable += 1 if item.get("fix") else 0
        filename = _relative(item.get("filename", ""), cwd)
        files.add(filename)
        row = (item.get("location") or {}).get("row", 0)
        col = (item.get("location") or {}).get("column", 0)
        place = f"{filename}:{row}:{col}"
        places.append(f"{place} {rule}")
        ctx.log(f"{place}: {rule} {item.get('message', '')}")
    errors = sum(by_rule.values())
    outputs: dict[str, Any] = {
        "errors": errors,
        "by_rule": dict(sorted(by_rule.items())),
        "fixable": fixable,
        "files": len(files),
        "places": places[:200],
        **interpreter.outputs(),
    }
    ctx.log(
        f"{errors} finding(s) in {len(files)} file(s)"
        + (": " + ", ".join(f"{k} {v}" for k, v in by_rule.most_common()) if errors else "")
    )
    if params.fail_on_errors and errors:
        raise ActionError(f"ruff found {errors} problem(s)", retryable=False, outputs=outputs)
    return outputs


def _relative(filename: str, cwd: Path) -> str:
    try:
        return str(Path(filename).resolve().relative_to(cwd.resolve()))
    except ValueError:
        return filename


# --------------------------------------------------------------------------- typecheck


class TypecheckParams(ActionParams):
    path: str = "."
    paths: list[str] = Field(
        default_factory=empty_list,
        description="Default: the files the project's mypy config names, else its packages",
    )
    args: list[str] = Field(default_factory=empty_list, description="Extra mypy arguments")
    mypy: list[str] | str | None = Field(
        default=None, description="Command; default python -m mypy"
    )
    python: str | None = Field(default=None, description=PYTHON_HELP)
    strict: bool = False
    fail_on_errors: bool = False

    @field_validator("paths")
    @classmethod
    def _positional(cls, value: list[str]) -> list[str]:
        return no_options(value, "paths")

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        for arg in value:
            if arg.split("=", 1)[0].endswith("-report"):
                raise ValueError(f"args: {arg.split('=', 1)[0]} writes a report file; not here")
        return refuse_args(value, ("--junit-xml", "--junit-format"), "mypy")


_MYPY_LINE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<sev>error|note|warning): "
    r"(?P<msg>.*?)(?:\s+\[(?P<code>[\w-]+)\])?$"
)


@action("typecheck", TypecheckParams)
async def typecheck(params: TypecheckParams, ctx: ActionContext) -> dict[str, Any]:
    """Run mypy; outputs the error count, by error code."""
    cwd = project_dir(ctx, params.path)
    interpreter = step_python(ctx, params.python, cwd)
    argv = [
        *_command(params.mypy, interpreter.path, "mypy"),
        "--no-color-output",
        "--no-error-summary",
        "--show-error-codes",
        "--no-pretty",
    ]
    if params.strict:
        argv.append("--strict")
    argv += params.args
    paths = params.paths
    if not paths and not mypy_configured_files(cwd):
        paths = list(detect_layout(cwd).source_paths) or ["."]
    argv += ["--", *paths] if paths else []
    env = interpreter.activated(child_env(ctx, {"MYPY_FORCE_COLOR": "0"}))
    stderr_lines: list[str] = []
    code, lines = await run_process(
        argv,
        ctx,
        cwd=cwd,
        env=env,
        tail=1_000_000,
        stderr_tail=stderr_lines,
        stderr_keep=STDERR_KEEP,
    )
    missing = not_installed(stderr_lines, ("mypy",), interpreter) if code else None
    if missing is not None:
        raise missing
    if code not in (0, 1):
        raise ActionError(
            f"mypy could not check the code: {first_error([*lines, *stderr_lines])}",
            retryable=False,
            outputs={"exit_code": code, **interpreter.outputs()},
        )
    by_code: Counter[str] = Counter()
    places: list[str] = []
    files: set[str] = set()
    for line in lines:
        match = _MYPY_LINE.match(line)
        if not match or match["sev"] != "error":
            continue
        by_code[match["code"] or "error"] += 1
        files.add(match["file"])
        places.append(f"{match['file']}:{match['line']}")
    errors = sum(by_code.values())
    outputs: dict[str, Any] = {
        "errors": errors,
        "by_code": dict(sorted(by_code.items())),
        "files": len(files),
        "places": places[:200],
        "exit_code": code,
        **interpreter.outputs(),
    }
    ctx.log(f"mypy: {errors} error(s) in {len(files)} file(s)")
    if params.fail_on_errors and errors:
        raise ActionError(f"mypy found {errors} error(s)", retryable=False, outputs=outputs)
    return outputs
