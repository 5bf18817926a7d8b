"""A step's output: all of it in a log file in the run dir, a capped part in the journal.

Tools can print a 50 MB line or 100 MB of output; the journal (and everything that reads
it: the cockpit, ``events.jsonl``, reports) must not grow with them. Every line goes,
redacted and whole, to ``<run dir>/logs/<stage>.<step>.log``; the journal keeps the first
``cap`` bytes of each step's output, then one marker line naming the log file. A line
longer than :data:`JOURNAL_LINE_MAX` is cut in the journal with a marker, never dropped.

Long lines arrive in fragments (:meth:`StepLogs.fragment`); redaction holds back the tail
of each fragment that could be the start of a secret, so a secret split across two reads
is still masked in the log file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from quarterdeck.core.observability.redact import Redactor

JOURNAL_LINE_MAX = 64 * 1024
DEFAULT_CAP = 1024 * 1024

StepKey = tuple[str | None, str | None]
LineKey = tuple[str | None, str | None, str]


def _safe_name(part: str | None) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in (part or "run"))


class StepLogs:
    """Per-step log files and the per-step journal budget."""

    def __init__(self, run_dir: Path | None, redactor: Redactor, cap: int = DEFAULT_CAP) -> None:
        self.run_dir = run_dir
        self.redactor = redactor
        self.cap = cap
        self._files: dict[StepKey, IO[str]] = {}
        self._used: dict[StepKey, int] = {}
        self._capped: set[StepKey] = set()
        self._pending: dict[LineKey, str] = {}  # unredacted tail held back from the log
        self._head: dict[LineKey, str] = {}  # the journaled start of a line in fragments
        self._head_len: dict[LineKey, int] = {}

    def path(self, key: StepKey) -> Path | None:
        if self.run_dir is None:
            return None
        return self.run_dir / "logs" / f"{_safe_name(key[0])}.{_safe_name(key[1])}.log"

    def _file(self, key: StepKey) -> IO[str] | None:
        handle = self._files.get(key)
        if handle is None:
            path = self.path(key)
            if path is None:
                return None
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError:
                self.run_dir = None  # no log files (read-only state dir): journal only
                return None
            handle = self._files[key] = os.fdopen(fd, "a", encoding="utf-8", errors="replace")
        return handle

    def _write(self, key: LineKey, text: str) -> None:
        handle = self._file(key[:2])
        if handle is not None:
            handle.write(text)

    @staticmethod
    def _mark(stream: str, text: str) -> str:
        """stderr lines are marked in the shared log (``[stderr] …``), each of them."""
        return text if stream == "stdout" else "[stderr] " + text.replace("\n", "\n[stderr] ")

    def _redact_prefix(self, text: str) -> tuple[str, str]:
        """``(redacted safe part, unredacted held-back tail)`` of an unfinished line."""
        longest = self.redactor.longest
        if longest <= 1:
            return self.redactor.text(text), ""
        cut = max(0, len(text) - (longest - 1))
        for match in self.redactor.finditer(text):
            if match.end() > cut >= match.start():
                cut = match.start()
                break
        return self.redactor.text(text[:cut]), text[cut:]

    def fragment(self, stage: str | None, step: str | None, stream: str, text: str) -> None:
        """The start (or middle) of a line not finished yet: logged, not yet journaled."""
        key = (stage, step, stream)
        first = key not in self._pending
        buffered = self._pending.get(key, "") + text
        safe, held = self._redact_prefix(buffered)
        self._pending[key] = held
        self._write(key, ("[stderr] " if first and stream != "stdout" else "") + safe)
        used = self._head_len.get(key, 0)
        if used < JOURNAL_LINE_MAX:
            self._head[key] = self._head.get(key, "") + safe[: JOURNAL_LINE_MAX - used]
            self._head_len[key] = used + min(len(safe), JOURNAL_LINE_MAX - used)
        else:
            self._head_len[key] = used + len(safe)

    def line(self, stage: str | None, step: str | None, stream: str, text: str) -> list[str]:
        """A finished line: logged whole; returns what the journal keeps of it (0–2 lines)."""
        key = (stage, step, stream)
        if key in self._pending:
            rest = self.redactor.text(self._pending.pop(key) + text)
            self._write(key, rest.replace("\n", "\n[stderr] ") if stream != "stdout" else rest)
            self._write(key, "\n")
            head = self._head.pop(key, "")
            total = self._head_len.pop(key, 0) + len(rest)
            journaled = (head + rest[: max(0, JOURNAL_LINE_MAX - len(head))], total)
        else:
            red = self.redactor.text(text)
            self._write(key, self._mark(stream, red) + "\n")
            journaled = (red[:JOURNAL_LINE_MAX], len(red))
        return self._budget(key[:2], *journaled)

    def _budget(self, key: StepKey, kept: str, total: int) -> list[str]:
        if key in self._capped:
            return []
        if total > len(kept):
            kept += f" … [line cut: {total:,} characters{self._where(key)}]"
        used = self._used.get(key, 0) + len(kept) + 1
        self._used[key] = used
        if used <= self.cap:
            return [kept]
        self._capped.add(key)
        return [f"… [output over {self.cap:,} bytes is not journaled{self._where(key)}]"]

    def _where(self, key: StepKey) -> str:
        """The marker's pointer to the log file: built only for a marker (a path per line
        was most of a flooding step's cost on the loop: 50,000 lines/s)."""
        where = self.path(key)
        return f"; full log: {where}" if where is not None else ""

    def close(self) -> None:
        for key, text in list(self._pending.items()):
            self._write(key, self.redactor.text(text) + "\n")
        self._pending.clear()
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def flush(self) -> None:
        for handle in self._files.values():
            handle.flush()
