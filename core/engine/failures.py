"""How a step or a stage ends badly, as exceptions the engine's parts pass up to each other.

Internal to the engine: a failure is journaled as an event before one of these is raised,
so nothing outside needs to catch them.
"""

from __future__ import annotations

from quarterdeck.core.journal.statuses import StageStatus


class StageFailed(Exception):
    """The stage ends with ``status`` (failed by default): a step, gate or rollback."""

    def __init__(self, message: str, status: StageStatus = StageStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


class StepFailed(Exception):
    """A step failed for good; ``continued`` when ``continue_on_error`` lets the stage go on."""

    def __init__(self, message: str, continued: bool = False) -> None:
        super().__init__(message)
        self.continued = continued


class NoWait(Exception):
    """An approval is undecided and ``--no-wait`` was given: the run stops, resumable."""
