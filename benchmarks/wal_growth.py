"""``durability: full``: how many of a chain's commits grew the WAL file, and what a sync costs.

With ``full`` every commit waits for an fdatasync of the WAL. A commit written inside the
file's length is synced as data alone; one that grew the file also changes its size, which
ext4 journals before the sync returns (a journal commit that carries every other process's
pending metadata with it: on a busy disk that sync can take milliseconds). SQLite rewrites
the WAL from its start after a checkpoint, so the writer checkpoints at
``FULL_CHECKPOINT_PAGES`` (core/engine/journal_writer.py) to stop the growth early.

Runs an N-step chained workflow in-process (as benchmarks/runner_overhead.py builds it) on
a fresh store, records the WAL's size around every commit, and prints: commits, those that
grew the WAL, its largest size, and µs/step. ``--pages 1000`` is SQLite's default (the
writer before this change). The counts are exact and repeatable; the times are not on a
shared machine (compare ``--pages`` values in turn, several rounds).

    .venv/bin/python benchmarks/wal_growth.py [--steps 1000] [--pages 200,1000] [--rounds 3]
        [--probe]

``--probe`` first times fdatasync on a scratch file beside the store: 12 KiB written in
place, and 12 KiB appended (the file grows), alternately: the two costs the counts weigh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runner_overhead  # benchmarks/ is not a package: found through sys.path above

from quarterdeck.core.engine import journal_writer
from quarterdeck.core.journal.store import Store


def probe(folder: Path, rounds: int = 200) -> tuple[float, float]:
    """Median µs of an fdatasync after 12 KiB written in place, and after 12 KiB appended."""
    path = folder / "probe.bin"
    chunk = b"\x01" * 12288
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, chunk * 100, 0)
        os.fsync(fd)
        end = len(chunk) * 100
        inplace, grown = [], []
        for i in range(rounds):
            started = time.perf_counter()
            os.pwrite(fd, chunk, (i % 100) * len(chunk))
            os.fdatasync(fd)
            inplace.append(time.perf_counter() - started)
            started = time.perf_counter()
            os.pwrite(fd, chunk, end)
            end += len(chunk)
            os.fdatasync(fd)
            grown.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(inplace) * 1e6, statistics.median(grown) * 1e6


def one(tmp: Path, steps: int, pages: int, catalog: object) -> tuple[int, int, int, float]:
    """(commits, commits that grew the WAL, the WAL's largest size, µs/step) of one run."""
    journal_writer.FULL_CHECKPOINT_PAGES = pages
    seen: list[tuple[int, int]] = []
    real = Store.commit_batch

    def watched(self: Store, *args: object, **kwargs: object) -> None:
        wal = f"{self.path}-wal"
        before = os.path.getsize(wal) if os.path.exists(wal) else 0
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        seen.append((before, os.path.getsize(wal) if os.path.exists(wal) else 0))

    Store.commit_batch = watched  # type: ignore[method-assign]
    try:
        elapsed, _ = runner_overhead.one_run(tmp, steps, True, catalog, "full")
    finally:
        Store.commit_batch = real  # type: ignore[method-assign]
    grew = sum(1 for before, after in seen if after > before)
    return len(seen), grew, max(after for _, after in seen), elapsed / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--pages", default=f"{journal_writer.FULL_CHECKPOINT_PAGES},1000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probe", action="store_true", help="time in-place and growing syncs")
    args = parser.parse_args()
    choices = [int(p) for p in args.pages.split(",")]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        os.environ["QUARTERDECK_HOME"] = str(tmp / "home")
        if args.probe:
            inplace, grown = probe(tmp)
            print(f"fdatasync of 12 KiB (µs): in place {inplace:.0f}, growing the file {grown:.0f}")
        catalog = runner_overhead.load_catalog(tmp)
        runner_overhead.one_run(tmp, 50, True, catalog)  # warm up imports and caches
        times: dict[int, list[float]] = {p: [] for p in choices}
        print(f"{args.steps}-step chain, durability full; pages: FULL_CHECKPOINT_PAGES")
        print(f"{'pages':>6} {'commits':>8} {'grew WAL':>9} {'WAL max KiB':>12} {'µs/step':>8}")
        for round_ in range(args.rounds):
            for pages in choices if round_ % 2 == 0 else choices[::-1]:
                commits, grew, largest, per_step = one(tmp, args.steps, pages, catalog)
                times[pages].append(per_step)
                print(
                    f"{pages:>6} {commits:>8} {grew:>9} {largest / 1024:>12.0f} {per_step:>8.1f}",
                    flush=True,
                )
        for pages in choices:
            print(f"pages {pages}: median {statistics.median(times[pages]):.1f} µs/step")


if __name__ == "__main__":
    main()
