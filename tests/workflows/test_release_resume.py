"""A package release SIGKILLed after its tag, mid-push, resumes: one tag, one upload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quarterdeck.workflows.sandbox import Sandbox
from quarterdeck.workflows.sandbox.repo import NEXT_VERSION
from tests.helpers import REPO
from tests.workflows.conftest import git, quarterdeck, run_args, run_json

# Blocks the first push (bounded) so the test can kill the run at a known point: the tag
# exists locally, nothing has reached origin or the index yet.
HOLD_PUSH = """#!/bin/sh
echo $$ > "{pidfile}"
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
exit 1
"""


def _wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _local_tag(repo: Path) -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"refs/tags/v{NEXT_VERSION}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_kill_after_tag_then_resume(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.index is not None
    pidfile = tmp_path / "pre-push.pid"
    hook = sandbox.repo / ".git" / "hooks" / "pre-push"
    hook.write_text(HOLD_PUSH.format(pidfile=pidfile))
    hook.chmod(0o755)
    env = {**os.environ, **sandbox.env()}
    args = run_args("package-release", sandbox.inputs("release"), "--approve", "publish")
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "quarterdeck.tui.cli", *args],
        cwd=str(REPO),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: (pidfile.exists() and _local_tag(sandbox.repo)) or proc.poll() is not None,
            180,
            "the tag and the push in flight",
        )
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
    # the push (its own process group, started by the run) dies with the crash of its host
    hook_pid = int(pidfile.read_text().strip())
    try:
        os.killpg(os.getpgid(hook_pid), signal.SIGKILL)
    except ProcessLookupError:
        pass
    hook.unlink()
    assert _local_tag(sandbox.repo)
    assert f"v{NEXT_VERSION}" not in git(sandbox.repo, "ls-remote", "--tags", str(sandbox.origin))
    assert sandbox.index.files() == []

    runs = json.loads(quarterdeck(sandbox, "runs", "--json").stdout)
    assert len(runs) == 1
    run_id = runs[0]["id"]
    resumed = quarterdeck(sandbox, "resume", run_id, "--headless", "--json")
    run = run_json(resumed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run["status"] == "succeeded"
    # one tag, at the release commit, on origin
    remote = [
        ln.split("\t")
        for ln in git(sandbox.repo, "ls-remote", "--tags", str(sandbox.origin)).splitlines()
    ]
    assert [ref for _sha, ref in remote if ref.startswith(f"refs/tags/v{NEXT_VERSION}")] == [
        f"refs/tags/v{NEXT_VERSION}",
        f"refs/tags/v{NEXT_VERSION}^{{}}",
    ]  # the tag, peeled
    assert dict((ref, sha) for sha, ref in remote)[f"refs/tags/v{NEXT_VERSION}^{{}}"] == git(
        sandbox.repo, "rev-parse", f"v{NEXT_VERSION}^{{commit}}"
    )
    assert git(sandbox.repo, "tag", "--list", "v*") == f"v1.2.0\nv{NEXT_VERSION}"
    # one upload: the index has the two files once, and publish ran in the resumed run only
    assert sandbox.index.files() == [
        f"ledgerline-{NEXT_VERSION}-py3-none-any.whl",
        f"ledgerline-{NEXT_VERSION}.tar.gz",
    ]
    stages = {s["id"]: s for s in run["stages"]}
    steps = {st["id"]: st for st in stages["deploy"]["steps"]}
    assert steps["tag"]["attempts"] in (1, 2)
    assert steps["publish"]["attempts"] == 1
    assert steps["publish"]["outputs"]["uploaded"] == [
        f"ledgerline-{NEXT_VERSION}-py3-none-any.whl",
        f"ledgerline-{NEXT_VERSION}.tar.gz",
    ]
    assert steps["push"]["attempts"] >= 2  # the killed push ran again
    # prepare ran once: one release commit
    subjects = git(sandbox.repo, "log", "--format=%s").splitlines()
    assert subjects.count(f"chore(release): {NEXT_VERSION}") == 1
