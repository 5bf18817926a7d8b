"""Fuzz the workflow loader through ``quarterdeck validate``: no crash, hang or memory bomb.

Files are mutations of the bundled workflows and of the hostile corpus
(``tests/engine/hostile``): byte and line edits, type swaps, and spliced-in hostile
snippets (alias bombs, deep nesting, huge integers, control characters, expression
bombs). Each file runs through the real CLI command (``validate``, in-process) in a
forked child with ``RLIMIT_AS`` set and a wall-clock limit, so one bad file can neither
take the fuzzer down nor hide behind another. A worker process (a few of them) imports
Quarterdeck once and forks per file, which keeps the per-file cost at a fork.

A file's verdict:

* ``valid`` — exit 0; ``rejected`` — exit 2 and every message starts ``file:line:col:``;
* ``crash`` — an exception escaped (grouped by stack signature: type + innermost frames);
* ``hang`` — over ``--timeout`` seconds (default 2); ``bomb`` — peak RSS over ``--max-mb``
  (default 500) or the address-space limit hit (MemoryError / killed);
* ``bad-exit`` — any other exit code, or a rejection line without ``file:line:col``.

    .venv/bin/python benchmarks/fuzz_workflows.py --files 10000 --workers 2 --seed 1

Exit status: 0 when every file is valid or rejected, 1 otherwise (the report says which).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "workflows").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "engine" / "hostile").glob("*.yaml")
)
LOCATED = re.compile(r"^.+?:\d+:\d+: ")

LAUGHS = "".join(
    f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]\n"
    for i in range(10)
)
SNIPPETS = [
    LAUGHS,
    "x: &r [*r]\n",
    "x: " + "[" * 3000 + "]" * 3000 + "\n",
    "x: " + "{a: " * 1500 + "1" + "}" * 1500 + "\n",
    "x: " + "9" * 5000 + "\n",
    "x: " + "9" * 4000 + "\n",
    'x: "\\x01\\x7f"\n',
    "x: \x01\n",
    "x: \"{{ 'a' * 10**9 }}\"\n",
    'x: "{{ 2**20000 }}"\n',
    'x: "{{ ' + "(" * 400 + "1" + ")" * 400 + ' }}"\n',
    'x: "{{ ' + "[" * 200 + "]" * 200 + ' }}"\n',
    'x: "{% for i in range(99999999) %}{{ i }}{% endfor %}"\n',
    'x: "{{ x.__class__.__mro__ }}"\n',
    'x: "{{"\n',
    'x: "{% if %}"\n',
    "x: !!python/object/apply:os.system ['touch PWNED']\n",
    "x: !!binary AAAA\n",
    "x: 1e99999\n",
    "x: .nan\n",
    "x: 2001-13-45\n",
    "<<: *undefined\n",
    "? [a, b]\n: c\n",
    "x: {<<: [*a, *a]}\n",
    "- - - - - -\n",
    "\t- tab\n",
    "x: '" + "y" * 100_000 + "'\n",
]
SCALARS = [
    "null", "~", "true", "0", "-1", "1e400", "''", "[]", "{}", "0x1F", "0o17", "9" * 50,
    "'{{ inputs.x }}'", "'{{ steps.nope.outputs.y }}'", "\"\\u0000\"", "😀", "-", "&a x", "*a",
    "!!str 1", "!!int x", "'a: b'", "|\n  block", "[1, [2, [3]]]", "{a: {b: {c: d}}}",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of ``text``."""
    for _ in range(rng.randint(1, 3)):
        lines = text.splitlines(keepends=True) or ["\n"]
        kind = rng.randrange(10)
        i = rng.randrange(len(lines))
        if kind == 0:  # flip a byte
            pos = rng.randrange(max(1, len(text)))
            text = text[:pos] + chr(rng.randrange(0, 0x250)) + text[pos + 1 :]
            continue
        if kind == 1:
            del lines[i]
        elif kind == 2:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 3:  # replace a value with another type
            line = lines[i]
            if ":" in line:
                key = line.split(":", 1)[0]
                lines[i] = f"{key}: {rng.choice(SCALARS)}\n"
        elif kind == 4:  # splice a hostile snippet, indented like the line
            indent = len(lines[i]) - len(lines[i].lstrip(" "))
            snippet = rng.choice(SNIPPETS)
            lines.insert(i, "".join(" " * indent + ln for ln in snippet.splitlines(keepends=True)))
        elif kind == 5:  # re-indent
            lines[i] = " " * rng.choice([0, 1, 2, 3, 5, 8]) + lines[i].lstrip(" ")
        elif kind == 6:
            text = text[: rng.randrange(max(1, len(text)))]
            continue
        elif kind == 7:  # swap two lines
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 8:  # a template in a value
            line = lines[i]
            if ":" in line:
                key = line.split(":", 1)[0]
                expr = rng.choice(
                    ["inputs.x", "steps.a.outputs", "1/0", "'a' * 10**9", "2**20000", "(" * 90]
                )
                lines[i] = f'{key}: "{{{{ {expr} }}}}"\n'
        else:  # anchors and aliases
            line = lines[i]
            if ":" in line and line.rstrip().endswith(":"):
                lines[i] = line.rstrip("\n") + " &anc\n"
            else:
                lines.insert(i, "y: *anc\n")
        text = "".join(lines)
    return text


