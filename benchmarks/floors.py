"""The floors under the whole-command targets: what the libraries and formats Quarterdeck is
built on cost before any Quarterdeck code, measured beside the real commands.

- **Start-up.** A fresh interpreter with the cyclic GC off (as the console script starts)
  importing only the libraries a command cannot do without before its work: ``run`` needs
  typer (the command line), asyncio (the runner), pydantic (the workflow, config and action
  parameter models), PyYAML (the definition), sqlite3 (the journal) and logging; ``validate``
  needs typer, pydantic, PyYAML, Jinja2 (expression syntax) and logging. The real commands
  (``run --headless`` of a 1-step workflow, ``validate`` of the bundled package-release)
  and ``python -c pass`` run in the same rounds, in turn, so a slow moment lands on all.
- **A step's definition**, per step of a 2,000-step workflow (independent and chained):
  libyaml's parse alone (PyYAML's C parser, its events, no value built) and Quarterdeck's
  whole load (values, positions, models, checks).
- **A step's journal**, per step: its three events (``step.started``, ``memory.set``,
  ``step.finished``) built as the runner builds them (payload, JSON, hash link), and
  committed with the runner's own ``Store.commit_batch`` on a real WAL file, one commit per
  step (a chain) or one commit per 100 steps (steps that run at once).

    .venv/bin/python benchmarks/floors.py [--rounds 11] [--steps 2000]

Pin it to one processor on a shared machine (``taskset -c 1``): the start-up figures are
medians (min) over the rounds, the per-step ones the best of five.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_commands import ROOT, scratch, timed  # the same workflow and timing
from runner_overhead import workflow_text  # the same step shapes

LIBRARIES = {
    "libraries of run": "typer, asyncio, yaml, sqlite3, logging",
    "libraries of validate": "typer, yaml, jinja2, logging",
}
# what the models import (core/definition/models.py, core/config.py)
PYDANTIC = "from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator"


def startup(rounds: int) -> dict[str, list[float]]:
    exe = str(Path(sys.executable).with_name("quarterdeck"))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env, wf = scratch(tmp)
        commands = {"python -c pass": [sys.executable, "-c", "pass"]}
        for name, modules in LIBRARIES.items():
            code = f"import gc; gc.disable(); import {modules}; {PYDANTIC}"
            commands[name] = [sys.executable, "-c", code]
        commands["quarterdeck run --headless (1 step)"] = [
            exe,
            *("run", "--headless", str(wf), "--store", str(tmp / "t.db")),
        ]
        commands["quarterdeck validate package-release"] = [
            exe,
            *("validate", str(ROOT / "workflows" / "package-release.yaml")),
        ]
        for argv in commands.values():  # the page cache warm; not counted
            timed(argv, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                walls[name].append(timed(argv, env)[0])
        return walls


def best(fn: Callable[[], object], times: int = 5) -> float:
    """The fastest of ``times`` calls, in seconds (the GC off inside, as a run has it)."""
    fastest = float("inf")
    for _ in range(times):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - start)
        gc.enable()
    return fastest


def definition(steps: int) -> list[tuple[str, float]]:
    import yaml

    from quarterdeck.core.definition.validate import load_workflow
    from quarterdeck.personas.registry import load_catalog

    catalog = load_catalog()
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for chained, shape in ((False, "independent"), (True, "chained")):
            text = workflow_text(steps, chained)
            path = Path(tmpdir) / f"{shape}.yaml"
            path.write_text(text)

            def parse(text: str = text) -> None:
                parser = yaml.CSafeLoader(text)
                while parser.check_event():
                    parser.get_event()
                parser.dispose()

            def load(path: Path = path) -> None:
                load_workflow(path, catalog)

            rows.append((f"libyaml parse only, {shape}", best(parse) / steps))
            rows.append((f"Quarterdeck's load, {shape}", best(load) / steps))
    return rows


def journal(steps: int) -> list[tuple[str, float]]:
    from quarterdeck.core.journal.events import MemorySet, StepFinished, StepStarted, event
    from quarterdeck.core.journal.statuses import StepStatus
    from quarterdeck.core.journal.store import Store, _data_json, event_hash

    def step_events(run_id: str, i: int, seq: int) -> list[object]:
        built = [
            event(StepStarted(attempt=1, uses="memory.set"), run_id, "s", f"s{i}"),
            event(MemorySet(key=f"k{i}", value=i), run_id, "s", f"s{i}"),
            event(
                StepFinished(
                    status=StepStatus.SUCCEEDED,
                    attempt=1,
                    outputs={"key": f"k{i}", "value": i},
                    duration=3.8e-05,
                ),
                run_id,
                "s",
                f"s{i}",
            ),
        ]
        for n, e in enumerate(built):
            e.seq, e.ts = seq + n, time.time()
        return built

    def build_only() -> None:
        prev = "0" * 64
        for i in range(steps):
            for e in step_events("r", i, 3 * i + 1):
                row = (e.run_id, e.seq, e.ts, e.type, e.stage, e.step, _data_json(e.data))
                prev = event_hash(prev, row)

    def format_only() -> None:
        """What the journal's format itself asks: each event's data as JSON, and its hash
        link (the row's canonical JSON, sha256), from plain dicts (no payload objects)."""
        prev = "0" * 64
        for i in range(steps):
            step, ts = f"s{i}", time.time()
            for n, (type_, data) in enumerate(
                (
                    ("step.started", {"attempt": 1, "uses": "memory.set", "role": "step"}),
                    ("memory.set", {"key": f"k{i}", "value": i}),
                    (
                        "step.finished",
                        {"status": "succeeded", "attempt": 1, "outputs": {"key": f"k{i}"}},
                    ),
                )
            ):
                row = ("r", 3 * i + 1 + n, ts, type_, "s", step, _data_json(data))
                prev = event_hash(prev, row)

    rows = [
        ("3 events, the format only (JSON, hash link)", best(format_only) / steps),
        ("3 events built as the runner does (payloads too)", best(build_only) / steps),
    ]
    with tempfile.TemporaryDirectory() as tmpdir:
        for per_commit, shape in ((1, "one commit per step (a chain)"), (100, "one per 100 steps")):
            store = Store(Path(tmpdir) / f"{per_commit}.db")
            runs = itertools.count()  # a new run each call

            def commit(
                store: Store = store, per_commit: int = per_commit, runs: Iterator[int] = runs
            ) -> None:
                run_id = f"r{next(runs)}"
                store.create_run(
                    run_id,
                    workflow="w",
                    title="",
                    workflow_path="",
                    definition="",
                    workdir="",
                    inputs={},
                    started_by="bench",
                    started_at=time.time(),
                )
                batch: list[object] = []
                for i in range(steps):
                    batch += step_events(run_id, i, 3 * i + 1)
                    if (i + 1) % per_commit == 0 or i + 1 == steps:
                        store.commit_batch(run_id, None, batch)  # type: ignore[arg-type]
                        batch = []

            rows.append((f"3 events built and committed, {shape}", best(commit) / steps))
            store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, pid {os.getpid()}")
    print(f"\nstart-up, {args.rounds} rounds in turn: wall median (min), ms")
    for name, walls in startup(args.rounds).items():
        print(f"  {name:<40}{statistics.median(walls) * 1e3:7.0f} ({min(walls) * 1e3:.0f})")
    print(f"\nper step of {args.steps} steps, best of 5: µs")
    for name, seconds in definition(args.steps) + journal(args.steps):
        print(f"  {name:<62}{seconds * 1e6:7.1f}")


if __name__ == "__main__":
    main()
