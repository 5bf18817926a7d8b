"""Home: the workflow catalog and the recent runs.

Nothing here blocks on I/O: the catalog and the runs load in a thread after the first
frame, and a workflow's full definition (which imports every action module) loads only
when it is highlighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from quarterdeck.screens.delivery import deliver
from quarterdeck.screens.host import CockpitHost, host_of
from quarterdeck.tui.bindings import bindings, explain_unavailable
from quarterdeck.tui.widgets.footer import KeysFooter
from quarterdeck.tui.widgets.status import fill_runs

if TYPE_CHECKING:
    from quarterdeck.core.definition.validate import LoadedWorkflow
    from quarterdeck.core.journal.store import RunRow
    from quarterdeck.workflows.catalog import CatalogEntry

RECENT = 12


def describe_workflow(loaded: LoadedWorkflow, personas: Any) -> str:
    """Title, description, personas, stages and inputs, as Content markup."""
    wf = loaded.workflow
    lines = [f"[b]{escape(wf.title or wf.name)}[/b]  [$text-muted]{escape(wf.name)}[/]"]
    if wf.description:
        lines.append(escape(wf.description.strip()))
    names = wf.personas()
    if names:
        shown = []
        for name in names:
            persona = personas.get(name) if personas is not None else None
            shown.append(escape(persona.title if persona else name))
        lines.append(f"[$text-muted]personas:[/] {', '.join(shown)}")
    lines.append("[$text-muted]stages:[/]")
    for stage in wf.stages:
        extra = []
        if stage.persona:
            extra.append(stage.persona)
        extra.append(f"{len(stage.steps)} step{'s' if len(stage.steps) != 1 else ''}")
        if stage.approval:
            extra.append(f"approval {stage.approval.id}")
        if stage.gate:
            extra.append(f"gate {stage.gate.id}")
        lines.append(
            f"  • {escape(stage.title or stage.id)} [$text-muted]({escape(', '.join(extra))})[/]"
        )
    if wf.inputs:
        inputs = ", ".join(f"{n}:{s.type}" for n, s in wf.inputs.items())
        lines.append(f"[$text-muted]inputs:[/] {escape(inputs)}")
    return "\n".join(lines)


class HomeScreen(Screen[None]):
    """The catalog (bundled, user, project workflows) and the recent runs."""

    SCOPE = "home"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = bindings("home")

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[CatalogEntry] = []
        self.rows: list[RunRow] = []
        self._details: dict[str, str] = {}
        self._loaded: dict[str, LoadedWorkflow] = {}
        self._stale = False  # data arrived while a run's screen covered this one

    @property
    def host(self) -> CockpitHost:
        return host_of(self)

    def compose(self) -> ComposeResult:
        yield Static(
            f"[b]Quarterdeck[/b]  [$text-muted]you are {escape(self.host.actor)}[/]", id="title-bar"
        )
        with Horizontal(id="home-top"):
            with Vertical(id="catalog-pane", classes="pane"):
                yield Static("Workflows", classes="pane-title")
                yield OptionList(id="catalog")
            with VerticalScroll(id="detail-pane", classes="pane"):
                yield Static("[$text-muted]loading the catalog…[/]", id="wf-detail")
        with Vertical(id="runs-pane", classes="pane"):
            yield Static("Recent runs", classes="pane-title")
            table: DataTable[str] = DataTable(id="recent", cursor_type="row", zebra_stripes=True)
            yield table
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one("#recent", DataTable)
        table.add_columns("run", "workflow", "status", "started", "took", "by")
        self.query_one("#catalog", OptionList).focus()
        self.refresh_data()

    def on_screen_resume(self) -> None:
        if self._stale or self.entries or self.rows:
            self._stale = False
            self.refresh_data()
        self._detail_ready(None)

    @work(thread=True, exclusive=True, group="home-load")
    def refresh_data(self) -> None:
        from quarterdeck.core.journal.active import run_durations
        from quarterdeck.core.journal.store import Store

        entries = self.host.catalog()
        rows: list[RunRow] = []
        durations: dict[str, float] = {}
        error = None
        try:
            with Store(self.host.store_path) as store:
                rows = store.list_runs(limit=RECENT)
                durations = run_durations(store, rows, self.host.now())
        except Exception as exc:  # an unreadable store still shows the catalog
            error = str(exc)
        deliver(self, self._show, entries, rows, error, durations)

    def _show(
        self,
        entries: list[CatalogEntry],
        rows: list[RunRow],
        error: str | None,
        durations: dict[str, float] | None = None,
    ) -> None:
        if error:
            self.notify(error, title="cannot read the run history", severity="error")
        if not self.is_active:
            # Textual lays out and draws the screen under the current one too: home's
            # first data, arriving just after `run`/`attach` opened a run, cost a run's
            # first keys whole layouts of a screen nobody sees. Read again on return.
            self._stale = True
            return
        catalog = self.query_one("#catalog", OptionList)
        highlighted = catalog.highlighted
        if [e.name for e in entries] != [e.name for e in self.entries]:
            catalog.clear_options()
            for entry in entries:
                label = escape(entry.title or entry.name)
                note = " [$error](invalid)[/]" if entry.error else ""
                catalog.add_option(
                    Option(f"{label} [$text-muted]{entry.origin}[/]{note}", id=entry.name)
                )
            if entries:
                catalog.highlighted = highlighted if highlighted is not None else 0
        self.entries = entries
        if not entries:
            self.query_one("#wf-detail", Static).update(
                "[$text-muted]no workflows found: add one to .quarterdeck/workflows/[/]"
            )
        self.rows = rows
        table = self.query_one("#recent", DataTable)
        table.clear()
        fill_runs(table, rows, self.host.now, self.app.theme_variables, durations)

    @on(OptionList.OptionHighlighted, "#catalog")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        name = event.option.id or ""
        entry = next((e for e in self.entries if e.name == name), None)
        if entry is None:
            return
        if entry.error:
            self.query_one("#wf-detail", Static).update(
                f"[b]{escape(entry.name)}[/b]\n[$error]{escape(entry.error)}[/]"
            )
            return
        if name in self._details:
            self.query_one("#wf-detail", Static).update(self._details[name])
            return
        self.query_one("#wf-detail", Static).update(
            f"[b]{escape(entry.title or entry.name)}[/b]\n{escape(entry.description)}"
        )
        self._describe(entry)

    @work(thread=True, group="describe")
    def _describe(self, entry: CatalogEntry) -> None:
        from quarterdeck.core.definition.validate import load_workflow
        from quarterdeck.core.errors import DefinitionError, QuarterdeckError

        ctx = self.host.context()
        try:
            loaded = load_workflow(entry.path, ctx.personas)
        except DefinitionError as exc:
            text = "\n".join(escape(str(p)) for p in exc.problems[:5])
            detail = f"[b]{escape(entry.name)}[/b]\n[$error]{text}[/]"
        except QuarterdeckError as exc:
            detail = f"[b]{escape(entry.name)}[/b]\n[$error]{escape(exc.message)}[/]"
        else:
            self._loaded[entry.name] = loaded
            detail = describe_workflow(loaded, ctx.personas)
        self._details[entry.name] = detail
        deliver(self, self._detail_ready, entry.name)

    def _detail_ready(self, name: str | None) -> None:
        """Show the highlighted workflow's detail once loaded (``name``: the one just
        loaded, None for whichever is highlighted); drawn only while home is shown."""
        if not self.is_active:
            return
        catalog = self.query_one("#catalog", OptionList)
        index = catalog.highlighted
        if index is None or index >= len(self.entries):
            return
        shown = self.entries[index].name
        if (name is None or shown == name) and shown in self._details:
            self.query_one("#wf-detail", Static).update(self._details[shown])

    # -- actions ----------------------------------------------------------------------

    def why_unavailable(self, action: str) -> str | None:
        if action == "open":
            focused = self.focused
            if focused is not None and focused.id == "recent":
                return None if self.rows else "there are no runs yet"
            return None if self.entries else "there are no workflows in the catalog"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if self.why_unavailable(action) else True

    def on_key(self, event: events.Key) -> None:
        """A key whose action cannot apply now says why (Textual would ignore it)."""
        explain_unavailable(self, event.key)

    @on(OptionList.OptionSelected, "#catalog")
    def _selected(self) -> None:
        self.action_open()

    @on(DataTable.RowSelected, "#recent")
    def _run_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        focused = self.focused
        if focused is not None and focused.id == "recent":
            table = self.query_one("#recent", DataTable)
            if self.rows and 0 <= table.cursor_row < len(self.rows):
                self.host.open_run(self.rows[table.cursor_row].id)
            return
        catalog = self.query_one("#catalog", OptionList)
        if catalog.highlighted is None or not self.entries:
            return
        entry = self.entries[catalog.highlighted]
        if entry.error:
            self.notify(entry.error, title=f"{entry.name} is invalid", severity="error")
            return
        from quarterdeck.screens.launch import LaunchScreen

        self.app.push_screen(LaunchScreen(entry, self._loaded.get(entry.name)))

    def action_history(self) -> None:
        from quarterdeck.screens.history import HistoryScreen

        self.app.push_screen(HistoryScreen())

    def action_refresh(self) -> None:
        self._details.clear()
        self._loaded.clear()
        self.refresh_data()
