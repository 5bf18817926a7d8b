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
