"""What a short command's start-up no longer pays for, each proved in a fresh process (the
real console entry or ``main()``, a real store): no cyclic GC collection while start-up
builds what lives until exit (core/gc_pause.py), and no builtin's text signature parsed
for pydantic (core/factories.py). The run itself is still collected as usual."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import REPO, fresh_python

WORKFLOW = """\
name: probe
stages:
  - id: s
    steps:
      - {id: a, uses: memory.set, with: {key: k, value: 1}}
      - {id: b, uses: python, needs: [a], with: {call: 'gcprobe:look'}}
      - {id: c, uses: shell, needs: [b], with: {run: 'true'}}
"""
STEP = """
import asyncio, gc, __main__

def look() -> dict:
    __main__.SEEN["enabled_in_step"] = gc.isenabled()
    return {}
"""
# The console script as installed (its target module imported, then called: start-up, the
# command, the quick exit); what the process saw is written by an exit handler, which the
# entry runs before it leaves.
PROBE = """
import atexit, asyncio, gc, inspect, json, sys
out = sys.argv.pop(1)
SEEN = {"phase": "import", "import": 0, "start-up": 0, "run": 0, "builtin_signatures": 0}

def count(phase, info):
    if phase == "start":
        SEEN[SEEN["phase"]] += 1

gc.callbacks.append(count)
real_run = asyncio.run

def run(*args, **kwargs):
    SEEN["phase"] = "run"
    return real_run(*args, **kwargs)

asyncio.run = run
real = inspect._signature_fromstr

def spy(*args, **kwargs):
    SEEN["builtin_signatures"] += 1
    return real(*args, **kwargs)

inspect._signature_fromstr = spy

def report():
    SEEN["enabled_at_exit"] = gc.isenabled()
    with open(out, "w") as f:
        json.dump(SEEN, f)

atexit.register(report)
from importlib.metadata import entry_points
script = entry_points(group="console_scripts", name="quarterdeck")
assert len(script) == 1
SEEN["phase"] = "start-up"  # from loading the console script's target to the run's loop
next(iter(script)).load()()
"""


def _probe(tmp_path: Path, *args: str) -> dict[str, object]:
    out = tmp_path / "seen.json"
    fresh_python(PROBE, str(out), *args, cwd=tmp_path)
    seen: dict[str, object] = json.loads(out.read_text())
    return seen


def test_a_run_s_start_up_is_not_collected_and_its_run_is(tmp_path: Path) -> None:
    (tmp_path / "gcprobe.py").write_text(STEP)
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    seen = _probe(tmp_path, "run", "--headless", str(wf), "--store", str(tmp_path / "qd.db"))
    # ~60 collections before (imports, models, the load), a dozen of them while the command
    # line (typer) was imported, before the entry could pause the collector
    assert seen["start-up"] == 0
    assert seen["enabled_in_step"] is True  # the run is collected as it always was
    assert seen["enabled_at_exit"] is True


def test_a_run_parses_no_builtin_s_text_signature(tmp_path: Path) -> None:
    """pydantic asks each ``default_factory`` for its signature; ``list``'s is parsed with
    tokenize (its first use compiles a large pattern). The models a run builds (the
    workflow's, the config's, ``shell``'s parameters) give Python functions instead."""
    (tmp_path / "gcprobe.py").write_text(STEP)
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    seen = _probe(tmp_path, "run", "--headless", str(wf), "--store", str(tmp_path / "qd.db"))
    assert seen["builtin_signatures"] == 0


def test_other_commands_end_the_start_up_pause(tmp_path: Path) -> None:
    # `workflows` is not one of the read-and-exit commands that keep it to their end
    seen = _probe(tmp_path, "workflows")
    assert seen["enabled_at_exit"] is True
    # `validate` keeps it: it reads, answers and exits
    seen = _probe(tmp_path, "validate", str(REPO / "workflows" / "package-release.yaml"))
    assert seen["start-up"] == 0 and seen["enabled_at_exit"] is False


def test_validate_parses_no_builtin_s_text_signature() -> None:
    """``validate`` builds the parameter models of the actions a workflow uses (the bundled
    release: git, changelog, packaging, publish, quality…): none may ask pydantic for a
    builtin's text signature either."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        seen = _probe(Path(tmp), "validate", str(REPO / "workflows" / "package-release.yaml"))
    assert seen["builtin_signatures"] == 0


def test_no_action_parameter_defaults_to_a_builtin_factory() -> None:
    """Every registered action's parameter model: a field defaulting to a new list (or
    tuple, set) uses :func:`quarterdeck.core.factories.empty_list`-like Python functions,
    not the builtin, whose signature pydantic reads by parsing its text (see above)."""
    from quarterdeck.core.actions.base import load_builtin_actions, registered_actions

    load_builtin_actions()
    builtin = {list, tuple, set, frozenset}
    found = [
        f"{name}.{field}"
        for name, spec in registered_actions().items()
        for field, info in spec.params.model_fields.items()
        if info.default_factory in builtin
    ]
    assert registered_actions() and found == []
