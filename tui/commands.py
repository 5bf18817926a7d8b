"""The command palette (ctrl+p), fed from the same registry as the footer and help."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape
from textual.screen import Screen

from quarterdeck.tui.bindings import Command, commands


def scope_of(screen: Screen[object]) -> str:
    return str(getattr(screen, "SCOPE", "app"))


def unavailable(screen: Screen[object], command: Command) -> str | None:
    """Why ``command`` cannot run on ``screen`` now, or None."""
    why = getattr(screen, "why_unavailable", None)
    if why is None:
        return None
    result: str | None = why(command.action)
    return result


class CockpitCommands(Provider):
    """The commands of the screen the palette was opened from, with why any is off."""

    def _entries(self) -> list[tuple[Command, str | None]]:
        screen = self.screen
        found = [(c, unavailable(screen, c)) for c in commands(scope_of(screen))]
        found += [(c, None) for c in commands("app")]
        seen: set[str] = set()
        entries = []
        for command, why in found:  # one entry per name: "Quit" once, whoever binds it
            if command.action == "back" or not command.palette or command.description in seen:
                continue
            seen.add(command.description)
            entries.append((command, why))
        return entries

    def _run(self, command: Command, why: str | None) -> None:
        if why is not None:
            self.app.notify(why, title=f"{command.description}: unavailable", severity="warning")
            return
        target = self.app if command.scope == "app" else self.screen
        self.app.call_later(target.run_action, command.action)

    @staticmethod
    def _help(command: Command, why: str | None) -> str:
        key = command.key_display or command.key
        text = f"{key} · {command.help}"
        return escape(f"{text} — unavailable: {why}" if why else text)

    async def discover(self) -> Hits:
        for command, why in self._entries():
            yield DiscoveryHit(
                command.description,
                partial(self._run, command, why),
                help=self._help(command, why),
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command, why in self._entries():
            score = matcher.match(command.description)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.description),
                    partial(self._run, command, why),
                    help=self._help(command, why),
                )