# -- per-file check in a forked child ------------------------------------------------------


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " < ".join(f"{Path(f.filename).name}:{f.name}" for f in reversed(frames))
    return f"{type(exc).__name__} @ {where}"


def _child(path: str, max_as: int, out_fd: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_as, max_as))
    stderr = io.StringIO()
    verdict: dict[str, Any]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = _COMMAND.main(["validate", path], standalone_mode=False)
        code = int(code or 0)
        lines = [ln for ln in stderr.getvalue().splitlines() if ln.startswith(path)]
        if code == 0:
            verdict = {"kind": "valid"}
        elif code == 2 and lines and all(LOCATED.match(ln) for ln in lines):
            verdict = {"kind": "rejected"}
        else:
            verdict = {"kind": "bad-exit", "detail": f"exit {code}: {stderr.getvalue()[-300:]}"}
    except MemoryError:
        verdict = {"kind": "bomb", "detail": "MemoryError (address-space limit)"}
    except SystemExit as exc:
        verdict = {"kind": "bad-exit", "detail": f"SystemExit {exc.code}"}
    except BaseException as exc:  # the point: anything that escapes is a crash
        verdict = {"kind": "crash", "detail": _signature(exc)}
    verdict["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    os.write(out_fd, json.dumps(verdict).encode())
    os._exit(0)


def check(path: str, timeout: float, max_mb: int) -> dict[str, Any]:
    """Fork, validate ``path`` in the child, kill it past ``timeout`` seconds."""
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        try:
            _child(path, max_as=(max_mb + 1500) << 20, out_fd=write_fd)
        finally:
            os._exit(3)
    os.close(write_fd)
    deadline = started + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.002)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
        return {"kind": "hang", "detail": f"over {timeout:g}s", "secs": timeout}
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.close(read_fd)
    secs = time.monotonic() - started
    if not data:
        sig = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
        return {"kind": "crash", "detail": f"child died (signal {sig})", "secs": secs}
    verdict = json.loads(data)
    verdict["secs"] = secs
    if verdict["rss_mb"] > max_mb:
        verdict = {"kind": "bomb", "detail": f"peak RSS {verdict['rss_mb']:.0f} MB", "secs": secs}
    return verdict


_WARM = False
_COMMAND: Any = None


def _warm_up() -> None:
    """Validate one file in the worker itself, so every module the command imports
    lazily (actions, personas, pydantic schemas) is loaded once and each fork inherits it."""
    global _WARM
    if _WARM:
        return
    import functools

    import typer

    import quarterdeck.tui.launch as launch
    from quarterdeck.tui.cli import app

    # the config and persona catalog are the same for every file: load them once
    launch.load_context = functools.cache(launch.load_context)  # type: ignore[assignment]
    # typer builds the click command on every call; build it once
    global _COMMAND
    _COMMAND = typer.main.get_command(app)

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        _COMMAND.main(["validate", str(SEEDS[0])], standalone_mode=False)
    _WARM = True


