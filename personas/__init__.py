"""The persona catalog: bundled YAML files here, plus project and user overrides."""
