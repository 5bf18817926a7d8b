"""The engine is headless: importing ``quarterdeck.core`` and every submodule never imports
textual (checked in a fresh interpreter, so nothing imported by other tests can hide it)."""

from __future__ import annotations

import json
import pkgutil

import quarterdeck.core as core
from tests.helpers import fresh_python

PROBE = """
import importlib, json, pkgutil, sys
import quarterdeck.core as core
names = ["quarterdeck.core"]
names += [m.name for m in pkgutil.walk_packages(core.__path__, "quarterdeck.core.")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(json.dumps({"modules": names, "textual": leaked}))
"""


def test_importing_core_does_not_import_textual() -> None:
    done = fresh_python(PROBE)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {
        "quarterdeck.core",
        *(m.name for m in pkgutil.walk_packages(core.__path__, "quarterdeck.core.")),
    }
    assert set(report["modules"]) == expected
    assert {"quarterdeck.core.engine.runner", "quarterdeck.core.actions.builtin"} <= expected
    assert report["textual"] == []
