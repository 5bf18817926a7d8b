"""Where Quarterdeck keeps state and what it reads from config files and the environment.

State lives in ``$QUARTERDECK_HOME`` (default ``$XDG_STATE_HOME/quarterdeck``). Config is
merged from the user's ``$XDG_CONFIG_HOME/quarterdeck/config.yaml`` and the project's
``.quarterdeck/config.yaml`` (project wins), then environment variables. Credentials (an
LLM API key, SSH keys) come from here, never from a workflow file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quarterdeck.core.definition.loader import load_yaml, parse_model, read_text
from quarterdeck.core.factories import empty_list
from quarterdeck.core.identity import ci_actor, local_identity
from quarterdeck.core.locations import config_home, project_dir


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class LLMSettings(_Section):
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str = "QUARTERDECK_LLM_API_KEY"
    timeout: float = 60.0
    max_retries: int = 4


class MetricsSettings(_Section):
    namespace: str = "quarterdeck"


class SSHSettings(_Section):
    known_hosts: str | None = None
    client_keys: list[str] = Field(default_factory=empty_list)
    username: str | None = None
    use_agent: bool = True
    passphrase_env: str | None = Field(
        default=None, description="Env var holding the client keys' passphrase (redacted)"
    )


class CredentialSettings(_Section):
    """Where one credential may be sent (``credentials: {github: {hosts: [...]}}``)."""

    hosts: list[str] = Field(default_factory=empty_list, description="Hosts it may be sent to")
    env: str | None = Field(default=None, description="Env var holding it (redacted)")


class ListenSettings(_Section):
    """``quarterdeck listen``: who may start incident runs and how many at once."""

    token: str | None = None
    token_env: str = "QUARTERDECK_LISTEN_TOKEN"
    username: str | None = Field(default=None, description="Basic auth user (else bearer)")
    max_body: int = Field(default=256 * 1024, ge=1024)
    rate_per_minute: int = Field(default=30, ge=1)
    max_concurrent: int = Field(default=2, ge=1)
    label_inputs: list[str] = Field(
        default_factory=empty_list, description="Inputs alert labels may fill (never override -i)"
    )


class Settings(_Section):
    """The merged content of config files."""

    user: str | None = None
    groups: dict[str, list[str]] = Field(default_factory=dict)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    ssh: SSHSettings = Field(default_factory=SSHSettings)
    report_dir: str | None = None
    github: dict[str, str] = Field(default_factory=dict)
    pypi: dict[str, str] = Field(
        default_factory=dict,
        description="Package index credentials: url, username, password, token",
    )
    logseq_graph: str | None = None
    budget_policy: str | None = None
    release: dict[str, Any] = Field(
        default_factory=dict,
        description="Release defaults (preset, bump_rules, squash_bodies, tag_prefix); "
        "checked by the release actions",
    )
    credentials: dict[str, CredentialSettings] = Field(default_factory=dict)
    allowed_signers: str | None = Field(
        default=None,
        description="ssh-keygen allowed-signers file (git's format) for signed approvals",
    )
    listen: ListenSettings = Field(default_factory=ListenSettings)
    output_journal_cap: int = Field(
        default=1024 * 1024, ge=1024, description="Bytes of a step's output journaled"
    )
    durability: Literal["normal", "full"] = Field(
        default="normal",
        description="normal: every commit survives a killed process; full: fsync every "
        "commit too (survives a power cut; costs more per step)",
    )


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(start: Path | None = None) -> Settings:
    """Merge user and project config files; errors name file and line."""
    merged: dict[str, Any] = {}
    candidates = [config_home() / "config.yaml"]
    proj = project_dir(start)
    if proj is not None:
        candidates.append(proj / "config.yaml")
    for path in candidates:
        if path.is_file():
            data, source = load_yaml(read_text(path), str(path))
            parse_model(Settings, data, source, "config")  # located errors per file
            signers = data.get("allowed_signers") if isinstance(data, dict) else None
            if isinstance(signers, str) and not Path(os.path.expanduser(signers)).is_absolute():
                data = {**data, "allowed_signers": str(path.parent / signers)}  # next to it
            merged = _deep_merge(merged, data)
    return Settings.model_validate(merged)


def current_user(explicit: str | None = None, settings: Settings | None = None) -> str:
    """Who says they are acting: ``--as``, ``$QUARTERDECK_USER``, the CI actor (in CI),
    config, else the OS account. Only the CI actor and the OS account are vouched for by
    this process (:func:`quarterdeck.core.identity.local_identity`); a decision in any
    other name needs a signature (core/identity.py)."""
    if explicit:
        return explicit
    if os.environ.get("QUARTERDECK_USER"):
        return os.environ["QUARTERDECK_USER"]
    actor = ci_actor()
    if actor:
        return actor
    if settings is not None and settings.user:
        return settings.user
    return local_identity()
