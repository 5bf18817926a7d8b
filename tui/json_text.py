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
# rendered apart (a hole): a container that is not empty, or any container of a subclass,
# whose emptiness json.dumps asks of it (len) where the C encoder reads its storage
_EXACT = frozenset(_CONTAINERS)
_SCALARS = frozenset({str, int, float, bool, type(None)})  # most values: no container
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
    try:
        return _render(data, 0)
    except RecursionError:  # a cycle, or a depth json.dumps may still reach: its answer
        return json.dumps(data, indent=2, default=str)


def _render(o: Any, depth: int) -> str:
    if not o:
        return "{}" if isinstance(o, dict) else "[]"
    if type(o) is list and len(o) > 1 and all(type(v) is dict and v for v in o):
        # a list of objects (a stage's steps): all of them in one call, see _render_dicts
        inside = "  " * (depth + 1)
        items = _render_dicts(o, depth + 1)
        between = f",\n{inside}"
        return f"[\n{inside}{between.join(items)}\n{'  ' * depth}]"  # one copy of the text
    holes: list[Any] = []
    shallow: Any
    if isinstance(o, dict):
        shallow = {}
        for key, value in o.items():
            if isinstance(value, _CONTAINERS) and (value or type(value) not in _EXACT):
                holes.append(value)
                value = _HOLE
            shallow[key] = value
    else:
        shallow = []
        for value in o:
            if isinstance(value, _CONTAINERS) and (value or type(value) not in _EXACT):
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


def _render_dicts(dicts: list[dict[Any, Any]], depth: int) -> list[str]:
    """``_render(d, depth)`` of each of ``dicts`` (non-empty), encoded in one call: a list of
    their shallow copies, whose item separator is the one inside each of them. Between two
    of them the text is ``},`` newline indentation ``{``, which nothing inside one can be
    (a key starts with a quote, and a string's newlines are escaped). Their containers are
    rendered the same way, a level deeper, all at once, and put in their markers' places."""
    uniform = _render_uniform(dicts, depth)
    if uniform is not None:
        return uniform
    holes: list[Any] = []
    hole = holes.append
    shallow = [
        {
            k: v
            if type(v) in _SCALARS
            or not (isinstance(v, _CONTAINERS) and (v or type(v) not in _EXACT))
            else (hole(v) or _HOLE)
            for k, v in d.items()
        }
        for d in dicts
    ]
    inside = "  " * depth
    text = "".join(_encoder(depth)(shallow, 0))
    inners = text[2:-2].split(f"}},\n{inside}  {{")
    if len(inners) != len(dicts) or (holes and text.count(_HOLE_JSON) != len(holes)):
        return [_render(d, depth) for d in dicts]  # the marker's text in the data itself
    if not holes:
        rendered: list[str] = []
    elif all(type(h) is dict for h in holes) and len(holes) > 1:
        rendered = _render_dicts(holes, depth + 1)
    else:
        rendered = [_render(h, depth + 1) for h in holes]
    out = []
    at = 0
    for inner in inners:
        if holes and _HOLE_JSON in inner:
            parts = inner.split(_HOLE_JSON)
            filled = [parts[0]]
            for part in parts[1:]:
                filled.append(rendered[at])
                filled.append(part)
                at += 1
            inner = "".join(filled)
        out.append(f"{{\n{inside}  {inner}\n{inside}}}")
    return out


_FLAT: Any = None  # the C encoder whose item separator is a NUL (see _render_uniform)


def _render_uniform(dicts: list[dict[Any, Any]], depth: int) -> list[str] | None:
    """``_render_dicts`` of objects that all have the same string keys in the same order (a
    stage's steps, their outputs), or None for any other list. Every value is encoded in
    one C encoder call as one flat list whose item separator is a NUL, which no encoded
    value can hold (a string's control characters are escaped), so splitting at it gives
    each value's text; each non-empty container stands in as ``null`` there and is rendered
    a level deeper, all of them at once. Each object is then its keys' texts and its
    values' texts, filled into one template (no text from the data is split or parsed)."""
    global _FLAT
    keys = tuple(dicts[0])
    if not keys or any(type(k) is not str for k in keys):
        return None
    width = len(keys)
    for d in dicts:
        if len(d) != width or tuple(d) != keys:
            return None
    flat = [v for d in dicts for v in d.values()]
    scalar = _SCALARS.__contains__
    at = []
    for first in range(width):  # a key whose values are all scalars (most) is passed over
        if not _SCALARS.issuperset(map(type, flat[first::width])):
            at += [
                i
                for i in range(first, len(flat), width)
                if not scalar(type(v := flat[i]))
                and isinstance(v, _CONTAINERS)
                and (v or type(v) not in _EXACT)
            ]  # a non-empty container
    at.sort()
    holes = [flat[i] for i in at]
    for i in at:
        flat[i] = None
    if _FLAT is None:
        _FLAT = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
            {}, str, json.encoder.encode_basestring_ascii, None, ": ", "\x00", False, False, True
        )
    texts = "".join(_FLAT(flat, 0)).split("\x00")
    texts[0] = texts[0][1:]  # the list's brackets cut off its ends (not off a copy of it)
    texts[-1] = texts[-1][:-1]
    if len(texts) != len(flat):
        return None  # not what the encoder makes; the general way
    if holes:
        if len(holes) > 1 and all(type(h) is dict for h in holes):
            rendered = _render_dicts(holes, depth + 1)
        else:
            rendered = [_render(h, depth + 1) for h in holes]
        for i, text in zip(at, rendered, strict=True):
            texts[i] = text
    # each object is its keys' texts with its values' between them. All of them are made
    # in one join (no call per object): a NUL before each object, which nothing encoded
    # holds, and the whole split there
    inside = "  " * (depth + 1)
    close = f"\n{'  ' * depth}}}"
    names = [json.encoder.encode_basestring_ascii(k) for k in keys]
    lead = [f",\n{inside}{name}: " for name in names]
    lead[0] = f"{close}\x00{{\n{inside}{names[0]}: "
    pieces = [""] * (2 * len(texts))
    pieces[0::2] = lead * len(dicts)
    pieces[1::2] = texts
    pieces[0] = lead[0][len(close) + 1 :]  # the first object: nothing before it
    pieces.append(close)
    out = "".join(pieces).split("\x00")
    return out if len(out) == len(dicts) else None
