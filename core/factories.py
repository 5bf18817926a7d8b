"""Default factories for pydantic fields that pydantic can look at cheaply.

Building a model, pydantic asks each field's ``default_factory`` for its signature (does
it take the validated data?). For the builtin ``list`` that means ``inspect`` parsing
``list``'s text signature with :mod:`tokenize`, whose first use in a process compiles its
large pattern: ~15 M instructions (~3 ms), paid by every command that builds a model with
such a field. A Python function answers from its code object. (``dict`` has no text
signature: ``inspect`` gives up at once, so ``default_factory=dict`` costs nothing.)
"""

from __future__ import annotations

from typing import Any


def empty_list() -> list[Any]:
    """A new empty list: ``default_factory=list``, for a pydantic field."""
    return []
