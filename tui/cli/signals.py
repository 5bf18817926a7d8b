"""Run signals from any terminal or host sharing the store: ``approve``, ``reject``,
``pause``, ``unpause`` and ``cancel``. Each is a row in the store; the runner acts on it
and records the outcome, which :func:`_send` waits a moment for."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from quarterdeck.core.commands import cli_command
from quarterdeck.core.errors import ExitCode, InvalidInput, QuarterdeckError
from quarterdeck.core.journal.statuses import RUN_ENDED, ApprovalStatus, RunStatus
from quarterdeck.tui.cli.common import AsOpt, RunIdArg, StoreOpt, err, fail

commands = typer.Typer()


def _send(
    run_id: str,
    kind: str,
    *,
    store: str | None,
    actor: str | None,
    reason: str,
    target: str | None = None,
    wait: float = 3.0,
    sign_key: Path | None = None,
) -> None:
    """Check the signal here (who may decide, whether the run still runs) so a refusal is
    an exit code at once, write it, then wait up to ``wait`` seconds for the outcome."""
    from quarterdeck.core.config import current_user, load_settings
    from quarterdeck.core.engine.runner import approval_refusal
    from quarterdeck.tui.launch import open_store, read_state

    try:
        settings = load_settings()
        who = current_user(actor, settings)
        db = open_store(store)
    except QuarterdeckError as exc:
        fail(exc)
    # closed before the process leaves: the console script's quick exit (os._exit) closes
    # no connection, and an unclosed one leaves the signal in the WAL file beside the store
    with db:
        try:
            row = db.get_run(run_id)
            state = read_state(db, row.id)
            data: dict[str, str] = {}
            if kind in ("approve", "reject"):
                assert target is not None
                data = _proof(row.id, target, kind, who, reason, sign_key, settings)
                approval = state.approvals.get(target)
                if approval is not None and approval.status == ApprovalStatus.WAITING:
                    approve = kind == "approve"
                    decision = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
                    why = approval_refusal(
                        approval, who, state.started_by, settings.groups, decision
                    )
                    if why is not None:
                        raise InvalidInput(f"refused: {why}")
                elif approval is not None:
                    raise InvalidInput(
                        f"gate {target!r} of run {row.id} is already {approval.status}"
                    )
                if kind == "reject" and not reason:
                    raise InvalidInput("a rejection needs a reason: --reason TEXT")
            if row.status in RUN_ENDED:
                raise InvalidInput(f"run {row.id} has already ended ({row.status})")
            signal_id = db.send_signal(
                row.id, kind, actor=who, target=target, reason=reason, data=data or None
            )
        except QuarterdeckError as exc:
            fail(exc)
        what = f"{kind} {target}" if target else kind
        if row.status == RunStatus.INTERRUPTED:
            err(
                f"{what} recorded for run {row.id} by {who}; the run is not running — it applies "
                f"when you `{cli_command('resume', row.id, store=db.path)}`"
            )
            return
        deadline = time.monotonic() + wait
        outcome = None
        while time.monotonic() < deadline:
            outcome = db.signal_outcome(signal_id)
            if outcome:
                break
            time.sleep(0.05)
        if outcome and outcome.startswith("refused"):
            err(f"{what} by {who}: {outcome}")
            raise typer.Exit(int(ExitCode.INVALID))
        if outcome:
            err(f"{what} by {who}: {outcome}")
        else:
            err(f"{what} by {who}: recorded; run {row.id} will act on it when it reaches it")


def _proof(
    run_id: str,
    gate: str,
    kind: str,
    who: str,
    reason: str,
    key: Path | None,
    settings: Any,
) -> dict[str, str]:
    """The signal's proof of who decides: an SSH signature (checked here first, so a bad
    one is refused at once), or nothing when ``who`` is this process's own identity."""
    from quarterdeck.core.identity import (
        SignatureError,
        allowed_signers_path,
        approval_message,
        local_identity,
        sign,
        unverified_names,
        verify,
    )

    if key is None:
        me = local_identity()
        if who != me and not unverified_names():
            raise InvalidInput(
                f"refused: deciding as {who!r} needs proof — you are {me!r} here",
                hint="sign the decision with that person's SSH key: --sign ~/.ssh/id_ed25519 "
                "(the public key must be in the project's allowed_signers)",
            )
        return {}
    message = approval_message(run_id, gate, kind, who, reason)
    signers = allowed_signers_path(settings)
    try:
        signature = sign(message, key.expanduser())
        if signers is None:
            raise SignatureError("no allowed_signers file in the config to check signatures")
        checked = verify(message, signature, who, signers)
    except SignatureError as exc:
        raise InvalidInput(f"refused: {exc}") from None
    return {"signature": signature, "key": checked.fingerprint}


SignOpt = Annotated[
    Path | None,
    typer.Option(
        "--sign",
        metavar="KEY",
        help="Sign the decision with this SSH private key (verified against allowed_signers)",
    ),
]


@commands.command("approve")
def approve_cmd(
    run_id: RunIdArg,
    gate: Annotated[str, typer.Argument(metavar="GATE")],
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
    store: StoreOpt = None,
    sign_key: SignOpt = None,
) -> None:
    """Approve a gate of a run (from any terminal or host sharing the store)."""
    _send(run_id, "approve", store=store, actor=as_, reason=reason, target=gate, sign_key=sign_key)


@commands.command("reject")
def reject_cmd(
    run_id: RunIdArg,
    gate: Annotated[str, typer.Argument(metavar="GATE")],
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
    store: StoreOpt = None,
    sign_key: SignOpt = None,
) -> None:
    """Reject a gate of a run; a reason is required."""
    _send(run_id, "reject", store=store, actor=as_, reason=reason, target=gate, sign_key=sign_key)


@commands.command("pause")
def pause_cmd(
    run_id: RunIdArg,
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: AsOpt = None,
    store: StoreOpt = None,
) -> None:
    """Pause a run: steps in flight finish, no new step starts."""
    _send(run_id, "pause", store=store, actor=as_, reason=reason)


@commands.command("unpause")
def unpause_cmd(
    run_id: RunIdArg,
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: AsOpt = None,
    store: StoreOpt = None,
) -> None:
    """Let a paused run go on."""
    _send(run_id, "unpause", store=store, actor=as_, reason=reason)


@commands.command("cancel")
def cancel_cmd(
    run_id: RunIdArg,
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_: AsOpt = None,
    store: StoreOpt = None,
) -> None:
    """Cancel a run: steps in flight are stopped (their processes killed)."""
    _send(run_id, "cancel", store=store, actor=as_, reason=reason)
