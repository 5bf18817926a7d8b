"""Quarterdeck logs to a file in its state dir (and stderr with --verbose); what it used to
swallow — a crashed cockpit run, a failed command — leaves its traceback there."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from quarterdeck.core.logs import log_path, setup
from quarterdeck.tui.app import BackgroundRun
from tests.helpers import cli


def test_a_crashed_cockpit_run_keeps_its_traceback_in_the_log(tmp_path: Path) -> None:
    path = setup()
    assert path == log_path()

    def start(store: object) -> object:
        raise RuntimeError("the launcher broke")

    run = BackgroundRun(tmp_path / "qd.db", "r-crash", start).start()  # type: ignore[arg-type]
    assert run.done.wait(30)
    for handler in logging.getLogger("quarterdeck").handlers:
        handler.flush()
    text = path.read_text()
    assert "run r-crash crashed in the cockpit" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: the launcher broke" in text


def test_verbose_logs_to_stderr_and_every_command_to_the_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"not a database\n" * 500)
    quiet = cli("show", "x", "--store", str(bogus))
    loud = cli("--verbose", "show", "x", "--store", str(bogus))
    assert quiet.returncode == loud.returncode == 2
    assert "INFO" not in quiet.stderr
    assert "INFO quarterdeck.tui.cli.common: exit 2: the store" in loud.stderr
    text = (Path(os.environ["QUARTERDECK_HOME"]) / "quarterdeck.log").read_text()
    assert text.count(f"exit 2: the store {bogus} is not a Quarterdeck store") == 2
    assert "sqlite3.DatabaseError: file is not a database" in text  # the cause, for debugging


def test_an_unretrieved_loop_error_goes_to_the_log_not_the_terminal(
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = setup()
    assert path is not None

    async def main() -> None:
        def broken() -> None:
            raise OSError("the journal went away")

        asyncio.get_running_loop().call_soon(broken)
        await asyncio.sleep(0.01)

    asyncio.run(main())
    for handler in logging.getLogger("asyncio").handlers:
        handler.flush()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "OSError: the journal went away (details in" in err  # one line, not silence
    text = path.read_text()
    assert "Exception in callback" in text
    assert "OSError: the journal went away" in text


def test_the_log_file_rotates_at_a_megabyte_keeping_three() -> None:
    """The file handler is made at the first record (``logging.handlers`` is not imported
    before): it still rotates as ``RotatingFileHandler`` does."""
    path = setup()
    assert path is not None
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    log = logging.getLogger("quarterdeck.test")
    line = "x" * 1000
    for _ in range(4500):  # ~4.5 MB: three rotations and some
        log.info(line)
    for handler in logging.getLogger("quarterdeck").handlers:
        handler.flush()
    kept = sorted(p.name for p in path.parent.glob(path.name + "*"))
    assert kept == [path.name, *(f"{path.name}.{n}" for n in (1, 2, 3))]
    assert all(p.stat().st_size <= 1_000_000 for p in path.parent.glob(path.name + "*"))
    # the owner's alone, the file made after a rollover too (it was 0644, the umask's)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in path.parent.glob(path.name + "*")}
    assert set(modes.values()) == {"0o600"}, modes
