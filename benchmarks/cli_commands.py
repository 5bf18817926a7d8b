"""Whole-command cost of the everyday commands: wall and CPU time per process, medians.

Each command is the real console script in a fresh process (start-up, imports, work and
exit included), against a scratch store holding one finished run:

- ``run --headless`` of a 1-step workflow (T(1));
- ``runs --json``, ``show RUN --json``, ``validate`` of a bundled workflow, ``--help``;
- exec -> first step: from just before the process starts to the moment the first step's
  body runs (a ``python`` step writing ``time.time()``), as ``benchmarks/peers.py`` has it.

The commands run in turn, round by round, so a slow moment on the machine lands on all of
them. CPU is the child's user + system time (what a loaded machine disturbs least).

    .venv/bin/python benchmarks/cli_commands.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_STEP = """\
name: one-step
stages:
  - id: s
    steps:
      - {id: a, uses: memory.set, with: {key: k, value: 1}}
"""
FIRST_STEP = """\
name: first-step
stages:
  - id: s
    steps:
      - {{id: a, uses: python, with: {{call: 'stampstep:first', args: {{stamp: '{stamp}'}}}}}}
"""
STEP_MODULE = """\
import time

def first(stamp: str) -> dict:
    with open(stamp, "w") as f:
        f.write(repr(time.time()))
    return {}
"""


def scratch(tmp: Path) -> tuple[dict[str, str], Path]:
    """The environment commands are timed in (a home of their own in ``tmp``, no colour,
    not CI) and the 1-step workflow written there (``startup_pairs.py`` and ``floors.py``
    start the same way)."""
    env = dict(os.environ, QUARTERDECK_HOME=str(tmp / "home"), NO_COLOR="1")
    env.pop("CI", None)
    wf = tmp / "one.yaml"
    wf.write_text(ONE_STEP)
    return env, wf


def first_run(exe: str, wf: Path, store: Path, env: dict[str, str]) -> str:
    """Run ``wf`` headless into ``store``; the run's id (from its last line)."""
    done = subprocess.run(
        [exe, "run", "--headless", str(wf), "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stderr.strip().splitlines()[-1].split()[1].rstrip(":")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process; fails loudly on a non-zero exit.
    (``startup_pairs.py`` times with it too.)"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("quarterdeck"))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env, wf = scratch(tmp)
        store = tmp / "qd.db"
        run_id = first_run(exe, wf, store, env)
        commands = {
            "run --headless (1 step)": [
                exe,
                "run",
                "--headless",
                str(wf),
                "--store",
                str(tmp / "t1.db"),
            ],
            "runs --json": [exe, "runs", "--json", "--store", str(store)],
            "show RUN --json": [exe, "show", run_id, "--json", "--store", str(store)],
            "validate package-release": [
                exe,
                "validate",
                str(ROOT / "workflows" / "package-release.yaml"),
            ],
            "--help": [exe, "--help"],
        }
        stamp = tmp / "stamp"
        (tmp / "stampstep.py").write_text(STEP_MODULE)
        (tmp / "first.yaml").write_text(FIRST_STEP.format(stamp=stamp))
        first_argv = [exe, "run", "--headless", str(tmp / "first.yaml"), "--store"]
        for argv in commands.values():  # warm the page cache; not counted
            timed(argv, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        to_first: list[float] = []
        for r in range(args.rounds):
            for name, argv in commands.items():
                wall, cpu = timed(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
            start = time.time()
            timed([*first_argv, str(tmp / f"first{r}.db")], env)
            to_first.append(float(stamp.read_text()) - start)
    print(f"{args.rounds} rounds, medians (min) in ms; Python {sys.version.split()[0]}")
    print(f"{'command':<28}{'wall':>16}{'cpu':>16}")
    for name in commands:
        wall = f"{statistics.median(walls[name]) * 1e3:.0f} ({min(walls[name]) * 1e3:.0f})"
        cpu = f"{statistics.median(cpus[name]) * 1e3:.0f} ({min(cpus[name]) * 1e3:.0f})"
        print(f"{name:<28}{wall:>16}{cpu:>16}")
    first = f"{statistics.median(to_first) * 1e3:.0f} ({min(to_first) * 1e3:.0f})"
    print(f"{'exec -> first step body':<28}{first:>16}")


if __name__ == "__main__":
    main()
