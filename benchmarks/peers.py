"""Quarterdeck beside DBOS and LangGraph (+ its SQLite checkpointer), measured in one run.

Each peer is installed once into its own scratch venv (pinned versions below; DBOS
needs Python < 3.12 with this machine's SQLite, so every venv uses this interpreter).
Every measurement alternates the frameworks round by round, so a slow moment on the
machine lands on all of them, and reports medians:

- in-process cost per step: N trivial steps, sequential and concurrent, every step
  journaled by the framework's own durable store (SQLite);
- whole process: wall time of a 1-step workflow, T(1), and the marginal cost per step,
  (T(N) - T(1)) / (N - 1), sequential and concurrent;
- exec to first step: from just before the spawn to the first step's body.

Quarterdeck's in-process figure times ``Runner.run`` alone: the workflow is loaded before
the clock starts and no renderer is attached. Its whole-process marginal also pays, per
step, loading the definition (YAML, the model, the checks: ``runner_overhead.py --sizes``
prints it as "load") and the headless narration (two lines a step): that is why it is
above the in-process figure, most of all for the concurrent shape.

    .venv/bin/python benchmarks/peers.py [--rounds 5] [--steps 500] [--venvs DIR]

Ratios are peer / Quarterdeck: above 1 means Quarterdeck is cheaper.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PINS = {
    "dbos": ["dbos==3.4.0"],
    "langgraph": ["langgraph==1.2.24", "langgraph-checkpoint-sqlite==3.1.2"],
}

# One child program per peer: argv = mode (inproc|whole) shape (seq|par) steps db stamp.
# "inproc" prints the seconds its N steps took (framework already launched); "whole"
# is the entire program, and the first step's body writes time.time() to the stamp file.
DBOS_CHILD = """
import asyncio, sys, time
from dbos import DBOS
mode, shape, n, db, stamp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
DBOS(config={"name": "peers", "system_database_url": "sqlite:///" + db,
              "run_admin_server": False})

@DBOS.step()
async def first():
    with open(stamp, "w") as f:
        f.write(repr(time.time()))
    return 0

@DBOS.step()
async def work(i: int) -> int:
    return i

@DBOS.workflow()
async def flow(n: int, shape: str) -> int:
    await first()
    if shape == "seq":
        for i in range(1, n):
            await work(i)
    else:
        await asyncio.gather(*(work(i) for i in range(1, n)))
    return n

async def main():
    DBOS.launch()
    if mode == "inproc":
        await flow(2, shape)  # warm up
        t = time.perf_counter()
        await flow(n, shape)
        print("INPROC", time.perf_counter() - t)
    else:
        await flow(n, shape)

asyncio.run(main())
DBOS.destroy()
"""

LANGGRAPH_CHILD = """
import operator, sqlite3, sys, time
from typing import Annotated, TypedDict
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
mode, shape, n, db, stamp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]

class State(TypedDict):
    done: Annotated[list, operator.add]

def first(state):
    with open(stamp, "w") as f:
        f.write(repr(time.time()))
    return {"done": [0]}

def make(i):
    def node(state):
        return {"done": [i]}
    return node

def build(n):
    g = StateGraph(State)
    g.add_node("s0", first)
    for i in range(1, n):
        g.add_node(f"s{i}", make(i))
    g.add_edge(START, "s0")
    if shape == "seq":
        for i in range(1, n):
            g.add_edge(f"s{i-1}", f"s{i}")
        g.add_edge(f"s{n-1}", END)
    else:
        for i in range(1, n):
            g.add_edge("s0", f"s{i}")
            g.add_edge(f"s{i}", END)
        if n == 1:
            g.add_edge("s0", END)
    conn = sqlite3.connect(db, check_same_thread=False)
    return g.compile(checkpointer=SqliteSaver(conn))

def go(n, thread):
    build(n).invoke({"done": []}, {"configurable": {"thread_id": thread},
                                   "recursion_limit": n + 10})

