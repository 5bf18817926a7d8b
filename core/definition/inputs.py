"""Typed workflow inputs: from ``-i key=value``, a cockpit form, or the environment."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from quarterdeck.core.definition.loader import did_you_mean
from quarterdeck.core.definition.models import InputSpec, Workflow
from quarterdeck.core.errors import InvalidInput

#: How deep a ``json`` input may nest (an alert payload is a few levels; thousands of
#: levels are an attack on whatever walks it).
JSON_MAX_DEPTH = 32
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_NONFINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _depth(value: Any) -> int:
    """How deep ``value`` nests (iteratively: a deep value must not overflow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > JSON_MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``; a clear error without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"bad input {pair!r}: write -i key=value")
        out[key.strip()] = value
    return out


def _nonfinite(spelled: str | None) -> bool:
    """Spelled nan/inf on purpose (``1e999`` overflows to inf by accident: still refused)."""
    return spelled is None or _NONFINITE.fullmatch(spelled) is not None


def coerce(name: str, spec: InputSpec, value: Any, base: Path | None = None) -> Any:
    """Convert ``value`` to the input's type, or raise :class:`InvalidInput`."""
    kind = spec.type
    if value is None:
        return None
    text = value if isinstance(value, str) else None
    try:
        if kind in ("string", "secret"):
            return str(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if text is not None and not _INT.fullmatch(text.strip()):
                raise ValueError  # Python's int() also takes "１２", "٣" and "1_000"
            return int(text.strip()) if text is not None else int(value)
        if kind == "float":
            spelled = text.strip() if text is not None else None
            if isinstance(value, bool) or (
                spelled is not None
                and not _FLOAT.fullmatch(spelled)
                and not (spec.allow_nonfinite and _NONFINITE.fullmatch(spelled))
            ):
                raise ValueError
            number = float(spelled) if spelled is not None else float(value)
            # nan/inf pass float() and break every comparison: only when the input asks
            if not math.isfinite(number) and not (spec.allow_nonfinite and _nonfinite(spelled)):
                raise InvalidInput(f"input {name!r}: {value!r} is not a finite number")
            return number
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if kind == "choice":
            choices = spec.choices or []
            if str(value) not in choices:
                raise InvalidInput(f"input {name!r}: {value!r} is not one of {', '.join(choices)}")
            return str(value)
        if kind == "path":
            path = Path(os.path.expanduser(str(value)))
            if not path.is_absolute():
                path = (base or Path.cwd()) / path
            return str(path.resolve())
        if kind == "json":
            loaded = json.loads(text) if text is not None else value
            if _depth(loaded) > JSON_MAX_DEPTH:
                raise InvalidInput(
                    f"input {name!r}: JSON nested deeper than {JSON_MAX_DEPTH} levels"
                )
            return loaded
    except InvalidInput:
        raise
    except RecursionError:
        raise InvalidInput(f"input {name!r}: JSON nested too deep") from None
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput(f"input {name!r}: {value!r} is not a valid {kind}") from None
    return value


def resolve_inputs(
    workflow: Workflow, given: dict[str, Any], base: Path | None = None
) -> dict[str, Any]:
    """Every declared input with a typed value; errors name the input and what to pass."""
    unknown = [k for k in given if k not in workflow.inputs]
    if unknown:
        names = list(workflow.inputs)
        key = unknown[0]
        declared = ", ".join(names) if names else "none"
        raise InvalidInput(
            f"workflow {workflow.name!r} has no input {key!r}{did_you_mean(key, names)}"
            f" (its inputs: {declared})"
        )
    values: dict[str, Any] = {}
    for name, spec in workflow.inputs.items():
        if name in given:
            raw = given[name]
        elif spec.env and os.environ.get(spec.env) is not None:
            raw = os.environ[spec.env]
        else:
            raw = spec.default
        if spec.required and (raw is None or (isinstance(raw, str) and not raw.strip())):
            raise InvalidInput(
                f"missing input {name!r} ({spec.type})"
                + (f": {spec.description}" if spec.description else ""),
                hint=f"pass -i {name}=VALUE" + (f" or set ${spec.env}" if spec.env else ""),
            )
        values[name] = coerce(name, spec, raw, base)
    check_typed(workflow, values)
    return values


class InputTypeError(InvalidInput):
    """An input a typed action parameter it feeds refuses; ``input`` names it (the form
    focuses its field)."""

    def __init__(self, input_name: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.input = input_name


def check_typed(workflow: Workflow, values: dict[str, Any]) -> None:
    """Refuse, before any step runs, inputs that the action parameters they feed refuse."""
    from quarterdeck.core.definition.input_types import input_problems

    problems = input_problems(workflow, values)
    if problems:
        name, message = next(iter(problems.items()))
        others = [m for n, m in problems.items() if n != name]
        raise InputTypeError(
            name,
            "\n".join([message, *others]),
            hint=f"pass -i {name}=VALUE with a valid value",
        )


def secret_values(workflow: Workflow, values: dict[str, Any]) -> list[str]:
    return [
        str(values[n]) for n, s in workflow.inputs.items() if s.type == "secret" and values.get(n)
    ]


def public_inputs(workflow: Workflow, values: dict[str, Any]) -> dict[str, Any]:
    """Inputs safe to journal and show: secrets masked."""
    return {
        n: ("***" if workflow.inputs[n].type == "secret" and v else v) for n, v in values.items()
    }
