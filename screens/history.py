"""Past runs, filtered by workflow and status; any of them opens in its dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Select, Static

from quarterdeck.core.journal.statuses import RunStatus
from quarterdeck.screens.delivery import deliver
from quarterdeck.screens.host import CockpitHost, host_of
from quarterdeck.tui.bindings import bindings, explain_unavailable
from quarterdeck.tui.widgets.footer import KeysFooter
from quarterdeck.tui.widgets.status import fill_runs

if TYPE_CHECKING:
    from quarterdeck.core.journal.store import RunRow

#: The statuses the filter offers, in its order.
STATUSES = (
    RunStatus.RUNNING,
    RunStatus.WAITING,
    RunStatus.PAUSED,
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.REJECTED,
    RunStatus.INTERRUPTED,
)
LIMIT = 500


class HistoryScreen(Screen[None]):
    """Every run in the store, newest first."""

    SCOPE = "history"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = bindings("history")

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RunRow] = []
        self._workflows: list[str] = []

    @property
    def host(self) -> CockpitHost:
        return host_of(self)

    def compose(self) -> ComposeResult:
        yield Static("[b]History[/b]  [$text-muted]all runs, newest first[/]", id="title-bar")
        with Horizontal(id="history-filters"):
            yield Select[str]([], prompt="any workflow", id="filter-workflow")
            yield Select[str]([(s, s) for s in STATUSES], prompt="any status", id="filter-status")
        table: DataTable[str] = DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="history-count")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#history", DataTable).add_columns(
            "run", "workflow", "status", "started", "took", "by"
        )
        self.query_one("#history", DataTable).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def _value(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return None if value is Select.NULL else str(value)

    def reload(self) -> None:
        """Read the runs again with the filters as they are now: the widgets are read here,
        on the UI thread; the store in a worker (:meth:`_load`)."""
        self._load(self._value("#filter-workflow"), self._value("#filter-status"))

    @work(thread=True, exclusive=True, group="history")
    def _load(self, workflow: str | None, status: str | None) -> None:
        from quarterdeck.core.errors import QuarterdeckError
        from quarterdeck.core.journal.active import run_durations
        from quarterdeck.core.journal.store import Store

        try:
            with Store(self.host.store_path) as store:
                rows = store.list_runs(limit=LIMIT, workflow=workflow, status=status)
                names = store.workflow_names()
                durations = run_durations(store, rows, self.host.now())
        except QuarterdeckError as exc:  # a locked or damaged store: say so, keep the table
            deliver(self, self._failed, exc.message)
            return
        deliver(self, self._show, rows, names, durations)

    def _failed(self, message: str) -> None:
        self.notify(message, title="cannot read the run history", severity="error")

    def _show(
        self, rows: list[RunRow], names: list[str], durations: dict[str, float] | None = None
    ) -> None:
        if names != self._workflows:
            self._workflows = names
            select = self.query_one("#filter-workflow", Select)
            current = select.value
            select.set_options([(n, n) for n in names])
            if current is not Select.NULL and current in names:
                select.value = current
        self.rows = rows
        table = self.query_one("#history", DataTable)
        table.clear()
        fill_runs(table, rows, self.host.now, self.app.theme_variables, durations)
        self.query_one("#history-count", Static).update(
            f"[$text-muted]{len(rows)} run{'s' if len(rows) != 1 else ''}[/]"
        )

    @on(Select.Changed)
    def _filter(self) -> None:
        self.reload()

    def why_unavailable(self, action: str) -> str | None:
        if action == "open" and not self.rows:
            return "no run matches the filters"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if self.why_unavailable(action) else True

    def on_key(self, event: events.Key) -> None:
        """A key whose action cannot apply now says why (Textual would ignore it)."""
        explain_unavailable(self, event.key)

    @on(DataTable.RowSelected, "#history")
    def action_open(self) -> None:
        table = self.query_one("#history", DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            self.host.open_run(self.rows[table.cursor_row].id)

    def action_focus_workflow(self) -> None:
        self.query_one("#filter-workflow", Select).focus()

    def action_focus_status(self) -> None:
        self.query_one("#filter-status", Select).focus()

    def action_back(self) -> None:
        if self.focused is not None and isinstance(self.focused, Select):
            self.query_one("#history", DataTable).focus()
            return
        self.app.pop_screen()
