"""The demo package as a git repository with a Conventional Commit history since its tag.

The template (``fixtures/ledgerline``) is the tree at ``v1.2.0``; :data:`HISTORY` is what
happened after the release: a feature, a fix, a change that degrades production (the
incident demo's culprit) and a docs change, so the next release is ``1.3.0``. ``origin``
is a bare repository next to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "ledgerline"
PACKAGE = "ledgerline"
BASE_VERSION = "1.2.0"
BASE_TAG = "v1.2.0"
NEXT_VERSION = "1.3.0"

Edit = Callable[[Path], None]

_LEDGER = '''"""Balances across currencies."""

from __future__ import annotations

from collections.abc import Iterable

from ledgerline.money import Money


def balance_by_currency(entries: Iterable[Money]) -> dict[str, Money]:
    """Sum ``entries`` per currency."""
    totals: dict[str, Money] = {}
    for entry in entries:
        current = totals.get(entry.currency)
        totals[entry.currency] = entry if current is None else current + entry
    return totals
'''

_LEDGER_TEST = """from decimal import Decimal

from ledgerline import Money
from ledgerline.ledger import balance_by_currency


def test_balance_by_currency() -> None:
    entries = [Money(Decimal("1"), "EUR"), Money(Decimal("2"), "USD"), Money(Decimal("3"), "EUR")]
    assert balance_by_currency(entries) == {
        "EUR": Money(Decimal("4"), "EUR"),
        "USD": Money(Decimal("2"), "USD"),
    }
"""


def _replace(path: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        target = root / path
        text = target.read_text()
        assert old in text, f"{path}: {old!r} not found"
        target.write_text(text.replace(old, new))

    return edit


def _write(path: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)

    return edit


HISTORY: list[tuple[str, list[Edit]]] = [
    (
        "feat: add balance_by_currency",
        [
            _write("src/ledgerline/ledger.py", _LEDGER),
            _write("tests/test_ledger.py", _LEDGER_TEST),
        ],
    ),
    (
        "fix: round half-even when converting",
        [
            _replace("src/ledgerline/money.py", "ROUND_HALF_UP", "ROUND_HALF_EVEN"),
            _replace("tests/test_money.py", 'Decimal("10.83")', 'Decimal("10.82")'),
        ],
    ),
    (
        "perf: cache exchange rates between requests",
        [
            _write(
                "service/release.json",
                '{"service": "ledgerline-api", "healthy": true, "error_ratio": 0.25}\n',
            ),
        ],
    ),
    (
        "docs: explain rounding in the README",
        [
            _replace(
                "README.md",
                "addition, conversion.",
                "addition, conversion (rounded half-even, to the cent).",
            ),
        ],
    ),
]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Demo Developer",
    "GIT_AUTHOR_EMAIL": "dev@ledgerline.invalid",
    "GIT_COMMITTER_NAME": "Demo Developer",
    "GIT_COMMITTER_EMAIL": "dev@ledgerline.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with the demo identity; its stdout, stripped."""
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def build_repo(root: Path) -> tuple[Path, Path]:
    """Create ``root/ledgerline`` (the work tree) and ``root/origin.git``; return both."""
    work = root / PACKAGE
    origin = root / "origin.git"
    shutil.copytree(FIXTURE, work, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"])
    git(work, "config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"])
    git(work, "config", "commit.gpgsign", "false")
    git(work, "config", "tag.gpgsign", "false")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", f"chore(release): {BASE_VERSION}")
    git(work, "tag", "-a", BASE_TAG, "-m", f"Release {BASE_TAG}")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "--quiet", "origin", "main", BASE_TAG)
    for message, edits in HISTORY:
        for edit in edits:
            edit(work)
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", message)
    git(work, "push", "--quiet", "origin", "main")
    git(work, "branch", "--quiet", "--set-upstream-to=origin/main", "main")
    return work, origin
