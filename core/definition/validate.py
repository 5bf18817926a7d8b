"""Load a workflow file and check everything that can be checked before a run.

Shape errors come from pydantic (:mod:`quarterdeck.core.definition.loader`); this module adds the
rules that need the whole file or the catalogs: duplicate ids, unknown or cyclic ``needs``, unknown
actions and personas, persona tool allow-lists, action parameters, expressions that do
not parse, and references to steps or inputs that do not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from quarterdeck.core.actions.base import action_names, get_action
from quarterdeck.core.definition.expressions import (
    condition_syntax_error,
    is_template,
    syntax_error,
)
from quarterdeck.core.definition.graph import find_cycle
from quarterdeck.core.definition.loader import (
    SourceMap,
    did_you_mean,
    format_path,
    load_yaml,
    parse_model,
    read_text,
)
from quarterdeck.core.definition.models import Stage, Step, Workflow
from quarterdeck.core.errors import DefinitionError, Problem
from quarterdeck.core.gc_pause import paused_gc
from quarterdeck.core.lean import lean

_STEP_REF = re.compile(r"\bsteps\.([A-Za-z_]\w*)\b(?!\s*-)")
_INPUT_REF = re.compile(r"\binputs\.([A-Za-z_]\w*)\b")
_STAGE_REF = re.compile(r"\bstages\.([A-Za-z_]\w*)\b")


@lean
class LoadedWorkflow:
    """A validated workflow with the text and source map it came from."""

    workflow: Workflow
    path: Path
    text: str
    data: dict[str, Any]
    source: SourceMap

    def where(self, loc: tuple[Any, ...]) -> str:
        line, col = self.source.locate(loc)
        return f"{self.path}:{line}:{col}"


def _step_locs(
    workflow: Workflow,
) -> Iterator[tuple[Stage, Step, tuple[Any, ...], str]]:
    """Every step with its loc in the data, and its role (step, fallback, on_failure).

    Iterative, in definition order (a step, then its fallbacks, depth first): a hostile
    file's nesting must not be able to exhaust the interpreter's stack.
    """
    for i, stage in enumerate(workflow.stages):
        todo: list[tuple[Step, tuple[Any, ...], str]] = [
            *((s, ("stages", i, "steps", j), "step") for j, s in enumerate(stage.steps)),
            *(
                (s, ("stages", i, "on_failure", j), "on_failure")
                for j, s in enumerate(stage.on_failure)
            ),
        ]
        todo.reverse()
        while todo:
            step, here, role = todo.pop()
            yield stage, step, here, role
            todo.extend(
                reversed(
                    [(fb, (*here, "fallback", k), "fallback") for k, fb in enumerate(step.fallback)]
                )
            )


def assign_ids(workflow: Workflow) -> None:
    """Give fallback and on_failure steps without an id a predictable one."""
    for stage in workflow.stages:
        for k, step in enumerate(stage.on_failure, start=1):
            if not step.id:
                step.id = f"{stage.id}-on-failure-{k}"
        todo = [*stage.steps, *stage.on_failure]
        while todo:
            step = todo.pop()
            for k, fb in enumerate(step.fallback, start=1):
                if not fb.id:
                    fb.id = f"{step.id}-fallback-{k}"
                todo.append(fb)


def _strings(value: Any, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string inside ``value`` with its loc, in document order (iteratively)."""
    todo: list[tuple[tuple[Any, ...], Any]] = [(loc, value)]
    while todo:
        here, item = todo.pop()
        if isinstance(item, str):
            yield here, item
        elif isinstance(item, list):
            todo.extend(reversed([((*here, i), v) for i, v in enumerate(item)]))
        elif isinstance(item, dict):
            todo.extend(reversed([((*here, k), v) for k, v in item.items()]))


def _template_locs(value: Any, loc: tuple[Any, ...]) -> set[tuple[Any, ...]]:
    return {here for here, text in _strings(value, loc) if is_template(text)}


