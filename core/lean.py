"""``lean``: a mutable dataclass whose methods cost nothing until they are used.

``dataclasses`` writes the source of each class's ``__init__``, ``__repr__`` and ``__eq__``
and compiles them as it decorates: ~3 M instructions a class, paid at import by every
command, although a command makes or compares a few of them at most (``run`` imports some
thirty such classes). A ``lean`` class is the same dataclass to type checkers and to
:mod:`dataclasses` (``fields``, ``replace``, ``asdict``, ``__match_args__``, slots), with:

- the ``__init__`` ``dataclasses`` would write (same parameters, defaults, factories and
  errors; ``__post_init__`` called), compiled when the first instance is made;
- one ``__eq__`` and ``__repr__`` for every class, comparing and showing the fields as the
  written ones do, and ``__hash__`` None (a mutable dataclass is unhashable).

(The journal's frozen, keyword-only payloads have their own:
:func:`quarterdeck.core.journal.payload.record`.)
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")
_FACTORY = object()  # a parameter with a default factory was not given
_INITVAR = dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]  # an InitVar's pseudo-field


@overload
def lean(cls: type[_T], /) -> type[_T]: ...


@overload
def lean(
    *, repr: bool = True, eq: bool = True, frozen: bool = False, slots: bool = False
) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def lean(
    cls: type[_T] | None = None,
    /,
    *,
    repr: bool = True,  # as ``dataclass`` names them
    eq: bool = True,
    frozen: bool = False,
    slots: bool = False,
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """``@dataclass`` with these options, its methods made on first use. A method the class
    defines itself is kept, and ``__hash__`` set as ``dataclasses`` sets it."""

    def wrap(cls: type[_T]) -> type[_T]:
        own = dict(cls.__dict__)
        if cls.__doc__ is None:  # else ``dataclasses`` writes one from inspect.signature
            cls.__doc__ = cls.__name__
        made = dataclass(init=False, repr=False, eq=False, slots=slots)(cls)
        _check_order(made)
        if "__init__" not in own:
            made.__init__ = _first_init  # type: ignore[method-assign]
        if repr and "__repr__" not in own:
            made.__repr__ = _repr  # type: ignore[method-assign]
        if eq and "__eq__" not in own:
            made.__eq__ = _eq  # type: ignore[method-assign]
        # ``__hash__`` as ``dataclasses`` sets it: by the compared fields when frozen, else
        # none (a mutable class that compares by value), unless the class has its own
        class_hash = own.get("__hash__", MISSING)
        if eq and (class_hash is MISSING or (class_hash is None and "__eq__" in own)):
            made.__hash__ = _hash if frozen else None  # type: ignore[assignment]
        if frozen:
            _freeze(made, slots)
        return made

    return wrap if cls is None else wrap(cls)


def _check_order(cls: type) -> None:
    """The errors ``dataclasses`` gives when it writes ``__init__``, given at once."""
    for name, f in cls.__dataclass_fields__.items():  # type: ignore[attr-defined]
        if f._field_type is _INITVAR:  # its __init__ would neither take it nor pass it on
            raise TypeError(f"{cls.__name__}.{name}: a lean class has no InitVar fields")
    seen_default = False
    for f in fields(cls):
        if f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: a lean class has no keyword-only fields")
        if not f.init:
            continue
        if f.default is MISSING and f.default_factory is MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            seen_default = True


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    # The first instance of its class: write the class's ``__init__`` (as ``dataclasses``
    # would have at import), keep it on the class, and make this instance with it. The
    # class is the lean one this stands on, not the instance's own: a subclass that is not
    # a lean class (its own ``__init__`` calling this one through ``super()``, its own
    # ``__post_init__``, a frozen parent) gets what the dataclass's ``__init__`` does, and
    # its own ``__init__`` is not replaced
    cls = next(c for c in type(self).__mro__ if c.__dict__.get("__init__") is _first_init)
    write_init(cls, frozen=cls in _FROZEN)(self, *args, **kwargs)


def write_init(cls: type, *, frozen: bool, keyword_only: bool = False) -> Callable[..., None]:
    """The ``__init__`` ``dataclasses`` writes for ``cls``, put on the class: the same
    parameters, defaults and errors; each field set once (through ``object.__setattr__``
    when ``frozen``), a factory called per instance, ``__post_init__`` called. Its source
    is built from the class's field names only. (:func:`lean` classes, and the journal's
    keyword-only records: :func:`quarterdeck.core.journal.payload.record`.)"""
    env: dict[str, Any] = {"FACTORY": _FACTORY, "put": object.__setattr__}
    params: list[str] = []
    body: list[str] = []
    for i, f in enumerate(fields(cls)):
        if f.default_factory is not MISSING:
            env[f"f{i}"] = f.default_factory
            default: str | None = "FACTORY"
            value = f"f{i}() if {f.name} is FACTORY else {f.name}" if f.init else f"f{i}()"
        elif f.default is not MISSING:
            env[f"d{i}"] = f.default
            default = f"d{i}"
            value = f.name if f.init else default
        else:
            default = None
            value = f.name
        if f.init:
            params.append(f.name if default is None else f"{f.name}={default}")
        elif default is None:
            continue  # not set by __init__ (nor by dataclasses')
        if frozen:
            body.append(f"  put(self, {f.name!r}, {value})")
        else:
            body.append(f"  self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")
    star = ["*"] if keyword_only and params else []
    exec("\n".join([f"def __init__({', '.join(['self', *star, *params])}):", *body, "  pass"]), env)
    init: Callable[..., None] = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return init


_COMPARED: dict[type, Callable[[Any], Any]] = {}
_SHOWN: dict[type, tuple[str, ...]] = {}


def _compared(cls: type) -> Callable[[Any], Any]:
    names = [f.name for f in fields(cls) if f.compare]
    get: Callable[[Any], Any]
    if not names:
        get = lambda _: ()  # noqa: E731
    elif len(names) == 1:
        one = attrgetter(names[0])
        get = lambda obj: (one(obj),)  # noqa: E731
    else:
        get = attrgetter(*names)
    _COMPARED[cls] = get
    return get


def _eq(self: Any, other: object) -> Any:
    # as ``dataclasses`` writes it: the same class, then the compared fields as tuples
    if other.__class__ is not self.__class__:
        return NotImplemented
    cls = self.__class__
    get = _COMPARED.get(cls) or _compared(cls)
    return get(self) == get(other)


@reprlib.recursive_repr()  # a value that holds the instance itself shows as ``...``
def _repr(self: Any) -> str:
    cls = self.__class__
    names = _SHOWN.get(cls)
    if names is None:
        names = _SHOWN[cls] = tuple(f.name for f in fields(cls) if f.repr)
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
    return f"{cls.__qualname__}({shown})"


_HASHED: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _hash(self: Any) -> int:
    # as ``dataclasses`` writes it for a frozen class: the hashed fields as a tuple
    cls = self.__class__
    get = _HASHED.get(cls)
    if get is None:
        names = [f.name for f in fields(cls) if (f.compare if f.hash is None else f.hash)]
        get = _HASHED[cls] = lambda obj: tuple([getattr(obj, name) for name in names])
    return hash(get(self))


_FROZEN: dict[type, frozenset[str]] = {}  # each frozen lean class: its field names


def _freeze(cls: type, slots: bool) -> None:
    """The ``__setattr__``/``__delattr__`` of a frozen dataclass (and, slotted, the state
    ``copy`` and ``pickle`` restore through ``object.__setattr__``), without compiling."""
    names = frozenset(f.name for f in fields(cls))
    _FROZEN[cls] = names
    base: Any = cls

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(base, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(base, self).__delattr__(name)

    for method in (__setattr__, __delattr__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    if slots and "__getstate__" not in cls.__dict__:
        setattr(cls, "__getstate__", _slots_getstate)  # noqa: B010
        setattr(cls, "__setstate__", _slots_setstate)  # noqa: B010


def _slots_getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in fields(self)]


def _slots_setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(fields(self), state, strict=False):
        object.__setattr__(self, f.name, value)
