"""Built-in actions: ``shell``, ``python``, ``memory.set``, ``wait`` and ``run.end``."""

from __future__ import annotations

import codecs
import contextlib
import importlib
import inspect
import os
import re
import shlex
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.process_groups import die_with_parent, guard, release
from quarterdeck.core.actions.shell_script import shell_argv
from quarterdeck.core.durations import Duration
from quarterdeck.core.errors import ActionError, NonRetryableError, StepSkipped
from quarterdeck.core.factories import empty_list
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import asyncio
else:  # loaded by the first step that runs, not by `quarterdeck validate`
    asyncio = lazy_module("asyncio")

_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_KILL_GRACE_SECONDS = 2.0


def split_command(template: str, render_text: Callable[[str], str]) -> list[str]:
    """Split a command line like a shell would, *then* substitute templates.

    Each ``{{ ... }}`` is replaced by a placeholder before splitting, so whatever it
    renders to (``; rm -rf /``, ``$(id)``, quotes, newlines) stays inside the one argv
    element it was written in and is never re-parsed.
    """
    pieces: list[str] = []

    def stash(match: re.Match[str]) -> str:
        pieces.append(match.group(0))
        return f"\x00{len(pieces) - 1}\x00"

    masked = _TEMPLATE.sub(stash, template)
    try:
        words = shlex.split(masked, posix=True)
    except ValueError as exc:
        raise NonRetryableError(f"cannot split the command line: {exc}") from None
    if not words:
        raise NonRetryableError("the command line is empty")

    def restore(match: re.Match[str]) -> str:
        return render_text(pieces[int(match.group(1))])

    return [re.sub(r"\x00(\d+)\x00", restore, word) for word in words]


def coerce_output(value: str) -> Any:
    """``"42"`` → 42, ``"87.5"`` → 87.5, ``"true"`` → True; anything else stays text."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(?:[eE][-+]?\d+)?", text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    return value


def parse_output_file(path: Path) -> dict[str, Any]:
    """``key=value`` lines, and ``key<<DELIM`` … ``DELIM`` blocks, as in GitHub Actions."""
    outputs: dict[str, Any] = {}
    if not path.exists():
        return outputs
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        heredoc = re.match(r"^([A-Za-z_][\w.-]*)<<(\S+)$", line)
        if heredoc:
            key, delim = heredoc.groups()
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            i += 1
            outputs[key] = "\n".join(body)
            continue
        if "=" in line:
            key, _, value = line.partition("=")
            outputs[key.strip()] = coerce_output(value)
    return outputs


_READ_CHUNK = 64 * 1024
_FRAGMENT = 1024 * 1024  # an unfinished line this long is handed on in pieces
_TAIL_LINE_MAX = 64 * 1024  # how much of one line the stdout/stderr tails keep


class ShellParams(ActionParams):
    run: str = Field(description="Command line; split like a shell, templates stay one argv each")
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    shell: bool = Field(
        default=False,
        description="Run through /bin/sh -c; templated values are passed as parameters, "
        "never pasted into the script",
    )
    stdout_tail: int = Field(default=50, ge=0, le=10_000)
    secrets: list[str] = Field(
        default_factory=empty_list,
        description="Credential env vars this command may see (all others are removed)",
    )


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """Stop a child and everything it started (its own process group)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), _KILL_GRACE_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), _KILL_GRACE_SECONDS)


