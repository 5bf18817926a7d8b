"""Errors meant for people.

Every error a user can cause (a broken workflow file, an unknown persona, a bad input)
is a :class:`QuarterdeckError` carrying an exit code from the CLI contract, so the CLI
can print the message and exit without a traceback.
"""

from __future__ import annotations

from dataclasses import field
from enum import IntEnum

from quarterdeck.core.lean import lean


class ExitCode(IntEnum):
    """Exit codes of the CLI (contract: pipelines branch on them)."""

    SUCCEEDED = 0
    FAILED = 1
    INVALID = 2
    REJECTED = 3
    CANCELLED = 4
    INTERRUPTED = 130


class QuarterdeckError(Exception):
    """An error with a message for people and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class InvalidInput(QuarterdeckError):
    """Bad input from a person: a CLI argument, an input value, a run id."""

    exit_code = ExitCode.INVALID


@lean(frozen=True)
class Problem:
    """One problem found in a file, located as precisely as we can."""

    file: str
    line: int
    column: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


@lean
class DefinitionError(QuarterdeckError):
    """A workflow, persona or config file that is not valid; lists every problem."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = ExitCode.INVALID

    def __post_init__(self) -> None:
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    def __hash__(self) -> int:
        return id(self)


class ExpressionError(QuarterdeckError):
    """An expression that failed to evaluate (undefined name, type error...)."""

    exit_code = ExitCode.FAILED


class ActionError(Exception):
    """A step's action failed. ``retryable=False`` stops retries at once."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        outputs: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.outputs = outputs or {}


class NonRetryableError(ActionError):
    """A failure that another attempt cannot fix (bad parameters, permission denied)."""

    def __init__(self, message: str, *, outputs: dict[str, object] | None = None) -> None:
        super().__init__(message, retryable=False, outputs=outputs)


class RefusedError(NonRetryableError):
    """A step refuses a request it must not carry out (a release that would go backwards).

    Like bad input, it ends the run with exit code 2 (:attr:`ExitCode.INVALID`): the
    outputs carry ``refused: true`` so the runner can tell it from an ordinary failure.
    """

    def __init__(self, message: str, *, outputs: dict[str, object] | None = None) -> None:
        super().__init__(message, outputs={**(outputs or {}), "refused": True})


class StepSkipped(Exception):
    """Raised by an action that decides there is nothing to do (e.g. no token configured).

    The step ends ``skipped`` with ``reason``; its outputs are kept.
    """

    def __init__(self, reason: str, *, outputs: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outputs = outputs or {}
