"""Runner overhead: 1,000 sequential and 1,000 concurrent journaled ``memory.set`` steps.

Measured as whole runs (workflow loaded, run journaled to a real SQLite WAL file, every
event committed), so the figure is what a user pays per step. Prints microseconds per
step and peak memory. Each run is timed as ``quarterdeck run`` runs it: what start-up and
the load made is frozen out of the cyclic GC for the run (``gc.freeze``).

    .venv/bin/python benchmarks/runner_overhead.py [--steps 1000] [--repeat 3]
        [--durability normal|full] [--sizes 100,1000,10000]

``--load-memory N`` loads (only) an N-step workflow of each shape in a fresh process and
prints the RSS before, after and at peak, and the traced Python memory held after the
load and at its peak: what the definition costs before any run.

``--sizes`` measures each size and shape in a fresh child process, so each row's peak RSS
is that run's alone (the whole process: interpreter, imports, the loaded workflow and the
run), and prints µs/step per size: the cost per step should not grow with the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quarterdeck.core.config import Settings
from quarterdeck.core.definition import loader
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.store import Store
from quarterdeck.personas.registry import load_catalog


def workflow_text(steps: int, chained: bool) -> str:
    lines = [
        f"name: bench-{'seq' if chained else 'par'}",
        f"concurrency: {min(steps, 1024)}",  # the schema's upper bound
        "stages:",
        "  - id: s",
        "    steps:",
    ]
    for i in range(steps):
        needs = f", needs: [s{i - 1}]" if chained and i else ""
        lines.append(
            f"      - {{id: s{i}, uses: memory.set{needs}, with: {{key: k{i}, value: {i}}}}}"
        )
    return "\n".join(lines) + "\n"


def one_run(
    tmp: Path, steps: int, chained: bool, catalog: object, durability: str = "normal"
) -> tuple[float, int]:
    path = tmp / f"wf-{chained}.yaml"
    path.write_text(workflow_text(steps, chained))
    # the run before this one is cyclic garbage (runner, writer, state): collected before
    # this load, so the peak RSS is one run's, as a `quarterdeck run` process has it
    gc.collect()
    load_cpu = time.process_time()
    loaded = load_workflow(path, catalog)
    LAST_LOAD_CPU[0] = time.process_time() - load_cpu
    store = Store(tmp / f"bench-{time.monotonic_ns()}.db")
    runner = Runner(
        loaded,
        store,
        inputs={},
        settings=Settings(),
        personas=catalog,
        options=RunOptions(started_by="bench", workdir=tmp, durability=durability),
    )
    # as `quarterdeck run` does (tui/cli/run.py): what start-up and the load made is frozen
    # out of the cyclic GC for the run, so a full collection does not walk it again (the
    # garbage of the runs before it collected first: frozen, it would stay until the end)
    gc.collect()
    gc.freeze()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        state = asyncio.run(runner.run())
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.unfreeze()
    assert state.status == "succeeded", state.error
    events = store.last_seq(state.id)
    store.close()
    LAST_CPU[0] = cpu
    return elapsed, events


LAST_CPU = [0.0]  # the CPU time (all threads) of the last one_run
LAST_LOAD_CPU = [0.0]  # the CPU time of the last one_run's load (not in its timed run)


def rss_now_mb() -> float:
    """The process's resident set now (VmRSS), in MiB; 0 where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child(steps: int, chained: bool, repeat: int, durability: str) -> None:
    """One size and shape in this (fresh) process: prints a JSON line of its figures."""
    loader.MAX_NODES = max(loader.MAX_NODES, steps * 20)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        os.environ["QUARTERDECK_HOME"] = str(tmp / "home")
        catalog = load_catalog(tmp)
        one_run(tmp, 50, chained, catalog)  # warm up imports and caches
        before = rss_now_mb()
        walls, cpus, loads = [], [], []
        for _ in range(repeat):
            walls.append(one_run(tmp, steps, chained, catalog, durability)[0])
            cpus.append(LAST_CPU[0])
            loads.append(LAST_LOAD_CPU[0])
        best, cpu, load = min(walls), min(cpus), min(loads)
        one = min(one_run(tmp, 1, chained, catalog, durability)[0] for _ in range(repeat))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marginal = (best - one) / max(1, steps - 1) * 1e6
    figures = {"per_step_us": best / steps * 1e6, "marginal_us": marginal, "t1_ms": one * 1e3}
    figures["cpu_us"] = cpu / steps * 1e6
    figures["load_cpu_us"] = load / steps * 1e6
    print(json.dumps({**figures, "rss_mb": peak, "before_mb": before}))


