"""This build against another, command by command, alternated: the start-up-bound commands.

Walls on a shared 2-core box swing 1.5x from one minute to the next, so a comparison of
two builds measured apart says little. Here each round runs every command with both
builds back to back (which goes first alternates), and ``--instructions`` counts what each
executes under callgrind (``PYTHONHASHSEED=0``: the same build counts the same, within
0.1%). The commands, each the real console script in a fresh process:

- ``run --headless`` of a 1-step workflow (T(1)), into a store reused round by round;
- ``runs --json`` and ``show RUN --json`` of a store holding that one run;
- ``show RUN --json`` of a 10,000-step run stopped with 170 steps left (the run of
  ``benchmarks/resume_at_size.py``, built once by this build).

    .venv/bin/python benchmarks/startup_pairs.py --baseline OTHER/.venv/bin/quarterdeck
        [--rounds 11] [--instructions]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import resume_at_size  # the 10,000-step run it builds
from cli_commands import first_run, scratch, timed  # the same workflow and timing


def instructions(argv: list[str], env: dict[str, str]) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (e.g. apt-get install valgrind)")
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True,
        text=True,
        env={**env, "PYTHONHASHSEED": "0"},
        timeout=600,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind of {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the other build's quarterdeck")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--instructions", action="store_true", help="callgrind counts too")
    args = parser.parse_args()
    exes = {"this": str(Path(sys.executable).with_name("quarterdeck")), "base": args.baseline}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env, wf = scratch(tmp)
        small = tmp / "one-run.db"
        small_run = first_run(exes["this"], wf, small, env)
        big = resume_at_size.Bench(tmp, exes["this"], 10_000, 170, "big")
        big.build()

        def commands(label: str) -> dict[str, list[str]]:
            exe = exes[label]
            return {
                "run --headless (1 step)": [
                    *(exe, "run", "--headless", str(wf), "--store", str(tmp / f"t1-{label}.db"))
                ],
                "runs --json": [exe, "runs", "--json", "--store", str(small)],
                "show RUN --json": [exe, "show", small_run, "--json", "--store", str(small)],
                "show 10k-step RUN --json": [
                    *(exe, "show", big.run_id, "--json", "--store", str(big.base))
                ],
            }

        names = list(commands("this"))
        for label in exes:  # warm the page cache (and each T(1) store); not counted
            for argv in commands(label).values():
                timed(argv, env)
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            for name in names:
                for label in ("this", "base") if r % 2 == 0 else ("base", "this"):
                    samples.setdefault((name, label), []).append(timed(commands(label)[name], env))
        print(f"{args.rounds} rounds, this build and the baseline alternated per command")
        print(f"{'ms: median (min)':<28}{'wall':>14}{'cpu':>14}{'base wall':>14}{'base cpu':>14}")
        for name in names:
            cells = []
            for label in ("this", "base"):
                walls = [w * 1e3 for w, _ in samples[(name, label)]]
                cpus = [c * 1e3 for _, c in samples[(name, label)]]
                cells.append(f"{statistics.median(walls):.0f} ({min(walls):.0f})")
                cells.append(f"{statistics.median(cpus):.0f} ({min(cpus):.0f})")
            print(f"{name:<28}" + "".join(f"{cell:>14}" for cell in cells))
        if args.instructions:
            print("instructions (callgrind, PYTHONHASHSEED=0), this / baseline:")
            for name in names:
                ours = instructions(commands("this")[name], env)
                theirs = instructions(commands("base")[name], env)
                print(f"  {name:<28}{ours:>15,} {theirs:>15,}  {ours / theirs - 1:+.1%}")


if __name__ == "__main__":
    main()
