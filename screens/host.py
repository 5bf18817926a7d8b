"""What a screen needs from the app that shows it.

Screens type against :class:`CockpitHost` rather than importing the Textual app
(:class:`quarterdeck.tui.app.QuarterdeckApp`): the app sits above the screens and opens them,
so a screen that imported it would tie the two in a cycle (the layers contract in
pyproject.toml forbids it). ``tui/app.py`` checks, for mypy, that the app provides all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from quarterdeck.core.definition.validate import LoadedWorkflow
    from quarterdeck.core.engine.runner import RunOptions
    from quarterdeck.core.journal.state import RunState
    from quarterdeck.screens.store_writes import StoreWrites
    from quarterdeck.tui.launch import Context
    from quarterdeck.workflows.catalog import CatalogEntry

Clock = Callable[[], float]


class RunHandle(Protocol):
    """A run executing in this cockpit, as far as a screen cares: is it still going, and
    did it fail to start or go on."""

    @property
    def alive(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


class CockpitHost(Protocol):
    """The cockpit's services: where the store is, who is acting, the (injectable) clock,
    the catalogs, and starting, resuming and opening runs."""

    @property
    def store_path(self) -> Path: ...

    @property
    def actor(self) -> str: ...

    @property
    def now(self) -> Clock: ...

    @property
    def writes(self) -> StoreWrites:
        """The store writes screens ask for, in order, off the UI thread."""
        ...

    @property
    def blink(self) -> bool:
        """Whether text cursors blink (never in snapshots)."""
        ...

    @property
    def runs(self) -> Mapping[str, RunHandle]:
        """Runs started (or resumed) in this cockpit, by run id."""
        ...

    def frame(self) -> int:
        """The spinner frame, from the injected clock."""
        ...

    def context(self) -> Context: ...

    def catalog(self) -> list[CatalogEntry]: ...

    def open_run(self, run_id: str, workflow: str | None = None) -> None: ...

    def launch(
        self, loaded: LoadedWorkflow, given: dict[str, Any], options: RunOptions | None = None
    ) -> str: ...

    def resume(
        self, run_id: str, given: dict[str, Any] | None = None, options: RunOptions | None = None
    ) -> RunHandle: ...


class RunView(Protocol):
    """A screen showing one run (the dashboard, the war room): what the approval modal
    reads and how it sends the decision."""

    @property
    def run_id(self) -> str: ...

    @property
    def state(self) -> RunState: ...

    def send(
        self,
        kind: str,
        *,
        target: str | None = None,
        reason: str = "",
        then: Callable[[int | None], object] | None = None,
    ) -> bool:
        """Write a signal off the UI thread; ``then(signal_id or None)`` once done."""
        ...


def host_of(node: DOMNode) -> CockpitHost:
    """The app showing ``node``, seen through :class:`CockpitHost`."""
    return cast("CockpitHost", node.app)
