"""Workflow definitions: YAML loading with positions, models, validation, expressions, inputs,
schema."""
