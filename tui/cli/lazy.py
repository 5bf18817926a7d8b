"""The top-level command group, building only the subcommand a call invokes.

Typer turns every command into a click command by reading its signature (annotations,
``Annotated`` options, defaults): for the nineteen commands that is ~17 ms on every
call, and importing every family module pulls in what each of them needs. Here the
group knows each command's name and the module that registers it (:data:`COMMANDS`);
a lookup imports that module and builds that one command. ``--help`` and shell
completion still look every command up, so they list all of them, in this order, with
their help text.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_command_name

COMMANDS: dict[str, str] = {
    "validate": "catalog",
    "schema": "catalog",
    "workflows": "catalog",
    "personas": "catalog",
    "actions": "catalog",
    "run": "run",
    "resume": "run",
    "runs": "history",
    "show": "history",
    "verify": "history",
    "attach": "history",
    "listen": "incidents",
    "warroom": "incidents",
    "approve": "signals",
    "reject": "signals",
    "pause": "signals",
    "unpause": "signals",
    "cancel": "signals",
    "demo": "demo",
}
"""Every subcommand, in the order ``quarterdeck --help`` lists them, and the module of
``quarterdeck.tui.cli`` whose ``commands`` typer registers it (a test checks both)."""

FAMILIES = tuple(dict.fromkeys(COMMANDS.values()))


def family_commands(family: str) -> typer.Typer:
    """The typer of one family module, importing it."""
    module = importlib.import_module(f"quarterdeck.tui.cli.{family}")
    commands: typer.Typer = module.commands
    return commands


def registered_names(family: str) -> list[str]:
    """The command names a family module registers, in registration order."""
    return [_name(info) for info in family_commands(family).registered_commands]


def _name(info: Any) -> str:
    """The name typer gives a registered command: its own, or its function's."""
    return info.name or get_command_name(info.callback.__name__)


def _build(name: str, group: LazyGroup) -> Any:
    for info in family_commands(COMMANDS[name]).registered_commands:
        if _name(info) == name:
            return get_command_from_info(
                info,
                pretty_exceptions_short=group.pretty_exceptions_short,
                rich_markup_mode=group.rich_markup_mode,
            )
    raise LookupError(f"quarterdeck.tui.cli.{COMMANDS[name]} registers no command {name!r}")


class _Commands(MutableMapping[str, Any]):
    """The group's ``commands``: every name of :data:`COMMANDS`, each built on first
    lookup (click and typer read ``commands`` for lookups and for "did you mean")."""

    def __init__(self, group: LazyGroup) -> None:
        self._group = group
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        built = self._built.get(name)
        if built is None:
            if name not in COMMANDS:
                raise KeyError(name)
            built = self._built[name] = _build(name, self._group)
        return built

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._built]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


class LazyGroup(TyperGroup):
    """Typer's group with :class:`_Commands` for its commands (``Typer(cls=LazyGroup)``)."""

    pretty_exceptions_short = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(self)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)
