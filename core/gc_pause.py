"""Cyclic garbage collection paused while a large, all-live object graph is built.

Loading a 10,000-step workflow or folding a 30,000-event journal allocates hundreds of
thousands of containers, none of them garbage: every allocation threshold crossed starts a
collection that walks them all again, which made GC ~30% of such a load. Reference counting
still frees everything as usual; only the cycle detector waits until the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc(*, promote: bool = False) -> Iterator[None]:
    """No cyclic GC inside the block; the collector's previous state after it (nests).

    ``promote``: what the block made is kept for good, so it goes straight to the oldest
    generation when the block ends. Otherwise the first allocation after the block starts
    a young collection that walks all of it (~0.1 s after a 10,000-step run's ``show``),
    and the next older one walks it again. (``gc.freeze`` then ``gc.unfreeze`` does that:
    both only move lists, and the freeze zeroes the young count.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if promote:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


# -- a command's start-up -------------------------------------------------------------------
# Everything a command builds before its work starts (the modules it imports, typer's
# commands, pydantic's validators, the config, the definition, a runner) lives until the
# process exits, so the cyclic GC's collections during start-up (some 90 for a 1-step
# ``run``, ~3% of its CPU) walk objects that are never garbage. The console script pauses
# it (:func:`pause_startup`) and the command ends the pause where its work begins
# (:func:`end_startup`): a run's loop, the cockpit, a server. A command that only reads,
# writes its answer and exits may leave it paused to the end.
_startup_paused = False


def pause_startup() -> None:
    """No cyclic GC until :func:`end_startup` (the console script, before anything else)."""
    global _startup_paused
    if gc.isenabled():
        gc.disable()
        _startup_paused = True


def end_startup() -> None:
    """Collect as before from here on, if :func:`pause_startup` paused it (else nothing).

    What start-up made goes straight to the oldest generation (as ``paused_gc(promote=True)``
    does), so the first young collection does not walk all of it."""
    global _startup_paused
    if _startup_paused:
        _startup_paused = False
        gc.freeze()
        gc.unfreeze()
        gc.enable()
