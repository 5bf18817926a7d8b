"""Time, injectable: the runner sleeps and reads time only through a :class:`Clock`.

Tests use :class:`FakeClock` to prove retry delays without sleeping.
"""

from __future__ import annotations

import time


class Clock:
    """Wall time and real sleeps."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        import asyncio  # not at import: `quarterdeck validate` reads this module, runs nothing

        await asyncio.sleep(seconds)


class FakeClock(Clock):
    """A clock whose sleeps return at once and advance time; records every sleep."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        import asyncio

        await asyncio.sleep(0)
