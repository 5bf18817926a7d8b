"""Quality actions: ``pytest``, ``lint`` (ruff), ``typecheck`` (mypy) and ``secrets.scan``.

Their outputs are numbers a quality gate can compare (``steps.tests.outputs.coverage >=
80``, ``steps.lint.outputs.errors == 0``), so by default a failing test or a lint finding
does not fail the step: the step reports, the gate decides. ``fail_on_*: true`` makes
the step itself fail. A tool that could not run at all (not installed, bad arguments,
a crash) is always a step failure, with a message saying what to do.

``secrets.scan`` never outputs or logs a secret: only the rule that matched and where
(``file:line``).
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import shlex
import sys
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.packaging import capture_lines
from quarterdeck.core.errors import ActionError, NonRetryableError


def _dir(ctx: ActionContext, value: str) -> Path:
    path = Path(value).expanduser()
    path = path if path.is_absolute() else ctx.workdir / path
    if not path.is_dir():
        raise NonRetryableError(f"directory not found: {path}")
    return path


def _reports_dir(ctx: ActionContext) -> Path:
    path = ctx.run_dir / "reports" / f"{ctx.step_id}-{ctx.attempt}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _not_installed(lines: list[str], module: str, python: str) -> NonRetryableError | None:
    if any(f"No module named {module}" in line for line in lines):
        return NonRetryableError(
            f"{module} is not installed for {python}; run `{python} -m pip install {module}` "
            "or point `python:` at an interpreter that has it"
        )
    return None


def _command(value: list[str] | str | None, python: str, module: str) -> list[str]:
    if value is None:
        return [python, "-m", module]
    return shlex.split(value) if isinstance(value, str) else list(value)


# --------------------------------------------------------------------------- pytest


class PytestParams(ActionParams):
    path: str = Field(default=".", description="Project directory (the working directory)")
    tests: list[str] = Field(default_factory=list, description="Test paths or node ids")
    args: list[str] = Field(default_factory=list, description="Extra pytest arguments")
    python: str | None = Field(default=None, description="Interpreter; default Quarterdeck's")
    coverage: bool = True
    cov_source: list[str] = Field(default_factory=list, description="Packages/dirs to measure")
    fail_on_failures: bool = False
    env: dict[str, str] = Field(default_factory=dict)


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
    cwd = _dir(ctx, params.path)
    python = params.python or sys.executable
    reports = _reports_dir(ctx)
    junit = reports / "junit.xml"
    data_file = reports / ".coverage"
    pytest_args = ["-rfE", f"--junitxml={junit}", *params.args, *params.tests]
    if params.coverage:
        source = f"--source={','.join(params.cov_source)}" if params.cov_source else "--source=."
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
    env = child_env(ctx, params.env)
    cap, errors = capture_lines(ctx)
    code, lines = await run_process(argv, cap, cwd=cwd, env=env, tail=10_000)
    missing = _not_installed([*lines, *errors], "coverage" if params.coverage else "pytest", python)
    if missing is not None and not junit.exists():
        raise missing
    if code in _PYTEST_CRASH or not junit.exists():
        last = next((ln for ln in reversed([*lines, *errors]) if ln.strip()), "")
        what = _PYTEST_CRASH.get(code, f"exit code {code}")
        raise ActionError(
            f"pytest stopped with {what}: {last}", retryable=False, outputs={"exit_code": code}
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
    paths: list[str] = Field(default_factory=lambda: ["."])
    args: list[str] = Field(default_factory=list, description="Extra `ruff check` arguments")
    ruff: list[str] | str | None = Field(
        default=None, description="Command; default python -m ruff"
    )
    python: str | None = None
    fail_on_errors: bool = False


@action("lint", LintParams)
async def lint(params: LintParams, ctx: ActionContext) -> dict[str, Any]:
    """Run ``ruff check``; outputs the number of findings, by rule."""
    cwd = _dir(ctx, params.path)
    python = params.python or sys.executable
    argv = [
        *_command(params.ruff, python, "ruff"),
        "check",
        "--output-format=json",
        "--exit-zero",
        "--no-cache",
        *params.args,
        *params.paths,
    ]
    quiet: list[str] = []

    def keep(stream: str, line: str) -> None:
        if stream == "stderr":
            ctx.emit_line(stream, line)
        quiet.append(line)

    sink = _Sink(ctx, keep)
    code, lines = await run_process(argv, sink.ctx, cwd=cwd, env=child_env(ctx, {}), tail=1_000_000)
    if code != 0:
        missing = _not_installed(quiet, "ruff", python)
        if missing is not None:
            raise missing
        raise ActionError(
            f"ruff failed (exit {code}): {quiet[-1] if quiet else ''}",
            retryable=False,
            outputs={"exit_code": code},
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
    }
    ctx.log(
        f"{errors} finding(s) in {len(files)} file(s)"
        + (": " + ", ".join(f"{k} {v}" for k, v in by_rule.most_common()) if errors else "")
    )
    if params.fail_on_errors and errors:
        raise ActionError(f"ruff found {errors} problem(s)", retryable=False, outputs=outputs)
    return outputs


class _Sink:
    """A context whose line sink is replaced, so raw JSON is not streamed as log lines."""

    def __init__(self, ctx: ActionContext, emit: Any) -> None:
        from dataclasses import replace

        self.ctx = replace(ctx, emit_line=emit)


def _relative(filename: str, cwd: Path) -> str:
    try:
        return str(Path(filename).resolve().relative_to(cwd.resolve()))
    except ValueError:
        return filename


# --------------------------------------------------------------------------- typecheck


class TypecheckParams(ActionParams):
    path: str = "."
    paths: list[str] = Field(default_factory=lambda: ["."])
    args: list[str] = Field(default_factory=list, description="Extra mypy arguments")
    mypy: list[str] | str | None = Field(
        default=None, description="Command; default python -m mypy"
    )
    python: str | None = None
    strict: bool = False
    fail_on_errors: bool = False


_MYPY_LINE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<sev>error|note|warning): "
    r"(?P<msg>.*?)(?:\s+\[(?P<code>[\w-]+)\])?$"
)


@action("typecheck", TypecheckParams)
async def typecheck(params: TypecheckParams, ctx: ActionContext) -> dict[str, Any]:
    """Run mypy; outputs the error count, by error code."""
    cwd = _dir(ctx, params.path)
    python = params.python or sys.executable
    argv = [
        *_command(params.mypy, python, "mypy"),
        "--no-color-output",
        "--no-error-summary",
        "--show-error-codes",
        "--no-pretty",
    ]
    if params.strict:
        argv.append("--strict")
    argv += [*params.args, *params.paths]
    env = child_env(ctx, {"MYPY_FORCE_COLOR": "0"})
    cap, stderr_lines = capture_lines(ctx)
    code, lines = await run_process(argv, cap, cwd=cwd, env=env, tail=1_000_000)
    missing = _not_installed(stderr_lines, "mypy", python) if code else None
    if missing is not None:
        raise missing
    if code not in (0, 1):
        last = next(
            (ln for ln in reversed([*lines, *stderr_lines]) if ln.strip()), f"exit code {code}"
        )
        raise ActionError(
            f"mypy could not check the code: {last}", retryable=False, outputs={"exit_code": code}
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
    }
    ctx.log(f"mypy: {errors} error(s) in {len(files)} file(s)")
    if params.fail_on_errors and errors:
        raise ActionError(f"mypy found {errors} error(s)", retryable=False, outputs=outputs)
    return outputs


# --------------------------------------------------------------------------- secrets.scan


@dataclass(frozen=True)
class SecretRule:
    name: str
    pattern: re.Pattern[str]
    min_entropy: float = 0.0  # of the captured group "secret" (or the whole match)


RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private-key",
        re.compile(
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"
        ),
    ),
    SecretRule("aws-access-key-id", re.compile(r"\b(?P<secret>(?:AKIA|ASIA)[0-9A-Z]{16})\b")),
    SecretRule(
        "aws-secret-access-key",
        re.compile(
            r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+=]{40})\b"
        ),
    ),
    SecretRule(
        "github-token",
        re.compile(
            r"\b(?P<secret>(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255}))\b"
        ),
    ),
    SecretRule("gitlab-token", re.compile(r"\b(?P<secret>glpat-[A-Za-z0-9_-]{20,})\b")),
    SecretRule("slack-token", re.compile(r"\b(?P<secret>xox[abprs]-[A-Za-z0-9-]{10,})\b")),
    SecretRule("stripe-key", re.compile(r"\b(?P<secret>[sr]k_live_[A-Za-z0-9]{20,})\b")),
    SecretRule("google-api-key", re.compile(r"\b(?P<secret>AIza[0-9A-Za-z_-]{35})\b")),
    SecretRule("pypi-token", re.compile(r"\b(?P<secret>pypi-[A-Za-z0-9_-]{50,})\b")),
    SecretRule("openai-key", re.compile(r"\b(?P<secret>sk-(?:proj-)?[A-Za-z0-9_-]{32,})\b")),
    SecretRule(
        "jwt",
        re.compile(
            r"\b(?P<secret>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})\b"
        ),
    ),
    SecretRule(
        "url-credentials",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"']+:(?P<secret>[^\s@/\"']{6,})@[^\s/\"']+"),
        2.5,
    ),
    SecretRule(
        "generic-secret",
        re.compile(
            r"(?i)(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|"
            r"private[_-]?key|client[_-]?secret|token)[\"']?\s*[:=]\s*[\"'](?P<secret>[^\"'\s]{12,})[\"']"
        ),
        3.5,
    ),
)
_ALLOW_MARKERS = ("pragma: allowlist secret", "quarterdeck: allow-secret")
_PLACEHOLDER = re.compile(
    r"(?i)\{\{|\$\{|<[a-z_-]+>|example|changeme|dummy|placeholder|x{6,}|\*{4,}"
)
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    "dist",
    "build",
}
_MAX_BYTES = 1_000_000


def entropy(text: str) -> float:
    """Shannon entropy in bits per character: random tokens score high, words low."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def scan_text(text: str) -> list[tuple[int, str]]:
    """``(line number, rule)`` for every secret-looking string in ``text``."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if any(marker in line for marker in _ALLOW_MARKERS):
            continue
        for rule in RULES:
            for match in rule.pattern.finditer(line):
                secret = match.groupdict().get("secret") or match.group(0)
                if rule.min_entropy and (
                    _PLACEHOLDER.search(secret) or entropy(secret) < rule.min_entropy
                ):
                    continue
                found.append((number, rule.name))
                break
            else:
                continue
            break
    return found


class SecretsScanParams(ActionParams):
    path: str = "."
    exclude: list[str] = Field(default_factory=list, description="Glob patterns to skip")
    history: bool = Field(default=False, description="Also scan lines added in past commits")
    fail_on_findings: bool = False


@action("secrets.scan", SecretsScanParams)
async def secrets_scan(params: SecretsScanParams, ctx: ActionContext) -> dict[str, Any]:
    """Find committed secrets; outputs their count and places (file:line), never the secret."""
    root = _dir(ctx, params.path)
    env = child_env(ctx, {"LC_ALL": "C"})
    quiet: list[str] = []
    silent = _Sink(ctx, lambda stream, line: quiet.append(line)).ctx
    code, listed = await run_process(
        ["git", "ls-files", "-z", "--cached"], silent, cwd=root, env=env, tail=1_000_000
    )
    tracked: list[str]
    if code == 0:
        tracked = [p for p in "\n".join(listed).split("\x00") if p]
        source = "tracked files"
    else:
        tracked = [str(p.relative_to(root)) for p in _walk(root)]
        source = "files (not a git repository)"

    def excluded(rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, pat) for pat in params.exclude)

    findings: list[dict[str, Any]] = []
    seen: set[tuple[str, int, str]] = set()
    scanned = 0
    for rel in tracked:
        if excluded(rel):
            continue
        path = root / rel
        try:
            if not path.is_file() or path.stat().st_size > _MAX_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\x00" in data[:8192]:
            continue
        scanned += 1
        for line, rule in scan_text(data.decode("utf-8", errors="replace")):
            seen.add((rel, line, rule))
            findings.append({"file": rel, "line": line, "rule": rule})
    if params.history and code == 0:
        findings += await _scan_history(root, silent, env, excluded, seen)
    places = [
        f"{f['file']}:{f['line']}" + (f"@{f['commit']}" if "commit" in f else "") for f in findings
    ]
    for place, item in zip(places, findings, strict=True):
        ctx.log(f"{place}: possible secret ({item['rule']})")
    ctx.log(f"scanned {scanned} {source}: {len(findings)} possible secret(s)")
    outputs: dict[str, Any] = {
        "count": len(findings),
        "places": places,
        "findings": findings,
        "files_scanned": scanned,
        "by_rule": dict(Counter(f["rule"] for f in findings)),
    }
    if params.fail_on_findings and findings:
        raise ActionError(
            f"{len(findings)} possible secret(s): {', '.join(places[:10])}",
            retryable=False,
            outputs=outputs,
        )
    return outputs


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            entries = sorted(here.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                if entry.name not in _SKIP_DIRS:
                    stack.append(entry)
            elif entry.is_file():
                out.append(entry)
    return out


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,\d+)? @@")


async def _scan_history(
    root: Path,
    silent: ActionContext,
    env: dict[str, str],
    excluded: Any,
    seen: set[tuple[str, int, str]],
) -> list[dict[str, Any]]:
    """Secrets in lines added by any commit (even if a later commit removed them)."""
    code, lines = await run_process(
        ["git", "log", "--all", "-p", "-U0", "--no-color", "--no-ext-diff", "--format=commit %H"],
        silent,
        cwd=root,
        env=env,
        tail=10_000_000,
    )
    if code != 0:
        raise ActionError("git log failed while scanning history", retryable=False)
    found: list[dict[str, Any]] = []
    commit = ""
    file = ""
    number = 0
    for line in lines:
        if line.startswith("commit ") and len(line) == 47:
            commit = line[7:14]
        elif line.startswith("+++ "):
            file = line[6:] if line.startswith("+++ b/") else ""
        elif (hunk := _HUNK.match(line)) is not None:
            number = int(hunk["start"])
        elif line.startswith("+") and file and not excluded(file):
            for _, rule in scan_text(line[1:]):
                key = (file, number, rule)
                if key not in seen:
                    seen.add(key)
                    found.append({"file": file, "line": number, "rule": rule, "commit": commit})
            number += 1
    return found
