"""Output is never lost and never floods the journal.

A 50 MB line is kept whole in the step's log file in the run dir; the journal keeps a
capped part of each step's output with a marker naming that file; a secret split across
two reads of a long line is still masked in the log.
"""

from __future__ import annotations

import json
from pathlib import Path

from quarterdeck.core.config import Settings
from quarterdeck.core.engine.runner import RunOptions
from tests.helpers import run_workflow

SECRET = "cnrySplitSecret77"

BIG = """\
name: big
stages:
  - id: s
    persona: backend-engineer
    steps:
      - id: flood
        uses: shell
        with: {run: "python3 gen.py"}
"""

GEN = f"""\
import sys
out = sys.stdout
out.write("x" * 50_000_000 + "END\\n")
for i in range(100_000):
    out.write(f"line {{i}}\\n")
# the secret straddles every 64 KiB boundary of a 5 MB line (reads split it)
line = "".join("a" * (65536 - 6) + "{SECRET}" for _ in range(80))
out.write(line + "\\n")
out.write("done\\n")
"""


def _output_lines(ran) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    for event in ran.store.events(ran.state.id):
        if event.type == "step.output":
            lines.extend(event.data["lines"])
    return lines


def test_a_50mb_line_is_kept_whole_and_the_journal_is_capped(tmp_path: Path) -> None:
    (tmp_path / "gen.py").write_text(GEN)
    cap = 256 * 1024
    ran = run_workflow(
        tmp_path,
        BIG,
        settings=Settings(output_journal_cap=cap),
        options=RunOptions(started_by="tester", workdir=tmp_path, extra_secrets=[SECRET]),
    )
    assert ran.state.status == "succeeded", ran.state.error
    log = ran.runner.run_dir / "logs" / "s.flood.log"
    with log.open(encoding="utf-8") as fh:
        first = fh.readline()
        assert first == "x" * 50_000_000 + "END\n"  # whole, one line
        rest = fh.read()
    assert "line 0\n" in rest and "line 99999\n" in rest and rest.endswith("done\n")
    assert SECRET not in rest and "***" in rest  # masked even across read boundaries
    journaled = _output_lines(ran)
    size = sum(len(line) + 1 for line in journaled)
    assert size <= cap + 1024
    assert journaled[0].startswith("x" * 1000) and "line cut" in journaled[0]
    assert str(log) in journaled[-1] and "not journaled" in journaled[-1]
    # the run's JSON (show --json, run.json) stays small too
    assert len(json.dumps(ran.state.to_json(), default=str)) < 2 * cap
    assert (log.stat().st_mode & 0o777) == 0o600


def test_the_log_marks_stderr_and_masks_a_secret_split_across_fragments(tmp_path: Path) -> None:
    from quarterdeck.core.engine.step_output import StepLogs
    from quarterdeck.core.observability.redact import Redactor

    logs = StepLogs(tmp_path, Redactor(["hunter2secret"]), cap=10_000)
    assert logs.line("s", "a", "stdout", "one") == ["one"]
    logs.line("s", "a", "stderr", "warn1\nwarn2")
    logs.fragment("s", "a", "stderr", "long-hunter2")
    assert logs.line("s", "a", "stderr", "secret-end") == ["long-***-end"]
    logs.line("s", "a", "stdout", "two")
    logs.close()
    text = (tmp_path / "logs" / "s.a.log").read_text()
    assert text == "one\n[stderr] warn1\n[stderr] warn2\n[stderr] long-***-end\ntwo\n"
