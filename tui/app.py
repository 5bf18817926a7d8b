"""The Textual cockpit: home, run dashboards, approvals, history.

The cockpit never talks to a runner. A run launched here executes in a background
thread with its own event loop and its own store connection; every view of a run —
launched here, attached from another terminal, or long finished — tails the journal.
Decisions and controls are signals written to the store, exactly like the CLI's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from quarterdeck.core.errors import QuarterdeckError
from quarterdeck.screens.store_writes import StoreWrites
from quarterdeck.tui.bindings import bindings
from quarterdeck.tui.commands import CockpitCommands

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from quarterdeck.core.definition.validate import LoadedWorkflow
    from quarterdeck.core.engine.runner import Runner, RunOptions
    from quarterdeck.core.journal.store import Store
    from quarterdeck.screens.host import CockpitHost
    from quarterdeck.tui.launch import Context
    from quarterdeck.workflows.catalog import CatalogEntry

Clock = Callable[[], float]


class BackgroundRun:
    """One run executing in this process, on its own thread, loop and store connection."""

    def __init__(self, store_path: Path, run_id: str, start: Callable[[Store], Runner]) -> None:
        self.store_path = store_path
        self.run_id = run_id
        self._start = start
        self.error: str | None = None
        self.error_code = 1  # the exit code when the run never started (bad input: 2)
        self.runner: Runner | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._main, name=f"run-{run_id}", daemon=True)

    def start(self) -> BackgroundRun:
        self.thread.start()
        return self

    @property
    def alive(self) -> bool:
        return not self.done.is_set()

    def exit_code(self) -> int:
        """The contract's exit code for this run, read back from its journal once it ended."""
        from quarterdeck.core.engine.runner import exit_code_for
        from quarterdeck.core.journal.store import Store

        if self.runner is None:
            return self.error_code if self.error else 0
        if self.runner.exit_code is not None:
            return int(self.runner.exit_code)
        if self.error:
            return self.error_code
        with Store(self.store_path) as store:
            return int(exit_code_for(store.get_run(self.run_id).status))

    def _main(self) -> None:
        from quarterdeck.core.journal.store import Store

        store: Store | None = None
        try:
            store = Store(self.store_path)
            runner = self._start(store)
            self.runner = runner
            asyncio.run(self._go(runner))
        except QuarterdeckError as exc:
            self.error = exc.message + (f" ({exc.hint})" if exc.hint else "")
            self.error_code = int(exc.exit_code)
        except Exception as exc:  # shown in the dashboard; never a silent dead thread
            self.error = f"{type(exc).__name__}: {exc}"
            self.trace = traceback.format_exc()
            log.error("run %s crashed in the cockpit", self.run_id, exc_info=True)
        finally:
            self.started.set()
            self.done.set()
            if store is not None:
                store.close()

    async def _go(self, runner: Runner) -> None:
        self.loop = asyncio.get_running_loop()
        self.started.set()
        await runner.run()

    def interrupt(self, reason: str = "the cockpit was closed") -> None:
        """Stop resumably (as Ctrl-C would); the journal says where it stopped."""
        loop, runner = self.loop, self.runner
        if loop is not None and runner is not None and not self.done.is_set():
            try:
                loop.call_soon_threadsafe(runner.interrupt, reason)
            except RuntimeError:  # the loop just closed
                pass


