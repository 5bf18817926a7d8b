"""``resume`` and ``show --json`` of a 10,000-step run with ~170 steps left, whole process.

Builds one run with the real CLI (``quarterdeck run --headless``) that stops at a known
step: ``gate`` (a ``python`` call into a module beside the workflow) fails on purpose
while its stamp file says ``armed``, so the run ends ``failed`` with ``gate`` and the 169
steps of the last stage left to do. Every round then copies that store, re-arms
nothing (the stamp now says "go"), and times:

- ``quarterdeck resume RUN --headless``: from just before the spawn to ``gate``'s body
  (it writes ``time.time()`` to the stamp, as benchmarks/peers.py does), and to the exit;
- ``quarterdeck show RUN --json`` of the stopped run (the store is opened read-only).

Each is measured as wall time and as CPU time (user + system, robust on a shared box;
the gate writes its process's CPU time so far, so "to first step" has both).

The run stops failed, so it keeps a state snapshot (core/journal/snapshot.py): both
commands fold only the events after it. ``--without-snapshot`` measures this build a
second time on a copy of its run with the snapshot removed (what a run from before
snapshots, or one that was killed, costs), alternated with the others.

Rounds alternate the two commands; medians are printed. ``--profile`` runs each command
once more under cProfile and prints the top functions by cumulative time.
``--instructions`` runs each once more under callgrind (``valgrind`` must be installed)
and prints the instructions it executed, user space, to its exit: a count that a busy
box does not change (``PYTHONHASHSEED=0``, so the same build counts the same), where
walls and CPU times on a shared machine move by tens of milliseconds from one round, or
one position in a round, to the next.

The workflow's shape stays inside the loader's bound on untrusted files
(``quarterdeck.core.definition.loader.MAX_NODES``; it was 100,000 values when this was
written), so the real CLI loads it unchanged, with no knob raised: 9,830 independent
``memory.set`` steps (9 values each) in stage ``bulk``, stage ``stop`` with ``gate``
alone, then stage ``tail``, a needs-chain of 169 (12 values each). ``gate`` has a stage
of its own so that builds from before the
fix for steps a failed stage never started (journaled ``skipped``, and kept as done by
their resume) run the same 170 steps on resume, and ``--baseline`` compares like with like.

    .venv/bin/python benchmarks/resume_at_size.py [--steps 10000] [--left 170]
        [--rounds 5] [--profile] [--instructions] [--baseline OTHER/.venv/bin/quarterdeck]
        [--without-snapshot]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP_MODULE = """
import time
from pathlib import Path

def gate(stamp: str) -> dict:
    path = Path(stamp)
    if path.read_text() == "armed":
        path.write_text("go")
        raise RuntimeError("the benchmark stops the run here; resume it")
    path.write_text(f"{time.time()!r} {time.process_time()!r}")  # wall, CPU so far
    return {}
"""


def workflow_text(steps: int, left: int, stamp: Path) -> str:
    bulk = steps - left
    lines = ["name: resume-at-size", "concurrency: 64", "stages:", "  - id: bulk", "    steps:"]
    lines += [f"      - {{id: b{i}, uses: memory.set, with: {{key: b}}}}" for i in range(bulk)]
    lines += [
        "  - id: stop",
        "    steps:",
        f"      - {{id: gate, uses: python, with: {{call: 'resumestep:gate', "
        f"args: {{stamp: '{stamp}'}}}}}}",
        "  - id: tail",
        "    steps:",
        "      - {id: t0, uses: memory.set, with: {key: t}}",
    ]
    for i in range(1, left - 1):
        lines.append(f"      - {{id: t{i}, uses: memory.set, needs: [t{i - 1}], with: {{key: t}}}}")
    return "\n".join(lines) + "\n"


def run_id_of(store: Path) -> str:
    import sqlite3

    with sqlite3.connect(store) as conn:
        return str(conn.execute("SELECT id FROM runs").fetchone()[0])


def copy_store(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


class Bench:
    """One Quarterdeck (``qd``, its console script) and the stopped run it built."""

    def __init__(self, tmp: Path, qd: str, steps: int, left: int, label: str) -> None:
        self.tmp = tmp / label
        self.tmp.mkdir()
        self.qd = qd
        self.label = label
        self.env = {**os.environ, "QUARTERDECK_HOME": str(self.tmp / "home"), "NO_COLOR": "1"}
        self.stamp = self.tmp / "stamp"
        self.base = self.tmp / "base.db"
        (self.tmp / "resumestep.py").write_text(STEP_MODULE)
        self.workflow = self.tmp / "wf.yaml"
        self.workflow.write_text(workflow_text(steps, left, self.stamp))
        self.counter = 0
        self.run_id = ""
        self.samples: dict[str, list[float]] = {}

    def add(self, measure: str, value: float) -> None:
        self.samples.setdefault(measure, []).append(value)

    def sh(self, argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[str, float]:
        """Run ``argv``; its stdout and the CPU seconds (user + system) it used."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, cwd=self.tmp, timeout=900
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return done.stdout, cpu

    def build(self) -> None:
        self.stamp.write_text("armed")
        started = time.perf_counter()
        argv = [self.qd, "run", "--headless", str(self.workflow), "--store", str(self.base)]
        self.sh(argv, ok=(1,))  # the gate fails: the run is failed, resumable
        self.run_id = run_id_of(self.base)
        took = time.perf_counter() - started
        print(f"[{self.label}] built run {self.run_id} in {took:.1f} s", flush=True)

    def drop_snapshot(self) -> None:
        """The run as if it had stopped without keeping a snapshot (its journal folded)."""
        import sqlite3

        with sqlite3.connect(self.base) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "snapshots" in tables:
                conn.execute("DELETE FROM snapshots")
        conn.close()

    def resume(self, prefix: list[str] | None = None) -> None:
        """Wall and CPU seconds from spawn to the gate's body; wall and CPU to the exit."""
        self.counter += 1
        db = self.tmp / f"round-{self.counter}.db"
        copy_store(self.base, db)
        self.stamp.write_text("go")
        argv = [*(prefix or [self.qd]), "resume", self.run_id, "--headless", "--store", str(db)]
        start = time.time()
        _, cpu = self.sh(argv)
        end = time.time()
        first_wall, first_cpu = (float(x) for x in self.stamp.read_text().split())
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        self.add("resume: exec -> first new step, wall (ms)", (first_wall - start) * 1e3)
        self.add("resume: exec -> first new step, CPU (ms)", first_cpu * 1e3)
        self.add("resume: exec -> exit, wall (ms)", (end - start) * 1e3)
        self.add("resume: exec -> exit, CPU (ms)", cpu * 1e3)

    def show(self, prefix: list[str] | None = None) -> None:
        argv = [*(prefix or [self.qd]), "show", self.run_id, "--json", "--store", str(self.base)]
        start = time.time()
        out, cpu = self.sh(argv)
        took = time.time() - start
        assert '"status": "failed"' in out, out[:300]
        self.add("show --json, wall (ms)", took * 1e3)
        self.add("show --json, CPU (ms)", cpu * 1e3)


