"""A flooding step's output path: what it computes per line, and what it must still say.

No timings here (benchmarks/tui_flood.py prints those): a step printing 50,000 lines/s
shares the cockpit's interpreter when launched from it, so the per-line work is counted,
and the markers and the cockpit's log are checked to stay what they were."""

from __future__ import annotations

from pathlib import Path

from quarterdeck.core.engine.step_output import StepLogs
from quarterdeck.core.journal.events import Event, StepOutput, event
from quarterdeck.core.journal.state import RunState
from quarterdeck.core.observability.redact import Redactor


class CountingLogs(StepLogs):
    """StepLogs counting how often it builds a log file's path."""

    paths = 0

    def path(self, key: tuple[str | None, str | None]) -> Path | None:
        self.paths += 1
        return super().path(key)


def test_a_line_builds_no_path_and_the_markers_still_name_the_log_file(tmp_path: Path) -> None:
    logs = CountingLogs(tmp_path, Redactor(), cap=40_000)
    kept: list[str] = []
    for i in range(2000):
        kept += logs.line("s", "flood", "stdout", f"line {i} lorem ipsum")
    # one to open the log file, one for the cap's marker; the old code built one per line
    assert logs.paths == 2
    cut = logs.line("s", "flood", "stdout", "x" * 70_000)
    logs.close()
    log = tmp_path / "logs" / "s.flood.log"
    assert kept[0] == "line 0 lorem ipsum"
    assert kept[-1] == f"… [output over 40,000 bytes is not journaled; full log: {log}]"
    assert cut == []  # capped: nothing more is journaled
    assert log.read_text().splitlines()[1999] == "line 1999 lorem ipsum"
    long = StepLogs(tmp_path, Redactor()).line("s", "long", "stdout", "y" * 70_000)
    where = tmp_path / "logs" / "s.long.log"
    assert long == ["y" * 65_536 + f" … [line cut: 70,000 characters; full log: {where}]"]


def test_the_cockpits_fold_of_an_output_batch_keeps_every_line_in_order() -> None:
    state = RunState("r", keep_log=True)
    batches = [[f"line {b}.{i}" for i in range(500)] for b in range(12)]
    for n, lines in enumerate(batches, start=1):
        built: Event = event(StepOutput(stream="stdout", lines=lines), "r", "s", "flood")
        built.seq, built.ts = n, float(n)
        state.apply(built)
    assert state.log_total == 6000
    assert len(state.log) == 5000  # the viewer's window; the count is of every line
    first, last = state.log[0], state.log[-1]
    assert (first.text, first.ts, first.stage, first.step, first.stream) == (
        "line 2.0",
        3.0,
        "s",
        "flood",
        "stdout",
    )
    assert (last.text, last.ts) == ("line 11.499", 12.0)
    step = state.stages["s"].steps["flood"]
    assert step.lines == 6000 and list(step.tail)[-1] == "line 11.499"
