"""The key footer: drawn with its screen's first layout, rebuilt only when its keys changed.

Textual's Footer rebuilds itself (every key removed and mounted again) on each
``refresh_bindings``: a screen layout, so a repaint of every widget on the screen. Textual
asks for it on every focus change, and a screen asks once per change of what decides a key's
availability, often twice in a row (a run's definition arriving and the next tick noticing
it). Under a log flood each of those full repaints was one of the slowest key-to-frame
waits. Here:

- the keys are composed with the screen (Textual's Footer composes empty and builds them
  after the first refresh: one more mount and screen layout, which the first key pressed
  on a just-opened dashboard waited behind);
- a key turning available or greyed out (a run starting or ending) is redrawn in place: the
  same widgets, a class and a tooltip changed, no layout;
- a rebuild happens only when the keys shown change (a situational key coming or going),
  and a burst of requests rebuilds once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: ``screen.active_bindings`` values: (node, binding, enabled, tooltip)
Active = dict[str, Any]


class KeysFooter(Footer):
    """Textual's Footer, composed at once and recomposed only when its keys changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[object, ...] | None = None  # which keys the widgets show
        self._flags: tuple[object, ...] | None = None  # and which of them are enabled
        # ready from the start: the first compose draws the keys (see the module docstring)
        self.set_reactive(Footer._bindings_ready, True)

    def _shape(self, active: Active) -> tuple[object, ...]:
        """Everything :meth:`Footer.compose` builds its widgets from except availability:
        the shown bindings and how each is spelled, the palette key and its switches."""
        app = self.app
        palette = active.get(app.COMMAND_PALETTE_BINDING)
        return (
            self.show_command_palette,
            self.combine_groups,
            app.ENABLE_COMMAND_PALETTE,
            app.COMMAND_PALETTE_BINDING,
            None if palette is None else palette[1],
            tuple((b, app.get_key_display(b)) for _, b, _, _ in active.values() if b.show),
        )

    @staticmethod
    def _availability(active: Active) -> tuple[object, ...]:
        return tuple((enabled, tooltip) for _, _, enabled, tooltip in active.values())

    def compose(self) -> ComposeResult:
        active = self.screen.active_bindings
        self._drawn, self._flags = self._shape(active), self._availability(active)
        yield from super().compose()

    async def recompose(self) -> None:
        if not self.is_attached or self._pruning:
            return
        active = self.screen.active_bindings
        if self._shape(active) != self._drawn:
            await super().recompose()  # compose records what it drew
            return
        flags = self._availability(active)
        if flags != self._flags:
            self._flags = flags
            self._redraw(active, self.query(FooterKey))

    def _redraw(self, active: Active, keys: Iterable[FooterKey]) -> None:
        """Set each key's availability and tooltip as :meth:`Footer.compose` would have
        built them (the first shown binding of each action makes its key)."""
        first: dict[str, tuple[Any, bool, str]] = {}
        for _, binding, enabled, tooltip in active.values():
            if binding.show:
                first.setdefault(binding.action, (binding, enabled, tooltip))
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        for key in keys:
            if key.has_class("-command-palette"):
                if palette is not None:
                    _set_enabled(key, palette[2])
                continue
            found = first.get(key.action)
            if found is None:
                continue
            binding, enabled, tooltip = found
            _set_enabled(key, enabled)
            tip = (tooltip or binding.description) if key.has_class("-grouped") else tooltip
            if tip != (key.tooltip or ""):
                key.tooltip = tip or None


def _set_enabled(key: Widget, enabled: bool) -> None:
    key._disabled = not enabled  # type: ignore[attr-defined]  # FooterKey's (a mouse click)
    key.set_class(not enabled, "-disabled")
