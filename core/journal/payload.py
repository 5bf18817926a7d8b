"""The machinery behind the typed event payloads of :mod:`quarterdeck.core.journal.events`.

A payload is a frozen dataclass whose fields are the keys of an event's ``data``. Writers
build one and journal ``to_data()``; readers call ``from_data()`` (or ``Payload.of(event)``)
and get typed fields, so a renamed key is a type error rather than a silently empty panel.

``from_data`` is lenient by default, as the journal's readers always were: a key it does
not know is ignored and a missing key reads as the field's ``missing`` value (old journals
and hand-written test events lack some). ``strict=True`` refuses both, which is how a test
proves the runner and the readers agree on every field.

Key order is part of the journal's bytes (and of ``events`` exports), and the runner's
writers never agreed on one order per event type (``step.finished`` alone has five). So a
record remembers the order its keys were given in: a writer's keyword arguments, or the
keys of the data it was read from. ``to_data`` writes those keys first, in that order,
then any other field in field order; a record read from the journal writes back the very
same bytes. Use :meth:`Record.replace`, not :func:`dataclasses.replace`, to keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields
from dataclasses import replace as _replace
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from quarterdeck.core.lean import lean, write_init

Parse = Callable[[Any, bool], Any]


class PayloadError(ValueError):
    """An event's data does not fit its payload type."""


@lean(frozen=True, slots=True)
class _Spec:
    name: str
    key: str
    missing: Any
    parse: Parse | None
    omit: bool


def meta(
    missing: Any = MISSING,
    *,
    key: str | None = None,
    parse: Parse | None = None,
    omit: bool = False,
) -> dict[str, Any]:
    """A payload field's ``metadata`` (a field without any is read and written as is).

    ``missing`` is what a reader gets when the key is absent (by default the field's
    default: give it for a field the constructor requires); ``key`` renames the field in
    the data (``from`` is a keyword); ``parse`` turns a journaled value into the field's
    type (enums, nested records); ``omit`` leaves the key out of ``to_data`` when None
    (writers set it only sometimes).
    """
    return {"missing": missing, "key": key, "parse": parse, "omit": omit}


#: A field writers set only sometimes: None when absent, and left out of ``to_data``.
OMIT = meta(omit=True)


def enum(kind: type[StrEnum]) -> Parse:
    def parse(value: Any, strict: bool) -> Any:
        return kind(value)

    # the compiled reader looks a value up here first (``kind(value)`` costs a few calls)
    parse.members = kind._value2member_map_  # type: ignore[attr-defined]
    return parse


def number(kind: type[int] | type[float]) -> Parse:
    def parse(value: Any, strict: bool) -> Any:
        return kind(value)

    return parse


def list_of(kind: type[Record]) -> Parse:
    def parse(value: Any, strict: bool) -> Any:
        return [kind.from_data(item, strict=strict) for item in value]

    return parse


def dict_of(kind: type[Record]) -> Parse:
    def parse(value: Any, strict: bool) -> Any:
        return {name: kind.from_data(item, strict=strict) for name, item in value.items()}

    return parse


def _copy(value: Any) -> Any:
    return type(value)(value) if isinstance(value, (list, dict)) else value


_R = TypeVar("_R", bound="Record")


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[_R]) -> type[_R]:
    """Make ``cls`` a record: a frozen, slotted, keyword-only dataclass, as type checkers see it.

    At run time ``dataclasses`` only collects the fields and adds the slots; it generates no
    method. :class:`Record` has one ``__eq__``, ``__hash__``, ``__repr__`` and frozen
    ``__setattr__`` for every type, and writes a type's ``__init__`` when the first record
    of it is made. ``dataclasses`` compiles each method it generates as it decorates, about
    0.5 ms per class: for the ~30 event types, most of what importing them cost, paid by
    every command that reads a journal, although a command makes a few types at most.
    """
    made = dataclass(init=False, eq=False, repr=False, slots=True, kw_only=True)(cls)
    made.__init__ = Record.__init__  # type: ignore[method-assign]  # its own, not a base's
    return made


_ORDERS_KEPT = 64
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:  # most values: nothing to convert
        return value
    if isinstance(value, StrEnum):  # the journal holds plain strings, as read back
        return value.value
    if isinstance(value, Record):
        return value.to_data()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict) and any(isinstance(v, Record) for v in value.values()):
        return {name: _plain(item) for name, item in value.items()}
    return value


