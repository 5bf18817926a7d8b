"""Key latency under a log flood: a step prints 50,000 lines/s for 5 s while keys are pressed.

Prints p50/p95/p99 key-to-frame latency (key posted → the first frame showing its
effect: the moved cursor), lines drawn per second in the log widget, the cockpit's memory
(RSS sampled each second to show it stays flat), the machine's load (the figures are only
as quiet as the machine), and lost frames: a key whose effect was never drawn within
``--lost-after`` seconds. Per flood: the UI loop's stalls (wall, and how much of it the UI
thread was on the CPU), the UI thread's garbage collections, and the dashboard's CPU per
tick — steadier than wall times on a shared machine; the first key's latency (pressed as the
dashboard opens, so it pays the screen's first layouts) and the whole-screen layouts during
the flood (each repaints every widget: the slowest frames). The summary gives the
percentiles also without each flood's first key.

    .venv/bin/python benchmarks/tui_flood.py                        # launched from the cockpit
    .venv/bin/python benchmarks/tui_flood.py --attach --floods 20   # headless run elsewhere

By default the step's whole output is journaled (``output_journal_cap`` raised), so the
cockpit really receives 50,000 lines/s for the whole flood; ``--journal-cap 0`` keeps the
default cap (1 MiB: the journal then carries only the first ~0.5 s of the flood).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import tempfile
import threading
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


def loadavg() -> float:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return float(fh.read().split()[0])


async def until(condition: Any, what: str, timeout: float = 30.0) -> bool:
    """Wait for ``condition`` (bounded: a benchmark must never hang); False on timeout."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.0005)
    return True


async def must(condition: Any, what: str, timeout: float = 30.0) -> None:
    if not await until(condition, what, timeout):
        raise SystemExit(f"tui_flood: gave up after {timeout:g}s waiting for {what}")


def diagnose(app: Any, dash: Any) -> str:
    """What the cockpit's refresh machinery looked like when a frame went missing."""
    screen = app.screen
    timer = screen._update_timer
    tick = getattr(dash, "_timer", None)
    pumps = getattr(dash, "_bench_pumps", [0, 0.0])
    tree = dash.query_one("#tree")
    return (
        f"pumps={pumps[0]} last pump {time.perf_counter() - pumps[1]:.2f}s ago "
        f"run={dash.state.status} tree_cursor={tree.cursor_line}/{tree.last_line} "
        f"tree_repaint={tree._repaint_regions!r:.60} tree_req={tree._repaint_required} "
        f"tree_visible={tree in screen._compositor.visible_widgets} "
        f"comp_dirty={screen._compositor._dirty_regions!r:.60} "
        f"batch={app._batch_count} current={screen is dash} "
        f"update_timer_active={timer._active.is_set()} "
        f"dirty={len(screen._dirty_widgets)} layout={screen._layout_required} "
        f"repaint={screen._repaint_required} scroll={screen._scroll_required} "
        f"tick_task_done={tick._task is None or tick._task.done() if tick else None}"
        + "".join(_pump_state(node) for node in (app, screen, screen.focused))
    )


def _pump_state(node: Any) -> str:
    """A message pump's queue and what its task is awaiting (where a frame got stuck)."""
    task = getattr(node, "_task", None)
    where = "done"
    if task is not None and not task.done():
        where = " <- ".join(
            f"{Path(f.f_code.co_filename).name}:{f.f_lineno}:{f.f_code.co_name}"
            for f in task.get_stack(limit=40)
        )
    return (
        f"\n      {type(node).__name__}: queue={node._message_queue.qsize()} "
        f"repaint={getattr(node, '_repaint_required', None)} task: {where}"
    )