if mode == "inproc":
    go(2, "warm")
    app = build(n)
    t = time.perf_counter()
    app.invoke({"done": []}, {"configurable": {"thread_id": "t"}, "recursion_limit": n + 10})
    print("INPROC", time.perf_counter() - t)
else:
    go(n, "t")
"""

# Quarterdeck: the same shape as a workflow file; the first step is a `python` call into
# a module beside the workflow, which writes the stamp.
QD_STEP_MODULE = """
import time

def first(stamp: str) -> dict:
    with open(stamp, "w") as f:
        f.write(repr(time.time()))
    return {}
"""

QD_INPROC_CHILD = """
import asyncio, os, sys, time
from pathlib import Path
from quarterdeck.core.config import Settings
from quarterdeck.core.definition.validate import load_workflow
from quarterdeck.core.engine.runner import Runner, RunOptions
from quarterdeck.core.journal.store import Store
from quarterdeck.personas.registry import load_catalog
mode, shape, n, db, wf_small, wf = sys.argv[1:7]
catalog = load_catalog(Path(db).parent)

def one(path, db):
    loaded = load_workflow(Path(path), catalog)
    store = Store(Path(db))
    runner = Runner(loaded, store, inputs={}, settings=Settings(), personas=catalog,
                    options=RunOptions(started_by="peers", workdir=Path(db).parent))
    t = time.perf_counter()
    state = asyncio.run(runner.run())
    elapsed = time.perf_counter() - t
    assert str(state.status) == "succeeded", state.error
    store.close()
    return elapsed

