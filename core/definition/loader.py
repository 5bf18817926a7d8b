"""YAML loading that remembers where every value came from.

PyYAML's composer gives each node a start mark; we build plain Python data from the
node tree and keep a map from field path (``("stages", 0, "steps", 1, "uses")``) to
``(line, column)``, so that a pydantic error or a semantic problem can be reported as
``file:line:col: field: message``.

A workflow file is untrusted input (it may come from a pull request or a fuzzer), so
loading it is bounded: PyYAML's event stream (iterative, no recursion) is refused past
nesting deeper than :data:`MAX_DEPTH`, recursive aliases, and aliases that would expand
to more than :data:`MAX_ALIAS_VALUES` values (the "billion laughs" file), and documents
over :data:`MAX_BYTES` or :data:`MAX_NODES` values. A plain document (no
anchors, aliases or merge keys: nearly every workflow) is counted while it is built from
those events, and building stops at the first event past a bound; any other document is
checked by :func:`check_bounds` before its node tree is composed, so the builder only
ever sees a small, finite tree. Values
PyYAML cannot construct (an integer over Python's 4,300-digit limit) and control
characters inside strings become located problems instead of tracebacks.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.reader import ReaderError

from quarterdeck.core.definition.yaml_events import (
    COL_BITS,
    CONTROL,
    FALLBACK,
    STR_TAG,
    OutOfBounds,
    build_from_events,
)
from quarterdeck.core.errors import DefinitionError, Problem
from quarterdeck.core.gc_pause import paused_gc
from quarterdeck.core.lean import lean

Loc = tuple[Any, ...]

MAX_BYTES = (1 << COL_BITS) - 1
"""Largest workflow file read, just under 2 MiB: a 10,000-step workflow written a key per
line is ~1.2 MiB, the bundled ones ~20 KiB; and any column of it fits in a packed
position (:data:`COL_BITS`)."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences (a step in 40 levels of fallbacks fits)."""
MAX_NODES = 250_000
"""Most values a document may hold, each alias counted as one (a 10,000-step workflow
of up to 25 values a step)."""
MAX_ALIAS_VALUES = 100_000
"""Most values a document's aliases may add once expanded (the "billion laughs" file):
what the text holds is bounded by the two above, what its aliases make of it by this."""
# libyaml's parser when PyYAML was built with it (it is in the wheels): ~30x faster than
# the pure-Python one, so a 1,200-step file validates in well under a second
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = STR_TAG
_CONTROL = CONTROL
M = TypeVar("M", bound=BaseModel)


_COL_BITS = COL_BITS
_COL_MASK = (1 << _COL_BITS) - 1


def pack(line: int, col: int) -> int:
    """One int for a 1-based ``(line, col)`` (see :data:`_COL_BITS`)."""
    return line << _COL_BITS | col


def unpack(pos: int) -> tuple[int, int]:
    """The ``(line, col)`` that :func:`pack` made ``pos`` from."""
    return pos >> _COL_BITS, pos & _COL_MASK


