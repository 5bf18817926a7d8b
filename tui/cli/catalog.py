"""Commands that read definitions, not runs: validate, schema, workflows, personas, actions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from quarterdeck.core.errors import DefinitionError, ExitCode, InvalidInput, QuarterdeckError
from quarterdeck.tui.cli.common import JsonOpt, err, fail

commands = typer.Typer()


@commands.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="Workflow files")]) -> None:
    """Check workflow files: exit 0 when valid, 2 with file:line:col messages when not."""
    from quarterdeck.core.definition.validate import load_workflow
    from quarterdeck.tui.launch import load_context

    try:
        ctx = load_context()
    except QuarterdeckError as exc:
        fail(exc)
    bad = 0
    for path in paths:
        try:
            loaded = load_workflow(path, ctx.personas)
        except DefinitionError as exc:
            bad += 1
            for problem in exc.problems:
                err(str(problem))
            continue
        wf = loaded.workflow
        steps = sum(len(s.steps) for s in wf.stages)
        err(f"{path}: ok ({wf.name}: {len(wf.stages)} stages, {steps} steps)")
    if bad:
        err(f"{bad} of {len(paths)} file{'s' if len(paths) != 1 else ''} invalid")
        raise typer.Exit(int(ExitCode.INVALID))


@commands.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (point your editor at it)."""
    from quarterdeck.core.definition.schema import workflow_schema

    sys.stdout.write(json.dumps(workflow_schema(), indent=2) + "\n")


@commands.command()
def workflows(json_out: JsonOpt = False) -> None:
    """List workflows: bundled, user and project."""
    from quarterdeck.workflows.catalog import list_workflows

    entries = list_workflows()
    if json_out:
        data = [
            {
                "name": e.name,
                "title": e.title,
                "description": e.description,
                "origin": e.origin,
                "path": str(e.path),
                "error": e.error,
            }
            for e in entries
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    width = max((len(e.name) for e in entries), default=10)
    for e in entries:
        note = f"  [invalid: {e.error}]" if e.error else ""
        sys.stdout.write(f"{e.name:<{width}}  {e.origin:<8} {e.title or e.description}{note}\n")


@commands.command()
def personas(
    name: Annotated[str | None, typer.Argument(help="Show one persona in full")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List personas (bundled, user, project) or show one."""
    from quarterdeck.core.definition.loader import did_you_mean
    from quarterdeck.tui.launch import load_context

    try:
        catalog = load_context().personas
    except QuarterdeckError as exc:
        fail(exc)
    if name is not None:
        persona = catalog.get(name)
        if persona is None:
            fail(InvalidInput(f"no persona {name!r}{did_you_mean(name, catalog.names())}"))
        if json_out:
            sys.stdout.write(
                json.dumps({**persona.model_dump(), "origin": catalog.origins[name]}, indent=2)
                + "\n"
            )
            return
        out = [
            f"{persona.name}: {persona.title}",
            f"  role:         {persona.role}",
            f"  token budget: {persona.token_budget}",
            f"  model:        {persona.model}",
            f"  tools:        {', '.join(persona.tools)}",
            f"  colour:       {persona.color}",
            f"  from:         {catalog.origins[name]}",
            "  system prompt:",
            *[f"    {line}" for line in persona.system_prompt.strip().splitlines()],
        ]
        sys.stdout.write("\n".join(out) + "\n")
        return
    if json_out:
        sys.stdout.write(
            json.dumps(
                [
                    {**p.model_dump(), "origin": catalog.origins[p.name]}
                    for p in catalog.personas.values()
                ],
                indent=2,
            )
            + "\n"
        )
        return
    for p in sorted(catalog.personas.values(), key=lambda p: p.name):
        sys.stdout.write(f"{p.name:<22} {p.token_budget:>6} tokens  {p.title} — {p.role}\n")


@commands.command()
def actions() -> None:
    """List the actions steps may use."""
    from quarterdeck.core.actions.base import registered_actions

    for name, spec in registered_actions().items():
        params = ", ".join(
            (f.alias or n) + ("" if f.is_required() else "?")
            for n, f in spec.params.model_fields.items()
        )
        sys.stdout.write(f"{name:<22} {spec.description}\n{'':<22} with: {params}\n")
