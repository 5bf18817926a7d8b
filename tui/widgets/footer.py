"""The key footer, rebuilt only when what it shows changed.

Textual's Footer rebuilds itself (every key removed and mounted again) on each
``refresh_bindings``: a screen layout, so a repaint of every widget on the screen. Textual
asks for it on every focus change, and a screen asks once per change of what decides a key's
availability, often twice in a row (a run's definition arriving and the next tick noticing
it). Under a log flood each of those full repaints was one of the slowest key-to-frame
waits. Here a rebuild that would draw the same keys is skipped, and a burst of requests
rebuilds once.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class KeysFooter(Footer):
    """Textual's Footer, recomposed only when its keys (or how they show) changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[object, ...] | None = None

    def _keys(self) -> tuple[object, ...]:
        """Everything :meth:`Footer.compose` draws from (the bindings with their
        availability and tooltips, how each key is spelled, the palette key's switches)."""
        if not self._bindings_ready:
            return (False,)
        app = self.app
        return (
            True,
            self.show_command_palette,
            self.combine_groups,
            app.ENABLE_COMMAND_PALETTE,
            app.COMMAND_PALETTE_BINDING,
            tuple(
                (binding, app.get_key_display(binding), enabled, tooltip)
                for _, binding, enabled, tooltip in self.screen.active_bindings.values()
            ),
        )

    async def recompose(self) -> None:
        if not self.is_attached or self._pruning:
            return
        keys = self._keys()
        if keys == self._drawn:
            return
        self._drawn = keys
        await super().recompose()
