"""Who may start incident runs through ``quarterdeck listen``, and how fast.

The webhook starts runs that touch production (triage over SSH, deploys, rollbacks), so a
request must prove it comes from the operator's Alertmanager: a bearer token or basic
auth (what Alertmanager's ``http_config`` sends), compared in constant time. Only
``application/json`` bodies are taken, which a web page cannot send cross-site without a
CORS preflight this server never answers; bodies have a size limit and authenticated
requests a rate limit (a sliding minute). A refusal says what was wrong, never the secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quarterdeck.core.errors import InvalidInput

Refusal = tuple[int, dict[str, Any], dict[str, str]]  # status, body, extra headers


@dataclass
class ListenGuard:
    """The checks a webhook request passes before its body is read."""

    token: str | None
    username: str | None = None  # basic auth user; None: bearer token
    max_body: int = 256 * 1024
    rate_per_minute: int = 30
    clock: Callable[[], float] = time.monotonic
    _recent: deque[float] = field(default_factory=deque)

    @classmethod
    def from_settings(cls, listen: Any, environ: Mapping[str, str] | None = None) -> ListenGuard:
        """The guard ``listen`` runs with; no secret configured is a usage error."""
        env = os.environ if environ is None else environ
        token = getattr(listen, "token", None) or env.get(listen.token_env or "") or None
        if not token:
            raise InvalidInput(
                "listen needs a secret: Alertmanager must authenticate to start runs",
                hint=f"set ${listen.token_env} (or listen.token in the config) and give "
                "Alertmanager the same value in its webhook's http_config "
                "(authorization: {credentials: …}, or basic_auth with listen.username)",
            )
        return cls(
            token=token,
            username=listen.username,
            max_body=listen.max_body,
            rate_per_minute=listen.rate_per_minute,
        )

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        assert self.token is not None
        if self.username is None:
            if scheme.lower() != "bearer":
                return False
            return hmac.compare_digest(value.encode(), self.token.encode())
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.username}:{self.token}".encode()
        return hmac.compare_digest(decoded, expected)

    def check(self, headers: Mapping[str, str]) -> Refusal | None:
        """None when the POST may go on; else the reply that refuses it."""
        if self.token is not None and not self._authorized(headers.get("authorization", "")):
            scheme = "Bearer" if self.username is None else "Basic"
            return (
                401,
                {"error": "authentication required (the listener's token)"},
                {"WWW-Authenticate": f'{scheme} realm="quarterdeck"'},
            )
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return 415, {"error": "Content-Type must be application/json"}, {}
        length = headers.get("content-length")
        if length is None or not length.strip().isdigit():
            return 411, {"error": "Content-Length required"}, {}
        if int(length) > self.max_body:
            return 413, {"error": f"body over {self.max_body} bytes"}, {}
        now = self.clock()
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if len(self._recent) >= self.rate_per_minute:
            wait = max(1, int(60.0 - (now - self._recent[0])) + 1)
            return (
                429,
                {"error": f"over {self.rate_per_minute} requests a minute"},
                {"Retry-After": str(wait)},
            )
        self._recent.append(now)
        return None


def open_guard() -> ListenGuard:
    """No authentication (in-process embedding and tests that build the pieces); the
    ``listen`` command never uses it."""
    return ListenGuard(token=None)
