"""``secrets.scan``: committed secrets (and, on request, ones in past commits).

It never outputs or logs a secret: only the rule that matched and where (``file:line``,
plus the commit for a history finding), so a run's journal, reports and logs stay safe to
share. Rules pair a pattern with a minimum Shannon entropy where words could match, and
placeholders (``changeme``, ``{{ ... }}``, ``<token>``) are never findings.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import Field

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.interpreter import project_dir
from quarterdeck.core.errors import ActionError
from quarterdeck.core.factories import empty_list


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
    exclude: list[str] = Field(default_factory=empty_list, description="Glob patterns to skip")
    history: bool = Field(default=False, description="Also scan lines added in past commits")
    fail_on_findings: bool = False


@action("secrets.scan", SecretsScanParams)
async def secrets_scan(params: SecretsScanParams, ctx: ActionContext) -> dict[str, Any]:
    """Find committed secrets; outputs their count and places (file:line), never the secret."""
    root = project_dir(ctx, params.path)
    env = child_env(ctx, {"LC_ALL": "C"})
    quiet: list[str] = []
    silent = replace(ctx, emit_line=lambda stream, line: quiet.append(line))
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