def profile(bench: Bench) -> None:
    """One more resume and show under cProfile, top 25 by cumulative time each."""
    import pstats

    python = str(Path(bench.qd).parent / "python")
    # main(), not the console entry: that one leaves with os._exit, before cProfile writes
    cli = bench.tmp / "cli_main.py"
    cli.write_text("from quarterdeck.tui.cli import main\n\nmain()\n")
    for name in ("resume", "show"):
        out = bench.tmp / f"{name}.prof"
        prefix = [python, "-m", "cProfile", "-o", str(out), str(cli)]
        (bench.resume if name == "resume" else bench.show)(prefix)
        print(f"\n--- [{bench.label}] profile: {name} ---")
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(25)


def instructions(bench: Bench) -> None:
    """Each command once more under callgrind: the instructions it executed (user space)."""
    import re

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (e.g. apt-get install valgrind)")
    db = bench.tmp / "callgrind.db"
    copy_store(bench.base, db)
    bench.stamp.write_text("go")
    commands = {
        "resume, to its exit": [bench.qd, "resume", bench.run_id, "--headless", "--store", str(db)],
        "show --json": [bench.qd, "show", bench.run_id, "--json", "--store", str(bench.base)],
    }
    for name, argv in commands.items():
        done = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
            capture_output=True,
            text=True,
            env={**bench.env, "PYTHONHASHSEED": "0"},
            cwd=bench.tmp,
            timeout=1800,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(
                f"{name} under callgrind exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        print(f"  [{bench.label}] {name:<22} {int(found.group(1)):>15,} instructions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--left", type=int, default=170, help="steps the resume runs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print cProfile breakdowns")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="print each command's instruction count under callgrind (needs valgrind)",
    )
    parser.add_argument(
        "--baseline",
        metavar="QUARTERDECK",
        help="another build's console script, measured alternately with this one "
        "(e.g. a checkout of main's .venv/bin/quarterdeck)",
    )
    parser.add_argument(
        "--without-snapshot",
        action="store_true",
        help="also measure this build on its run with the state snapshot removed",
    )
    args = parser.parse_args()
    here = str(Path(sys.executable).parent / "quarterdeck")
    with tempfile.TemporaryDirectory() as tmpdir:
        benches = [Bench(Path(tmpdir), here, args.steps, args.left, "this")]
        if args.without_snapshot:
            benches.append(Bench(Path(tmpdir), here, args.steps, args.left, "no-snap"))
        if args.baseline:
            benches.append(Bench(Path(tmpdir), args.baseline, args.steps, args.left, "baseline"))
        for bench in benches:
            bench.build()
            if bench.label == "no-snap":
                bench.drop_snapshot()
            bench.show()  # warm the page cache
            bench.samples.clear()
        for _ in range(args.rounds):
            for bench in benches:  # alternated: a busy moment lands on both
                bench.resume()
                bench.show()
        print(f"{args.steps} steps, {args.left} left, {args.rounds} rounds, medians:")
        for measure in benches[0].samples:
            figures = "  ".join(
                f"{b.label} {statistics.median(b.samples[measure]):8.1f}" for b in benches
            )
            print(f"  {measure:<44} {figures}")
        if args.instructions:
            print("instructions (callgrind, PYTHONHASHSEED=0):")
            for bench in benches:
                instructions(bench)
        if args.profile:
            for bench in benches:
                profile(bench)


if __name__ == "__main__":
    main()
