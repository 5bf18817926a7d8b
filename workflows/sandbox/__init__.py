"""The demo sandbox: a small package repository, an index, production, SSH and a model.

``quarterdeck demo`` builds one in a temporary directory and points the bundled
workflows at it; the end-to-end tests use the same sandbox. See :mod:`.sandbox`.
"""

from __future__ import annotations

from quarterdeck.workflows.sandbox.sandbox import DEMOS, Sandbox

__all__ = ["DEMOS", "Sandbox"]