async def run_process(
    argv: list[str],
    ctx: ActionContext,
    *,
    cwd: Path,
    env: dict[str, str],
    tail: int = 50,
    stderr_tail: list[str] | None = None,
    stderr_keep: int = 20,
) -> tuple[int, list[str]]:
    """Run ``argv`` in its own process group, streaming lines; kill the group on cancel.

    Returns the exit code and the last ``tail`` stdout lines; pass a list as
    ``stderr_tail`` to also keep the last ``stderr_keep`` non-blank stderr lines (where
    tools say why they failed: "No module named build").
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    except FileNotFoundError:
        if not cwd.is_dir():
            raise NonRetryableError(f"working directory not found: {cwd}") from None
        raise NonRetryableError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise NonRetryableError(f"permission denied running {argv[0]}") from None
    last: list[str] = []

    def handle(name: str, text: str, head: str) -> None:
        ctx.emit_line(name, text)
        if name == "stdout" and tail:
            last.append(head)
            if len(last) > tail:
                del last[0]
        elif name == "stderr" and stderr_tail is not None and head.strip():
            stderr_tail.append(head)
            if len(stderr_tail) > stderr_keep:
                del stderr_tail[0]

    async def pump(stream: asyncio.StreamReader | None, name: str) -> None:
        """Read in chunks, never by line: a line of any length is kept (logged whole by the
        journal writer's step logs, cut in the journal), none is dropped."""
        if stream is None:
            return
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # the unfinished line (once fragments were sent, its unsent part), in pieces: no
        # re-scanning or re-copying of a long line per chunk
        pending: list[str] = []
        size = 0
        head: str | None = None  # the start of a line sent in fragments (for the tails)
        while True:
            raw = await stream.read(_READ_CHUNK)
            parts = decoder.decode(raw, final=not raw).split("\n")
            if len(parts) > 1:
                for line in ["".join([*pending, parts[0]]), *parts[1:-1]]:
                    line = line.rstrip("\r")
                    handle(name, line, head + line[:_TAIL_LINE_MAX] if head else line)
                    head = None
                pending, size = [], 0
            if parts[-1]:
                pending.append(parts[-1])
                size += len(parts[-1])
            if not raw:
                rest = "".join(pending)
                if rest or head is not None:
                    handle(name, rest, (head or "") + rest[:_TAIL_LINE_MAX])
                return
            if size >= _FRAGMENT and ctx.emit_fragment is not None:
                piece = "".join(pending)
                ctx.emit_fragment(name, piece)
                head = head if head is not None else piece[:_TAIL_LINE_MAX]
                pending, size = [], 0

    guard(proc.pid)  # killed with its whole group if this process dies first
    try:
        if ctx.emit_event is not None:  # journaled, so a resume can kill what outlives us
            from quarterdeck.core.journal.events import EventType, StepProcess

            group = StepProcess(pid=proc.pid, pgid=proc.pid, host=socket.gethostname())
            await ctx.emit_event(EventType.STEP_PROCESS, group.to_data())
        await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
        code = await proc.wait()
    except asyncio.CancelledError:
        await _kill_group(proc)
        raise
    finally:
        if proc.returncode is None:
            await _kill_group(proc)
        release(proc.pid)
        _close_pipes(proc)
    return code, last


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close the child's pipes now, on the loop that made them.

    asyncio closes a subprocess's transport by itself only once every pipe reached its
    end. A step cancelled mid-output (a timeout, Ctrl-C, a cancelled run) leaves them open,
    and whoever collects the transport later (after the run's loop closed: the cockpit's
    run thread, a test's ``asyncio.run``) gets "Exception ignored ... Event loop is closed"
    printed by its ``__del__``, and an unclosed pipe. ``Process`` keeps its transport in
    ``_transport`` and offers no public close; closing it here is what asyncio itself does
    on the normal path (the process has exited or been killed by now)."""
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


def child_env(
    ctx: ActionContext, extra: dict[str, str], secrets: Iterable[str] = ()
) -> dict[str, str]:
    """The environment of a step's process: no credentials unless the step names them
    (in its ``env:`` or, for ``shell``, in ``secrets:``)."""
    keep = set(secrets)
    env = {k: v for k, v in ctx.env.items() if k not in ctx.credential_env or k in keep}
    env.update(extra)
    env["QUARTERDECK_RUN_ID"] = ctx.run_id
    env["QUARTERDECK_STEP"] = ctx.step_id
    env["QUARTERDECK_IDEMPOTENCY_KEY"] = ctx.idempotency_key
    return env


@action("shell", ShellParams, raw=("run",))
async def shell(params: ShellParams, ctx: ActionContext) -> dict[str, Any]:
    """Run a command; outputs its exit code, the last stdout lines and $QUARTERDECK_OUTPUT."""
    # env and cwd were rendered once with the other parameters; a value is data now, and
    # rendering it again would evaluate any `{{ }}` an input or an output carried
    env = child_env(ctx, dict(params.env), params.secrets)
    cwd = ctx.workdir if params.cwd is None else Path(params.cwd)
    if not cwd.is_absolute():
        cwd = ctx.workdir / cwd
    out_file = ctx.run_dir / "outputs" / f"{ctx.step_id}-{ctx.attempt}-{uuid.uuid4().hex[:6]}"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("")
    env["QUARTERDECK_OUTPUT"] = str(out_file)
    if params.shell:
        argv = shell_argv(params.run, ctx.render_text)
    else:
        argv = split_command(params.run, ctx.render_text)
    try:
        errors: list[str] = []
        code, last = await run_process(
            argv, ctx, cwd=cwd, env=env, tail=params.stdout_tail, stderr_tail=errors
        )
        outputs: dict[str, Any] = {"exit_code": code, "stdout": "\n".join(last)}
        outputs.update(parse_output_file(out_file))
    finally:
        with contextlib.suppress(OSError):
            out_file.unlink()
    if code != 0:
        said = errors[-1] if errors else (last[-1] if last else "")
        tail = f": {ctx.redact(said.strip())[:300]}" if said.strip() else ""
        raise ActionError(f"{argv[0]} exited with code {code}{tail}", outputs=outputs)
    return outputs


class PythonParams(ActionParams):
    call: str = Field(description="module:function", pattern=r"^[\w.]+:[\w.]+$")
    args: dict[str, Any] = Field(default_factory=dict)


# Quarterdeck's own packages before they moved under `quarterdeck.`; workflows written
# then say `call: workflows.steps:...`. A project's own package of that name wins.
_LEGACY_PACKAGES = ("workflows",)


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        if top not in _LEGACY_PACKAGES or exc.name != top:
            raise
        return importlib.import_module(f"quarterdeck.{module_name}")


def _resolve(call: str, *dirs: Path | None) -> Any:
    """Import ``module:attr``; the workflow's folder and the work dir are on the path."""
    module_name, _, attr = call.partition(":")
    added = [str(d) for d in dirs if d is not None and str(d) not in sys.path]
    for entry in reversed(added):
        sys.path.insert(0, entry)
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise NonRetryableError(f"cannot import {module_name!r}: {exc}") from None
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise NonRetryableError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise NonRetryableError(f"{call!r} is not callable")
    return target


@action("python", PythonParams)
async def python_call(params: PythonParams, ctx: ActionContext) -> dict[str, Any]:
    """Call ``module:function`` with ``args`` (sync functions run in a thread)."""
    fn = _resolve(params.call, ctx.workflow_dir, ctx.workdir)
    kwargs = dict(params.args)
    with contextlib.suppress(TypeError, ValueError):
        if "ctx" in inspect.signature(fn).parameters:
            kwargs["ctx"] = ctx
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(**kwargs)
        else:
            result = await asyncio.to_thread(fn, **kwargs)
    except (ActionError, StepSkipped):
        raise
    except TypeError as exc:
        raise NonRetryableError(f"{params.call}: {exc}") from None
    except Exception as exc:  # the user's function failed: report it as the step's error
        raise ActionError(f"{params.call} raised {type(exc).__name__}: {exc}") from None
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    return {"result": result}


class MemorySetParams(ActionParams):
    key: str = Field(min_length=1)
    value: Any = None


@action("memory.set", MemorySetParams)
async def memory_set(params: MemorySetParams, ctx: ActionContext) -> dict[str, Any]:
    """Write ``value`` under ``key`` in the run's shared memory (journaled)."""
    await ctx.set_memory(params.key, params.value)
    return {"key": params.key, "value": params.value}


class WaitParams(ActionParams):
    duration: Duration

    @field_validator("duration")
    @classmethod
    def _bounded(cls, value: float) -> float:
        if value > 7 * 86400:
            raise ValueError("wait at most 7 days")
        return value


@action("wait", WaitParams)
async def wait(params: WaitParams, ctx: ActionContext) -> dict[str, Any]:
    """Wait for ``duration`` from the step's first start (a durable deadline: a resumed run
    waits only for what is left)."""
    now = ctx.clock.now()
    deadline = (ctx.started_at if ctx.started_at is not None else now) + params.duration
    await ctx.clock.sleep(max(0.0, deadline - now))
    return {"waited": params.duration}


class RunEndParams(ActionParams):
    status: Literal["nothing_to_do", "succeeded"] = Field(
        default="nothing_to_do", description="The status the run ends with"
    )
    reason: str = Field(default="", description="Why the run ends here (shown and journaled)")


@action("run.end", RunEndParams)
async def run_end(params: RunEndParams, ctx: ActionContext) -> dict[str, Any]:
    """End the run cleanly once this step's stage is done (guard it with ``when:``).

    The runner reads the journaled outputs after the stage, so a resumed run ends at
    the same place without running this step again.
    """
    ctx.log(f"ending the run: {params.status}" + (f" ({params.reason})" if params.reason else ""))
    return {"status": params.status, "reason": params.reason}
