"""Output flood: what 100 MB of step output (plus one 50 MB line) costs the journal.

Runs ``quarterdeck run --headless --events FILE`` in a subprocess on a workflow whose one
step prints ``--mb`` MB of short lines and a ``--line-mb`` MB single line, then prints the
journal size, the events file size, the log file size, whether the long line is whole in
the log, and the child's peak RSS (``ru_maxrss`` of the finished child).

    .venv/bin/python benchmarks/output_flood.py --mb 100 --line-mb 50
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKFLOW = """\
name: flood
stages:
  - id: s
    persona: backend-engineer
    steps:
      - id: flood
        uses: shell
        with: {run: "python3 gen.py"}
"""

GEN = """\
import sys
out = sys.stdout
line = "y" * 99 + "\\n"
for _ in range({lines}):
    out.write(line)
out.write("x" * {long} + "\\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--line-mb", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "wf.yaml").write_text(WORKFLOW)
        long = args.line_mb * 1_000_000
        (root / "gen.py").write_text(GEN.format(lines=args.mb * 10_000, long=long))
        env = {**os.environ, "QUARTERDECK_HOME": str(root / "home")}
        db, events = root / "qd.db", root / "events.jsonl"
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "quarterdeck.tui.cli", "run", str(root / "wf.yaml"),
             "--headless", "--store", str(db), "--events", str(events)],
            cwd=root, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        logs = list((root / "home" / "runs").rglob("*.log"))
        log_size = sum(p.stat().st_size for p in logs)
        whole = False
        for path in logs:
            with path.open("rb") as fh:
                for raw in fh:
                    if raw.startswith(b"xxxx"):
                        whole = len(raw) == long + 1
        journal = sum(p.stat().st_size for p in root.glob("qd.db*"))
        print(f"exit {proc.returncode} in {elapsed:.1f} s")
        print(f"output: {args.mb} MB of lines + one {args.line_mb} MB line")
        print(f"journal (qd.db + wal): {journal / 1e6:.2f} MB")
        print(f"events file: {events.stat().st_size / 1e6:.2f} MB")
        print(f"log file(s): {log_size / 1e6:.1f} MB; long line whole: {whole}")
        print(f"peak RSS of quarterdeck: {peak:.0f} MB")


if __name__ == "__main__":
    main()
