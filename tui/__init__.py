"""Terminal front ends: the Textual cockpit, the headless renderer and the CLI."""
