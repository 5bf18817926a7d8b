"""What a headless run's narration costs per step, beside the runner.

Runs N journaled ``memory.set`` steps once (a chain, then one concurrent stage), keeping
every event in the batches the journal writer delivered them in (one per turn of the
loop), then replays those batches on a loop to each writer and prints the CPU time per
step above an empty subscriber: the plain narration (a pipe or file in CI), the styled
one (a terminal or FORCE_COLOR), GitHub Actions' commands beside the narration, and
``--events`` lines. Best of ``--repeat``.

    .venv/bin/python benchmarks/headless_writer.py [--steps 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner_overhead import workflow_text

from quarterdeck.core.config import Settings
from quarterdeck.core.definition import loader
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.events import Event
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.journal.store import Store
from quarterdeck.personas.registry import load_catalog
from quarterdeck.tui.headless.ci import EventStream, GitHubActions
from quarterdeck.tui.headless.render import PlainRenderer


def delivered(tmp: Path, steps: int, chained: bool) -> tuple[RunState, list[list[Event]]]:
    """One run's events, grouped by the loop turn the journal writer delivered them in."""
    path = tmp / f"wf-{chained}.yaml"
    path.write_text(workflow_text(steps, chained))
    catalog = load_catalog(tmp)
    store = Store(tmp / f"run-{chained}.db")
    runner = Runner(
        load_workflow(path, catalog),
        store,
        inputs={},
        settings=Settings(),
        personas=catalog,
        options=RunOptions(started_by="bench", workdir=tmp),
    )
    turns: list[list[Event]] = []
    open_turn: list[Event] | None = None

    def close() -> None:
        nonlocal open_turn
        open_turn = None

    def record(event: Event) -> None:
        nonlocal open_turn
        if open_turn is None:
            open_turn = []
            turns.append(open_turn)
            asyncio.get_running_loop().call_soon(close)
        open_turn.append(event)

    runner.subscribers.append(record)
    state = asyncio.run(runner.run())
    store.close()
    return state, turns


def replay(turns: list[list[Event]], writers: list[Callable[[Event], Any]]) -> float:
    async def go() -> None:
        for turn in turns:
            for event in turn:
                for write in writers:
                    write(event)
            await asyncio.sleep(0)

    started = time.process_time()
    asyncio.run(go())
    return time.process_time() - started


def writers(kind: str, state: RunState, sink: Any, store: Path) -> list[Callable[[Event], Any]]:
    if kind == "plain":
        return [PlainRenderer(state, sink, color=False, store=store)]
    if kind == "styled":
        return [PlainRenderer(state, sink, color=True, store=store)]
    if kind == "github":
        return [GitHubActions(sink, store=store), PlainRenderer(state, sink, store=store)]
    if kind == "events":
        return [EventStream(sink)]
    return [lambda event: None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    loader.MAX_NODES = max(loader.MAX_NODES, args.steps * 20)
    os.environ.pop("NO_COLOR", None)
    print(f"narration per step above an empty subscriber, {args.steps} steps, µs (CPU)")
    print(f"{'shape':<11} {'plain':>8} {'styled':>8} {'+github':>8} {'--events':>9}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for chained in (True, False):
            state, turns = delivered(tmp, args.steps, chained)
            gc.freeze()
            sink = open(os.devnull, "w")  # noqa: SIM115
            store = tmp / "q.db"
            best = {
                kind: min(
                    replay(turns, writers(kind, state, sink, store)) for _ in range(args.repeat)
                )
                for kind in ("none", "plain", "styled", "github", "events")
            }
            sink.close()
            gc.unfreeze()

            def per_step(kind: str, best: dict[str, float] = best) -> float:
                return (best[kind] - best["none"]) / args.steps * 1e6

            print(
                f"{'sequential' if chained else 'concurrent':<11} {per_step('plain'):8.1f}"
                f" {per_step('styled'):8.1f} {per_step('github'):8.1f} {per_step('events'):9.1f}"
            )


if __name__ == "__main__":
    main()
