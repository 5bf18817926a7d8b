"""The Jinja2 environment expressions run in, with limits on what one expression may cost.

Jinja's own sandbox stops attribute tricks (``__class__``, ``mro``...) but not resource
bombs: ``'a' * 10**9`` builds a 1 GB string, ``2**20000`` a 20,000-bit integer, and the
optimizer folds such constants *while compiling*. Here the optimizer is off, the
arithmetic operators go through :meth:`LimitedEnvironment.call_binop` (which refuses a
result over :data:`MAX_TEXT` items or :data:`MAX_INT_BITS` bits before computing it), and
string methods and size-taking filters refuse a numeric argument over
:data:`MAX_CALL_INT` (``center``, ``ljust``, ``indent``... take a width); ``lipsum`` is
gone, and every call's or filter's result is checked against :data:`MAX_TEXT`. Nesting
deeper than :data:`MAX_NESTING` brackets is refused before Jinja's recursive-descent
parser sees it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_TEXT = 1_000_000
"""Longest string, list or tuple one operator or filter may produce."""
MAX_INT_BITS = 8192
"""Largest integer arithmetic may produce (~2,466 digits)."""
MAX_CALL_INT = 100_000
"""Largest number a call or filter argument may be (widths, counts, repeats)."""
MAX_NESTING = 64
"""Deepest bracket nesting in one expression or template."""

_SIZED = (str, list, tuple)
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(?:\d{6,}|\*)|%[-#0 +]*\d*\.\d{6,}|\{[^{}]*\d{6,}[^{}]*\}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bits(value: Any) -> int:
    return abs(value).bit_length() if _int(value) else 0


def _check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too big, before computing it."""
    if op == "**" and _int(left) and _int(right) and right > 0 and abs(left) > 1:
        if _bits(left) * right > MAX_INT_BITS:
            raise SecurityError(f"{left!r} ** {right!r} is too large (limit {MAX_INT_BITS} bits)")
    elif op == "*":
        if _int(left) and _int(right) and _bits(left) + _bits(right) > MAX_INT_BITS:
            raise SecurityError(f"a product over {MAX_INT_BITS} bits is refused")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SIZED) and _int(times) and len(seq) * times > MAX_TEXT:
                raise SecurityError(f"repeating to over {MAX_TEXT} items is refused")
    elif op == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        if len(left) + len(right) > MAX_TEXT:
            raise SecurityError(f"concatenating to over {MAX_TEXT} items is refused")
    elif op == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
        raise SecurityError("a %-format with a width or precision over 99,999 is refused")


def _check_args(args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> None:
    for value in (*args, *kwargs.values()):
        if (_int(value) or isinstance(value, float)) and abs(value) > MAX_CALL_INT:
            raise SecurityError(f"{what}: argument {value!r} is over the limit of {MAX_CALL_INT}")


def _check_result(value: Any, what: str) -> Any:
    if isinstance(value, _SIZED) and len(value) > MAX_TEXT:
        raise SecurityError(f"{what}: result of {len(value)} items is over the limit")
    return value


# filters whose numeric arguments are sizes (widths, counts); `default(500000)` is not one
_SIZE_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})


_SIZE_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


def _limited_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` refusing big size arguments and results; wraps keeps the pass_* markers."""
    sized = name in _SIZE_FILTERS

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if sized:
            _check_args(tuple(a for a in args[1:] if not isinstance(a, _SIZED)), kwargs, name)
        return _check_result(fn(*args, **kwargs), name)

    return wrapper


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """An immutable sandbox that refuses resource bombs instead of running them."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, optimized=False)
        self.globals.pop("lipsum", None)
        self.filters = {name: _limited_filter(name, fn) for name, fn in self.filters.items()}

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _check_binop(operator_, left, right)
        return self.binop_table[operator_](left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "call")
        if isinstance(owner, str | bytes) and name in _SIZE_METHODS:
            _check_args(args, kwargs, name)
        if (
            isinstance(owner, str)
            and name in ("format", "format_map")
            and _WIDE_FORMAT.search(owner)
        ):
            raise SecurityError("a format width or precision over 99,999 is refused")
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_result(result, name)


def nesting_error(text: str) -> str | None:
    """A message when brackets in ``text`` nest deeper than :data:`MAX_NESTING`."""
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth = max(0, depth - 1)
    if deepest > MAX_NESTING:
        return f"nested deeper than {MAX_NESTING} brackets"
    return None