def check_workflow(loaded: LoadedWorkflow, personas: Any | None = None) -> list[Problem]:
    """Semantic problems in a shape-valid workflow. ``personas`` is a PersonaCatalog."""
    wf, data, source = loaded.workflow, loaded.data, loaded.source
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str, *, key: bool = False) -> None:
        line, col = source.locate(loc, key=key)
        problems.append(Problem(source.file, line, col, message, format_path(loc, data)))

    # duplicate ids -------------------------------------------------------------------
    seen_stages: dict[str, int] = {}
    for i, stage in enumerate(wf.stages):
        if stage.id in seen_stages:
            first = source.locate(("stages", seen_stages[stage.id], "id"))[0]
            add(("stages", i, "id"), f"duplicate stage id {stage.id!r} (first at line {first})")
        else:
            seen_stages[stage.id] = i
    seen_steps: dict[str, tuple[Any, ...]] = {}
    gate_ids: dict[str, tuple[Any, ...]] = {}
    for _stage, step, loc, _role in _step_locs(wf):
        if not step.id:
            continue
        if step.id in seen_steps:
            first = source.locate((*seen_steps[step.id], "id"))[0]
            add((*loc, "id"), f"duplicate step id {step.id!r} (first at line {first})")
        else:
            seen_steps[step.id] = loc
    for i, stage in enumerate(wf.stages):
        for kind, gate in (("approval", stage.approval), ("gate", stage.gate)):
            if gate is None:
                continue
            loc = ("stages", i, kind, "id")
            if gate.id in gate_ids:
                first = source.locate(gate_ids[gate.id])[0]
                add(loc, f"duplicate gate id {gate.id!r} (first at line {first})")
            else:
                gate_ids[gate.id] = loc

    # missing ids on main steps ---------------------------------------------------------
    for i, stage in enumerate(wf.stages):
        for j, step in enumerate(stage.steps):
            if not step.id:
                add(("stages", i, "steps", j), "missing required field 'id'")

    # needs: unknown, self, cycles -------------------------------------------------------
    for i, stage in enumerate(wf.stages):
        ids = [s.id for s in stage.steps if s.id]
        known = set(ids)  # a list lookup per need made a 10,000-step chain quadratic
        graph: dict[str, list[str]] = {}
        for j, step in enumerate(stage.steps):
            graph[step.id] = []
            for k, need in enumerate(step.needs):
                loc = ("stages", i, "steps", j, "needs", k)
                if need == step.id:
                    add(loc, f"step {step.id!r} needs itself")
                elif need not in known:
                    elsewhere = need in seen_steps
                    hint = (
                        f"; {need!r} is in another stage, and stages already run in order"
                        if elsewhere
                        else did_you_mean(need, ids)
                    )
                    add(loc, f"unknown step {need!r} in needs{hint}")
                else:
                    graph[step.id].append(need)
        cycle = find_cycle(graph)
        if cycle:
            j = next(n for n, s in enumerate(stage.steps) if s.id == cycle[0])
            add(("stages", i, "steps", j, "needs"), "cycle in needs: " + " → ".join(cycle))

    # actions, params, personas --------------------------------------------------------
    for _stage, step, loc, _role in _step_locs(wf):
        _action_problems(data, loc, step.uses, add)
    if personas is not None:
        problems.extend(persona_problems(loaded, personas))

    # expressions ----------------------------------------------------------------------
    for loc, text in _expressions(data, add):
        for match in _STEP_REF.finditer(text):
            if match.group(1) not in seen_steps:
                add(
                    loc,
                    f"unknown step {match.group(1)!r} in expression"
                    f"{did_you_mean(match.group(1), list(seen_steps))}",
                )
        for match in _INPUT_REF.finditer(text):
            if match.group(1) not in wf.inputs:
                add(
                    loc,
                    f"unknown input {match.group(1)!r} in expression"
                    f"{did_you_mean(match.group(1), list(wf.inputs))}",
                )
        for match in _STAGE_REF.finditer(text):
            if match.group(1) not in seen_stages:
                add(
                    loc,
                    f"unknown stage {match.group(1)!r} in expression"
                    f"{did_you_mean(match.group(1), list(seen_stages))}",
                )
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


Add = Callable[..., None]


