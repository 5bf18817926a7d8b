"""Helpers for tests: run a workflow from YAML text, build an action context, run the CLI
(to its end, or started in the background), the gated workflow many tests stop at."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quarterdeck.core.actions.base import ActionContext
from quarterdeck.core.clock import Clock
from quarterdeck.core.config import Settings
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store

REPO = Path(__file__).resolve().parent.parent

_GATED = """\
name: gated
stages:
  - id: build
    steps:
      - id: make
        uses: shell
        with: {{run: "echo built"}}
  - id: release
    approval:
      id: publish
      prompt: "Publish?"
{policy}
    steps:
      - id: upload
        uses: shell
        with: {{run: "echo uploaded"}}
"""


def gated_workflow(*policy: str) -> str:
    """A ``gated`` workflow: stage ``build`` (step ``make``), then stage ``release`` whose
    ``publish`` gate has the given policy lines (``"approvers: [alice]"``,
    ``"allow_self_approval: true"``…) before its step ``upload``."""
    return _GATED.format(policy="\n".join(f"      {line}" for line in policy))


@dataclass
class Ran:
    state: RunState
    store: Store
    runner: Runner


def write_workflow(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def make_runner(
    tmp_path: Path,
    text: str,
    *,
    inputs: dict[str, Any] | None = None,
    options: RunOptions | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
) -> Runner:
    from quarterdeck.core.definition.inputs import resolve_inputs
    from quarterdeck.personas.registry import load_catalog

    catalog = load_catalog(tmp_path)
    path = write_workflow(tmp_path, text)
    loaded = load_workflow(path, catalog)
    db = store or Store(tmp_path / "qd.db")
    opts = options or RunOptions(started_by="tester")
    if opts.workdir is None:
        opts.workdir = tmp_path
    return Runner(
        loaded,
        db,
        inputs=resolve_inputs(loaded.workflow, inputs or {}, base=tmp_path),
        settings=settings or Settings(),
        personas=catalog,
        options=opts,
    )


def run_workflow(tmp_path: Path, text: str, **kwargs: Any) -> Ran:
    """Run a workflow given as YAML text to its end, in-process, journaled in tmp_path."""
    runner = make_runner(tmp_path, text, **kwargs)
    state = asyncio.run(runner.run())
    return Ran(state, runner.store, runner)


def make_ctx(
    tmp_path: Path, *, settings: Settings | None = None, **overrides: Any
) -> ActionContext:
    """An ActionContext for calling an action directly; lines land in ``ctx.lines``."""
    lines: list[tuple[str, str]] = []
    memory: dict[str, Any] = {}

    async def set_memory(key: str, value: Any) -> None:
        memory[key] = value

    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    values: dict[str, Any] = dict(
        run_id="test-run",
        workflow="test",
        stage_id="stage",
        step_id="step",
        attempt=1,
        persona=None,
        workdir=tmp_path,
        run_dir=run_dir,
        env=dict(os.environ),
        settings=settings or Settings(),
        clock=Clock(),
        idempotency_key="test-run/step",
        emit_line=lambda stream, line: lines.append((stream, line)),
        memory=memory,
        set_memory=set_memory,
        render=lambda text: text,
        render_text=lambda text: text,
        redact=lambda text: text,
    )
    values.update(overrides)
    ctx = ActionContext(**values)
    ctx.lines = lines  # type: ignore[attr-defined]
    return ctx


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``quarterdeck ARGS`` in a subprocess (no TTY) and capture its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "quarterdeck.tui.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=str(cwd or REPO),
        timeout=timeout,
        input=input,
        check=False,
    )


def fresh_python(
    code: str, *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (``python -c CODE ARGS``), where nothing is
    imported yet: what a probe sees there is what a command's own start-up does. A probe
    that fails shows its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=str(cwd or REPO),
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def cli_popen(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    **popen: Any,
) -> subprocess.Popen[str]:
    """Start ``quarterdeck ARGS`` in a subprocess (no TTY) and return it at once; ``popen``
    goes to :class:`subprocess.Popen` (``stdout=subprocess.PIPE``…). The caller waits."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "quarterdeck.tui.cli", *args],
        text=True,
        env=full_env,
        cwd=str(cwd or REPO),
        **popen,
    )


def cli_on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI (``python -m quarterdeck.tui.cli ARGV``) with a pseudo-terminal as its
    stdin, stdout and stderr, from the repository; its exit code and everything it wrote
    (a run that goes quiet for 60 s is killed)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # child: stdin/stdout/stderr are the pty
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "quarterdeck.tui.cli", *argv], env)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


def bare_run(store: Store, run_id: str = "r1", *, owner: str) -> None:
    """A run row with nothing but its owner, for tests of the journal's writes and claims."""
    store.create_run(
        run_id,
        workflow="w",
        title="",
        workflow_path="",
        definition="",
        workdir="",
        inputs={},
        started_by="t",
        started_at=1.0,
        owner=owner,
    )
