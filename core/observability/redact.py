"""Keep secrets out of the journal, logs, reports and the screen.

Every value registered here (API keys, secret inputs, tokens from config) is replaced
by ``***`` wherever it appears in event data before the event is committed.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"


class Redactor:
    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret; values shorter than 4 characters are ignored (too noisy)."""
        if not secret or len(secret) < 4 or secret in self._secrets:
            return
        self._secrets.add(secret)
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def longest(self) -> int:
        """The longest registered secret (how much of a split line may hide one)."""
        return max((len(s) for s in self._secrets), default=0)

    def finditer(self, value: str) -> list[re.Match[str]]:
        return [] if self._pattern is None else list(self._pattern.finditer(value))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(MASK, value)

    def obj(self, value: Any) -> Any:
        """Redact every string inside ``value``: dict keys too (an output named after a
        secret is as much a leak as its value), lists and tuples."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.obj(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value
