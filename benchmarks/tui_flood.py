"""Key latency under a log flood: a step prints 50,000 lines/s for 5 s while keys are pressed.

Prints p50/p99 key-to-frame latency (key posted → the next frame the compositor
produced after the key took effect), lines shown per second in the log widget, and the
cockpit's memory (peak RSS, and RSS sampled each second to show it stays flat).

    .venv/bin/python benchmarks/tui_flood.py             # run launched from the cockpit
    .venv/bin/python benchmarks/tui_flood.py --attach    # headless run in another process
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOD = """\
import sys, time
rate, seconds, chunk = int(sys.argv[1]), float(sys.argv[2]), 500
start = time.monotonic()
n = 0
while (elapsed := time.monotonic() - start) < seconds:
    due = int(elapsed * rate)
    while n < due:
        block = (f"line {n + i} lorem ipsum dolor sit amet\\n" for i in range(chunk))
        sys.stdout.write("".join(block))
        n += chunk
    sys.stdout.flush()
    time.sleep(0.005)
print(f"total {n}")
"""

WORKFLOW = """\
name: flood
title: Log flood
stages:
  - id: flood
    persona: backend-engineer
    steps:
      - id: spew
        uses: shell
        with: {{run: "{python} {script} {rate} {seconds}"}}
"""


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def until(condition: Any, what: str, timeout: float = 30.0) -> None:
    """Wait for ``condition`` (bounded: a benchmark must never hang)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"tui_flood: gave up after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.0005)


async def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from textual import events

    from quarterdeck.screens.dashboard import DashboardScreen
    from quarterdeck.tui.app import QuarterdeckApp
    from quarterdeck.tui.widgets.log_panel import LogPanel

    db = work / "qd.db"
    wf = work / "flood.yaml"
    proc = None
    attach = None
    if args.attach:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quarterdeck.tui.cli",
                "run",
                str(wf),
                "--headless",
                "--store",
                str(db),
            ],
            cwd=str(ROOT),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from quarterdeck.core.journal.store import Store

        for _ in range(200):
            if db.exists():
                with Store(db) as store:
                    rows = store.list_runs()
                if rows:
                    attach = rows[0].id
                    break
            await asyncio.sleep(0.05)
    app = QuarterdeckApp(store_path=db, actor="bench", attach=attach, blink=False)
    frames: list[float] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is not None and not app._batch_count:
            frames.append(time.perf_counter())

    app._display = display  # type: ignore[method-assign]
    latencies: list[float] = []
    memory: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        if not args.attach:
            from quarterdeck.tui.launch import load, load_context

            app.launch(load(wf, load_context()), {})
        await until(
            lambda: any(isinstance(s, DashboardScreen) for s in app.screen_stack),
            "the dashboard",
        )
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await until(
            lambda: any(s.status == "running" for s in dash.state.all_steps()),
            "the flooding step to start (is the step failing? see the run's log)",
        )
        panel = dash.query_one("#log-panel", LogPanel)
        tree = dash.query_one("#tree")
        tree.focus()
        shown0, t_start = panel.shown, time.perf_counter()
        next_mem = t_start
        key = "down"
        while time.perf_counter() - t_start < args.seconds:
            before = tree.cursor_line
            event = events.Key(key, None)
            event.set_sender(app)
            t0 = time.perf_counter()
            app._driver.send_message(event)  # as the terminal driver delivers a key
            await until(lambda b=before: tree.cursor_line != b, "the key to move the cursor")
            changed = len(frames)
            await until(lambda c=changed: len(frames) != c, "a frame after the key")
            latencies.append(frames[changed] - t0)
            key = "up" if key == "down" else "down"
            if time.perf_counter() >= next_mem:
                memory.append(rss_mb())
                next_mem += 1.0
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t_start
        shown = panel.shown - shown0
        await pilot.pause(0.2)
    if proc is not None:
        proc.wait(timeout=60)
    latencies.sort()
    return {
        "presses": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "max_ms": latencies[-1] * 1000,
        "lines_per_s": shown / elapsed,
        "rss_samples_mb": [round(m) for m in memory],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attach", action="store_true", help="run headless in another process")
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["QUARTERDECK_HOME"] = str(work / "home")
        os.environ["QUARTERDECK_CONFIG_DIR"] = str(work / "config")
        (work / "flood.py").write_text(FLOOD)
        (work / "flood.yaml").write_text(
            WORKFLOW.format(
                python=sys.executable,
                script=work / "flood.py",
                rate=args.rate,
                seconds=args.seconds,
            )
        )
        result = asyncio.run(bench(args, work))
    mode = "attach (runner in another process)" if args.attach else "launched in the cockpit"
    print(f"tui flood: {args.rate} lines/s for {args.seconds:g}s, {mode}")
    print(f"  key presses        {result['presses']}")
    print(f"  key-to-frame p50   {result['p50_ms']:.1f} ms")
    print(f"  key-to-frame p99   {result['p99_ms']:.1f} ms   (max {result['max_ms']:.1f} ms)")
    print(f"  lines shown/s      {result['lines_per_s']:.0f}")
    print(f"  RSS each second    {result['rss_samples_mb']} MB")
    print(f"  peak RSS           {result['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
