"""SSH actions (asyncssh): ``ssh.run`` runs a command on hosts, ``ssh.copy`` moves files (SFTP).

Security is not optional here: host keys are checked against ``known_hosts`` (a missing
or changed key is a hard error, never a prompt), and credentials (user name, key files,
agent) come from the config's ``ssh`` section, never from the workflow file. The command
line is split *before* templates are substituted, then quoted with :func:`shlex.join`, so
a templated value is one word on the remote side too and cannot inject shell syntax; with
``shell: true`` the values travel as ``sh -c`` parameters
(:mod:`quarterdeck.core.actions.shell_script`), never pasted into the script.

Each host is a circuit-breaker target (:mod:`quarterdeck.core.policy.circuit`): a host that keeps
refusing connections fails fast for the rest of the run until its cool-down has passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import split_command
from quarterdeck.core.actions.paths import confined
from quarterdeck.core.actions.shell_script import remote_shell_line
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.lazy import lazy_module
from quarterdeck.core.policy.circuit import circuit_board, ssh_target

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_module("asyncssh")

_HOST = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9_.-]+))(?::(?P<port>\d+))?$")
_TAIL = 50


def parse_host(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6addr]:port`` → (host, port)."""
    match = _HOST.match(text.strip())
    if not match:
        raise ValueError(f"bad host {text!r}: write host or host:port, e.g. web1:2222")
    port = int(match.group("port") or 22)
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {text!r}: use 1-65535")
    return match.group("v6") or match.group("name"), port