def persona_problems(loaded: LoadedWorkflow, personas: Any) -> list[Problem]:
    """Unknown personas, and steps using a tool their stage's persona may not use."""
    wf, data, source = loaded.workflow, loaded.data, loaded.source
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        line, col = source.locate(loc)
        problems.append(Problem(source.file, line, col, message, format_path(loc, data)))

    # only a stage with a known persona can have a step using a tool it may not: a
    # workflow with none (most, and a 10,000-step one) does not walk every step's loc
    known = any(stage.persona and personas.get(stage.persona) is not None for stage in wf.stages)
    for stage, step, loc, _role in _step_locs(wf) if known else ():
        persona = personas.get(stage.persona) if stage.persona else None
        if persona is not None and not persona.may_use(step.uses):
            add(
                (*loc, "uses"),
                f"step {step.id!r} uses {step.uses!r}, which persona {stage.persona!r} "
                f"may not use (its tools: {', '.join(persona.tools)})",
            )
    names = personas.names()
    for i, stage in enumerate(wf.stages):
        if stage.persona and personas.get(stage.persona) is None:
            add(
                ("stages", i, "persona"),
                f"unknown persona {stage.persona!r}{did_you_mean(stage.persona, names)}"
                f" (known: {', '.join(names)})",
            )
    return problems


def _action_problems(data: Any, loc: tuple[Any, ...], uses: str, add: Add) -> None:
    """An unknown action, or parameters its schema refuses (templated ones are left to
    run time); reads the raw data, so it also works when the file's shape is wrong."""
    spec = get_action(uses)
    if spec is None:
        known_actions = action_names()
        hint = did_you_mean(uses, known_actions)
        add(
            (*loc, "uses"),
            f"unknown action {uses!r}{hint or ' (`quarterdeck actions` lists them)'}",
        )
        return
    raw_with = data_at(data, (*loc, "with"))
    if not isinstance(raw_with, dict):
        raw_with = {}
    try:
        spec.params.model_validate(raw_with)
    except ValidationError as exc:
        templated = _template_locs(raw_with, ())  # only a refusal needs them
        for error in exc.errors(include_url=False):
            eloc = tuple(error["loc"])
            if any(eloc[: len(t)] == t or t[: len(eloc)] == eloc for t in templated):
                continue  # checked when the template is rendered at run time
            if error["type"] == "extra_forbidden":
                names = [f.alias or n for n, f in spec.params.model_fields.items()]
                add(
                    (*loc, "with", *eloc),
                    f"unknown parameter {eloc[-1]!r} for {uses}"
                    f"{did_you_mean(str(eloc[-1]), names)}",
                    key=True,
                )
            elif error["type"] == "missing":
                add((*loc, "with"), f"{uses} needs parameter {eloc[-1]!r}")
            else:
                msg = error["msg"].removeprefix("Value error, ")
                add((*loc, "with", *eloc), f"{uses}: {msg}")


_CONDITION_KEYS = frozenset({"when", "all", "any"})


def _expression_candidates(data: Any) -> Iterator[tuple[tuple[Any, ...], str, bool]]:
    """Every string that may be an expression, in document order, with its loc and
    whether it is a condition: templates, and strings with ``when``, ``all`` or ``any``
    on their path. Iterative (a hostile file's nesting must not exhaust the stack); a loc
    is only built for a candidate, not for each of the file's strings."""
    if isinstance(data, str):
        if is_template(data):
            yield (), data, False
        return
    if not isinstance(data, list | dict):
        return
    conditions = _CONDITION_KEYS
    stack: list[tuple[tuple[Any, ...], bool, Iterator[tuple[Any, Any]]]] = [
        ((), False, iter(enumerate(data)) if isinstance(data, list) else iter(data.items()))
    ]
    while stack:
        here, under, items = stack[-1]
        for key, item in items:
            if isinstance(item, str):
                condition = under or key in conditions
                if condition or "{{" in item or "{%" in item:
                    loc = (*here, key)
                    yield loc, item, condition and _is_condition_loc(loc)
            elif isinstance(item, list | dict):
                inner = iter(enumerate(item)) if isinstance(item, list) else iter(item.items())
                stack.append(((*here, key), under or key in conditions, inner))
                break
        else:
            stack.pop()


