"""A step's process pipes are closed on the run's own loop, however the step ends.

A step cancelled mid-output (here its timeout) used to leave its subprocess transport and
pipes open; collected after the run's loop had closed (the cockpit's run thread ends with
its loop; so does every ``asyncio.run``), the transport's ``__del__`` printed "Exception
ignored ... RuntimeError: Event loop is closed" onto the user's terminal.
"""

from __future__ import annotations

import gc
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_workflow

FLOOD_UNTIL_TIMEOUT = """\
name: flood
stages:
  - id: s
    steps:
      - id: talk
        uses: shell
        timeout: 1s
        with:
          run: "{python} -c 'import sys\\nwhile True: sys.stdout.write(100 * \\"x\\" + \\"\\\\n\\")'"
"""


def test_a_step_cancelled_mid_output_leaves_no_open_pipe_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: raised.append(repr(u.exc_value)))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", ResourceWarning)
        ran: Any = run_workflow(tmp_path, FLOOD_UNTIL_TIMEOUT.format(python=sys.executable))
        step = ran.state.step("talk")
        assert step is not None and step.error == "timed out after 1s"
        assert step.lines > 0  # it was cut off while writing
        del ran, step
        gc.collect()  # the loop is closed: whatever is still open is found now
    assert raised == []
    unclosed = [str(w.message) for w in warned if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
