"""ssh.run and ssh.copy against real asyncssh servers on 127.0.0.1 with real keys."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from quarterdeck.core.config import Settings, SSHSettings
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.policy.circuit import SERVICE_KEY, CircuitBoard, CircuitPolicy
from tests.helpers import make_ctx, run_workflow, write_workflow
from tests.servers import (
    ConcurrencyProbe,
    SSHKeys,
    SSHServer,
    assert_invalid,
    free_port,
    run_action,
    step_outputs,
)


@pytest.fixture
def keys(tmp_path: Path) -> SSHKeys:
    return SSHKeys.generate(tmp_path / "keys")


@pytest.fixture
def pair(keys: SSHKeys, tmp_path: Path) -> Iterator[tuple[SSHServer, SSHServer]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with SSHServer(keys, cwd=tmp_path / "a") as a, SSHServer(keys, cwd=tmp_path / "b") as b:
        yield a, b


def settings_for(keys: SSHKeys, servers: list[SSHServer]) -> Settings:
    return keys.settings(keys.write_known_hosts(servers))


def call(
    name: str, with_: dict[str, Any], tmp_path: Path, settings: Settings, **kw: Any
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    ctx = make_ctx(tmp_path, settings=settings, **kw)
    out = asyncio.run(run_action(name, with_, ctx))
    return out, ctx.lines  # type: ignore[attr-defined]


def failure(
    name: str, with_: dict[str, Any], tmp_path: Path, settings: Settings, **kw: Any
) -> ActionError:
    with pytest.raises(ActionError) as info:
        call(name, with_, tmp_path, settings, **kw)
    return info.value


# -- ssh.run -----------------------------------------------------------------------------


def test_runs_on_many_hosts_with_tagged_lines(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, b = pair
    out, lines = call(
        "ssh.run",
        {"hosts": [a.host, b.host], "command": "sh -c 'pwd; echo oops >&2'"},
        tmp_path,
        settings_for(keys, [a, b]),
    )
    assert out["exit_codes"] == {a.host: 0, b.host: 0} and out["failed_hosts"] == []
    assert out["hosts"][a.host]["stdout"] == str(tmp_path / "a")
    assert out["hosts"][b.host]["stdout"] == str(tmp_path / "b")
    assert out["hosts"][b.host]["stderr"] == "oops"
    assert ("stdout", f"[{a.host}] {tmp_path / 'a'}") in lines
    assert ("stderr", f"[{b.host}] oops") in lines
    assert a.logins == ["tester"] and b.logins == ["tester"]


def test_per_host_exit_codes(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "b" / "broken").touch()
    settings = settings_for(keys, [a, b])
    params = {"hosts": [a.host, b.host], "command": "sh -c 'test ! -e broken || exit 3'"}
    err = failure("ssh.run", params, tmp_path, settings)
    assert err.message == f"1 of 2 host(s) failed: {b.host} exited 3"
    assert err.outputs["exit_codes"] == {a.host: 0, b.host: 3}
    assert err.outputs["failed_hosts"] == [b.host]
    out, _ = call("ssh.run", {**params, "check": False}, tmp_path, settings)
    assert out["exit_codes"] == {a.host: 0, b.host: 3}


def test_templated_values_cannot_inject_remote_shell(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, _ = pair
    evil = f"x; touch {tmp_path}/pwned $(touch {tmp_path}/pwned2)"
    ran = run_workflow(
        tmp_path,
        f"""
name: remote
inputs:
  name: {{type: string}}
stages:
  - id: s
    steps:
      - id: greet
        uses: ssh.run
        with:
          hosts: ["{a.host}"]
          command: "echo hello {{{{ inputs.name }}}}"
