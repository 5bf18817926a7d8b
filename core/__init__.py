"""Quarterdeck's headless engine.

Nothing in this package imports Textual: the engine runs the same under the cockpit,
headless in CI, or inside a test. A test proves it in a subprocess.
"""

from __future__ import annotations

__all__ = ["__version__"]

# The one version source: pyproject.toml reads it (dynamic), `quarterdeck --version` prints it.
__version__ = "0.1.0"
