"""An output that cannot be written is said, with exit 2, never a traceback: stdout on a
full disk (``> /dev/full``), or closed (``>&-``: Python then has no ``sys.stdout``), whether
Python buffers it (the error comes when the console script flushes before its quick exit)
or not (it comes from the command's write). A reader that goes away (``| head``) still ends
the command quietly. Through the installed console script, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUARTERDECK = str(Path(sys.executable).with_name("quarterdeck"))
FULL = Path("/dev/full")


def _shell(line: str, tmp_path: Path, *, unbuffered: bool) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "QUARTERDECK_HOME": str(tmp_path / "home")}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        ["sh", "-c", line], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.skipif(not FULL.exists(), reason="this system has no /dev/full to write to")
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["runs", "--json"], ["--help"]], ids=["runs", "help"])
def test_a_full_disk_is_said(tmp_path: Path, unbuffered: bool, args: list[str]) -> None:
    store = tmp_path / "qd.db"
    line = f"exec {QUARTERDECK} {' '.join(args)} --store {store} > /dev/full"
    if args == ["--help"]:
        line = f"exec {QUARTERDECK} --help > /dev/full"
    done = _shell(line, tmp_path, unbuffered=unbuffered)
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert done.returncode == 2, done.stderr
    assert "error: cannot write the output: No space left on device" in done.stderr


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_a_closed_output_is_said(tmp_path: Path, unbuffered: bool) -> None:
    line = f"exec {QUARTERDECK} runs --json --store {tmp_path / 'qd.db'} >&-"
    done = _shell(line, tmp_path, unbuffered=unbuffered)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr
    assert "error: cannot write the output: the standard output is closed" in done.stderr


def test_a_reader_that_goes_away_ends_it_quietly(tmp_path: Path) -> None:
    line = f"{QUARTERDECK} --help | head -c 1 >/dev/null"
    done = _shell(line, tmp_path, unbuffered=False)
    assert done.returncode == 0 and done.stderr == ""