""",
        inputs={"name": evil},
        settings=settings_for(keys, [a]),
    )
    assert ran.state.status == "succeeded", ran.state.to_json()
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert a.commands == [shlex.join(["echo", "hello", evil])]
    outputs = step_outputs(ran, "greet")
    assert outputs["hosts"][a.host]["stdout"] == f"hello {evil}"


def test_concurrency_limit(keys: SSHKeys, tmp_path: Path) -> None:
    probe = ConcurrencyProbe()
    meet = tmp_path / "meet"
    meet.mkdir()
    with (
        SSHServer(keys, probe=probe) as s1,
        SSHServer(keys, probe=probe) as s2,
        SSHServer(keys, probe=probe) as s3,
    ):
        hosts = [s1.host, s2.host, s3.host]
        settings = settings_for(keys, [s1, s2, s3])
        call(
            "ssh.run",
            {"hosts": hosts, "command": "sleep 0.2", "concurrency": 1},
            tmp_path,
            settings,
        )
        assert probe.max_active == 1
        # all three must be connected at once to meet (bounded wait, 5 s at most)
        rendezvous = (
            f'touch "$(mktemp -p {meet})"; i=0; '
            f'while [ "$(ls {meet} | wc -l)" -lt 3 ] && [ $i -lt 100 ]; '
            "do sleep 0.05; i=$((i+1)); done; "
            f'[ "$(ls {meet} | wc -l)" -ge 3 ]'
        )
        out, _ = call(
            "ssh.run",
            {"hosts": hosts, "command": rendezvous, "shell": True, "concurrency": 3},
            tmp_path,
            settings,
        )
    assert out["exit_codes"] == dict.fromkeys(hosts, 0)
    assert probe.max_active == 3


def test_creates_skips_a_host_that_already_did_it(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, _ = pair
    settings = settings_for(keys, [a])
    marker = tmp_path / "a" / "migrated"
    params = {"hosts": [a.host], "command": f"touch {marker}", "creates": str(marker)}
    out, _ = call("ssh.run", params, tmp_path, settings)
    assert marker.exists() and out["skipped_hosts"] == []
    out, lines = call("ssh.run", params, tmp_path, settings)
    assert out["skipped_hosts"] == [a.host] and out["exit_codes"] == {a.host: 0}
    assert ("stdout", f"[{a.host}] skipped: {marker} already exists") in lines
    assert [c for c in a.commands if c.startswith("touch")] == [f"touch {marker}"]


def test_changed_host_key_is_a_hard_error(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, _ = pair
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    known = keys.write_known_hosts([a], key=impostor, name="known_hosts_changed")
    err = failure("ssh.run", {"hosts": [a.host], "command": "true"}, tmp_path, keys.settings(known))
    assert err.retryable is False
    assert f"HOST KEY CHANGED for [127.0.0.1]:{a.port}" in err.message
    assert "ssh-keygen -R" in err.message
    assert a.commands == []


def test_unknown_host_and_missing_known_hosts(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, b = pair
    settings = keys.settings(keys.write_known_hosts([b]))  # trusts b only
    err = failure("ssh.run", {"hosts": [a.host], "command": "true"}, tmp_path, settings)
    assert f"[127.0.0.1]:{a.port} is not in" in err.message and "ssh-keyscan" in err.message
    assert not err.retryable and a.commands == []
    missing = keys.settings(tmp_path / "nowhere" / "known_hosts")
    err = failure("ssh.run", {"hosts": [a.host], "command": "true"}, tmp_path, missing)
    assert "known_hosts file" in err.message and "not found" in err.message


def test_dead_port_names_host_and_what_to_check(keys: SSHKeys, tmp_path: Path) -> None:
    port = free_port()
    known = keys.directory / "known_hosts"
    known.write_text("")
    board = CircuitBoard(CircuitPolicy(failure_threshold=2, window=60, cooldown=60))
    settings = keys.settings(known)
    for _ in range(2):
        err = failure(
            "ssh.run",
            {"hosts": f"127.0.0.1:{port}", "command": "true"},
            tmp_path,
            settings,
            services={SERVICE_KEY: board},
        )
        assert f"127.0.0.1:{port}: connection refused" in err.message
        assert "check that sshd runs there and listens on port" in err.message
        assert err.retryable
    # the host's breaker is now open: the next step fails fast
    err = failure(
        "ssh.run",
        {"hosts": f"127.0.0.1:{port}", "command": "true"},
        tmp_path,
        settings,
        services={SERVICE_KEY: board},
    )
    assert f"circuit open for ssh://127.0.0.1:{port}" in err.message
    assert board.state(f"ssh://127.0.0.1:{port}") == "open"


def test_wrong_client_key_is_an_auth_error(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, _ = pair
    other = SSHKeys.generate(tmp_path / "other")
    known = keys.write_known_hosts([a])
    settings = Settings(
        ssh=SSHSettings(
            known_hosts=str(known),
            client_keys=[str(other.client_key_path)],
            username="mallory",
            use_agent=False,
        )
    )
    err = failure("ssh.run", {"hosts": [a.host], "command": "true"}, tmp_path, settings)
    assert "authentication failed for mallory" in err.message and not err.retryable


# -- ssh.copy ----------------------------------------------------------------------------


def test_upload_is_skipped_when_identical(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, b = pair
    settings = settings_for(keys, [a, b])
    local = tmp_path / "app.conf"
    local.write_text("port = 8080\n")
    params = {"hosts": [a.host, b.host], "src": "app.conf", "dest": str(tmp_path / "a")}
    out, _ = call("ssh.copy", params, tmp_path, settings)
    remote = tmp_path / "a" / "app.conf"
    assert remote.read_text() == "port = 8080\n"
    assert out["paths"] == {a.host: str(remote), b.host: str(remote)}
    out, lines = call("ssh.copy", {**params, "hosts": [a.host]}, tmp_path, settings)
    assert out["skipped_hosts"] == [a.host]
    assert ("stdout", f"[{a.host}] {remote} is already up to date") in lines
    local.write_text("port = 9090\n")
    out, _ = call("ssh.copy", {**params, "hosts": [a.host]}, tmp_path, settings)
    assert out["skipped_hosts"] == [] and remote.read_text() == "port = 9090\n"


def test_download_from_many_hosts(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, b = pair
    (tmp_path / "a" / "log.txt").write_text("from a\n")
    (tmp_path / "b" / "log.txt").write_text("from b\n")
    settings = settings_for(keys, [a, b])
    # each server's file lives in its own directory; fetch a's from both paths
    out, _ = call(
        "ssh.copy",
        {
            "hosts": [a.host, b.host],
            "direction": "download",
            "src": str(tmp_path / "a" / "log.txt"),
            "dest": "fetched",
        },
        tmp_path,
        settings,
    )
    got = {host: Path(path) for host, path in out["paths"].items()}
    assert got[a.host] == tmp_path / "fetched" / a.host.replace(":", "_")
    assert (got[a.host] / "log.txt").read_text() == "from a\n"
    assert (got[b.host] / "log.txt").read_text() == "from a\n"


def test_copy_errors_are_clear(
    pair: tuple[SSHServer, SSHServer], keys: SSHKeys, tmp_path: Path
) -> None:
    a, _ = pair
    settings = settings_for(keys, [a])
    err = failure(
        "ssh.copy", {"hosts": [a.host], "src": "nope.txt", "dest": "/tmp"}, tmp_path, settings
    )
    assert isinstance(err, NonRetryableError) and "does not exist" in err.message
    err = failure(
        "ssh.copy",
        {
            "hosts": [a.host],
            "direction": "download",
            "src": str(tmp_path / "missing.txt"),
            "dest": "out",
        },
        tmp_path,
        settings,
    )
    assert err.message.startswith("copy failed on 1 of 1 host(s)") and a.host in err.message


# -- validation --------------------------------------------------------------------------


def test_bad_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        """\
name: bad-ssh
stages:
  - id: s
    steps:
      - id: a
        uses: ssh.run
        with:
          hosts: ["web1", "bad host!"]
          command: uptime
      - id: b
        uses: ssh.run
        with:
          hosts: web1:2222
          command: uptime
          password: hunter2
      - id: c
        uses: ssh.run
        with:
          hosts: web1
          command: uptime
          concurrency: 0
      - id: d
        uses: ssh.copy
        with:
          hosts: [web1]
          src: a
          dest: b
          direction: sideways
      - id: e
        uses: ssh.run
        with:
          hosts: "web1:99999"
          command: uptime
""",
    )
    assert_invalid(
        path,
        {
            8: "bad host 'bad host!'",
            15: "unknown parameter 'password'",
            21: "greater than or equal to 1",
            28: "'upload' or 'download'",
            32: "bad port",
        },
    )
