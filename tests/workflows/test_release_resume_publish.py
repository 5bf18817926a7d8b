"""A package release SIGKILLed after its upload resumes without uploading again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quarterdeck.core.journal.events import EventType
from quarterdeck.core.journal.store import Store
from quarterdeck.workflows.sandbox import Sandbox
from quarterdeck.workflows.sandbox.repo import NEXT_VERSION
from tests.helpers import REPO
from tests.workflows.conftest import quarterdeck, run_args, run_json

FILES = [f"ledgerline-{NEXT_VERSION}-py3-none-any.whl", f"ledgerline-{NEXT_VERSION}.tar.gz"]


def _started(store_path: Path, step: str) -> bool:
    if not store_path.exists():
        return False
    with Store(store_path) as store:
        runs = store.list_runs()
        if not runs:
            return False
        return any(
            e.type == EventType.STEP_STARTED and e.step == step for e in store.events(runs[0].id)
        )


def test_kill_after_upload_then_resume_uploads_once(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.index is not None
    env = {**os.environ, **sandbox.env()}
    env.pop("CI", None)
    args = run_args("package-release", sandbox.inputs("release"), "--approve", "publish")
    with (tmp_path / "run.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quarterdeck.tui.cli", *args],
            cwd=str(REPO),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            # the upload is done and the step after it (verify) is in flight: crash now
            while not (_started(sandbox.store, "verify") and sandbox.index.files() == FILES):
                assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the upload never happened"
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    runs = json.loads(quarterdeck(sandbox, "runs", "--json").stdout)
    assert runs[0]["status"] == "interrupted"
    resumed = quarterdeck(sandbox, "resume", runs[0]["id"], "--headless", "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = run_json(resumed)
    assert run["status"] == "succeeded"
    assert sandbox.index.files() == FILES  # one upload of each file
    with Store(sandbox.store) as store:
        publishes = [
            e
            for e in store.events(run["id"])
            if e.type == EventType.STEP_STARTED and e.step == "publish"
        ]
    assert len(publishes) == 1, "publish was not run again after the crash"
    steps = {s["id"]: s for stage in run["stages"] for s in stage["steps"]}
    assert steps["verify"]["status"] == "succeeded" and steps["verify"]["attempts"] == 2
