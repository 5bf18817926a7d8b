"""Typed workflow inputs: from ``-i key=value``, a cockpit form, or the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from quarterdeck.core.definition.loader import did_you_mean
from quarterdeck.core.definition.models import InputSpec, Workflow
from quarterdeck.core.errors import InvalidInput

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``; a clear error without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"bad input {pair!r}: write -i key=value")
        out[key.strip()] = value
    return out


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
            return int(text.strip()) if text is not None else int(value)
        if kind == "float":
            return float(text.strip()) if text is not None else float(value)
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
            return json.loads(text) if text is not None else value
    except InvalidInput:
        raise
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
        if raw is None and spec.required:
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
