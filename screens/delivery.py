"""Handing a worker thread's result back to the screen that asked for it.

A screen loads things off the UI thread (the catalog, a workflow's detail, the run
history) and then draws them. By the time the result arrives the screen may be gone: the
user closed it, or the app is shutting down and is removing widgets one by one. Drawing
then would query widgets that no longer exist. :func:`deliver` drops such a result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from textual.screen import Screen

P = ParamSpec("P")


def still_up(screen: Screen[Any]) -> bool:
    """Whether ``screen`` can still draw: it is in the DOM, it is not being removed, and
    the app is not shutting down (Textual removes the widgets before the screen)."""
    return (
        screen.is_attached
        and screen.app.is_running
        and not (screen._closing or screen._closed or screen._pruning)
    )


def deliver(
    screen: Screen[Any],
    callback: Callable[P, None] | Callable[P, Awaitable[None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> None:
    """From a worker thread: run ``callback(*args)`` on the UI thread, and wait for it, if
    ``screen`` is still up when it gets there; otherwise drop the result."""

    def guarded() -> Awaitable[None] | None:
        if not still_up(screen):
            return None
        return callback(*args, **kwargs)

    screen.app.call_from_thread(guarded)
