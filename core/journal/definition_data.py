"""The data of a run's validated definition, kept as JSON next to its text (schema v7).

A resume goes on with the definition its run started with. Parsing that text again was
most of what resuming a 10,000-step run cost (YAML, ~0.3 s); reading the same data back
from JSON costs a few milliseconds. With the data go the positions of its stages and
steps (every step's messages name its ``file:line:col``); any other position is found
by parsing the text, only when a message first needs one.

The JSON stands for the text only while both are what ``run`` wrote: a digest ties it to
the text's own hash (``definition_sha256``) and to itself, so a text or a JSON changed in
the store since is never used through it (the text is then parsed, or validated in full,
as before). It is kept only when it reads back as exactly the data (a definition holding
anything JSON does not keep as is, a YAML date or a non-string key, keeps none, and its
resume parses the text).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

Loc = tuple[Any, ...]
_STEP_LISTS = ("steps", "on_failure")


def _digest(text_sha256: str, body: str) -> str:
    return hashlib.sha256(f"{text_sha256}\n{body}".encode()).hexdigest()


def _positions(data: Any, values: dict[Loc, int]) -> list[list[Any]]:
    """``[*loc, position]`` of every stage and step (fallbacks too) that ``values`` has."""
    out: list[list[Any]] = []
    stages = data.get("stages") if isinstance(data, dict) else None
    for i, stage in enumerate(stages if isinstance(stages, list) else []):
        todo: list[tuple[Loc, Any]] = [(("stages", i), None)]
        if isinstance(stage, dict):
            for key in _STEP_LISTS:
                steps = stage.get(key)
                if isinstance(steps, list):
                    todo += [(("stages", i, key, j), s) for j, s in enumerate(steps)]
        while todo:
            loc, step = todo.pop()
            if loc in values:
                out.append([*loc, values[loc]])
            fallback = step.get("fallback") if isinstance(step, dict) else None
            if isinstance(fallback, list):
                todo += [((*loc, "fallback", k), f) for k, f in enumerate(fallback)]
    return out


def encode(text_sha256: str, data: Any, values: dict[Loc, int]) -> str | None:
    """The column's value for a definition whose text has ``text_sha256``, its data and
    its positions (``SourceMap.values``); None when ``data`` would not read back as itself."""
    try:
        body = json.dumps({"data": data, "at": _positions(data, values)}, separators=(",", ":"))
        if json.loads(body)["data"] != data:
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return f"{_digest(text_sha256, body)}\n{body}"


def decode(text_sha256: str, kept: Any) -> tuple[Any, dict[Loc, int]] | None:
    """The data and the stage and step positions kept for the text with ``text_sha256``,
    or None (none kept, kept for another text, or changed since it was written)."""
    if not isinstance(kept, str):
        return None
    digest, _, body = kept.partition("\n")
    if not body or digest != _digest(text_sha256, body):
        return None
    try:
        found = json.loads(body)
        positions = {tuple(item[:-1]): int(item[-1]) for item in found["at"]}
        return found["data"], positions
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