def _hosts(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                parse_host(item)
    return value


class _SSHParams(ActionParams):
    hosts: list[str] = Field(min_length=1, description="host or host:port, one or many")
    concurrency: int = Field(default=10, ge=1, le=256, description="Hosts worked on at once")
    connect_timeout: Duration = 15.0

    @field_validator("hosts", mode="before")
    @classmethod
    def _check_hosts(cls, value: Any) -> Any:
        return _hosts(value)


@dataclass
class HostResult:
    host: str
    exit_code: int | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    error: str = ""
    retryable: bool = True
    skipped: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_output(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exit_code": self.exit_code,
            "stdout": "\n".join(self.stdout),
            "stderr": "\n".join(self.stderr),
        }
        if self.error:
            out["error"] = self.error
        if self.skipped:
            out["skipped"] = self.skipped
        out.update(self.extra)
        return out


def _known_hosts_path(settings: Any) -> Path:
    configured = getattr(getattr(settings, "ssh", None), "known_hosts", None)
    return Path(os.path.expanduser(configured or "~/.ssh/known_hosts"))


def _connect_options(settings: Any, known_hosts: Path) -> dict[str, Any]:
    """asyncssh options from the config: known_hosts always checked, explicit credentials.

    ``~/.ssh/config`` is not read (``config=None``): what logs in where is decided by
    Quarterdeck's own config, which a reviewer can see.
    """
    ssh = getattr(settings, "ssh", None)
    options: dict[str, Any] = {"known_hosts": str(known_hosts), "config": None}
    if ssh is not None:
        if ssh.client_keys:
            options["client_keys"] = [os.path.expanduser(k) for k in ssh.client_keys]
        if not ssh.use_agent:
            options["agent_path"] = None
        if ssh.username:
            options["username"] = ssh.username
        passphrase_env = getattr(ssh, "passphrase_env", None)
        passphrase = os.environ.get(passphrase_env or "QUARTERDECK_SSH_PASSPHRASE")
        if passphrase:  # registered with the redactor (core/credentials.py)
            options["passphrase"] = passphrase
    return options


def _host_key_problem(known_hosts: Path, host: str, port: int) -> str:
    try:
        trusted = asyncssh.read_known_hosts(str(known_hosts)).match(host, host, port)[0]
    except (OSError, ValueError):
        trusted = []
    where = host if port == 22 else f"[{host}]:{port}"
    if trusted:
        return (
            f"HOST KEY CHANGED for {where}: the key it presented does not match {known_hosts}. "
            "Someone may be intercepting the connection. If the change is expected (the host "
            f"was rebuilt), verify the new fingerprint, then `ssh-keygen -R '{where}' -f "
            f"{known_hosts}` and add the new key"
        )
    return (
        f"{where} is not in {known_hosts}: its host key cannot be verified. Verify the "
        f"fingerprint out of band, then add it (e.g. `ssh-keyscan -p {port} {host} >> "
        f"{known_hosts}`) or point ssh.known_hosts in the config at the right file"
    )


async def _connect(
    host: str, port: int, settings: Any, timeout: float
) -> asyncssh.SSHClientConnection:
    """Connect or raise an :class:`ActionError` naming the host and what to check."""
    known_hosts = _known_hosts_path(settings)
    label = f"{host}:{port}"
    if not known_hosts.is_file():
        raise NonRetryableError(
            f"{label}: known_hosts file {known_hosts} not found — host keys are always "
            "verified; set ssh.known_hosts in the config or create the file"
        )
    try:
        return await asyncssh.connect(
            host, port, connect_timeout=timeout, **_connect_options(settings, known_hosts)
        )
    except asyncssh.HostKeyNotVerifiable:
        raise NonRetryableError(_host_key_problem(known_hosts, host, port)) from None
    except asyncssh.KeyImportError as exc:  # an encrypted key and no (or a wrong) passphrase
        raise NonRetryableError(
            f"{label}: cannot open the client key ({exc}) — set ssh.passphrase_env in the "
            "config to the variable holding its passphrase (or $QUARTERDECK_SSH_PASSPHRASE)"
        ) from None
    except asyncssh.PermissionDenied:
        user = getattr(getattr(settings, "ssh", None), "username", None) or "the current user"
        raise NonRetryableError(
            f"{label}: authentication failed for {user} — check ssh.username, ssh.client_keys "
            "and the agent in the config, and the host's authorized_keys"
        ) from None
    except (TimeoutError, asyncssh.ConnectionLost) as exc:
        raise ActionError(
            f"{label}: no SSH answer within {timeout:g}s ({type(exc).__name__}) — check the "
            "host is up and the port is right, and that no firewall drops the connection"
        ) from None
    except ConnectionRefusedError:
        raise ActionError(
            f"{label}: connection refused — check that sshd runs there and listens on port {port}"
        ) from None
    except OSError as exc:
        raise ActionError(
            f"{label}: cannot reach the host ({exc.strerror or exc}) — check the host name, "
            "DNS and the network route"
        ) from None
    except asyncssh.Error as exc:
        raise ActionError(f"{label}: SSH error: {exc.reason}") from None


async def _on_hosts(
    params: _SSHParams,
    ctx: ActionContext,
    work: Callable[[asyncssh.SSHClientConnection, str, HostResult], Awaitable[None]],
) -> dict[str, HostResult]:
    """Connect to each host (bounded concurrency, through its breaker) and run ``work``."""
    board = circuit_board(ctx)
    semaphore = asyncio.Semaphore(params.concurrency)
    results = {label: HostResult(label) for label in params.hosts}

    async def one(label: str) -> None:
        host, port = parse_host(label)
        result = results[label]
        async with semaphore:
            try:
                async with board.guard(ssh_target(host, port), ctx) as verdict:
                    conn = await _connect(host, port, ctx.settings, params.connect_timeout)
                    verdict.ok()
            except ActionError as exc:
                result.error, result.retryable = exc.message, exc.retryable
                ctx.emit_line("stderr", f"[{label}] {exc.message}")
                return
            async with conn:
                try:
                    await work(conn, label, result)
                except (asyncssh.Error, OSError) as exc:
                    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                    result.error = f"{label}: {reason}"
                    ctx.emit_line("stderr", f"[{label}] {result.error}")
                except ActionError as exc:
                    result.error, result.retryable = exc.message, exc.retryable
                    ctx.emit_line("stderr", f"[{label}] {exc.message}")

    await asyncio.gather(*(one(label) for label in dict.fromkeys(params.hosts)))
    return results


# -- ssh.run -----------------------------------------------------------------------------


class SSHRunParams(_SSHParams):
    command: str = Field(min_length=1, description="Split like a shell; templates stay one word")
    shell: bool = Field(
        default=False,
        description="Run the line with sh -c on the host; templated values are passed as "
        "parameters, never pasted into the script",
    )
    creates: str | None = Field(
        default=None,
        description="Skip a host where this path already exists (the step's earlier effect)",
    )
    check: bool = Field(default=True, description="Fail when a host exits non-zero")


def remote_command(template: str, shell: bool, render_text: Callable[[str], str]) -> str:
    """The command line sent to the remote shell: every templated value is one quoted word."""
    if shell:
        return remote_shell_line(template, render_text)
    return shlex.join(split_command(template, render_text))


@action("ssh.run", SSHRunParams, raw=("command",))
async def ssh_run(params: SSHRunParams, ctx: ActionContext) -> dict[str, Any]:
    """Run a command on one or many hosts; per-host exit codes and output."""
    command = remote_command(params.command, params.shell, ctx.render_text)
    creates = params.creates or None  # rendered once already, with the other parameters
    ctx.log(f"on {len(params.hosts)} host(s), {params.concurrency} at a time: {command}")

    async def work(conn: asyncssh.SSHClientConnection, label: str, result: HostResult) -> None:
        if creates:
            probe = await conn.run(f"test -e {shlex.quote(creates)}", check=False)
            if probe.exit_status == 0:
                result.skipped = f"{creates} exists"
                result.exit_code = 0
                ctx.log(f"[{label}] skipped: {creates} already exists")
                return
        process = await conn.create_process(command, encoding="utf-8", errors="replace")

        async def pump(reader: Any, stream: str, keep: list[str]) -> None:
            while raw := await reader.readline():
                line = raw.rstrip("\r\n")
                ctx.emit_line(stream, f"[{label}] {line}")
                keep.append(line)
                if len(keep) > _TAIL:
                    del keep[0]

        async with process:
            await asyncio.gather(
                pump(process.stdout, "stdout", result.stdout),
                pump(process.stderr, "stderr", result.stderr),
            )
            done = await process.wait(check=False)
        result.exit_code = done.exit_status if done.exit_status is not None else 255
        if done.exit_signal:
            result.error = f"{label}: killed by signal {done.exit_signal[0]}"
        ctx.log(f"[{label}] exit {result.exit_code}")

    results = await _on_hosts(params, ctx, work)
    outputs = _summary(results)
    failed = [
        r for r in results.values() if r.error or (params.check and r.exit_code not in (0, None))
    ]
    if failed:
        reasons = "; ".join(r.error or f"{r.host} exited {r.exit_code}" for r in failed)
        raise ActionError(
            f"{len(failed)} of {len(results)} host(s) failed: {reasons}",
            retryable=all(r.retryable for r in failed),
            outputs=outputs,
        )
    return outputs


def _summary(results: dict[str, HostResult]) -> dict[str, Any]:
    return {
        "hosts": {label: r.as_output() for label, r in results.items()},
        "exit_codes": {label: r.exit_code for label, r in results.items()},
        "failed_hosts": [
            label for label, r in results.items() if r.error or r.exit_code not in (0, None)
        ],
        "skipped_hosts": [label for label, r in results.items() if r.skipped],
    }


# -- ssh.copy ----------------------------------------------------------------------------


class SSHCopyParams(_SSHParams):
    src: str = Field(min_length=1)
    dest: str = Field(min_length=1)
    direction: Literal["upload", "download"] = "upload"
    recurse: bool = Field(default=False, description="Copy directories")
    preserve: bool = Field(default=False, description="Keep modes and times")
    repo: str | None = Field(
        default=None,
        description="A repository the copy reads from or writes to: relative local paths "
        "start there, and it joins the work dir and run dir as the workspace",
    )
    allow_outside: bool = Field(
        default=False,
        description="Let the local path be outside the workspace (repo, work dir, run dir)",
    )


def _local(params: SSHCopyParams, path: str, ctx: ActionContext, what: str) -> Path:
    """The local side of a copy, confined to the workspace unless ``allow_outside``."""
    base = ctx.workdir if params.repo is None else (ctx.workdir / params.repo).resolve()
    roots = [ctx.workdir, ctx.run_dir, *([base] if params.repo is not None else [])]
    return confined(base, path, roots, what, allow_outside=params.allow_outside)


async def _same_remote(sftp: asyncssh.SFTPClient, remote: str, local: Path) -> bool:
    """Is ``remote`` already a byte-for-byte copy of ``local``? (size first, then sha256)."""
    try:
        attrs = await sftp.stat(remote)
    except asyncssh.SFTPNoSuchFile:
        return False
    if attrs.size != local.stat().st_size:
        return False
    want = hashlib.sha256(local.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    async with sftp.open(remote, "rb") as handle:
        while chunk := await handle.read(1 << 16):
            digest.update(chunk if isinstance(chunk, bytes) else chunk.encode())
    return digest.hexdigest() == want


@action("ssh.copy", SSHCopyParams)
async def ssh_copy(params: SSHCopyParams, ctx: ActionContext) -> dict[str, Any]:
    """Copy files to or from hosts over SFTP; an identical remote file is left alone."""
    many = len(set(params.hosts)) > 1
    if params.direction == "upload":
        src = _local(params, params.src, ctx, "src")
        if not src.exists():
            raise NonRetryableError(f"nothing to upload: {src} does not exist")
        if src.is_dir() and not params.recurse:
            raise NonRetryableError(f"{src} is a directory: set recurse: true to copy it")

    async def work(conn: asyncssh.SSHClientConnection, label: str, result: HostResult) -> None:
        async with conn.start_sftp_client() as sftp:
            if params.direction == "upload":
                target = params.dest
                if await sftp.isdir(target):
                    target = f"{target.rstrip('/')}/{src.name}"
                if src.is_file() and await _same_remote(sftp, target, src):
                    result.skipped = "identical file already there"
                    ctx.log(f"[{label}] {target} is already up to date")
                else:
                    await sftp.put(
                        str(src), target, recurse=params.recurse, preserve=params.preserve
                    )
                    ctx.log(f"[{label}] uploaded {src} → {target}")
                result.extra["path"] = target
            else:
                dest = _local(params, params.dest, ctx, "dest")
                if many:
                    dest = dest / re.sub(r"[^\w.-]", "_", label)
                (dest if many else dest.parent).mkdir(parents=True, exist_ok=True)
                await sftp.get(
                    params.src, str(dest), recurse=params.recurse, preserve=params.preserve
                )
                ctx.log(f"[{label}] downloaded {params.src} → {dest}")
                result.extra["path"] = str(dest)
            result.exit_code = 0

    results = await _on_hosts(params, ctx, work)
    outputs = _summary(results)
    outputs["paths"] = {label: r.extra.get("path") for label, r in results.items()}
    failed = [r for r in results.values() if r.error]
    if failed:
        raise ActionError(
            f"copy failed on {len(failed)} of {len(results)} host(s): "
            + "; ".join(r.error for r in failed),
            retryable=all(r.retryable for r in failed),
            outputs=outputs,
        )
    return outputs
