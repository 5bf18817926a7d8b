"""Every credential an action may read, and where each one may be sent.

Two promises hang on this module. Redaction: the runner registers every value named here
before the first event, so a token printed by a tool, echoed by a server or written as an
output key is masked everywhere (journal, reports, events, annotations, spans). Child
processes: these variables are removed from the environment of every process a step
starts, unless the step names one in ``secrets:``. A name is a credential when Quarterdeck
reads it to authenticate (``QUARTERDECK_PYPI_TOKEN``, ``GITHUB_TOKEN``, an ``*_env``
indirection in a step, ``llm.api_key_env``, ``ssh.passphrase_env``) or when it looks like
one (``*_TOKEN``, ``*_PASSWORD``, ``*_SECRET``, ``*_API_KEY``, ``*_PASSPHRASE``): a
project's own secrets get the same protection without being listed.

Destinations: a credential goes only to the hosts its config entry names
(``credentials: {github: {hosts: [...]}}``), and never over plain http to a host that is
not loopback; :func:`check_destination` is called wherever an action attaches one.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from quarterdeck.core.errors import NonRetryableError

# variables Quarterdeck itself reads to authenticate somewhere
KNOWN_CREDENTIAL_VARS = (
    "QUARTERDECK_PYPI_TOKEN",
    "QUARTERDECK_PYPI_PASSWORD",
    "TWINE_PASSWORD",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "QUARTERDECK_LLM_API_KEY",
    "OPENAI_API_KEY",
    "QUARTERDECK_SSH_PASSPHRASE",
    "QUARTERDECK_LISTEN_TOKEN",
    "QUARTERDECK_NOTIFY_TOKEN",
)

_LOOKS_SECRET = re.compile(
    r"(^|_)(TOKEN|PASSWORD|PASSWD|SECRET|API_?KEY|PASSPHRASE|PRIVATE_KEY|CREDENTIALS?"
    r"|ACCESS_KEY|SECRET_KEY|AUTH_TOKEN)$",
    re.IGNORECASE,
)
# a variable that only *looks* like a credential (FOO_TOKEN=true) is masked in output only
# when its value is long enough to be one: short values would mask ordinary words
_GUESSED_MIN = 8

# the hosts each built-in credential goes to when the config does not say
DEFAULT_HOSTS: dict[str, tuple[str, ...]] = {
    "github": ("api.github.com", "uploads.github.com"),
    "pypi": ("upload.pypi.org", "test.pypi.org", "pypi.org"),
    "llm": ("api.openai.com",),
}


@functools.lru_cache(maxsize=4096)
def looks_like_credential(name: str) -> bool:
    return name in KNOWN_CREDENTIAL_VARS or bool(_LOOKS_SECRET.search(name))


def _step_env_refs(workflow: Any) -> set[str]:
    """Names given to ``*_env`` parameters anywhere in the workflow (``password_env: X``)."""
    names: set[str] = set()
    if workflow is None:
        return names
    stages = list(getattr(workflow, "stages", []) or [])
    pending: list[Any] = []
    for stage in stages:
        pending.extend(getattr(stage, "steps", []) or [])
        pending.extend(getattr(stage, "on_failure", []) or [])
    while pending:
        step = pending.pop()
        pending.extend(getattr(step, "fallback", []) or [])
        params = getattr(step, "with_", None)
        if params is None:
            params = getattr(step, "params", None)
        if type(params) is not dict and not isinstance(params, Mapping):  # dict: no ABC check
            continue
        for key, value in params.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                names.add(value)
    return names


def named_credentials(settings: Any = None, workflow: Any = None) -> frozenset[str]:
    """The variables Quarterdeck reads to authenticate, by name (computed once a run)."""
    named: set[str] = set(KNOWN_CREDENTIAL_VARS) | _step_env_refs(workflow)
    llm = getattr(settings, "llm", None)
    if llm is not None and getattr(llm, "api_key_env", None):
        named.add(llm.api_key_env)
    ssh = getattr(settings, "ssh", None)
    if ssh is not None and getattr(ssh, "passphrase_env", None):
        named.add(ssh.passphrase_env)
    listen = getattr(settings, "listen", None)
    if listen is not None and getattr(listen, "token_env", None):
        named.add(listen.token_env)
    for entry in (getattr(settings, "credentials", None) or {}).values():
        env_name = getattr(entry, "env", None)
        if env_name:
            named.add(env_name)
    return frozenset(named)


def credential_env_names(
    environ: Mapping[str, str], named: frozenset[str] = frozenset()
) -> set[str]:
    """Every variable in ``environ`` that holds (or looks like it holds) a credential."""
    return {name for name in environ if name in named or looks_like_credential(name)}


def credential_values(
    environ: Mapping[str, str] | None = None,
    settings: Any = None,
    workflow: Any = None,
    named: frozenset[str] | None = None,
) -> list[str]:
    """The values to register with the redactor: env credentials and config secrets.
    ``named``: ``named_credentials(settings, workflow)`` when the caller has it already."""
    env = os.environ if environ is None else environ
    if named is None:
        named = named_credentials(settings, workflow)
    values = [
        env[name]
        for name in credential_env_names(env, named)
        if env[name] and (name in named or len(env[name]) >= _GUESSED_MIN)
    ]
    llm = getattr(settings, "llm", None)
    if llm is not None and getattr(llm, "api_key", None):
        values.append(llm.api_key)
    for section in ("github", "pypi"):
        for key, value in (getattr(settings, section, None) or {}).items():
            if key in ("url", "api_url", "username", "repository_url", "index_url"):
                continue
            if value:
                values.append(str(value))
    listen = getattr(settings, "listen", None)
    if listen is not None and getattr(listen, "token", None):
        values.append(listen.token)
    return values


# -- destinations -------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings: Any, credential: str, extra: Iterable[str] = ()) -> set[str]:
    """The hosts ``credential`` may be sent to: its config entry, else the defaults.

    Loopback hosts are always allowed (this machine: the demo's index, test servers)."""
    entry = (getattr(settings, "credentials", None) or {}).get(credential)
    hosts = getattr(entry, "hosts", None)
    chosen = set(hosts) if hosts else set(DEFAULT_HOSTS.get(credential, ()))
    return {h.lower() for h in (*chosen, *extra)}


def credential_value(settings: Any, credential: str) -> str | None:
    """The value of a credential named in the config (``credentials.NAME.env``)."""
    entry = (getattr(settings, "credentials", None) or {}).get(credential)
    env_name = getattr(entry, "env", None)
    if entry is None or not env_name:
        raise NonRetryableError(
            f"no credential {credential!r} in the config: add credentials.{credential} with "
            "`env:` (the variable holding it) and `hosts:` (where it may be sent)"
        )
    return os.environ.get(env_name) or None


def check_destination(
    settings: Any, credential: str, url: str, *, extra_hosts: Iterable[str] = ()
) -> None:
    """Refuse to send ``credential`` to ``url`` unless its host is allowed and the
    transport protects it (https, or http to a loopback host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = allowed_hosts(settings, credential, extra_hosts)
    where = f"{parts.scheme}://{parts.netloc}"
    if host not in allowed and not is_loopback(host):
        shown = ", ".join(sorted(allowed)) or "none"
        raise NonRetryableError(
            f"refusing to send the {credential} credential to {where}: not one of its hosts "
            f"({shown}) — add the host to credentials.{credential}.hosts in the config"
        )
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
        raise NonRetryableError(
            f"refusing to send the {credential} credential over {parts.scheme}:// to {where}: "
            "use https (plain http is allowed only to a loopback host)"
        )
