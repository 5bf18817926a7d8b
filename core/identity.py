"""Who is acting, and the proof a decision in someone else's name needs.

A name typed on the command line (``--as``, ``$QUARTERDECK_USER``) is a claim, not an
identity. The identity a process can vouch for is its OS account, or the CI actor when it
runs in CI (the platform authenticated them). A decision in any other name must be signed
with that person's SSH key: ``ssh-keygen -Y sign -n quarterdeck-approval`` over a
canonical message naming the run, the gate, the decision, the person and the reason,
verified with ``ssh-keygen -Y verify`` against the project's allowed-signers file (the
format git uses for signed commits). The signature travels in the signal and is journaled
with the vote, so ``quarterdeck verify`` checks it again on any machine, from any store.

``QUARTERDECK_UNVERIFIED_NAMES=1`` takes claimed names at face value (the old behaviour):
for test harnesses and single-user sandboxes only, never for a shared store.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from quarterdeck.core.lean import lean

NAMESPACE = "quarterdeck-approval"
UNVERIFIED_ENV = "QUARTERDECK_UNVERIFIED_NAMES"
_CI_ACTORS = (
    ("GITHUB_ACTIONS", "GITHUB_ACTOR"),
    ("GITLAB_CI", "GITLAB_USER_LOGIN"),
    ("BUILDKITE", "BUILDKITE_BUILD_CREATOR"),
)
_GOOD = re.compile(r"Good \"[^\"]+\" signature for (?P<who>.+) with (?P<kind>\S+) key (?P<fp>\S+)")


class SignatureError(Exception):
    """A signature that could not be made or does not verify (the message says why)."""


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def ci_actor(environ: Mapping[str, str] | None = None) -> str | None:
    """The person the CI platform authenticated, when this process runs in CI (the
    platform's flag or ``CI`` set); outside CI the same variables are only claims."""
    env = os.environ if environ is None else environ
    for flag, actor in _CI_ACTORS:
        if (_truthy(env.get(flag)) or _truthy(env.get("CI"))) and env.get(actor):
            return env[actor]
    return None


def local_identity(environ: Mapping[str, str] | None = None) -> str:
    """The CI actor in CI, else the OS account: the identity this process vouches for."""
    actor = ci_actor(environ)
    if actor:
        return actor
    # the account of the effective uid, from the password database: never $USER or
    # $LOGNAME, which anyone can set (getpass.getuser() reads those first)
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid-{os.geteuid()}"


def unverified_names(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(UNVERIFIED_ENV, "") in ("1", "true", "yes")


def approval_message(run_id: str, gate: str, decision: str, actor: str, reason: str) -> bytes:
    """The bytes a signed decision covers (canonical JSON: replaying it elsewhere fails)."""
    body = {"v": 1, "run": run_id, "gate": gate, "decision": decision, "by": actor}
    body["reason"] = reason
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _ssh_keygen(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["ssh-keygen", *args], input=data, capture_output=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise SignatureError(
            "ssh-keygen is not installed (OpenSSH ≥ 8.1 signs approvals)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SignatureError("ssh-keygen did not answer in 30 s") from None


def sign(message: bytes, key: Path) -> str:
    """An armored SSH signature of ``message`` by the private ``key`` (no passphrase prompt:
    an agent-held or unencrypted key)."""
    if not key.is_file():
        raise SignatureError(f"no signing key at {key}")
    done = _ssh_keygen(["-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE], message)
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0 or "BEGIN SSH SIGNATURE" not in out:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise SignatureError(f"cannot sign with {key}: {why[-1] if why else 'ssh-keygen failed'}")
    return out


@lean(frozen=True)
class Verified:
    principal: str
    fingerprint: str  # the key's SHA256 fingerprint: one key is one person


def verify(message: bytes, signature: str, principal: str, allowed_signers: Path) -> Verified:
    """Check ``signature`` is ``principal``'s over ``message`` per ``allowed_signers``."""
    if not allowed_signers.is_file():
        raise SignatureError(f"allowed signers file not found: {allowed_signers}")
    import tempfile  # only a signed vote needs it (it brings random, hashlib's SHA-512)

    with tempfile.NamedTemporaryFile("w", suffix=".sig", delete=False) as fh:
        fh.write(signature)
        sig_path = fh.name
    try:
        args = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE]
        done = _ssh_keygen([*args, "-s", sig_path], message)
    finally:
        os.unlink(sig_path)
    text = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    match = _GOOD.search(text)
    if done.returncode != 0 or match is None or match["who"] != principal:
        raise SignatureError(
            f"the signature is not {principal!r}'s per {allowed_signers} "
            "(signed by a key not listed for that name, or over other content)"
        )
    return Verified(principal, match["fp"])


def allowed_signers_path(settings: object) -> Path | None:
    value = getattr(settings, "allowed_signers", None)
    return Path(os.path.expanduser(value)) if value else None


def prove(
    run_id: str, gate: str, signal: object, settings: object
) -> tuple[Verified | None, str | None]:
    """``(proof, None)`` when a decision signal really is its actor's, else ``(None, why)``.

    A signed signal is checked against the allowed signers; an unsigned one counts only
    in the name of the identity this process vouches for (its OS account or CI actor), so
    a row written straight into the signals table in anyone else's name approves nothing.
    """
    actor = str(getattr(signal, "actor", ""))
    kind = str(getattr(signal, "kind", ""))
    reason = str(getattr(signal, "reason", ""))
    data = getattr(signal, "data", None) or {}
    signature = data.get("signature") if isinstance(data, dict) else None
    if isinstance(signature, str) and signature:
        path = allowed_signers_path(settings)
        if path is None:
            return None, "a signed decision, but no allowed_signers file in the config to check it"
        message = approval_message(run_id, gate, kind, actor, reason)
        try:
            return verify(message, signature, actor, path), None
        except SignatureError as exc:
            return None, str(exc)
    if unverified_names():
        return None, None
    me = local_identity()
    if actor != me:
        return None, (
            f"an unsigned decision in the name of {actor!r} (this runner vouches only for "
            f"{me!r}): sign it with that person's SSH key (`quarterdeck approve RUN GATE "
            "--as NAME --sign KEY`, checked against allowed_signers)"
        )
    return None, None
