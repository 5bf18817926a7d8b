"""Incident severities: SEV1 (worst) to SEV5, how people and alerts spell them, and how
often each one owes a status update.

A leaf module: the model, the Alertmanager intake, the metrics and the war room all name
severities the same way, and none of them needs the others for it.
"""

from __future__ import annotations

from typing import Any

SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_SEVERITY = 3
# How often a status update is due, per severity (seconds); SEV4/SEV5: no cadence.
UPDATE_EVERY: dict[int, float] = {1: 15 * 60.0, 2: 30 * 60.0, 3: 60 * 60.0}
# Alertmanager's ``severity`` label → SEV (documented in docs and `listen --help`).
LABEL_SEVERITY: dict[str, int] = {
    "critical": 1,
    "high": 2,
    "error": 2,
    "warning": 3,
    "info": 4,
}


def severity_name(level: int) -> str:
    return f"SEV{level}"


def parse_severity(value: Any) -> int | None:
    """``SEV2``, ``sev2``, ``2`` or an alert label (``critical``…) → 2; None when unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in SEVERITIES else None
    text = str(value).strip().lower()
    if text.startswith("sev"):
        text = text[3:].strip()
    if text.isdigit():
        level = int(text)
        return level if level in SEVERITIES else None
    return LABEL_SEVERITY.get(text)


def label_severity(labels: dict[str, Any]) -> int:
    """The SEV for an alert's labels: ``severity`` critical→1, high/error→2, warning→3,
    info→4, anything else (or none) → 3."""
    raw = str(labels.get("severity", "")).strip().lower()
    return LABEL_SEVERITY.get(raw, DEFAULT_SEVERITY)
