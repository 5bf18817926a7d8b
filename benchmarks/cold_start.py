"""Cold start: time from process start to the first frame of the cockpit's home screen.

Each sample spawns a fresh interpreter that imports the cockpit, opens home (headless,
120×40) and reports the wall time of its first composed frame; the parent measures from
just before the spawn. Prints every sample, the median and the best.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from quarterdeck.tui.app import QuarterdeckApp

app = QuarterdeckApp(store_path=Path(sys.argv[2]), actor="bench")
original = app._display
def display(screen, renderable):
    original(screen, renderable)
    if renderable is not None and type(screen).__name__ == "HomeScreen":
        print(f"FIRST_FRAME {time.time():.6f}", flush=True)
        app._display = original
        app.exit()
app._display = display
app.run(headless=True, size=(120, 40))
"""


def sample(store: Path) -> float:
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("FIRST_FRAME"))
    return float(line.split()[1]) - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["QUARTERDECK_HOME"] = tmp
        os.environ["QUARTERDECK_CONFIG_DIR"] = tmp
        store = Path(tmp) / "qd.db"
        sample(store)  # warm the OS file cache and .pyc files; not counted
        times = [sample(store) for _ in range(runs)]
    print(
        f"cold start to first home frame ({runs} runs): "
        + ", ".join(f"{t * 1000:.0f}" for t in times)
        + " ms"
    )
    print(f"  median {statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