one(wf_small, db + ".warm")
print("INPROC", one(wf, db))
"""


def qd_workflow(steps: int, shape: str, stamp: Path | None) -> str:
    lines = [f"name: peers-{shape}", f"concurrency: {max(steps, 1)}", "stages:", "  - id: s"]
    lines.append("    steps:")
    if stamp is not None:
        lines.append(
            f"      - {{id: s0, uses: python, with: {{call: 'peerstep:first', "
            f"args: {{stamp: '{stamp}'}}}}}}"
        )
    else:
        lines.append("      - {id: s0, uses: memory.set, with: {key: k0, value: 0}}")
    for i in range(1, steps):
        needs = f", needs: [s{i - 1}]" if shape == "seq" else ", needs: [s0]"
        lines.append(
            f"      - {{id: s{i}, uses: memory.set{needs}, with: {{key: k{i}, value: {i}}}}}"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Results:
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, framework: str, measure: str, value: float) -> None:
        self.samples.setdefault(measure, {}).setdefault(framework, []).append(value)

    def median(self, measure: str, framework: str) -> float:
        return statistics.median(self.samples[measure][framework])


def ensure_venv(root: Path, peer: str) -> Path:
    venv = root / f"{peer}-py{sys.version_info.major}{sys.version_info.minor}"
    python = venv / "bin" / "python"
    marker = venv / ".pins"
    wanted = " ".join(PINS[peer])
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing {wanted} into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *PINS[peer]],
        check=True,
    )
    marker.write_text(wanted)
    return python


class Bench:
    def __init__(self, tmp: Path, pythons: dict[str, Path], steps: int) -> None:
        self.tmp = tmp
        self.pythons = pythons
        self.steps = steps
        self.counter = 0
        self.quarterdeck = Path(sys.executable).with_name("quarterdeck")
        (tmp / "peerstep.py").write_text(QD_STEP_MODULE)
        self.env = dict(os.environ, QUARTERDECK_HOME=str(tmp / "home"), NO_COLOR="1")
        self.env.pop("CI", None)

    def fresh(self, suffix: str) -> Path:
        self.counter += 1
        return self.tmp / f"{self.counter}-{suffix}"

    def command(self, framework: str, mode: str, shape: str, n: int) -> tuple[list[str], Path]:
        stamp = self.fresh("stamp")
        db = self.fresh("db.sqlite")
        if framework == "quarterdeck":
            wf = self.tmp / f"wf-{shape}-{n}-{self.counter}.yaml"
            if mode == "whole":
                wf.write_text(qd_workflow(n, shape, stamp))
                return [
                    str(self.quarterdeck),
                    "run",
                    "--headless",
                    str(wf),
                    "--store",
                    str(db),
                ], stamp
            small = self.tmp / f"wf-small-{self.counter}.yaml"
            small.write_text(qd_workflow(2, shape, None))
            wf.write_text(qd_workflow(n, shape, None))
            argv = [sys.executable, "-c", QD_INPROC_CHILD, mode, shape, str(n), str(db)]
            return [*argv, str(small), str(wf)], stamp
        child = DBOS_CHILD if framework == "dbos" else LANGGRAPH_CHILD
        python = self.pythons[framework]
        return [str(python), "-c", child, mode, shape, str(n), str(db), str(stamp)], stamp

    def run(self, argv: list[str]) -> tuple[float, str]:
        start = time.time()
        done = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, cwd=self.tmp, timeout=600
        )
        wall = time.time() - start
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return wall, done.stdout

    def round(self, framework: str, results: Results) -> None:
        n = self.steps
        for shape in ("seq", "par"):
            argv, _ = self.command(framework, "inproc", shape, n)
            _, out = self.run(argv)
            seconds = float(next(x for x in out.splitlines() if x.startswith("INPROC")).split()[1])
            results.add(framework, f"in-process per step, {shape} (µs)", seconds / n * 1e6)
        argv, stamp = self.command(framework, "whole", "seq", 1)
        start = time.time()
        t1, _ = self.run(argv)
        results.add(framework, "whole process T(1) (ms)", t1 * 1e3)
        results.add(framework, "exec -> first step (ms)", (float(stamp.read_text()) - start) * 1e3)
        for shape in ("seq", "par"):
            argv, _ = self.command(framework, "whole", shape, n)
            tn, _ = self.run(argv)
            # T(1) of this round, paired with T(N) of the same round
            results.add(
                framework,
                f"whole process marginal per step, {shape} (µs)",
                (tn - t1) / (n - 1) * 1e6,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument(
        "--venvs",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qd-peers",
        help="where the peers' scratch venvs live (reused between runs)",
    )
    parser.add_argument("--only", choices=["dbos", "langgraph"], action="append")
    args = parser.parse_args()
    peers = args.only or ["dbos", "langgraph"]
    args.venvs.mkdir(parents=True, exist_ok=True)
    pythons = {peer: ensure_venv(args.venvs, peer) for peer in peers}
    frameworks = ["quarterdeck", *peers]
    results = Results()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), pythons, args.steps)
        for framework in frameworks:  # warm the page cache and .pyc files; not counted
            bench.round(framework, Results())
        for r in range(args.rounds):
            for framework in frameworks if r % 2 == 0 else reversed(frameworks):
                bench.round(framework, results)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(
        f"Python {sys.version.split()[0]}, {args.steps} steps, {args.rounds} rounds "
        f"(medians); pins: {', '.join(p for peer in peers for p in PINS[peer])}"
    )
    header = f"{'measure':<46}" + "".join(f"{f:>13}" for f in frameworks)
    header += "".join(f"{peer + '/qd':>15}" for peer in peers)
    print(header)
    for measure in results.samples:
        row = f"{measure:<46}"
        qd = results.median(measure, "quarterdeck")
        for framework in frameworks:
            row += f"{results.median(measure, framework):13.1f}"
        for peer in peers:
            peer_value = results.median(measure, peer)
            # a marginal cost at or below zero is noise swamping the signal: no ratio
            row += f"{peer_value / qd:14.2f}x" if qd > 0 and peer_value > 0 else f"{'n/a':>15}"
        print(row)


if __name__ == "__main__":
    main()
