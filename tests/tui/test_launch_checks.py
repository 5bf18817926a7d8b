"""Inputs that feed typed action parameters (a duration, a URL, hosts) are checked at
launch — the CLI run, ``--dry-run`` and the cockpit's form — with the input named, and a
bad one never reaches a step (the first stage writes a marker file; it must not exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.widgets import Input

from quarterdeck.core.journal.store import Store
from quarterdeck.screens.launch import LaunchScreen
from tests.helpers import cli, write_workflow
from tests.tui.conftest import project_catalog, wait_until

FILLERS = "".join(f"  note{i}: {{type: string, default: x{i}}}\n" for i in range(10))

WATCH = f"""\
name: watch
title: Watch
inputs:
{FILLERS}  url: {{type: string, default: "http://127.0.0.1:9"}}
  window: {{type: string, default: 2s}}
  hosts: {{type: string, default: "127.0.0.1:22"}}
stages:
  - id: first
    steps:
      - id: marker
        uses: shell
        with: {{run: "touch reached"}}
  - id: check
    steps:
      - id: health
        uses: http.health_check
        with: {{url: "{{{{ inputs.url }}}}/health", window: "{{{{ inputs.window }}}}", interval: 1s}}
      - id: hosts
        uses: ssh.run
        with: {{hosts: "{{{{ inputs.hosts.split(',') }}}}", command: "true"}}
"""


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("window=thirty seconds", "input 'window'='thirty seconds'"),
        ("url=not a url", "input 'url'='not a url'"),
        ("hosts=web one,web2", "input 'hosts'='web one,web2'"),
    ],
)
@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
def test_the_cli_refuses_a_bad_typed_input_before_any_step(
    tmp_path: Path, given: str, named: str, dry: bool
) -> None:
    wf = write_workflow(tmp_path, WATCH)
    store = tmp_path / "qd.db"
    args = ["run", str(wf), "-i", given, "--store", str(store), "--workdir", str(tmp_path)]
    result = cli(*args, *(["--dry-run"] if dry else ["--headless"]), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reached").exists()
    assert "plan for" not in result.stdout
    if store.exists():
        with Store(store) as db:
            assert db.list_runs() == []


def test_a_good_value_passes_the_check(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, WATCH)
    result = cli("run", str(wf), "-i", "window=1m30s", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "plan for watch" in result.stdout


@pytest.mark.asyncio
async def test_the_form_refuses_a_bad_duration_and_focuses_it(make_app: Any, project: Path) -> None:
    (project / ".quarterdeck" / "workflows" / "watch.yaml").write_text(WATCH)
    app = make_app(catalog=project_catalog(project, only=("watch",)))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, LaunchScreen) and app.screen.query("#in-window"),
            what="the launch form",
        )
        form = app.screen
        assert isinstance(form, LaunchScreen)
        form.query_one("#in-window", Input).value = "thirty seconds"
        await wait_until(pilot, lambda: "window" in form.errors, what="the field's check")
        assert "bad duration 'thirty seconds'" in form.errors["window"]
        form.query_one("#in-note0", Input).focus()
        form.query_one("#form", VerticalScroll).scroll_home(animate=False)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: form.focused is form.query_one("#in-window"), what="the focus"
        )
        assert form.query_one("#form", VerticalScroll).scroll_y > 0  # scrolled down to it
        toasts = [n.message for n in app._notifications]
        assert any("window" in t for t in toasts), toasts
        assert isinstance(app.screen, LaunchScreen) and not app.runs
    assert not (project / "reached").exists()
