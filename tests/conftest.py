"""Shared fixtures: every test gets its own state and config directories. The slow modules
are collected first, so that ``make test`` (two workers, one module at a time each) starts
them early instead of leaving one for the end while the other worker idles."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a test marked ``slow`` first (whole: their module fixtures are made
    once); the order is otherwise kept."""
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point $QUARTERDECK_HOME and the config dir at fresh temp dirs for each test."""
    home = tmp_path_factory.mktemp("qd-home")
    config = tmp_path_factory.mktemp("qd-config")
    monkeypatch.setenv("QUARTERDECK_HOME", str(home))
    monkeypatch.setenv("QUARTERDECK_CONFIG_DIR", str(config))
    monkeypatch.delenv("QUARTERDECK_USER", raising=False)
    # the suite's older tests stand in for people with typed names (--as bob); the
    # identity tests (tests/security/test_approvals.py) turn this off to check the default
    monkeypatch.setenv("QUARTERDECK_UNVERIFIED_NAMES", "1")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("QUARTERDECK_LLM_API_KEY", raising=False)
    monkeypatch.delenv("QUARTERDECK_LLM_BASE_URL", raising=False)
    # git needs an identity; a fresh CI machine has no global config
    for var, value in (
        ("GIT_AUTHOR_NAME", "Quarterdeck Tests"),
        ("GIT_AUTHOR_EMAIL", "tests@quarterdeck.invalid"),
        ("GIT_COMMITTER_NAME", "Quarterdeck Tests"),
        ("GIT_COMMITTER_EMAIL", "tests@quarterdeck.invalid"),
    ):
        monkeypatch.setenv(var, value)
    return home
