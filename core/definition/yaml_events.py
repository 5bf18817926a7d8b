"""Plain YAML documents built straight from the parser's events (see
:func:`build_from_events`); everything else goes through the loader's node tree.

Kept apart from :mod:`quarterdeck.core.definition.loader` (which calls it), so it knows
nothing of source maps or problems: it only builds, or says it cannot."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

Loc = tuple[Any, ...]
Construct = Callable[[yaml.ScalarNode, "Loc | None"], Any]

STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
COL_BITS = 21
"""A position is kept as one int, ``line << COL_BITS | column`` (a column is below
``1 << COL_BITS``: the loader's ``MAX_BYTES`` is set from it). Runs journal the positions
of their definition packed this way (core/journal/definition_data.py), so it never
changes: a run resumed by a later version reads them back. A 10,000-step file has
~250,000 positions, and a
``(line, col)`` tuple for each held ~7 MiB more for the whole run than one int does."""

FALLBACK: Any = object()
_FALLBACK_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})


class _Fallback(Exception):
    """Not the plain case: the node tree path builds it (and reports its problems)."""


class OutOfBounds(Exception):
    """The document nests deeper or holds more values than the bounds allow; ``line`` and
    ``column`` (1-based) are where the event that crossed the bound starts."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def build_from_events(
    loader: Any,
    values: dict[Loc, int],
    keys: dict[Loc, int] | None,
    construct: Construct,
    bounds: tuple[int, int] | None = None,
    *,
    scalars: bool = True,
) -> Any:
    """The data of a plain document straight from the parser's events, or :data:`FALLBACK`.

    Composing the node tree first (two marks per node) took ~50 MiB for a 10,000-step
    file before a value was built, and the process keeps that memory after the tree is
    freed. Built from the events, only the data and the positions are ever held. This
    handles the common case only: one document, no anchors or aliases, no merge keys,
    scalar keys, nothing the builder would report. Anything else (and any YAML error)
    returns :data:`FALLBACK`, and the node tree path builds it or reports it exactly as
    before. Positions go to ``values`` and (when given) ``keys``; ``construct`` makes
    every scalar that is not a plain string (and records any problem with it: the caller
    falls back when it recorded one). ``loader`` is disposed of.

    ``bounds`` (deepest nesting, most values) are checked on the way, as the loader's
    ``check_bounds`` counts them (without aliases, every value event is one value): the
    first event past either raises :class:`OutOfBounds`, so a plain document is parsed
    once, not once for the check and again for the data. Whatever falls back is checked
    by the caller from the start, so a bound is never skipped.

    ``scalars=False`` keeps the positions of mappings and sequences only (every stage and
    step: what a run names in its messages), not of each scalar: ~70% of a workflow's
    values, each a loc tuple and an entry held for the whole run. A message about a scalar
    is an error's, and the caller finds it again from the text then.
    """
    # each frame: [container, its loc, key awaited (maps), the key just read]
    stack: list[list[Any]] = []
    root: Any = FALLBACK
    documents = 0
    max_depth, max_values = bounds if bounds is not None else (-1, -1)
    total = 0
    # the implicit tag of each (value, implicit) resolved: a safe loader's resolution
    # depends on nothing else (no path resolvers), and keys come back on every step
    tags: dict[tuple[str, Any], str] = {}
    # looked up once: this loop runs ~17 times per step of a workflow
    get_event, resolve, search = loader.get_event, loader.resolve, CONTROL.search
    scalar_event, map_start = yaml.ScalarEvent, yaml.MappingStartEvent
    seq_start, scalar_node = yaml.SequenceStartEvent, yaml.ScalarNode
    try:
        while True:
            event = get_event()
            kind = type(event)
            if kind is scalar_event or kind is map_start or kind is seq_start:
                if event.anchor is not None:
                    raise _Fallback
                mark = event.start_mark
                if max_values >= 0:
                    total += 1
                    if kind is not scalar_event and len(stack) >= max_depth:
                        message = f"nested deeper than {max_depth} levels"
                        raise OutOfBounds(mark.line + 1, mark.column + 1, message)
                    if total > max_values:
                        message = f"the document holds more than {max_values} values"
                        raise OutOfBounds(mark.line + 1, mark.column + 1, message)
                tag: Any = None
                if kind is scalar_event:
                    tag = event.tag
                    if tag is None or tag == "!":
                        found = (event.value, event.implicit)
                        tag = tags.get(found)
                        if tag is None:
                            tag = tags[found] = resolve(scalar_node, event.value, event.implicit)
                frame = stack[-1] if stack else None
                if frame is not None and frame[2]:  # a mapping's key
                    if kind is not scalar_event or tag in _FALLBACK_TAGS:
                        raise _Fallback
                    if tag == STR_TAG:
                        key = event.value
                        if search(key):
                            raise _Fallback
                    else:
                        key = _constructed(loader, construct, event, tag, None)
                        if type(key) is not str:
                            if key is None or not isinstance(key, bool | int | float):
                                raise _Fallback
                            key = str(key).lower() if isinstance(key, bool) else str(key)
                    if key in frame[0]:
                        raise _Fallback
                    if keys is not None:
                        keys[(*frame[1], key)] = (mark.line + 1) << COL_BITS | (mark.column + 1)
                    frame[2], frame[3] = False, key
                    continue
                loc: Loc | None = None  # built only when it is kept or needed
                if scalars or kind is not scalar_event or tag != STR_TAG:
                    if frame is None:
                        loc = ()
                    elif type(frame[0]) is list:
                        loc = (*frame[1], len(frame[0]))
                    else:
                        loc = (*frame[1], frame[3])
                    if scalars or kind is not scalar_event:
                        values[loc] = (mark.line + 1) << COL_BITS | (mark.column + 1)
                if kind is scalar_event:
                    if tag == STR_TAG:
                        value: Any = event.value
                        if search(value):
                            raise _Fallback
                    else:
                        value = _constructed(loader, construct, event, tag, loc)
                else:
                    value = {} if kind is map_start else []
                if frame is None:
                    root = value
                elif type(frame[0]) is list:
                    frame[0].append(value)
                else:
                    frame[0][frame[3]] = value
                    frame[2] = True
                if kind is not scalar_event:
                    stack.append([value, loc, kind is map_start, None])
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                stack.pop()
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Fallback
            elif kind is yaml.StreamEndEvent:
                break
            elif kind is yaml.AliasEvent:
                raise _Fallback
    except (_Fallback, yaml.YAMLError, ValueError, OverflowError, TypeError):
        return FALLBACK
    finally:
        loader.dispose()
    return root


def _constructed(loader: Any, construct: Construct, event: Any, tag: str, loc: Loc | None) -> Any:
    """A scalar that is not a plain string, constructed as the composer's node would be."""
    if tag == INT_TAG:
        digits = event.value
        # a plain decimal (no sign, base prefix, underscore or leading zero): what the
        # constructor's int() would give, without a node and its dispatch
        if digits.isascii() and digits.isdigit() and len(digits) < 19 and digits[0] != "0":
            return int(digits)
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    value = construct(node, loc)
    loader.constructed_objects.pop(node, None)  # (the constructor's cache would keep it)
    return value
