"""Launch a workflow: a form generated from its typed inputs, checked as you type.

Each field is converted with :func:`quarterdeck.core.definition.inputs.coerce` on every change (the
same function the CLI uses for ``-i key=value``), choices are selects, booleans switches,
secrets masked, paths checked for existence. Launch stays disabled while a field is
invalid, and opens the run's dashboard at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static, Switch

from quarterdeck.core.definition.inputs import coerce
from quarterdeck.core.definition.models import InputSpec
from quarterdeck.core.errors import InvalidInput
from quarterdeck.screens.delivery import deliver
from quarterdeck.screens.host import CockpitHost, host_of
from quarterdeck.tui.bindings import bindings
from quarterdeck.tui.widgets.footer import KeysFooter

if TYPE_CHECKING:
    from quarterdeck.core.definition.validate import LoadedWorkflow
    from quarterdeck.workflows.catalog import CatalogEntry


def check_field(name: str, spec: InputSpec, raw: str, base: Path) -> tuple[str | None, str]:
    """(error or None, note) for one field's text, as the CLI would see it."""
    if raw == "":
        if spec.default is not None:
            return None, f"default: {spec.default}"
        if spec.env:
            return None, f"from ${spec.env} when set"
        if spec.required:
            return "required", ""
        return None, "optional"
    try:
        value = coerce(name, spec, raw, base)
    except InvalidInput as exc:
        return exc.message, ""
    if spec.type == "path":
        return None, ("exists" if Path(value).exists() else "does not exist (yet)")
    if spec.type == "json":
        return None, f"json {type(value).__name__}"
    return None, "ok"


