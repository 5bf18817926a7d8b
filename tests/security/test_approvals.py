"""Approvals that cannot be forged: real SSH keys, real ssh-keygen, a real store.

The acting identity is the OS account (or CI actor); any other name needs a signature
checked against the project's allowed signers. A row written straight into the signals
table approves nothing; a group name is never a person; one key is one vote.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from quarterdeck.core.config import load_settings
from quarterdeck.core.engine.runner import RunOptions
from quarterdeck.core.identity import NAMESPACE, approval_message, local_identity, sign
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from tests.engine.test_signals import quarterdeck, wait_for
from tests.helpers import cli, make_runner

GATED = """\
name: release
stages:
  - id: publish
    persona: devops-engineer
    approval:
      id: publish
      approvers: [release-managers]
      min_approvals: 2
      allow_self_approval: false
    steps:
      - {id: upload, uses: shell, with: {run: "touch published"}}
"""


def _key(directory: Path, name: str) -> tuple[Path, str]:
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path, (directory / f"{name}.pub").read_text().strip()


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.delenv("QUARTERDECK_UNVERIFIED_NAMES", raising=False)
    keydir = tmp_path / "keys"
    keydir.mkdir()
    made = {name: _key(keydir, name) for name in ("alice", "bob", "mallory")}
    config_dir = Path(os.environ["QUARTERDECK_CONFIG_DIR"])
    signers = [
        f'alice namespaces="{NAMESPACE}" {made["alice"][1]}',
        f'bob namespaces="{NAMESPACE}" {made["bob"][1]}',
        # one person listed under a second name: still one vote
        f'al namespaces="{NAMESPACE}" {made["alice"][1]}',
    ]
    (config_dir / "allowed_signers").write_text("\n".join(signers) + "\n")
    (config_dir / "config.yaml").write_text(
        "allowed_signers: allowed_signers\ngroups: {release-managers: [alice, bob, al]}\n"
    )
    return {name: path for name, (path, _) in made.items()}


def test_forged_names_unsigned_rows_groups_and_one_key_two_names_are_refused(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    runner = make_runner(
        tmp_path,
        GATED,
        settings=load_settings(),
        options=RunOptions(run_id="run-signed", started_by="carol"),
    )
    db = str(tmp_path / "qd.db")

    async def approve(*args: str) -> tuple[int, str]:
        return await quarterdeck("approve", "run-signed", "publish", "--store", db, *args)

    async def refusals() -> int:
        return len(runner.state.approvals["publish"].refusals)

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: runner.state.pending_approval() is not None)
        code, out = await approve("--as", "alice")
        assert code == 2 and "needs proof" in out, out
        code, out = await approve("--as", "alice", "--sign", str(keys["mallory"]))
        assert code == 2 and "not 'alice'" in out, out
        store = Store(db)
        # rows written straight into the signals table, in someone's name
        store.send_signal("run-signed", "approve", actor="bob", target="publish")
        await wait_for(lambda: len(runner.state.approvals["publish"].refusals) == 1)
        forged = sign(
            approval_message("run-signed", "publish", "approve", "bob", ""), keys["mallory"]
        )
        store.send_signal(
            "run-signed", "approve", actor="bob", target="publish", data={"signature": forged}
        )
        await wait_for(lambda: len(runner.state.approvals["publish"].refusals) == 2)
        store.send_signal("run-signed", "approve", actor="release-managers", target="publish")
        await wait_for(lambda: len(runner.state.approvals["publish"].refusals) == 3)
        assert runner.state.pending_approval() is not None
        assert runner.state.approvals["publish"].votes == []
        code, out = await approve("--as", "alice", "--sign", str(keys["alice"]))
        assert code == 0 and "1/2" in out, out
        code, out = await approve("--as", "al", "--sign", str(keys["alice"]))
        assert code == 2 and "one person, one vote" in out, out
        assert runner.state.pending_approval() is not None
        code, out = await approve("--as", "bob", "--sign", str(keys["bob"]), "--reason", "ok")
        assert code == 0 and "approved" in out, out
        return await asyncio.wait_for(task, 30)

    state = asyncio.run(scenario())
    assert state.status == "succeeded"
    approval = state.approvals["publish"]
    assert approval.decided_by == "alice, bob"
    assert all(v.key.startswith("SHA256:") for v in approval.votes)
    whys = [r.why for r in approval.refusals]
    assert "unsigned decision in the name of 'bob'" in whys[0]
    assert "not 'bob'" in whys[1]
    assert "is a group, not a person" in whys[2]

    # the signed votes verify from the journal alone, and stop verifying once the key is
    # no longer alice's per the allowed signers
    checked = cli("verify", "run-signed", "--store", db)
    assert checked.returncode == 0 and "2 signed vote(s) verified" in checked.stderr, checked.stderr
    signers = Path(os.environ["QUARTERDECK_CONFIG_DIR"]) / "allowed_signers"
    signers.write_text(
        "".join(ln for ln in signers.read_text().splitlines(True) if ln.startswith("bob"))
    )
    revoked = cli("verify", "run-signed", "--store", db)
    assert revoked.returncode == 2 and "not 'alice'" in revoked.stderr, revoked.stderr


def test_the_os_account_decides_without_a_signature(tmp_path: Path, keys: dict[str, Path]) -> None:
    me = local_identity()
    text = GATED.replace("[release-managers]", f"[{me}]").replace("min_approvals: 2", "")
    runner = make_runner(
        tmp_path,
        text,
        settings=load_settings(),
        options=RunOptions(run_id="run-me", started_by="carol"),
    )

    async def scenario() -> RunState:
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: runner.state.pending_approval() is not None)
        code, out = await quarterdeck(
            "approve", "run-me", "publish", "--store", str(tmp_path / "qd.db")
        )
        assert code == 0, out
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(scenario()).approvals["publish"].decided_by == me


def test_the_ci_actor_is_the_identity_in_ci() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat"}
    assert local_identity(env) == "octocat"
    assert local_identity({"GITHUB_ACTOR": "octocat"}) != "octocat"  # not in CI: a claim
    assert local_identity({"CI": "true", "GITLAB_USER_LOGIN": "tanuki"}) == "tanuki"


def test_run_approve_in_another_name_needs_proof(tmp_path: Path, keys: dict[str, Path]) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(GATED.replace("[release-managers]", "[alice]").replace("min_approvals: 2", ""))
    proc = cli(
        "run", str(wf), "--approve", "publish", "--as", "alice", "--store", str(tmp_path / "q.db")
    )
    assert proc.returncode == 2 and "needs proof" in proc.stderr, proc.stderr
    assert not (tmp_path / "q.db").exists()  # refused before anything ran


def test_the_os_account_is_read_from_the_uid_not_from_user_or_logname() -> None:
    """$USER and $LOGNAME are claims anyone can set; getpass.getuser() trusts them."""
    import pwd
    import subprocess
    import sys

    probe = "from quarterdeck.core.identity import local_identity; print(local_identity())"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    env.update(USER="mallory", LOGNAME="mallory", LNAME="mallory", USERNAME="mallory")
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == pwd.getpwuid(os.geteuid()).pw_name != "mallory"