async def flood(args: argparse.Namespace, work: Path, index: int) -> dict[str, Any]:
    from textual import events

    from quarterdeck.screens.dashboard import DashboardScreen
    from quarterdeck.tui.app import QuarterdeckApp
    from quarterdeck.tui.widgets.log_panel import LogPanel

    db = work / f"qd{index}.db"
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
    if args.no_gc_freeze:  # to measure what freezing startup's objects buys (Textual
        # looks handlers up on the class)
        type(app).on_ready = lambda self: None  # type: ignore[method-assign]
    # every frame drawn, with the tree's cursor line it showed: the key's frame is the
    # first one showing the moved cursor. (Counting "the next frame after the benchmark
    # noticed the cursor move" was wrong: under load the key's frame is often drawn before
    # this coroutine looks, and once the run has ended no further frame ever comes — that
    # was the "lost refresh" of issue 16.)
    frames: list[tuple[float, int | None]] = []
    watched: dict[str, Any] = {}
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is not None and not app._batch_count:
            tree = watched.get("tree")
            frames.append((time.perf_counter(), None if tree is None else tree.cursor_line))

    app._display = display  # type: ignore[method-assign]
    latencies: list[float] = []
    memory: list[float] = []
    lost: list[str] = []
    pump_cpu: list[float] = []
    drawn_before_seen = 0
    async with app.run_test(size=(120, 40)) as pilot:
        if not args.attach:
            from quarterdeck.tui.launch import load, load_context

            app.launch(load(wf, load_context()), {})
        await must(
            lambda: any(isinstance(s, DashboardScreen) for s in app.screen_stack),
            "the dashboard",
        )
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await must(
            lambda: any(s.status in ("running", "succeeded") for s in dash.state.all_steps()),
            "the flooding step to start (is the step failing? see the run's log)",
        )
        pumps = dash._bench_pumps = [0, time.perf_counter()]
        real_pump = dash.pump

        def pump() -> int:
            pumps[0] += 1
            pumps[1] = time.perf_counter()
            c0 = time.thread_time()
            try:
                return real_pump()
            finally:
                pump_cpu.append(time.thread_time() - c0)

        dash.pump = pump
        panel = dash.query_one("#log-panel", LogPanel)
        tree = watched["tree"] = dash.query_one("#tree")
        tree.focus()
        stalls: list[tuple[float, float]] = []
        layouts: list[float] = []  # whole-screen layouts (each repaints every widget)
        real_layout = dash._refresh_layout

        def layout(*args: Any, **kwargs: Any) -> None:
            layouts.append(time.perf_counter())
            real_layout(*args, **kwargs)

        dash._refresh_layout = layout

        async def probe() -> None:
            """How long the UI loop went without running a 5 ms sleeper, and how much of
            that the UI thread spent on the CPU (the rest: waiting for the GIL or a core)."""
            while True:
                w0, c0 = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.005)
                over = time.perf_counter() - w0 - 0.005
                if over > 0.05:
                    stalls.append((over, time.thread_time() - c0))

        prober = asyncio.get_running_loop().create_task(probe())
        collections: list[tuple[int, float]] = []  # (generation, seconds) on the UI thread
        gc_start: list[float] = [0.0]
        ui_thread = threading.get_ident()

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if threading.get_ident() != ui_thread:
                return
            if phase == "start":
                gc_start[0] = time.perf_counter()
            else:
                collections.append((info["generation"], time.perf_counter() - gc_start[0]))

        gc.callbacks.append(on_gc)
        shown0, t_start = panel.shown, time.perf_counter()
        skipped0 = getattr(panel, "skipped", 0)  # counted in "not drawn" markers
        next_mem = t_start
        key = "down"
        while time.perf_counter() - t_start < args.seconds + args.after:
            before = tree.cursor_line
            event = events.Key(key, None)
            event.set_sender(app)
            first = len(frames)
            t0 = time.perf_counter()
            app._driver.send_message(event)  # as the terminal driver delivers a key
            await must(lambda b=before: tree.cursor_line != b, "the key to move the cursor")
            moved = tree.cursor_line
            if len(frames) > first and any(c == moved for _, c in frames[first:]):
                drawn_before_seen += 1

            def shown(start: int = first, line: int = moved) -> float | None:
                return next((t for t, c in frames[start:] if c == line), None)

            if await until(lambda: shown() is not None, "the key's frame", args.lost_after):
                latencies.append(shown() - t0)  # type: ignore[operator]
            else:
                why = diagnose(app, dash)
                late = await until(lambda: shown() is not None, "a late frame", 25.0)
                lost.append(f"{why} (drawn later: {late})")
            key = "up" if key == "down" else "down"
            if time.perf_counter() >= next_mem:
                memory.append(rss_mb())
                next_mem += 1.0
            await asyncio.sleep(args.gap)
        elapsed = time.perf_counter() - t_start
        prober.cancel()
        gc.callbacks.remove(on_gc)
        shown = panel.shown - shown0
        skipped = getattr(panel, "skipped", 0) - skipped0
        await pilot.pause(0.2)
    if proc is not None:
        proc.wait(timeout=120)
    return {
        "latencies": latencies,
        "lost": lost,
        "pump_cpu": pump_cpu,
        "drawn_before_seen": drawn_before_seen,
        "stalls": stalls,
        "layouts": [t - t_start for t in layouts if t >= t_start],
        "gc": collections,
        "lines_per_s": shown / elapsed,
        "seen_per_s": (shown + skipped) / elapsed,
        "rss_samples_mb": [round(m) for m in memory],
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def bench(args: argparse.Namespace, work: Path) -> None:
    mode = "attach (runner in another process)" if args.attach else "launched in the cockpit"
    cap = "default journal cap" if args.journal_cap == 0 else "whole flood journaled"
    print(f"tui flood: {args.rate} lines/s for {args.seconds:g}s, {mode}, {cap}", flush=True)
    pooled: list[float] = []
    steady: list[float] = []  # without each flood's first key (the dashboard just opened)
    pumps: list[float] = []
    lost = 0
    early = 0
    load0, cpu0 = loadavg(), time.process_time()
    for i in range(args.floods):
        r = await flood(args, work, i)
        pooled += r["latencies"]
        steady += r["latencies"][1:]
        lost += len(r["lost"])
        pumps += r["pump_cpu"]
        early += r["drawn_before_seen"]
        lat = r["latencies"] or [float("nan")]
        print(
            f"  flood {i + 1:>2}: presses {len(lat) + len(r['lost']):>3}  "
            f"p50 {pct(lat, 0.5):6.1f}  p99 {pct(lat, 0.99):6.1f}  max {max(lat) * 1000:6.1f} ms"
            f"  lines/s drawn {r['lines_per_s']:>6.0f} of {r['seen_per_s']:>6.0f}"
            f"  RSS {r['rss_samples_mb']} MB"
            f"  load {loadavg():.2f}",
            flush=True,
        )
        first = r["latencies"][0] * 1000 if r["latencies"] else float("nan")
        late = sum(1 for t in r["layouts"] if t >= 1.0)
        print(
            f"    first key {first:.1f} ms (the dashboard just opened); screen layouts "
            f"{len(r['layouts'])} ({late} after the first second)",
            flush=True,
        )
        worst = sorted(r["stalls"], reverse=True)[:3]
        print(
            "    loop stalls > 50 ms: "
            f"{len(r['stalls'])}, worst (wall, UI-thread CPU) ms: "
            + ", ".join(f"({w * 1000:.0f}, {c * 1000:.0f})" for w, c in worst),
            flush=True,
        )
        full = [t for g, t in r["gc"] if g == 2]
        print(
            f"    GC on the UI thread: {len(r['gc'])} collections, "
            f"{sum(t for _, t in r['gc']) * 1000:.0f} ms; full: {len(full)}, "
            f"longest {max(full, default=0) * 1000:.0f} ms",
            flush=True,
        )
        for why in r["lost"]:
            print(f"    LOST FRAME: {why}", flush=True)
    print(f"  floods             {args.floods}  (load average {load0:.2f} → {loadavg():.2f})")
    print(f"  key presses        {len(pooled) + lost}")
    print(f"  key-to-frame p50   {pct(pooled, 0.5):.1f} ms")
    print(f"  key-to-frame p95   {pct(pooled, 0.95):.1f} ms")
    print(f"  key-to-frame p99   {pct(pooled, 0.99):.1f} ms   (max {max(pooled) * 1000:.1f} ms)")
    if steady:
        print(
            f"    without first keys  p50 {pct(steady, 0.5):.1f}  p95 {pct(steady, 0.95):.1f}  "
            f"p99 {pct(steady, 0.99):.1f} ms"
        )
    print(
        f"  pump CPU per tick  p50 {pct(pumps, 0.5):.1f}  p99 {pct(pumps, 0.99):.1f}  "
        f"max {max(pumps) * 1000:.1f} ms  ({len(pumps)} ticks)"
    )
    print(f"  lost frames        {lost} (the key's effect not drawn {args.lost_after:g}s after it)")
    print(f"  drawn before seen  {early} (key frames drawn before the benchmark saw the move)")
    print(f"  cockpit CPU        {time.process_time() - cpu0:.1f} s")
    print(
        f"  peak RSS           {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attach", action="store_true", help="run headless in another process")
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--floods", type=int, default=1, help="floods in a row (one cockpit each)")
    parser.add_argument("--after", type=float, default=0.0, help="keys go on after the flood")
    parser.add_argument("--no-gc-freeze", action="store_true", help="as before gc.freeze()")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between keys")
    parser.add_argument("--lost-after", type=float, default=5.0, help="a frame later is lost")
    parser.add_argument(
        "--journal-cap",
        type=int,
        default=1 << 30,
        help="output_journal_cap in bytes (0: the default 1 MiB)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["QUARTERDECK_HOME"] = str(work / "home")
        os.environ["QUARTERDECK_CONFIG_DIR"] = str(work / "config")
        if args.journal_cap:
            (work / "config").mkdir()
            (work / "config" / "config.yaml").write_text(
                f"output_journal_cap: {args.journal_cap}\n"
            )
        (work / "flood.py").write_text(FLOOD)
        (work / "flood.yaml").write_text(
            WORKFLOW.format(
                python=sys.executable,
                script=work / "flood.py",
                rate=args.rate,
                seconds=args.seconds,
            )
        )
        asyncio.run(bench(args, work))


if __name__ == "__main__":
    main()