def _expressions(data: Any, add: Add) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every template or condition in the file that parses; the others are reported."""
    for loc, text, condition in _expression_candidates(data):
        if not condition and not is_template(text):
            continue
        parse_error = condition_syntax_error(text) if condition else syntax_error(text)
        if parse_error:
            add(loc, parse_error)
            continue
        yield loc, text


def _raw_step_locs(data: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every step mapping in raw (shape-invalid) data, with its loc."""
    stages = data.get("stages") if isinstance(data, dict) else None
    todo: list[tuple[tuple[Any, ...], Any]] = []
    for i, stage in enumerate(stages if isinstance(stages, list) else []):
        for key in ("on_failure", "steps"):
            items = stage.get(key) if isinstance(stage, dict) else None
            if isinstance(items, list):
                todo.extend(reversed([(("stages", i, key, j), s) for j, s in enumerate(items)]))
    while todo:
        loc, step = todo.pop()
        if not isinstance(step, dict):
            continue
        yield loc, step
        fallbacks = step.get("fallback")
        if isinstance(fallbacks, list):
            todo.extend(reversed([((*loc, "fallback", k), fb) for k, fb in enumerate(fallbacks)]))


def shape_invalid_problems(data: Any, source: SourceMap) -> list[Problem]:
    """What can still be checked in a file whose shape pydantic refused: actions, their
    parameters and expressions, so one ``validate`` run reports every typo it can."""
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str, *, key: bool = False) -> None:
        line, col = source.locate(loc, key=key)
        problems.append(Problem(source.file, line, col, message, format_path(loc, data)))

    for loc, step in _raw_step_locs(data):
        if isinstance(step.get("uses"), str):
            _action_problems(data, loc, step["uses"], add)
    for _ in _expressions(data, add):
        pass
    return problems


def _is_condition_loc(loc: tuple[Any, ...]) -> bool:
    """``when`` values and gate ``all``/``any`` items are conditions (braces optional)."""
    if not loc:
        return False
    if loc[-1] == "when":
        return "with" not in loc
    return len(loc) >= 2 and loc[-2] in ("all", "any") and "gate" in loc


def data_at(data: Any, loc: tuple[Any, ...]) -> Any:
    node = data
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def load_workflow(path: Path, personas: Any | None = None) -> LoadedWorkflow:
    """Read, parse, validate and check a workflow file. Raises :class:`DefinitionError`."""
    text = read_text(path)
    return load_workflow_text(text, path, personas)


def load_workflow_text(text: str, path: Path, personas: Any | None = None) -> LoadedWorkflow:
    with paused_gc():
        return _load_workflow_text(text, path, personas)


def _load_workflow_text(text: str, path: Path, personas: Any | None) -> LoadedWorkflow:
    data, source = load_yaml(text, str(path))
    try:
        workflow = parse_model(Workflow, data, source, "workflow")
    except DefinitionError as exc:
        seen = {(p.line, p.column, p.message) for p in exc.problems}
        more = [
            p
            for p in shape_invalid_problems(data, source)
            if (p.line, p.column, p.message) not in seen
        ]
        problems = sorted([*exc.problems, *more], key=lambda p: (p.line, p.column))
        raise DefinitionError(problems) from None
    loaded = LoadedWorkflow(workflow, path, text, data, source)
    problems = check_workflow(loaded, personas)
    if problems:
        raise DefinitionError(problems)
    assign_ids(workflow)
    return loaded


def load_validated_text(
    text: str,
    path: Path,
    personas: Any | None = None,
    kept: tuple[Any, dict[tuple[Any, ...], int]] | None = None,
) -> LoadedWorkflow:
    """A definition this Quarterdeck validated before (a run's, found by its journaled hash):
    parsed into the model, not checked again.

    The checks that depend only on the text and Quarterdeck's rules (bounds, ids, needs,
    cycles, expressions, action parameters) passed when the run started, and the run goes
    on under the rules it was accepted with. What depends on the project's catalogs is
    checked again: a persona that is gone, or whose tools were narrowed since, must not
    run steps it may no longer use.

    ``kept``: the text's data and its stages' and steps' positions as kept with the run
    (``core.journal.definition_data``), used instead of parsing the YAML; the text is
    parsed only if a message needs another position.
    """
    with paused_gc():
        workflow = None
        if kept is not None:
            data, known = kept
            source = SourceMap.of_text(str(path), text, known)
            try:
                workflow = parse_model(Workflow, data, source, "workflow")
            except DefinitionError:
                workflow = None  # not the model's any more: the text says what it is
        if workflow is None:
            data, source = load_yaml(text, str(path), bounded=False)
            workflow = parse_model(Workflow, data, source, "workflow")
        loaded = LoadedWorkflow(workflow, path, text, data, source)
        if personas is not None:
            problems = persona_problems(loaded, personas)
            if problems:
                raise DefinitionError(problems)
        assign_ids(workflow)
    return loaded