class QuarterdeckApp(App[None]):
    """The cockpit. Everything time- or machine-dependent is injectable for tests."""

    CSS_PATH = "app.tcss"
    TITLE = "Quarterdeck"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [*bindings("app")]
    COMMANDS = {CockpitCommands}  # noqa: RUF012 - ours only: Textual's built-ins would repeat Quit
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 - Textual reads a list
        (0, "-narrow"),
        (140, "-wide"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012 - Textual reads a list

    def __init__(
        self,
        *,
        store_path: Path,
        actor: str,
        now: Clock = time.time,
        new_run_id: Callable[[str], str] | None = None,
        catalog: Callable[[], list[CatalogEntry]] | None = None,
        context: Context | None = None,
        attach: str | None = None,
        launch: tuple[LoadedWorkflow, dict[str, Any], RunOptions | None] | None = None,
        resume: tuple[str, dict[str, Any], RunOptions | None] | None = None,
        warroom: str | None = None,
        blink: bool = True,
    ) -> None:
        """``warroom`` names a run that opens in the war room whatever its workflow (any run
        may be worked as an incident)."""
        super().__init__()
        self.store_path = store_path
        self.actor = actor
        self.now = now
        self._new_run_id = new_run_id
        self._qd_catalog = catalog
        self._qd_context = context
        self._qd_attach = attach
        self._qd_launch = launch
        self._qd_resume = resume
        self._qd_warroom = warroom
        self.blink = blink
        self.runs: dict[str, BackgroundRun] = {}
        self.last_driven: str | None = None  # the run whose ending is the session's exit code
        self._frozen = False  # startup's objects are in the GC's permanent generation
        self.writes = StoreWrites(self)
        self._quit_question: Screen[bool] | None = None  # while asking whether to quit

    # -- injected services ------------------------------------------------------------

    def context(self) -> Context:
        """Settings and the persona catalog, loaded once (lazily: startup stays fast)."""
        if self._qd_context is None:
            from quarterdeck.tui.launch import load_context

            self._qd_context = load_context()
        return self._qd_context

    def catalog(self) -> list[CatalogEntry]:
        if self._qd_catalog is not None:
            return self._qd_catalog()
        from quarterdeck.workflows.catalog import list_workflows

        return list_workflows()

    def new_run_id(self, workflow: str) -> str:
        if self._new_run_id is not None:
            return self._new_run_id(workflow)
        from quarterdeck.core.engine.runner import new_run_id

        return new_run_id(workflow)

    def frame(self) -> int:
        """The spinner frame, from the injected clock (still in snapshots)."""
        return int(self.now() * 10)

    # -- lifecycle --------------------------------------------------------------------

    def on_mount(self) -> None:
        from quarterdeck.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        if self._qd_attach is not None:
            self.open_run(self._qd_attach)
        elif self._qd_launch is not None:
            loaded, given, options = self._qd_launch
            self.launch(loaded, given, options)
        elif self._qd_resume is not None:
            run_id, given, options = self._qd_resume
            self.resume(run_id, given, options)

    def on_ready(self) -> None:
        """Startup's objects (modules, classes, styles, widgets: most of the heap) go to the
        GC's permanent generation once the first frame is up. A full collection scanned
        them all: under a 50,000 lines/s flood one stalled the UI for up to 660 ms (the
        worst key-to-frame); now it scans only what the session made since (benchmarks/
        tui_flood.py prints the collections; --no-gc-freeze for the comparison)."""
        gc.collect()
        gc.freeze()
        self._frozen = True

    def open_run(self, run_id: str, workflow: str | None = None) -> None:
        from quarterdeck.core.incidents.read import is_incident_run
        from quarterdeck.screens.dashboard import DashboardScreen
        from quarterdeck.screens.warroom import WarRoomScreen, opens_in_warroom

        incident = run_id == self._qd_warroom or (is_incident_run(workflow) if workflow else False)
        if incident or opens_in_warroom(self.store_path, run_id):  # incidents: the war room
            self.push_screen(WarRoomScreen(run_id))
            return
        self.push_screen(DashboardScreen(run_id))

    def launch(
        self, loaded: LoadedWorkflow, given: dict[str, Any], options: RunOptions | None = None
    ) -> str:
        """Start a run in the background and open its dashboard; returns the run id."""
        from quarterdeck.core.engine.runner import RunOptions
        from quarterdeck.tui.launch import new_runner

        opts = options or RunOptions(started_by=self.actor)
        opts.run_id = opts.run_id or self.new_run_id(loaded.workflow.name)
        ctx = self.context()
        run = BackgroundRun(
            self.store_path,
            opts.run_id,
            lambda store: new_runner(loaded, store, ctx, given, opts),
        )
        self.runs[opts.run_id] = run.start()
        self.last_driven = opts.run_id
        self.open_run(opts.run_id, loaded.workflow.name)
        return opts.run_id

    def resume(
        self, run_id: str, given: dict[str, Any] | None = None, options: RunOptions | None = None
    ) -> BackgroundRun:
        """Resume a run in the background (retry: failed and in-flight steps run again)."""
        from quarterdeck.core.engine.runner import RunOptions
        from quarterdeck.tui.launch import resume_runner

        opts = options or RunOptions(started_by=self.actor)
        ctx = self.context()

        def start(store: Store) -> Runner:
            runner = resume_runner(store, run_id, ctx, opts, given or {})
            runner.options.started_by = runner.state.started_by or opts.started_by
            return runner

        run = BackgroundRun(self.store_path, run_id, start)
        self.runs[run_id] = run.start()
        self.last_driven = run_id
        if not any(getattr(s, "run_id", None) == run_id for s in self.screen_stack):
            self.open_run(run_id)
        return run

    def session_exit_code(self) -> int:
        """After the cockpit closed: the contract's exit code of the last run it drove (0
        when it drove none), so a script around ``quarterdeck run`` sees the same codes with
        or without a terminal. Call after :meth:`stop_runs`."""
        run = self.runs.get(self.last_driven) if self.last_driven else None
        return 0 if run is None else run.exit_code()

    def live_runs(self) -> list[BackgroundRun]:
        return [r for r in self.runs.values() if r.alive]

    def stop_runs(self, timeout: float = 15.0) -> None:
        """Interrupt runs started here (resumably) and wait for their journals to close."""
        for run in self.live_runs():
            run.interrupt()
        deadline = time.monotonic() + timeout
        for run in list(self.runs.values()):
            run.thread.join(max(0.0, deadline - time.monotonic()))

    async def action_quit(self) -> None:
        """Quit; first ask when that would interrupt runs going here or give up store
        writes still waiting for a busy store."""
        if self._quit_question is not None and self.screen is self._quit_question:
            return  # already asking (ctrl+q reaches the app from a dialog too)
        live = self.live_runs()
        waiting = self.writes.pending()
        if not live and not waiting:
            self.exit()
            return
        from quarterdeck.core.commands import cli_command
        from quarterdeck.screens.confirm import ConfirmScreen

        said = []
        if live:
            ids = ", ".join(r.run_id for r in live)
            said.append(
                f"Run {ids} is still going in this cockpit.\nQuitting interrupts it; "
                f"`{cli_command('resume', live[0].run_id, store=self.store_path)}` "
                "continues it later."
            )
        if waiting:
            writing, queued = waiting[0], waiting[1:]
            lines = [
                f"Still waiting for the store (another process holds its write lock): "
                f"{', '.join(waiting)}.",
                f"{writing} is already being written; if it fails, the terminal says so "
                "once you have quit.",
            ]
            if queued:
                lines.append(f"Quitting now gives up: {', '.join(queued)}.")
            said.append("\n".join(lines))

        def answer(yes: bool | None) -> None:
            if yes:
                self.writes.abandon()
                self.stop_runs()
                self.exit()

        self._quit_question = ConfirmScreen(
            "\n\n".join(said),
            yes="Quit and interrupt" if live else "Quit without them",
            no="Stay",
        )
        self.push_screen(self._quit_question, answer)

    async def action_back_out(self) -> None:
        """``q``: leave the screen (as ``esc`` does); on Home, quit (asking while runs are live)."""
        from textual.screen import ModalScreen

        from quarterdeck.screens.home import HomeScreen

        screen = self.screen
        if isinstance(screen, ModalScreen):
            return  # a dialog answers with its own keys
        if isinstance(screen, HomeScreen):
            await self.action_quit()
            return
        back = getattr(screen, "action_back", None)
        if back is not None:
            back()
        elif len(self.screen_stack) > 2:
            self.pop_screen()

    def action_cursor(self, direction: str) -> None:
        """``j``/``k``: what the arrow would do in the focused list, tree or log."""
        widget = self.focused
        while widget is not None:
            for name in (f"action_cursor_{direction}", f"action_scroll_{direction}"):
                method = getattr(widget, name, None)
                if method is not None:
                    method()
                    return
            widget = widget.parent  # type: ignore[assignment]

    def action_help(self) -> None:
        from quarterdeck.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def on_unmount(self) -> None:
        self.stop_runs()
        if self._frozen:  # collectable again: a process may run several apps (tests)
            gc.unfreeze()
            self._frozen = False


def run_cockpit(
    *,
    store: str | None = None,
    workflow: LoadedWorkflow | None = None,
    inputs: dict[str, Any] | None = None,
    options: RunOptions | None = None,
    runner: Runner | None = None,
    attach: str | None = None,
    actor: str | None = None,
) -> int:
    """Open the cockpit: home, or a new run (``workflow``), a resumed run (``runner``), or
    a run started elsewhere (``attach``). Returns the session's exit code (see
    :meth:`QuarterdeckApp.session_exit_code`)."""
    from quarterdeck.core.config import current_user, load_settings
    from quarterdeck.tui.launch import store_path

    path = store_path(store)
    who = actor
    if who is None and options is not None and options.started_by not in ("", "unknown"):
        who = options.started_by
    who = current_user(who, load_settings())
    launch = (workflow, inputs or {}, options) if workflow is not None else None
    resume = None
    if runner is not None:
        resume = (runner.run_id, dict(runner.inputs), runner.options)
        runner.store.close()
    app = QuarterdeckApp(store_path=path, actor=who, attach=attach, launch=launch, resume=resume)
    try:
        app.run()
    finally:
        app.stop_runs()
        say_unsent(app)
    return app.session_exit_code()


def say_unsent(app: QuarterdeckApp) -> None:
    """Once the terminal is back: the store writes the cockpit gave up or could not tell
    of (a person who quit while the store was busy must know their decision was not sent)."""
    import sys

    for line in app.writes.unsent:
        print(f"not sent to the store: {line}", file=sys.stderr)


if TYPE_CHECKING:
    # Screens reach the app only through this Protocol; mypy checks the app provides it.
    _HOST: type[CockpitHost] = QuarterdeckApp


def warroom_app(store_path: Path, run_id: str, actor: str, **kwargs: Any) -> QuarterdeckApp:
    """The cockpit opened on ``run_id``'s war room, whatever its workflow."""
    return QuarterdeckApp(
        store_path=store_path, actor=actor, attach=run_id, warroom=run_id, **kwargs
    )


def run_warroom(*, store: str | None, run_id: str, actor: str | None) -> None:
    """``quarterdeck warroom RUN --as NAME``."""
    from quarterdeck.core.config import current_user, load_settings
    from quarterdeck.tui.launch import store_path

    app = warroom_app(store_path(store), run_id, current_user(actor, load_settings()))
    try:
        app.run()
    finally:
        app.stop_runs()
        say_unsent(app)
