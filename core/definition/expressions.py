"""``{{ ... }}`` templates and conditions on Jinja2's sandbox.

Why Jinja2's ``ImmutableSandboxedEnvironment``: it is a well-kept engine whose sandbox
refuses attribute tricks (``__class__``, ``mro``...) and whose ``StrictUndefined`` makes
an undefined name an error rather than a silent empty string. Nothing here calls
Python's ``eval``. Its limits on what one expression may cost are in
:mod:`quarterdeck.core.definition.sandbox`.

Validation only *parses* (:func:`syntax_error`): compiling would run the optimizer, which
evaluates constant expressions, and a workflow file must not be able to make
``quarterdeck validate`` compute anything.

A string that is exactly one ``{{ expr }}`` evaluates to the expression's native value
(a number stays a number, a list a list); anything else renders to text.

Jinja2 is imported on the first template that needs it (:func:`_jinja`): a workflow of
literal values never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from quarterdeck.core.errors import ExpressionError
from quarterdeck.core.lean import lean

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


@lean(frozen=True)
class _Jinja:
    """The sandboxed environment and the Jinja2 names used here, imported once."""

    env: Any
    parser: Any
    syntax_error: type[Exception]
    undefined_error: type[Exception]
    security_error: type[Exception]
    undefined: type
    max_text: int
    nesting_error: Any
    # what a hostile expression can raise while being evaluated: all of them are its failure
    eval_errors: tuple[type[Exception], ...]


@lru_cache(maxsize=1)
def _jinja() -> _Jinja:
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.parser import Parser
    from jinja2.runtime import Undefined
    from jinja2.sandbox import SecurityError

    from quarterdeck.core.definition import sandbox

    return _Jinja(
        env=sandbox.LimitedEnvironment(),
        parser=Parser,
        syntax_error=TemplateSyntaxError,
        undefined_error=UndefinedError,
        security_error=SecurityError,
        undefined=Undefined,
        max_text=sandbox.MAX_TEXT,
        nesting_error=sandbox.nesting_error,
        eval_errors=(
            UndefinedError,
            SecurityError,
            TypeError,
            ValueError,
            ArithmeticError,
            LookupError,
            AttributeError,
            RecursionError,
            MemoryError,
        ),
    )


def is_template(value: object) -> bool:
    """True when ``value`` is a string holding ``{{ }}`` or ``{% %}``."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _single_expression(text: str) -> str | None:
    match = _SINGLE.match(text)
    if match is None:
        return None
    inner = match.group("expr")
    if "{{" in inner or "}}" in inner:
        return None
    return inner.strip()


def _check_nesting(source: str) -> None:
    j = _jinja()
    problem = j.nesting_error(source)
    if problem:
        raise j.syntax_error(problem, 1)