def load_child(steps: int, chained: bool, traced: bool) -> None:
    """Load one N-step workflow in this (fresh) process: a JSON line of its memory."""
    loader.MAX_NODES = max(loader.MAX_NODES, steps * 20)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        os.environ["QUARTERDECK_HOME"] = str(tmp / "home")
        catalog = load_catalog(tmp)
        path = tmp / "wf.yaml"
        path.write_text(workflow_text(50, chained))
        load_workflow(path, catalog)  # warm up imports and caches
        path.write_text(workflow_text(steps, chained))
        before = rss_now_mb()
        if traced:
            tracemalloc.start()
        loaded = load_workflow(path, catalog)
        after = rss_now_mb()
        held, peak = tracemalloc.get_traced_memory() if traced else (0, 0)
        del loaded
    figures = {"before": before, "after": after, "held": held / 2**20, "traced_peak": peak / 2**20}
    figures["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def load_memory(steps: int) -> None:
    """The memory of loading an N-step workflow, each shape in fresh processes (MiB)."""
    print(f"loading {steps} steps (MiB): RSS before / after / peak; traced held / peak")
    for shape in ("sequential", "concurrent"):
        got = {}
        for mode in ("rss", "traced"):  # tracemalloc's own memory would inflate the RSS
            argv = [sys.executable, __file__, "--load-child", shape[:3], "--steps", str(steps)]
            out = subprocess.run(
                [*argv, "--traced"] if mode == "traced" else argv,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            got[mode] = json.loads(out.strip().splitlines()[-1])
        rss, traced = got["rss"], got["traced"]
        print(
            f"{shape:<11} RSS {rss['before']:6.1f} / {rss['after']:6.1f} / {rss['peak']:6.1f}"
            f"   traced {traced['held']:6.1f} / {traced['traced_peak']:6.1f}",
            flush=True,
        )


def sizes(spec: str, repeat: int, durability: str) -> None:
    """Each size and shape in a fresh child process; a table of µs/step and peak RSS."""
    print(f"[{durability}] best of {repeat}; marginal: (T(N) - T(1)) / (N - 1), T(1) a 1-step run;")
    print("RSS: the whole child process (MiB), before the run = after imports and a warm-up")
    print("CPU: the process's CPU time per step (all threads), best of the repeats: the")
    print("figure to compare on a busy machine, where the wall also counts waiting for a core")
    print("load: the CPU time per step of loading and checking the definition before the run")
    print("(not in the other columns; `quarterdeck run` pays it too)")
    print(
        f"{'steps':>7} {'shape':<11} {'µs/step':>8} {'marginal':>9} {'T(1) ms':>8}"
        f" {'peak RSS':>9} {'RSS before run':>15} {'CPU µs/step':>12} {'load µs/step':>13}"
    )
    for steps in (int(n) for n in spec.split(",")):
        for shape in ("sequential", "concurrent"):
            argv = [sys.executable, __file__, "--child", shape[:3], "--steps", str(steps)]
            out = subprocess.run(
                [*argv, "--repeat", str(repeat), "--durability", durability],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            got = json.loads(out.strip().splitlines()[-1])
            print(
                f"{steps:>7} {shape:<11} {got['per_step_us']:8.1f} {got['marginal_us']:9.1f}"
                f" {got['t1_ms']:8.2f} {got['rss_mb']:9.1f} {got['before_mb']:15.1f}"
                f" {got['cpu_us']:12.1f} {got['load_cpu_us']:13.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--durability",
        choices=["normal", "full"],
        default="normal",
        help="full: fsync every commit (synchronous=FULL)",
    )
    parser.add_argument("--sizes", help="comma-separated step counts, each in a fresh process")
    parser.add_argument("--load-memory", type=int, metavar="N", help="memory of loading N steps")
    parser.add_argument("--child", choices=["seq", "con"], help=argparse.SUPPRESS)
    parser.add_argument("--load-child", choices=["seq", "con"], help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_child:
        load_child(args.steps, args.load_child == "seq", args.traced)
        return
    if args.load_memory:
        load_memory(args.load_memory)
        return
    if args.child:
        child(args.steps, args.child == "seq", args.repeat, args.durability)
        return
    if args.sizes:
        sizes(args.sizes, args.repeat, args.durability)
        return
    # the loader's bound on untrusted files (100,000 values) is below a 10,000-step workflow
    loader.MAX_NODES = max(loader.MAX_NODES, args.steps * 20)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        os.environ["QUARTERDECK_HOME"] = str(tmp / "home")
        catalog = load_catalog(tmp)
        one_run(tmp, 50, True, catalog)  # warm up imports and caches
        for label, chained in (("sequential (needs chain)", True), ("concurrent", False)):
            best = float("inf")
            events = 0
            for _ in range(args.repeat):
                elapsed, events = one_run(tmp, args.steps, chained, catalog, args.durability)
                best = min(best, elapsed)
            per_step = best / args.steps * 1e6
            print(
                f"[{args.durability}] {label:<26} {args.steps} steps  best of {args.repeat}:"
                f" {best * 1000:8.1f} ms"
                f"  = {per_step:6.1f} µs/step  ({events} events journaled)"
            )
        # memory in separate runs: tracemalloc slows Python down and would skew the timing
        tracemalloc.start()
        one_run(tmp, args.steps, True, catalog, args.durability)
        one_run(tmp, args.steps, False, catalog, args.durability)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced Python memory: {peak / 1e6:.1f} MB; peak RSS: {rss:.1f} MB")


if __name__ == "__main__":
    main()
