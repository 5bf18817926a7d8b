"""``json.dumps(data, indent=2, default=str)``, the same text, faster.

``json.dumps`` with ``indent`` runs Python's pure-Python encoder (the C one only writes
without indentation): about a third of ``show --json``'s time on a large run. Here each
container goes to the C encoder in one call, its item separator carrying the newline and
indentation of its depth, with every non-empty container inside it stood in for by a
marker, then rendered one level deeper and put in the marker's place. Data that contains
the marker's own text is encoded the plain way. ``tests/tui/test_show_json_text.py`` holds
the output to ``json.dumps``'s, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

_CONTAINERS = (dict, list, tuple)
_HOLE = object()
_HOLE_TEXT = "\x00quarterdeck-hole\x00"
_HOLE_JSON = json.encoder.encode_basestring_ascii(_HOLE_TEXT)
_ENCODERS: dict[int, Any] = {}


def _default(value: Any) -> str:
    return _HOLE_TEXT if value is _HOLE else str(value)


def _encoder(depth: int) -> Any:
    encode = _ENCODERS.get(depth)
    if encode is None:
        encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
            {},
            _default,
            json.encoder.encode_basestring_ascii,
            None,
            ": ",
            ",\n" + "  " * (depth + 1),
            False,
            False,
            True,
        )
        _ENCODERS[depth] = encode
    return encode


def dumps_indented(data: Any) -> str:
    """Exactly ``json.dumps(data, indent=2, default=str)``."""
    if json.encoder.c_make_encoder is None or not isinstance(data, _CONTAINERS):  # type: ignore[attr-defined]
        return json.dumps(data, indent=2, default=str)
    return _render(data, 0)


def _render(o: Any, depth: int) -> str:
    if not o:
        return "{}" if isinstance(o, dict) else "[]"
    holes: list[Any] = []
    shallow: Any
    if isinstance(o, dict):
        shallow = {}
        for key, value in o.items():
            if isinstance(value, _CONTAINERS) and value:
                holes.append(value)
                value = _HOLE
            shallow[key] = value
    else:
        shallow = []
        for value in o:
            if isinstance(value, _CONTAINERS) and value:
                holes.append(value)
                value = _HOLE
            shallow.append(value)
    text = "".join(_encoder(depth)(shallow, 0))
    text = f"{text[0]}\n{'  ' * (depth + 1)}{text[1:-1]}\n{'  ' * depth}{text[-1]}"
    if not holes:
        return text
    parts = text.split(_HOLE_JSON)
    if len(parts) != len(holes) + 1:  # the marker's text in the data itself: the slow way
        plain = json.dumps(o, indent=2, default=str)
        return plain.replace("\n", "\n" + "  " * depth)
    out = [parts[0]]
    for hole, part in zip(holes, parts[1:], strict=True):
        out.append(_render(hole, depth + 1))
        out.append(part)
    return "".join(out)