@lru_cache(maxsize=4096)
def _compile_expression(source: str) -> Any:
    _check_nesting(source)
    return _jinja().env.compile_expression(source, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _compile_template(source: str) -> Any:
    _check_nesting(source)
    return _jinja().env.from_string(source)


def _parse_expression(source: str) -> None:
    """Parse like ``compile_expression`` does, without compiling (so nothing is folded)."""
    _check_nesting(source)
    j = _jinja()
    parser = j.parser(j.env, source, state="variable")
    parser.parse_expression()
    if not parser.stream.eos:
        parser.fail("chunk after expression", parser.stream.current.lineno)


def _parse_template(source: str) -> None:
    _check_nesting(source)
    _jinja().env.parse(source)


def _parse_problem(parse: Any, source: str, text: str) -> str | None:
    try:
        parse(source)
    except _jinja().syntax_error as exc:
        return f"expression does not parse: {exc.message} in {text.strip()[:200]!r}"  # type: ignore[attr-defined]
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
        reason = str(exc).split(";")[0] or type(exc).__name__
        return f"expression does not parse: {reason} in {text.strip()[:200]!r}"
    return None


def syntax_error(text: str) -> str | None:
    """A message when ``text`` does not parse as a template or expression, else None."""
    expr = _single_expression(text)
    if expr is not None:
        return _parse_problem(_parse_expression, expr, text)
    return _parse_problem(_parse_template, text, text)


def condition_syntax_error(text: str) -> str | None:
    """Like :func:`syntax_error` for a condition, which may omit the braces."""
    expr = _single_expression(text)
    return _parse_problem(_parse_expression, expr if expr is not None else text, text)


def _fail(text: str, where: object, exc: Exception) -> ExpressionError:
    prefix = f"{where}: " if where else ""
    j = _jinja()
    if isinstance(exc, j.undefined_error):
        reason = f"undefined name: {exc.message}"  # type: ignore[attr-defined]
    elif isinstance(exc, j.security_error):
        reason = f"refused by the sandbox: {exc}"
    else:
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    return ExpressionError(f"{prefix}expression {text.strip()[:200]!r} failed: {reason}")


def _check_defined(value: Any, text: str, where: object) -> Any:
    j = _jinja()
    if isinstance(value, j.undefined):
        try:
            str(value)
        except j.undefined_error as exc:
            raise _fail(text, where, exc) from None
        raise _fail(text, where, j.undefined_error("undefined value"))
    return value


def render(value: Any, scope: Mapping[str, Any], where: object = "") -> Any:
    """Render templates inside ``value`` (strings, lists, dicts), recursively.

    ``where`` names the place in an error's message (here and in :func:`render_text` and
    :func:`evaluate`): a string, or anything whose ``str`` is one, made only when a message
    says it (a step's place: core/engine/step.py)."""
    if isinstance(value, str):
        if not is_template(value):
            return value
        expr = _single_expression(value)
        j = _jinja()
        try:
            if expr is not None:
                result = _compile_expression(expr)(**scope)
                return _check_size(_check_defined(result, value, where), value, where)
            return _check_size(_compile_template(value).render(**scope), value, where)
        except j.syntax_error as exc:
            message = exc.message  # type: ignore[attr-defined]
            raise ExpressionError(f"{where}: {message} in {value[:200]!r}") from None
        except j.eval_errors as exc:
            raise _fail(value, where, exc) from None
    if isinstance(value, list):
        return [render(v, scope, where) for v in value]
    if isinstance(value, dict):
        return {k: render(v, scope, where) for k, v in value.items()}
    return value


def _check_size(result: Any, text: str, where: object) -> Any:
    j = _jinja()
    if isinstance(result, str | list | tuple) and len(result) > j.max_text:
        raise _fail(text, where, j.security_error(f"result over {j.max_text} items"))
    return result


def render_text(value: str, scope: Mapping[str, Any], where: object = "") -> str:
    """Render ``value`` and always return text (for argv pieces, prompts...)."""
    result = render(value, scope, where)
    if isinstance(result, str):
        return result
    if isinstance(result, bool):
        return "true" if result else "false"
    if result is None:
        return ""
    return str(result)


def evaluate(condition: str | bool, scope: Mapping[str, Any], where: object = "") -> bool:
    """Evaluate a condition (``"{{ x > 1 }}"`` or ``"x > 1"``) to a bool."""
    if isinstance(condition, bool):
        return condition
    expr = _single_expression(condition)
    source = expr if expr is not None else condition
    j = _jinja()
    try:
        result = _compile_expression(source)(**scope)
        result = _check_defined(result, condition, where)
        if isinstance(result, str):
            return result.strip().lower() not in ("", "false", "0", "no", "off", "none")
        return bool(result)
    except ExpressionError:
        raise
    except j.syntax_error as exc:
        message = exc.message  # type: ignore[attr-defined]
        raise ExpressionError(f"{where}: {message} in {condition[:200]!r}") from None
    except j.eval_errors as exc:
        raise _fail(condition, where, exc) from None
