"""``python -m quarterdeck.tui.cli``: the same as the ``quarterdeck`` console script."""

from __future__ import annotations

from quarterdeck.tui.cli import entry

entry()