class Record:
    """A typed view of one JSON object in the journal (a payload, or a part of one).

    Subclasses are declared with :func:`record`."""

    __slots__ = ("_order",)
    _order: tuple[str, ...]  # the field names in the order they were given
    _specs: ClassVar[tuple[_Spec, ...]]
    _keys: ClassVar[frozenset[str]]
    _names: ClassVar[dict[str, str]]  # key -> field name
    _by_name: ClassVar[dict[str, _Spec]]
    # the fields in ``to_data`` order, per order given (a writer gives the same few orders)
    _orders: ClassVar[dict[tuple[str, ...], tuple[_Spec, ...]]]
    # the lenient read of a plain dict, compiled per class on first use (see _compile_reader)
    _reader: ClassVar[Callable[[dict[str, Any]], Any] | None]
    # the field order of data read back, per tuple of its keys (a journal holds few)
    _read_orders: ClassVar[dict[tuple[str, ...], tuple[str, ...]]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        made = super().__new__(cls)
        object.__setattr__(made, "_order", tuple(kwargs))  # frozen: set once, here
        return made

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._specs = ()  # built on first use, once the dataclass has made the fields
        cls._reader = None
        if cls.__doc__ is None:  # else ``dataclasses`` writes one from inspect.signature
            cls.__doc__ = cls.__name__

    def __init__(self, **values: Any) -> None:
        # The first record of its type: write the type's ``__init__`` (as ``dataclasses``
        # would have at import), keep it on the type, and make this record with it. (Each
        # record type starts with this one, so a subtype never inherits a written one.)
        type(self)._compile_init()(self, **values)

    @classmethod
    def _compile_init(cls) -> Callable[..., None]:
        """The ``__init__`` ``dataclasses`` writes for a frozen keyword-only class."""
        return write_init(cls, frozen=True, keyword_only=True)

    # Frozen, as ``dataclasses`` makes a frozen class (the record's own writes use
    # ``object.__setattr__``); copies and pickles set their slots the same way.
    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __setstate__(self, state: Any) -> None:
        slots = state[1] if isinstance(state, tuple) else state
        for name, value in (slots or {}).items():
            object.__setattr__(self, name, value)

    # Equality, hashing and repr are the ones ``dataclasses`` would write (the fields in
    # field order; the key order given is not compared), written once here.
    def _values(self) -> tuple[Any, ...]:
        cls = type(self)
        if not cls._specs:
            cls._build_specs()
        return tuple([getattr(self, spec.name) for spec in cls._specs])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        cls = type(self)
        if not cls._specs:
            cls._build_specs()
        shown = ", ".join(f"{spec.name}={getattr(self, spec.name)!r}" for spec in cls._specs)
        return f"{cls.__qualname__}({shown})"

    @classmethod
    def _build_specs(cls) -> None:
        specs = []
        for f in fields(cls):  # type: ignore[arg-type]
            meta = f.metadata
            missing = meta.get("missing", MISSING)
            if missing is MISSING:
                if f.default is not MISSING:
                    missing = f.default
                elif callable(f.default_factory):
                    missing = f.default_factory()
                else:
                    raise TypeError(f"{cls.__name__}.{f.name}: say what a reader gets when absent")
            specs.append(
                _Spec(
                    f.name,
                    meta.get("key") or f.name,
                    missing,
                    meta.get("parse"),
                    bool(meta.get("omit")),
                )
            )
        cls._specs = tuple(specs)
        cls._keys = frozenset(s.key for s in specs)
        cls._names = {s.key: s.name for s in specs}
        cls._by_name = {s.name: s for s in specs}
        cls._orders = {}
        cls._read_orders = {}

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, strict: bool = False) -> Self:
        """Read journaled data; ``strict`` refuses unknown and missing keys."""
        if type(data) is dict and not strict:
            reader = cls._reader or cls._compile_reader()
            return reader(data)  # type: ignore[no-any-return]
        return cls._read_any(data, strict)

    @classmethod
    def _read_any(cls, data: Mapping[str, Any], strict: bool) -> Self:
        """``from_data`` of any mapping, strict or not, one field at a time; the compiled
        reader's fallback (it gives the same records, or the same errors)."""
        if not isinstance(data, Mapping):
            raise PayloadError(f"{cls.__name__}: expected an object, got {data!r}")
        if not cls._specs:
            cls._build_specs()
        values: dict[str, Any] = {}
        for spec in cls._specs:
            if spec.key in data:
                value = data[spec.key]
                if value is not None and spec.parse is not None:
                    try:
                        value = spec.parse(value, strict)
                    except PayloadError:
                        raise
                    except (TypeError, ValueError, AttributeError) as exc:
                        raise PayloadError(f"{cls.__name__}.{spec.key}: {exc}") from None
            elif strict and not spec.omit:
                raise PayloadError(f"{cls.__name__}: no {spec.key!r}")
            else:
                value = _copy(spec.missing)
            values[spec.name] = value
        if strict:
            unknown = set(data) - cls._keys
            if unknown:
                raise PayloadError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
        read = cls(**values)
        names = cls._names
        object.__setattr__(read, "_order", tuple(names[k] for k in data if k in names))
        return read

    @classmethod
    def _compile_reader(cls) -> Callable[[dict[str, Any]], Any]:
        """The lenient read of a plain dict (every event read back: ``show`` or ``resume`` of
        a 10,000-step run reads ~40,000 records), as one function made for this class.

        Its source is built from the class's own field names and keys (never from journaled
        data), like the ``__init__`` ``dataclasses`` writes: each field is looked up once
        and set as that ``__init__`` sets it, in field order, then the key order (kept per
        distinct tuple of keys). Anything unusual (a value a ``parse`` refuses) goes to
        :meth:`_read_any`, which gives the error it always gave."""
        if not cls._specs:
            cls._build_specs()
        env: dict[str, Any] = {
            "cls": cls,
            "new": object.__new__,
            "put": object.__setattr__,
            "MISS": MISSING,
            "slow": cls._read_any,
            "orders": cls._read_orders,
            "order_of": cls._order_of,
        }
        body = ["def read(data):", "  try:", "    get = data.get", "    r = new(cls)"]
        for i, spec in enumerate(cls._specs):
            env[f"m{i}"] = spec.missing
            body.append(f"    v = get({spec.key!r}, MISS)")
            if isinstance(spec.missing, (list, dict)):
                body.append(f"    if v is MISS: v = type(m{i})(m{i})")
            else:
                body.append(f"    if v is MISS: v = m{i}")
            if spec.parse is not None:
                env[f"p{i}"] = spec.parse
                members = getattr(spec.parse, "members", None)
                if members is not None:
                    env[f"e{i}"] = members
                    body.append("    elif v is not None:")
                    body.append(f"      w = e{i}.get(v, MISS)")
                    body.append(f"      v = p{i}(v, False) if w is MISS else w")
                else:
                    body.append(f"    elif v is not None: v = p{i}(v, False)")
            body.append(f"    put(r, {spec.name!r}, v)")
        body += [
            "    keys = tuple(data)",
            "    order = orders.get(keys)",
            "    put(r, '_order', order_of(keys) if order is None else order)",
            "    return r",
            "  except Exception:",
            "    return slow(data, False)",
        ]
        exec("\n".join(body), env)
        reader: Callable[[dict[str, Any]], Any] = env["read"]
        cls._reader = reader
        return reader

    @classmethod
    def _order_of(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        names = cls._names
        order = tuple(names[k] for k in keys if k in names)
        if len(cls._read_orders) < _ORDERS_KEPT:  # journals read back may hold any order
            cls._read_orders[keys] = order
        return order

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, its keys in this record's order (new ones after)."""
        copy = _replace(self, **changes)  # type: ignore[type-var]
        order = self._given()
        object.__setattr__(copy, "_order", order + tuple(k for k in changes if k not in order))
        return copy

    def _given(self) -> tuple[str, ...]:
        return getattr(self, "_order", ())  # a copy made by pickle or copy has none

    def to_data(self) -> dict[str, Any]:
        """The journal's ``data``: keys in the order given, optional ones only when set."""
        cls = type(self)
        if not cls._specs:
            cls._build_specs()
        given = self._given()
        specs = cls._orders.get(given)
        if specs is None:
            ordered = [cls._by_name[name] for name in given]
            ordered += [s for s in cls._specs if s.name not in given]
            specs = tuple(ordered)
            if len(cls._orders) < _ORDERS_KEPT:  # journals read back may hold any order
                cls._orders[given] = specs
        out: dict[str, Any] = {}
        for spec in specs:
            value = getattr(self, spec.name)
            if value is None and spec.omit:
                continue
            out[spec.key] = _plain(value)
        return out


class Payload(Record):
    """The typed ``data`` of one event type (``TYPES``: the event types it is for)."""

    __slots__ = ()
    TYPES: ClassVar[tuple[str, ...]] = ()
