"""One action registry: the footer, the help screen and the command palette read it.

Each :class:`Command` names a screen action (``action_<name>`` on the screen, or on the
app for the ``app`` scope), its key and what it does. Screens build their ``BINDINGS``
from here and decide availability in ``check_action``/``why_unavailable``, so a key that
is greyed out in the footer is also explained in help and refused in the palette with
the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    """One thing a person can do in a context."""

    id: str
    action: str
    key: str
    description: str
    help: str
    scope: str
    footer: bool = True
    key_display: str | None = None
    priority: bool = False
    palette: bool = True  # movement keys and the palette's own key are not commands


REGISTRY: tuple[Command, ...] = (
    # anywhere
    Command(
        "app.help",
        "help",
        "question_mark",
        "Help",
        "Keys for this screen, and why some are unavailable",
        "app",
        key_display="?",
    ),
    Command(
        "app.quit",
        "quit",
        "ctrl+q",
        "Quit",
        "Leave the cockpit (a run started here is interrupted, resumable)",
        "app",
        footer=False,
        priority=True,  # from a dialog too: Textual checks a modal's keys only, else
    ),
    Command(
        "app.command",
        "command_palette",
        "colon",
        "Command mode",
        "Type a command (the same list as ctrl+p: this screen's actions, then the app's)",
        "app",
        footer=False,
        key_display=":",
        palette=False,
    ),
    Command(
        "app.palette",
        "command_palette",
        "ctrl+p",
        "Commands",
        "The command palette (as `:` outside text fields)",
        "app",
        footer=False,
        priority=True,
        palette=False,
    ),
    Command(
        "app.back_out",
        "back_out",
        "q",
        "Back",
        "Leave this screen (on Home: quit, asking first while runs are live)",
        "app",
        footer=False,
        palette=False,
    ),
    Command(
        "app.down",
        "cursor('down')",
        "j",
        "Down",
        "Move down in a list, tree or log (like the down arrow)",
        "app",
        footer=False,
        palette=False,
    ),
    Command(
        "app.up",
        "cursor('up')",
        "k",
        "Up",
        "Move up in a list, tree or log (like the up arrow)",
        "app",
        footer=False,
        palette=False,
    ),
    # home
    Command(
        "home.open",
        "open",
        "enter",
        "Open",
        "Launch the highlighted workflow, or open the highlighted run",
        "home",
    ),
    Command(
        "home.history",
        "history",
        "h",
        "History",
        "All past runs, filtered by workflow and status",
        "home",
    ),
    Command(
        "home.refresh",
        "refresh",
        "f5",
        "Refresh",
        "Reload the catalog and the recent runs",
        "home",
        footer=False,
    ),
    Command("home.quit", "app.quit", "q", "Quit", "Leave the cockpit", "home"),
    # launch form
    Command(
        "launch.go",
        "launch",
        "ctrl+s",
        "Launch",
        "Start the run with these inputs and open its dashboard",
        "launch",
        priority=True,
    ),
    Command(
        "launch.back", "back", "escape", "Back", "Back to the catalog", "launch", key_display="esc"
    ),
    # dashboard
    Command(
        "dash.approve",
        "approval",
        "a",
        "Approval",
        "Open the approval gate that is waiting",
        "dashboard",
    ),
    Command(
        "dash.pause",
        "pause",
        "p",
        "Pause/resume",
        "Pause the run (steps in flight finish, no new step starts) or let it go on",
        "dashboard",
    ),
    Command(
        "dash.cancel",
        "cancel",
        "c",
        "Cancel",
        "Cancel the run (asks first); steps in flight are stopped",
        "dashboard",
    ),
    Command(
        "dash.retry",
        "retry",
        "r",
        "Retry",
        "Resume a failed or interrupted run: failed steps run again, completed ones are reused",
        "dashboard",
    ),
    Command(
        "dash.skip",
        "skip_gate",
        "s",
        "Skip gate",
        "Skip a skippable quality gate (a reason is required and audited)",
        "dashboard",
    ),
    Command(
        "dash.jump",
        "jump",
        "e",
        "Failing step",
        "Select the failing step and show its log",
        "dashboard",
    ),
    Command(
        "dash.filter",
        "filter",
        "slash",
        "Filter log",
        "Show only log lines containing some text",
        "dashboard",
        key_display="/",
    ),
    Command(
        "dash.scope",
        "whole_log",
        "l",
        "Whole log",
        "Show the log of the whole run instead of the selected step",
        "dashboard",
        footer=False,
    ),
    Command(
        "dash.back",
        "back",
        "escape",
        "Back",
        "Clear the filter, or go back",
        "dashboard",
        key_display="esc",
    ),
    *(
        Command(
            f"dash.pane{n}",
            f"pane({n})",
            str(n),
            f"Pane {n}",
            f"Jump to the {name}",
            "dashboard",
            footer=False,
            palette=False,
        )
        for n, name in enumerate(("stage tree", "log"), 1)
    ),
    # history
    Command(
        "history.open", "open", "enter", "Open", "Open the highlighted run's dashboard", "history"
    ),
    Command("history.workflow", "focus_workflow", "w", "Workflow", "Filter by workflow", "history"),
    Command("history.status", "focus_status", "s", "Status", "Filter by status", "history"),
    Command("history.back", "back", "escape", "Back", "Back", "history", key_display="esc"),
    Command(
        "dashboard.share",
        "share",
        "y",
        "Share",
        "Show and copy the command that joins this run from another terminal",
        "dashboard",
    ),
    # war room (screens/warroom.py)
    Command(
        "wr.ack",
        "acknowledge",
        "K",
        "Acknowledge",
        "Acknowledge the incident (the first to acknowledge takes command when nobody holds it)",
        "warroom",
    ),
    Command(
        "wr.update",
        "update",
        "u",
        "Update",
        "Post a status update (commander or communications lead)",
        "warroom",
    ),
    Command("wr.note", "note", "n", "Note", "Add a note to the timeline (anyone)", "warroom"),
    Command("wr.role", "role", "o", "Role", "Take a role or hand one over", "warroom"),
    Command(
        "wr.severity",
        "severity",
        "v",
        "Severity",
        "Escalate or de-escalate (the incident commander)",
        "warroom",
    ),
    Command(
        "wr.approve",
        "approve",
        "a",
        "Approve deploy",
        "Open the approval gate that is waiting (the deploy)",
        "warroom",
    ),
    Command(
        "wr.rollback",
        "rollback",
        "b",
        "Roll back",
        "Return to the last good release: stop the running deploy (its on_failure steps "
        "switch back), or deploy the waiting revert to the good ref (asks first)",
        "warroom",
    ),
    Command(
        "wr.reject",
        "reject_deploy",
        "r",
        "Reject deploy",
        "Refuse the waiting deploy: nothing changes on the hosts, the run ends (asks why)",
        "warroom",
    ),
    Command(
        "wr.resolve",
        "resolve",
        "x",
        "Resolve",
        "Resolve the incident and write the postmortem draft (the incident commander)",
        "warroom",
    ),
    Command(
        "wr.filter",
        "cycle_filter",
        "f",
        "Timeline",
        "Show all entries, people's only, or the run's only",
        "warroom",
    ),
    Command(
        "wr.search",
        "filter",
        "slash",
        "Filter",
        "Filter the timeline by text",
        "warroom",
        footer=False,
        key_display="/",
    ),
    Command(
        "wr.dashboard",
        "dashboard",
        "d",
        "Dashboard",
        "The run's dashboard (stages, steps, log)",
        "warroom",
        footer=False,
    ),
    Command(
        "wr.back",
        "back",
        "escape",
        "Back",
        "Clear the filter, or go back",
        "warroom",
        key_display="esc",
        footer=False,
    ),
    *(
        Command(
            f"wr.pane{n}",
            f"pane({n})",
            str(n),
            f"Pane {n}",
            f"Jump to the {name} pane",
            "warroom",
            footer=False,
            palette=False,
        )
        for n, name in enumerate(("roles and milestones", "health", "runbook", "timeline"), 1)
    ),
    Command(
        "wr.share",
        "share",
        "y",
        "Share",
        "Show and copy the command that joins this war room from another terminal",
        "warroom",
        footer=False,  # the war room's footer is full; help and the palette list it
    ),
    # help
    Command("help.back", "back", "escape", "Close", "Close help", "help", key_display="esc"),
)


def commands(scope: str) -> list[Command]:
    """The commands of a context, in registry order."""
    return [c for c in REGISTRY if c.scope == scope]


def bindings(scope: str) -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    """``BINDINGS`` for a screen (or the app), built from the registry."""
    return [
        Binding(
            c.key,
            c.action,
            c.description,
            show=c.footer,
            key_display=c.key_display,
            priority=c.priority,
            id=c.id,
        )
        for c in commands(scope)
    ]


def explain_unavailable(screen: Any, key: str) -> bool:
    """Toast why ``key``'s action cannot apply on ``screen`` (its ``why_unavailable``);
    True when it did. Textual ignores a disabled binding silently, which looks broken.

    Keys typed into a text field or a drop-down are theirs, not the screen's: skipped.
    """
    from textual.widgets import Input, Select, TextArea

    if isinstance(screen.focused, (Input, Select, TextArea)):
        return False
    for binding in screen._bindings.key_to_bindings.get(key, ()):
        why = screen.why_unavailable(binding.action)
        if why is not None:
            screen.notify(why, title=f"{binding.description}: unavailable", severity="warning")
            return True
    return False
