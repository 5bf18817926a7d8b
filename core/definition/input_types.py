"""Inputs checked against the action parameters they feed, before anything runs.

An input declared ``type: string`` may feed a typed action parameter — a duration
(``window: "{{ inputs.health_window }}"``), a URL (``url: "{{ inputs.service_url }}/health"``),
a host list, a path. The workflow file cannot be checked for that (the value comes at
launch), and the action checks it only when its step starts: by then earlier steps have
changed things (a hotfix switched live with no health check behind it). So at launch every
parameter whose template reads inputs only is rendered with the launch's values and
validated against the action's parameter model; a failure names the input, not the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from quarterdeck.core.actions.base import get_action
from quarterdeck.core.definition.expressions import evaluate, is_template, render
from quarterdeck.core.definition.models import Workflow
from quarterdeck.core.errors import QuarterdeckError

_PARSE_ENV: Any = None


def _reads(text: str) -> tuple[set[str], set[str]]:
    """(top-level names, ``inputs.X`` names) a template reads."""
    global _PARSE_ENV
    if _PARSE_ENV is None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        _PARSE_ENV = ImmutableSandboxedEnvironment()
    try:
        tree = _PARSE_ENV.parse(text)
    except Exception:  # a syntax error is validate's to report
        return {"?"}, set()
    from jinja2 import meta, nodes

    names = set(meta.find_undeclared_variables(tree))
    inputs = {
        node.attr
        for node in tree.find_all(nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == "inputs"
    }
    return names, inputs


def _may_run(when: str | bool | None, scope: Mapping[str, Any]) -> bool:
    """Whether a step with this ``when`` can run with these inputs: a condition on inputs
    alone is evaluated now; one on anything else is decided at run time (checked then)."""
    if when is None or when is True:
        return True
    if when is False:
        return False
    text = when if is_template(when) else "{{ " + when + " }}"
    names, _ = _reads(text)
    if names != {"inputs"}:
        return False
    try:
        return evaluate(when, scope)
    except QuarterdeckError:
        return False


def input_problems(
    workflow: Workflow, values: Mapping[str, Any], only: str | None = None
) -> dict[str, str]:
    """``{input: message}`` for inputs whose value a parameter they feed refuses (the first
    problem per input). ``only`` limits the check to parameters fed by that input."""
    problems: dict[str, str] = {}
    scope = {"inputs": dict(values)}
    looked_up: set[str] = set()
    for stage, step in workflow.all_steps():
        uses = step.uses
        if uses not in looked_up:
            # every action used is looked up (its module imported) whether or not a step
            # of it is checked: a resumed run's definition is not validated again, and
            # this is where its action modules are imported, before any step runs
            looked_up.add(uses)
            get_action(uses)
        for raw in step.with_.values():
            if isinstance(raw, str) and "inputs" in raw:
                break  # only a string naming inputs can be a template that reads one
        else:
            continue  # no parameter of it can be fed by an input (most steps of a large run)
        spec = get_action(uses)
        if spec is None or not _may_run(stage.when, scope) or not _may_run(step.when, scope):
            continue
        fed: dict[str, set[str]] = {}
        params = dict(step.with_)
        for key, raw in step.with_.items():
            if key in spec.raw or not is_template(raw):
                continue
            names, inputs = _reads(raw)
            if names != {"inputs"} or not inputs or (only is not None and only not in inputs):
                continue
            try:
                params[key] = render(raw, scope)
            except QuarterdeckError:
                continue  # the run reports what it cannot render
            fed[key] = inputs
        if not fed:
            continue
        try:
            spec.params.model_validate(params)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error["loc"]
                key = str(loc[0]) if loc else ""
                if key not in fed:
                    continue  # another parameter's (a template read at run time)
                for name in sorted(fed[key]):
                    if only is not None and name != only:
                        continue
                    where = f"{stage.id}.{step.id or step.uses}"
                    problems.setdefault(
                        name,
                        f"input {name!r}={values.get(name)!r} is not valid for parameter "
                        f"{key!r} of {step.uses} (step {where}): {error['msg']}",
                    )
    return problems