def _worker(job: tuple[list[str], float, int]) -> list[tuple[str, dict[str, Any]]]:
    paths, timeout, max_mb = job
    _warm_up()
    return [(p, check(p, timeout, max_mb)) for p in paths]


def cli_sample(results: list[tuple[str, dict[str, Any]]], n: int, rng: random.Random) -> list[str]:
    """Run ``n`` files (half of them rejected ones) through ``quarterdeck validate`` as a
    real subprocess: the console entry point, not just the command, must exit 0 or 2."""
    import subprocess

    rejected = [p for p, v in results if v["kind"] == "rejected"]
    others = [p for p, v in results if v["kind"] != "rejected"]
    chosen = rng.sample(rejected, min(n // 2, len(rejected)))
    chosen += rng.sample(others, min(n - len(chosen), len(others)))
    bad: list[str] = []
    started = time.monotonic()
    for path in chosen:
        done = subprocess.run(
            [sys.executable, "-m", "quarterdeck.tui.cli", "validate", path],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        lines = [ln for ln in done.stderr.splitlines() if ln.startswith(path)]
        if "Traceback" in done.stderr or done.returncode not in (0, 2):
            bad.append(f"exit {done.returncode}: {path}")
        elif done.returncode == 2 and not any(LOCATED.match(ln) for ln in lines):
            bad.append(f"exit 2 without file:line:col: {path}")
    print(
        f"real CLI: {len(chosen)} files in {time.monotonic() - started:.1f}s, "
        f"{len(chosen) - len(bad)} exited 0/2 as expected"
    )
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--max-mb", type=int, default=500)
    parser.add_argument(
        "--cli-sample", type=int, default=20, help="Also run this many files through the real CLI"
    )
    parser.add_argument("--keep", type=Path, help="Keep the files here (default: a temp dir)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seeds = [p.read_text(encoding="utf-8", errors="replace") for p in SEEDS]
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="qd-fuzz-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in SEEDS]
    for n in range(max(0, args.files - len(paths))):
        path = out_dir / f"f{n:05d}.yaml"
        path.write_text(mutate(rng.choice(seeds), rng), encoding="utf-8", errors="replace")
        paths.append(str(path))
    chunks = [paths[i :: args.workers * 8] for i in range(args.workers * 8)]
    started = time.monotonic()
    with get_context("fork").Pool(args.workers) as pool:
        results = [r for chunk in pool.imap_unordered(
            _worker, [(c, args.timeout, args.max_mb) for c in chunks]
        ) for r in chunk]  # fmt: skip
    wall = time.monotonic() - started
    # the machine is shared: a file is a hang only if it is over the limit twice,
    # the second time checked alone (one at a time, in this process)
    rechecked = 0
    for n, (path, verdict) in enumerate(results):
        if verdict["kind"] == "hang":
            _warm_up()
            rechecked += 1
            results[n] = (path, check(path, args.timeout, args.max_mb))
    kinds = Counter(v["kind"] for _, v in results)
    problems: dict[str, list[str]] = defaultdict(list)
    for path, verdict in results:
        if verdict["kind"] not in ("valid", "rejected"):
            problems[f"{verdict['kind']}: {verdict.get('detail', '')}"].append(path)
    secs = sorted(v["secs"] for _, v in results)
    rss = max((v.get("rss_mb", 0) for _, v in results), default=0)
    print(f"files: {len(results)} in {wall:.1f}s with {args.workers} workers (seed {args.seed})")
    if rechecked:
        print(f"re-checked alone: {rechecked} file(s) over {args.timeout:g}s under load")
    print("verdicts: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print(
        f"per file: median {secs[len(secs) // 2] * 1000:.0f} ms, "
        f"p99 {secs[int(len(secs) * 0.99)] * 1000:.0f} ms, max {secs[-1] * 1000:.0f} ms; "
        f"peak child RSS {rss:.0f} MB"
    )
    for label, where in sorted(problems.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(where):5d}  {label[:200]}  e.g. {where[0]}")
    bad_cli = cli_sample(results, args.cli_sample, rng)
    for line in bad_cli:
        print(f"  CLI  {line}")
    print(f"files kept in {out_dir}" if args.keep else f"files in {out_dir}")
    return 1 if problems or bad_cli else 0


if __name__ == "__main__":
    sys.exit(main())
