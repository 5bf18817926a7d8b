"""The workflow file format (contract), as pydantic models.

These models check the *shape* of a file. Rules that need the whole file or the
catalogs (unknown step in ``needs``, cycles, unknown action or persona, duplicate ids,
expressions that do not parse, action parameters) live in
:mod:`quarterdeck.core.definition.validate`, which reports them with the same ``file:line:col``
locations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quarterdeck.core.durations import Duration
from quarterdeck.core.factories import empty_list

_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputSpec(_Strict):
    """A typed workflow input; ``-i key=value`` on the CLI, a form field in the cockpit."""

    type: Literal["string", "int", "float", "bool", "path", "choice", "secret", "json"] = "string"
    description: str = ""
    default: Any = None
    required: bool = False
    choices: list[str] | None = None
    env: str | None = Field(
        default=None, description="Environment variable to read the value from when not given"
    )
    allow_nonfinite: bool = Field(
        default=False,
        description="A float input may be nan, inf or -inf (refused unless asked for: they "
        "pass every parse and break every comparison)",
    )

    @model_validator(mode="after")
    def _choices_for_choice(self) -> InputSpec:
        if self.type == "choice" and not self.choices:
            raise ValueError("an input of type 'choice' needs a non-empty 'choices' list")
        if self.allow_nonfinite and self.type != "float":
            raise ValueError("'allow_nonfinite' only applies to inputs of type 'float'")
        if self.choices is not None and self.type != "choice":
            raise ValueError("'choices' only applies to inputs of type 'choice'")
        if (
            self.type == "choice"
            and self.default is not None
            and self.choices
            and str(self.default) not in self.choices
        ):
            raise ValueError(f"default {self.default!r} is not one of the choices {self.choices}")
        return self


class RetryPolicy(_Strict):
    """How a failing step is tried again."""

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff: Literal["exponential", "constant", "linear"] = "exponential"
    initial_delay: Duration = 1.0
    max_delay: Duration = 60.0
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: bool | float = Field(
        default=False, description="true for ±10% jitter, or a fraction 0..1 of the delay"
    )
    non_retryable_exit_codes: list[int] = Field(
        default_factory=empty_list, description="Exit codes that stop retrying at once"
    )

    @field_validator("jitter")
    @classmethod
    def _jitter_range(cls, value: bool | float) -> bool | float:
        if not isinstance(value, bool) and not 0 <= value <= 1:
            raise ValueError("jitter is true/false or a fraction between 0 and 1")
        return value


class Step(_Strict):
    """One step: an action from the registry with its parameters."""

    id: str = Field(default="", pattern=r"^$|" + _ID_PATTERN)
    name: str = ""
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=empty_list)
    when: str | bool | None = None
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    continue_on_error: bool = False
    fallback: list[Step] = Field(default_factory=empty_list)
    env: dict[str, str] = Field(default_factory=dict)


class Gate(_Strict):
    """A quality gate: conditions evaluated after a stage's steps."""

    id: str = Field(pattern=_ID_PATTERN)
    all: list[str] = Field(default_factory=empty_list)
    any: list[str] = Field(default_factory=empty_list)
    skippable: bool = Field(
        default=False, description="A person may skip this gate (with a reason, audited)"
    )

    @model_validator(mode="after")
    def _has_conditions(self) -> Gate:
        if not self.all and not self.any:
            raise ValueError("a gate needs at least one condition in 'all' or 'any'")
        return self


def is_approver(actor: str, approvers: Sequence[str], groups: Mapping[str, Sequence[str]]) -> bool:
    """Whether ``actor`` may decide a gate with these approvers (names or config groups).

    No approvers listed means anyone may decide (self-approval is a separate rule).
    """
    if actor in groups:  # a group is never an identity: its members vote
        return False
    if not approvers:
        return True
    return actor in approvers or any(actor in groups.get(name, ()) for name in approvers)


class Approval(_Strict):
    """A human approval gate before a stage starts."""

    id: str = Field(pattern=_ID_PATTERN)
    prompt: str = ""
    evidence: list[str] = Field(default_factory=empty_list)
    approvers: list[str] = Field(default_factory=empty_list)
    min_approvals: int = Field(default=1, ge=1)
    allow_self_approval: bool = False
    timeout: Duration | None = None
    on_timeout: Literal["reject", "approve", "fail"] = "reject"
    when: str | bool | None = None


class Stage(_Strict):
    """A stage: steps owned by one persona, with optional gates."""

    id: str = Field(pattern=_ID_PATTERN)
    title: str = ""
    persona: str | None = None
    when: str | bool | None = None
    approval: Approval | None = None
    steps: list[Step] = Field(min_length=1)
    gate: Gate | None = None
    on_failure: list[Step] = Field(default_factory=empty_list)
    timeout: Duration | None = None
    retry: RetryPolicy | None = Field(
        default=None, description="Default retry policy for this stage's steps"
    )


class Workflow(_Strict):
    """A whole workflow file."""

    name: str = Field(pattern=_ID_PATTERN)
    title: str = ""
    description: str = ""
    version: int = 1
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=8, ge=1, le=1024)
    # the stricter of this, the config and --durability wins (core/engine/runner.py)
    durability: Literal["normal", "full"] | None = None
    budget_policy: Literal["warn", "approve", "fail"] | None = None
    stages: list[Stage] = Field(min_length=1)
    tags: list[str] = Field(default_factory=empty_list)

    def all_steps(self) -> list[tuple[Stage, Step]]:
        """Every step with its stage, including fallbacks and on_failure steps.

        Depth first in definition order, iteratively (nesting never costs stack)."""
        found: list[tuple[Stage, Step]] = []
        for stage in self.stages:
            todo = [*stage.steps, *stage.on_failure][::-1]
            while todo:
                step = todo.pop()
                found.append((stage, step))
                todo.extend(reversed(step.fallback))
        return found

    def personas(self) -> list[str]:
        """The personas that own stages, in stage order, without repeats."""
        seen: list[str] = []
        for stage in self.stages:
            if stage.persona and stage.persona not in seen:
                seen.append(stage.persona)
        return seen


Step.model_rebuild()
