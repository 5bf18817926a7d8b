"""The top-level group builds only the invoked command (``tui/cli/lazy.py``); what users
see — the command list in ``--help``, each command's help, "did you mean" — is the same
as a group built eagerly from every family module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from quarterdeck.tui.cli import app, main_callback
from quarterdeck.tui.cli.lazy import COMMANDS, FAMILIES, family_commands, registered_names

CLI_DIR = Path(__file__).resolve().parents[2] / "tui" / "cli"


def _eager_app() -> typer.Typer:
    """The group as it was built before: every family added up front, in table order."""
    eager = typer.Typer(
        name="quarterdeck",
        help="Quarterdeck: a terminal cockpit for multi-persona engineering workflows.",
        add_completion=False,
        invoke_without_command=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    eager.callback()(main_callback)
    for family in FAMILIES:
        eager.add_typer(family_commands(family))
    return eager


def _output(target: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(target, list(args), env={"COLUMNS": "100"})
    return result.exit_code, result.output


def test_the_table_names_each_family_module_and_its_commands_in_order() -> None:
    defining = sorted(
        path.stem
        for path in CLI_DIR.glob("*.py")
        if any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "commands" for t in node.targets)
            for node in ast.parse(path.read_text()).body
        )
    )
    assert sorted(FAMILIES) == defining
    for family in FAMILIES:
        assert registered_names(family) == [n for n, f in COMMANDS.items() if f == family]


def test_help_lists_every_command_as_the_eager_group_does() -> None:
    lazy = _output(app, "--help")
    assert lazy == _output(_eager_app(), "--help")
    rows = re.findall(r"^  ([a-z]+) +\S", lazy[1].split("Commands:")[1], re.MULTILINE)
    assert rows == list(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_commands_help_is_unchanged(name: str) -> None:
    assert _output(app, name, "--help") == _output(_eager_app(), name, "--help")


def test_a_mistyped_command_gets_the_same_suggestions() -> None:
    code, out = _output(app, "rusn")
    assert code == 2 and "Did you mean 'run', 'runs'?" in out
    assert (code, out) == _output(_eager_app(), "rusn")
