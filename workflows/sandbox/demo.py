"""``quarterdeck demo``: build the sandbox, point Quarterdeck at it, clean up afterwards.

:class:`DemoSession` is a context manager: entering builds the sandbox (in a temporary
directory, or ``--dir``), sets ``QUARTERDECK_CONFIG_DIR`` / ``QUARTERDECK_HOME`` and the
index credentials for this process, and says what runs where; leaving — normally, on an
error or on Ctrl-C — stops every service and removes a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Self

from quarterdeck.core.errors import InvalidInput
from quarterdeck.workflows.sandbox.sandbox import DEMOS, Sandbox, missing_demo_modules


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# hotfix: the revert fixes production; rollback: the hotfix is bad, its health-check window
# fails and the deploy stage's on_failure rolls production back to the running release
SCENARIOS = ("hotfix", "rollback")


class DemoSession:
    """One demo: the sandbox, the workflow to run on it and the inputs that point there."""

    def __init__(self, kind: str, directory: Path | None = None, scenario: str = "hotfix") -> None:
        if scenario not in SCENARIOS:
            raise InvalidInput(
                f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}"
            )
        if scenario != "hotfix" and kind != "incident":
            raise InvalidInput("--scenario applies to the incident demo only")
        self.scenario = scenario
        if kind not in DEMOS:
            raise InvalidInput(
                f"unknown demo {kind!r}: choose one of {', '.join(DEMOS)}",
                hint="`quarterdeck demo release` or `quarterdeck demo incident`",
            )
        missing = missing_demo_modules()
        if missing:
            raise InvalidInput(
                f"the demo needs tools this installation lacks ({', '.join(missing)})",
                hint="install Quarterdeck with its demo extra: `pipx install 'quarterdeck[demo]'`,"
                " `uv tool install 'quarterdeck[demo]'` or `pip install 'quarterdeck[demo]'`",
            )
        self.kind = kind
        self.workflow = DEMOS[kind]
        self.temporary = directory is None
        if directory is not None:
            directory = directory.expanduser().resolve()
            if directory.exists() and any(directory.iterdir()):
                raise InvalidInput(
                    f"--dir {directory} is not empty",
                    hint="give a new or empty directory (the demo builds a git repo there)",
                )
        self.root = directory or Path(tempfile.mkdtemp(prefix="quarterdeck-demo-"))
        self.sandbox = Sandbox(self.root)
        self._saved_env: dict[str, str | None] = {}
        self._bad_ref: str | None = None
        self._saved_signals: dict[int, Any] = {}

    def __enter__(self) -> Self:
        _say(f"quarterdeck demo {self.kind}: building the sandbox in {self.root} …")
        try:
            self.sandbox.start()
        except BaseException:
            self._cleanup()
            raise
        for key, value in self.sandbox.env().items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self._trap_signals()
        self._describe()
        return self

    def _trap_signals(self) -> None:
        """SIGTERM and SIGHUP (a closed terminal, ``tmux kill-session``) unwind like Ctrl-C,
        so the ``with`` block's exit stops the services and removes the temp dir."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(signal.Signals(signum).name)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._saved_signals[sig] = signal.signal(sig, interrupt)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved_signals.items():
            signal.signal(sig, handler)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._cleanup()

    def _cleanup(self) -> None:
        self.sandbox.stop()
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)
            _say("demo sandbox stopped and removed")
        else:
            _say(f"demo sandbox stopped; files kept in {self.root}")

    @property
    def inputs(self) -> dict[str, str]:
        values = self.sandbox.inputs(self.kind)
        if self.scenario == "rollback":
            if self._bad_ref is None:
                self._bad_ref = self.sandbox.break_known_good()
            values["good_ref"] = self._bad_ref
        return values

    def _describe(self) -> None:
        box = self.sandbox
        assert box.index and box.production and box.host and box.model
        lines = [
            f"  package repo   {box.repo} (origin {box.origin})",
            f"  package index  {box.index.simple}",
            f"  production     {box.production.url}/health",
            f"  deploy host    ssh://{box.host.host} (host key pinned in {box.root / 'ssh'})",
            f"  model          {box.model.base_url} — demo model, scripted replies",
        ]
        if box.prometheus is not None:
            lines.append(f"  prometheus     {box.prometheus.url}")
        lines.append(f"  journal        {box.store}")
        _say("\n".join(lines))

    def approve_hint(self, gate: str, run_id: str) -> str:
        """How to decide ``gate`` from another terminal: the sandbox's journal and config
        are named in the command, so it works pasted into a fresh shell."""
        from quarterdeck.core.commands import cli_command

        command = cli_command("approve", run_id, gate, store=self.sandbox.store)
        return f"approve from another terminal: {command}"