class LaunchScreen(Screen[None]):
    """The inputs of one workflow, then Launch."""

    SCOPE = "launch"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = bindings("launch")

    def __init__(self, entry: CatalogEntry, loaded: LoadedWorkflow | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.loaded = loaded
        self.errors: dict[str, str] = {}
        self.base = Path.cwd()

    @property
    def host(self) -> CockpitHost:
        return host_of(self)

    def compose(self) -> ComposeResult:
        title = escape(self.entry.title or self.entry.name)
        yield Static(
            f"[b]Launch[/b] {title}  [$text-muted]as {escape(self.host.actor)}[/]", id="title-bar"
        )
        with VerticalScroll(id="form"):
            yield Static("[$text-muted]loading…[/]", id="form-status")
        with Horizontal(id="launch-buttons"):
            yield Button("Back", id="back")
            yield Button("Launch", id="launch", variant="primary", disabled=True)
        yield KeysFooter()

    async def on_mount(self) -> None:
        if self.loaded is None:
            self._load()
        else:
            await self._build()

    @work(thread=True)
    def _load(self) -> None:
        from quarterdeck.core.definition.validate import load_workflow
        from quarterdeck.core.errors import DefinitionError, QuarterdeckError

        try:
            loaded = load_workflow(self.entry.path, self.host.context().personas)
        except DefinitionError as exc:
            problems = "\n".join(str(p) for p in exc.problems[:8])
            deliver(self, self._failed, problems)
            return
        except QuarterdeckError as exc:
            deliver(self, self._failed, exc.message)
            return
        self.loaded = loaded
        deliver(self, self._build)

    def _failed(self, message: str) -> None:
        self.query_one("#form-status", Static).update(f"[$error]{escape(message)}[/]")

    async def _build(self) -> None:
        assert self.loaded is not None
        form = self.query_one("#form", VerticalScroll)
        wf = self.loaded.workflow
        status = self.query_one("#form-status", Static)
        status.update(
            escape(wf.description.strip()) if wf.description else "[$text-muted]no description[/]"
        )
        widgets: list[Widget] = []
        for name, spec in wf.inputs.items():
            label = f"[b]{escape(name)}[/b] [$text-muted]{spec.type}"
            if spec.required and spec.default is None:
                label += ", required"
            label += "[/]"
            if spec.description:
                label += f"  {escape(spec.description)}"
            field: Widget
            if spec.type == "choice":
                choices = spec.choices or []
                default = str(spec.default) if spec.default is not None else None
                field = Select(
                    [(c, c) for c in choices],
                    value=default or Select.NULL,
                    allow_blank=default is None,
                    id=f"in-{name}",
                )
            elif spec.type == "bool":
                field = Switch(value=bool(spec.default), id=f"in-{name}")
            else:
                default = spec.default
                if default is not None and not isinstance(default, str):
                    default = json.dumps(default) if spec.type == "json" else str(default)
                field = Input(
                    value="",
                    placeholder=str(default) if default is not None else spec.type,
                    password=spec.type == "secret",
                    id=f"in-{name}",
                )
                field.cursor_blink = self.host.blink
            widgets.append(
                Vertical(
                    Static(label, classes="field-label"),
                    field,
                    Static("", id=f"note-{name}", classes="field-note"),
                    classes="field",
                )
            )
        if not widgets:
            widgets.append(Static("[$text-muted]this workflow takes no inputs[/]"))
        await form.mount_all(widgets)
        for name in wf.inputs:
            self._check(name)
        first = next(iter(form.query("Input, Select, Switch")), None)
        if first is not None:
            first.focus()
        else:
            self.query_one("#launch", Button).focus()

    def _raw(self, name: str) -> str:
        widget = self.query_one(f"#in-{name}")
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL else str(widget.value)
        if isinstance(widget, Switch):
            return "true" if widget.value else "false"
        assert isinstance(widget, Input)
        return widget.value

    def _check(self, name: str) -> None:
        assert self.loaded is not None
        spec = self.loaded.workflow.inputs[name]
        error, note = check_field(name, spec, self._raw(name), self.base)
        if error is None:
            error = self._feeds_problem(name)
        shown = self.query_one(f"#note-{name}", Static)
        if error:
            self.errors[name] = error
            shown.update(f"[$error]✗ {escape(error)}[/]")
        else:
            self.errors.pop(name, None)
            style = "$warning" if note.startswith("does not exist") else "$text-muted"
            shown.update(f"[{style}]{escape(note)}[/]")
        self.query_one("#launch", Button).disabled = bool(self.errors)

    def _feeds_problem(self, name: str) -> str | None:
        """The field's value as the typed action parameters it feeds would take it (a
        duration, a URL, hosts): refused here, before launch, never mid-run."""
        from quarterdeck.core.definition.input_types import input_problems

        assert self.loaded is not None
        values: dict[str, Any] = {}
        for other, spec in self.loaded.workflow.inputs.items():
            raw = self._raw(other)
            try:
                values[other] = coerce(other, spec, raw, self.base) if raw else spec.default
            except InvalidInput:
                values[other] = spec.default
        return input_problems(self.loaded.workflow, values, only=name).get(name)

    def _focus_field(self, name: str) -> None:
        """Scroll to the field and focus it (it may be below the fold)."""
        for widget in self.query(f"#in-{name}"):
            widget.focus()
            widget.scroll_visible(animate=False)

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _changed(self, event: Input.Changed | Select.Changed | Switch.Changed) -> None:
        widget_id = event.control.id or ""
        if widget_id.startswith("in-") and self.loaded is not None:
            self._check(widget_id[3:])

    def given(self) -> dict[str, Any]:
        """The fields a person filled in (empty ones fall back to defaults, as on the CLI)."""
        assert self.loaded is not None
        out: dict[str, Any] = {}
        for name, spec in self.loaded.workflow.inputs.items():
            raw = self._raw(name)
            if spec.type == "bool":
                if bool(spec.default) != (raw == "true"):
                    out[name] = raw
            elif raw != "":
                out[name] = raw
        return out

    def why_unavailable(self, action: str) -> str | None:
        if action == "launch":
            if self.loaded is None:
                return "the workflow is not loaded"
            if self.errors:
                name, error = next(iter(self.errors.items()))
                return f"input {name}: {error}"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Ctrl+S always answers: with a toast and the first invalid field focused (a
        # disabled key did nothing visible when that field was below the fold)
        if action == "launch":
            return True
        return None if self.why_unavailable(action) else True

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if not self.errors:
            self.action_launch()

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        why = self.why_unavailable("launch")
        if why is not None:
            self.notify(why, title="cannot launch yet", severity="warning")
            if self.errors:
                self._focus_field(next(iter(self.errors)))
            return
        assert self.loaded is not None
        from quarterdeck.core.definition.inputs import InputTypeError, resolve_inputs

        given = self.given()
        try:
            resolve_inputs(self.loaded.workflow, given, base=self.base)
        except InvalidInput as exc:
            self.notify(exc.message, title="cannot launch", severity="error")
            if isinstance(exc, InputTypeError):
                self._focus_field(exc.input)
            return
        self.app.pop_screen()
        self.host.launch(self.loaded, given)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()