@lean
class SourceMap:
    """Where each value (and each mapping key) of a YAML document starts, 1-based.

    Positions are packed ints (:func:`pack`); :meth:`locate` gives ``(line, col)``.
    Key positions are only asked for by messages about a key (unknown, misspelt), so a
    document built from events leaves them out (~4 MiB at 10,000 steps, for the whole
    run) and keeps ``text``: the first such question finds them all from it."""

    file: str
    values: dict[Loc, int] = field(default_factory=dict)
    keys: dict[Loc, int] = field(default_factory=dict)
    text: str | None = field(default=None, repr=False)
    #: ``values`` holds only some positions (a plain document's mappings and sequences, or
    #: those kept with a run's definition, read back as JSON): any other is found by
    #: parsing ``text`` when a message first needs it
    pending: bool = field(default=False, repr=False)

    @classmethod
    def of_text(cls, file: str, text: str, known: dict[Loc, int] | None = None) -> SourceMap:
        """The map of ``text``, knowing ``known`` already (the same positions the text
        gives); the rest are found only when a message first asks for one of them."""
        return cls(file, dict(known or {}), text=text, pending=True)

    def locate(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """The position of ``loc``, or of its nearest ancestor that has one."""
        path = tuple(loc)
        if self.pending and not key and path in self.values:
            return unpack(self.values[path])
        if self.pending and self.text is not None:
            # every position, keys too, in one more parse (the text is dropped after)
            text, self.text, self.pending = self.text, None, False
            found = SourceMap(self.file)
            try:
                with paused_gc():
                    if _from_events(text, found, keys=True) is FALLBACK:
                        found = SourceMap(self.file)
                        _build_from_nodes(text, found)
            except DefinitionError:
                found = SourceMap(self.file)  # not YAML any more: every value at 1:1
            self.values, self.keys = found.values, found.keys
        if key and self.text is not None:
            found = SourceMap(self.file)
            _from_events(self.text, found, keys=True)
            self.keys, self.text = found.keys, None
        if key and path in self.keys:
            return unpack(self.keys[path])
        while path:
            if path in self.values:
                return unpack(self.values[path])
            path = path[:-1]
        return unpack(self.values.get((), pack(1, 1)))

    def problem(self, loc: Loc, message: str, data: Any = None, *, key: bool = False) -> Problem:
        line, col = self.locate(loc, key=key)
        return Problem(self.file, line, col, message, format_path(loc, data))


def format_path(loc: Loc, data: Any = None) -> str:
    """``stages[prepare].steps[bump].with.run`` from a loc, naming list items by id."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and 0 <= part < len(node):
                item = node[part]
                if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
                    label = item["id"]
                node = item
            else:
                node = None
            out += f"[{label}]"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


class _Builder:
    def __init__(self, loader: Any, source: SourceMap) -> None:
        self.loader = loader
        self.source = source
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        mark = node.start_mark
        self.source.values[loc] = (mark.line + 1) << _COL_BITS | (mark.column + 1)
        if type(node) is yaml.ScalarNode:  # most nodes: the value, without the checks below
            return self._construct(node, loc)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._construct(key_node)
                if type(key) is not str:  # nearly every key is one: checked first
                    if not isinstance(key, str | int | float | bool) or key is None:
                        line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                        self.problems.append(
                            Problem(self.source.file, line, col, "keys must be plain scalars")
                        )
                        continue
                    if isinstance(key, bool | int | float):
                        key = str(key).lower() if isinstance(key, bool) else str(key)
                child = (*loc, key)
                mark = key_node.start_mark
                if key in result:
                    first = self.source.keys[child] >> _COL_BITS
                    self.problems.append(
                        Problem(
                            self.source.file,
                            mark.line + 1,
                            mark.column + 1,
                            f"duplicate key {key!r} (first at line {first})",
                            format_path(loc),
                        )
                    )
                    continue
                self.source.keys[child] = (mark.line + 1) << _COL_BITS | (mark.column + 1)
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._construct(node, loc)

    def _construct(self, node: yaml.Node, loc: Loc | None = None) -> Any:
        """A scalar's value; a located problem (and None) when it cannot be one."""
        if node.tag == _STR_TAG and type(node) is yaml.ScalarNode:
            # what SafeConstructor.construct_yaml_str returns, without its dispatch: most
            # values of a workflow are strings, and a 10,000-step file has ~70,000
            value: Any = node.value
        else:
            try:
                value = self.loader.construct_object(node, deep=True)
            except yaml.MarkedYAMLError:
                raise
            except (ValueError, OverflowError, TypeError) as exc:
                line, col = node.start_mark.line + 1, node.start_mark.column + 1
                reason = str(exc).split(";")[0]
                self.problems.append(
                    Problem(
                        self.source.file, line, col, f"bad value: {reason}", format_path(loc or ())
                    )
                )
                return None
        if isinstance(value, str):
            bad = _CONTROL.search(value)
            if bad:
                line, col = node.start_mark.line + 1, node.start_mark.column + 1
                self.problems.append(
                    Problem(
                        self.source.file,
                        line,
                        col,
                        f"control character U+{ord(bad.group()):04X} in a string",
                        format_path(loc or ()),
                    )
                )
        return value


def read_text(path: Path) -> str:
    """The file's text; a clear error for a missing, unreadable, binary or empty file."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DefinitionError([Problem(name, 1, 1, "file not found")]) from None
    except IsADirectoryError:
        raise DefinitionError([Problem(name, 1, 1, "is a directory, not a file")]) from None
    except OSError as exc:
        raise DefinitionError([Problem(name, 1, 1, f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise DefinitionError(
            [Problem(name, 1, 1, f"file too large ({len(raw)} bytes; at most {MAX_BYTES})")]
        )
    if b"\x00" in raw[:8192]:
        raise DefinitionError(
            [Problem(name, 1, 1, "this is a binary file, not YAML (it contains NUL bytes)")]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DefinitionError(
            [Problem(name, line, 1, "not UTF-8 text (is it a binary file?)")]
        ) from None
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise DefinitionError([Problem(name, 1, 1, "the file is empty")])
    return text


def load_yaml(text: str, file: str, *, bounded: bool = True) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain data plus its :class:`SourceMap`.

    ``bounded=False`` skips :func:`check_bounds`, only for a text that already passed it
    (the definition a run was validated with, identified by its journaled hash). A plain
    document's map holds the positions of its mappings and sequences, and finds a
    scalar's from the text when a message first asks.
    """
    with paused_gc():
        return _load_yaml(text, file, bounded)


def _load_yaml(text: str, file: str, bounded: bool) -> tuple[Any, SourceMap]:
    source = SourceMap(file)
    # a plain document is bound-checked while it is built (one parse); anything else is
    # checked by check_bounds from its first event before the node tree is composed
    data = _from_events(text, source, bounded=bounded)
    if data is FALLBACK:
        try:
            if bounded:
                check_bounds(text, file)
        except ReaderError as exc:
            raise DefinitionError([_reader_problem(exc, text, file)]) from None
        except yaml.MarkedYAMLError as exc:
            raise DefinitionError([_marked_problem(exc, file)]) from None
        except yaml.YAMLError as exc:
            raise DefinitionError([Problem(file, 1, 1, f"invalid YAML: {exc}")]) from None
        source = SourceMap(file)
        data = _build_from_nodes(text, source)
    return data, source


def _from_events(
    text: str,
    source: SourceMap,
    *,
    keys: bool = False,
    bounded: bool = False,
) -> Any:
    """A plain document's data from the parser's events (:mod:`.yaml_events`), or
    :data:`FALLBACK`. Key positions only with ``keys``; without, ``source.text`` is set
    so that :meth:`SourceMap.locate` can find them when a message first needs one.
    Scalars' positions only with ``keys`` too; without, the map is ``pending`` and finds
    them from the text the same way.
    ``bounded``: :data:`MAX_DEPTH` and :data:`MAX_NODES` are enforced on the way, with
    :func:`check_bounds`'s messages."""
    loader = _Loader(text)
    builder = _Builder(loader, source)
    try:
        data = build_from_events(
            loader,
            source.values,
            source.keys if keys else None,
            builder._construct,
            (MAX_DEPTH, MAX_NODES) if bounded else None,
            scalars=keys,
        )
    except OutOfBounds as exc:
        raise DefinitionError([Problem(source.file, exc.line, exc.column, exc.message)]) from None
    if data is FALLBACK or builder.problems:
        return FALLBACK
    if not keys:
        source.text = text
        source.pending = True
    return data


def _build_from_nodes(text: str, source: SourceMap) -> Any:
    """The data of any document, from PyYAML's node tree; every problem reported."""
    file = source.file
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DefinitionError([Problem(file, 1, 1, "the file is empty")])
        builder = _Builder(loader, source)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise DefinitionError([_marked_problem(exc, file)]) from None
    except ReaderError as exc:
        raise DefinitionError([_reader_problem(exc, text, file)]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(file, 1, 1, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise DefinitionError(builder.problems)
    return data


def _marked_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    return Problem(file, line, col, f"invalid YAML: {problem}{context}")


def _reader_problem(exc: ReaderError, text: str, file: str) -> Problem:
    """PyYAML's reader names a character offset; people want the line and column."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    col = exc.position - (before.rfind("\n") + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return Problem(file, line, col, f"invalid YAML: control character U+{char:04X} not allowed")


def check_bounds(text: str, file: str) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before building anything.

    Counts the values the document holds (an alias as one) and the values it would hold
    with every alias expanded (an anchor's size is known when its node closes); an alias
    to a node still open is recursive. Raises :class:`DefinitionError` at the offending
    event's position.
    """
    sizes: dict[str, int] = {}
    open_nodes: list[tuple[str | None, int]] = []
    total = 0  # with aliases expanded
    held = 0  # as written

    def refuse(event: yaml.Event, message: str) -> DefinitionError:
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return DefinitionError([Problem(file, line, col, message)])

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor or ""
            if any(name == anchor for name, _ in open_nodes):
                raise refuse(event, f"recursive alias *{anchor} (it refers to itself)")
            total += sizes.get(anchor, 1)
            held += 1
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            held += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            total += 1
            held += 1
            open_nodes.append((event.anchor, total))
            if len(open_nodes) > MAX_DEPTH:
                raise refuse(event, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent) and open_nodes:
            opened, start = open_nodes.pop()
            if opened:
                sizes[opened] = total - start + 1
        if held > MAX_NODES:
            raise refuse(event, f"the document holds more than {MAX_NODES} values")
        if total - held > MAX_ALIAS_VALUES:
            raise refuse(event, f"aliases expand to more than {MAX_ALIAS_VALUES} values")


def _unwrap(annotation: Any) -> Any:
    """The model class inside ``list[X]``, ``dict[str, X]``, ``X | None``..., if any."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
        return None
    return annotation


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that the mapping at ``loc`` is validated against."""
    current: Any = root
    for part in loc:
        current = _strip_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            found = None
            for name, info in current.model_fields.items():
                if part in (name, info.alias):
                    found = info.annotation
                    break
            if found is None:
                return None
            current = found
        elif typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _strip_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    found_model = _unwrap(current)
    return found_model if isinstance(found_model, type) else None


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def field_names(model: type[BaseModel]) -> list[str]:
    """The names a user may write for ``model``'s fields (aliases where set)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def did_you_mean(word: str, candidates: list[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close, else ``""``."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Drop pydantic's union-branch tags that are not part of the data."""
    out: list[Any] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and out[-1:] != [part]:
            # a missing field: keep it so the message can name it
            out.append(part)
            node = None
        else:
            continue
    return tuple(out)


def pydantic_problems(
    exc: ValidationError, model: type[BaseModel], data: Any, source: SourceMap
) -> list[Problem]:
    """Turn pydantic's errors into located, human problems."""
    problems: list[Problem] = []
    seen: set[tuple[Loc, str]] = set()
    for error in exc.errors(include_url=False):
        loc = _clean_loc(tuple(error["loc"]), data)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            parent = _model_at(model, loc[:-1])
            hint = did_you_mean(key, field_names(parent)) if parent else ""
            allowed = f" (allowed: {', '.join(field_names(parent))})" if parent and not hint else ""
            message = f"unknown key {key!r}{hint}{allowed}"
            problem = source.problem(loc, message, data, key=True)
            problem = Problem(
                problem.file, problem.line, problem.column, message, format_path(loc[:-1], data)
            )
        elif kind == "missing":
            name = str(loc[-1]) if loc else "?"
            message = f"missing required field {name!r}"
            line, col = source.locate(loc[:-1])
            problem = Problem(source.file, line, col, message, format_path(loc[:-1], data))
        else:
            msg = error["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            value = error.get("input")
            if kind not in ("value_error",) and not isinstance(value, dict | list):
                msg = f"{msg} (got {value!r})"
            problem = source.problem(loc, msg[:1].lower() + msg[1:], data)
        sig = ((problem.line, problem.column), problem.message)
        if sig not in seen:
            seen.add(sig)
            problems.append(problem)
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


def parse_model(model: type[M], data: Any, source: SourceMap, what: str) -> M:
    """Validate ``data`` against ``model``; raise :class:`DefinitionError` with locations."""
    if not isinstance(data, dict):
        raise DefinitionError(
            [Problem(source.file, 1, 1, f"a {what} file must be a YAML mapping (key: value)")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc, model, data, source)) from None


def load_file(path: Path, model: type[M], what: str) -> tuple[M, Any, SourceMap]:
    """Read, parse and validate one file; raise :class:`DefinitionError` on any problem."""
    text = read_text(path)
    data, source = load_yaml(text, str(path))
    return parse_model(model, data, source, what), data, source
