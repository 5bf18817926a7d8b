"""Durations as people write them: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``24h``, ``2d``.

:data:`Duration` (the pydantic field type) is built on first use, so the commands that
only print durations (``runs``) do not import pydantic.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")


def parse_duration(value: Any) -> float:
    """Seconds from a duration; numbers are seconds. Raises ``ValueError`` for nonsense."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: use a number with a unit, e.g. 30s, 5m, 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"bad duration {value!r}: must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"bad duration {value!r}: use a number with a unit, e.g. 30s, 5m, 1h30m")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not text or not _WHOLE.fullmatch(text):
        raise ValueError(
            f"bad duration {value!r}: use a number with a unit (ms, s, m, h, d), "
            "e.g. 30s, 5m, 1h30m"
        )
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))


def format_duration(seconds: float | None) -> str:
    """A short human duration: ``850ms``, ``12.3s``, ``4m05s``, ``2h10m``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _duration_type() -> Any:
    from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

    return Annotated[
        float,
        BeforeValidator(parse_duration),
        PlainSerializer(lambda s: s, return_type=float),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*)+$"},
                ],
                "description": "A duration: seconds, or e.g. 500ms, 30s, 5m, 1h30m, 2d",
            }
        ),
    ]


if TYPE_CHECKING:
    Duration = float  # what a model field holds once validated
else:

    def __getattr__(name: str) -> Any:
        if name == "Duration":
            value = globals()["Duration"] = _duration_type()
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
