"""The JSON Schema of workflow files, for editors (yaml-language-server and friends)."""

from __future__ import annotations

from typing import Any

from quarterdeck.core.actions.base import registered_actions
from quarterdeck.core.definition.models import Workflow


def workflow_schema() -> dict[str, Any]:
    schema = Workflow.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Quarterdeck workflow"
    step = schema.get("$defs", {}).get("Step")
    if step is not None:
        actions = registered_actions()
        step["properties"]["uses"] = {
            "type": "string",
            "description": "An action from the registry (`quarterdeck actions`)",
            "examples": list(actions),
        }
        # per-action parameters: when `uses` is X, `with` must match X's model
        step["allOf"] = [
            {
                "if": {"properties": {"uses": {"const": name}}, "required": ["uses"]},
                "then": {"properties": {"with": _loose(spec.params.model_json_schema())}},
            }
            for name, spec in actions.items()
        ]
    return schema


def _loose(schema: dict[str, Any]) -> dict[str, Any]:
    """An action's parameter schema where any value may also be a ``{{ }}`` template."""
    props = schema.get("properties", {})
    loose_props = {
        key: {"anyOf": [value, {"type": "string", "pattern": r"\{\{.*\}\}"}]}
        for key, value in props.items()
    }
    out: dict[str, Any] = {
        "type": "object",
        "properties": loose_props,
        "additionalProperties": False,
    }
    if "required" in schema:
        out["required"] = schema["required"]
    if "$defs" in schema:
        out["$defs"] = schema["$defs"]
    return out
