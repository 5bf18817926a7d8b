"""``paused_gc``: no collection inside the block; with ``promote``, what it made goes to
the oldest generation at its end, so the first collection after it does not walk it all."""

from __future__ import annotations

import gc

from quarterdeck.core.gc_pause import paused_gc


def _in_generation(generation: int, obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation=generation))


def test_a_promoted_block_leaves_its_objects_in_the_oldest_generation() -> None:
    assert gc.isenabled()
    with paused_gc(promote=True):
        assert not gc.isenabled()
        made = [[i] for i in range(5000)]
    enabled, young = gc.isenabled(), gc.get_count()[0]
    gc.disable()
    try:
        assert enabled
        assert young < 5000  # no young backlog for the next collection to walk
        assert _in_generation(2, made[0])
        assert _in_generation(2, made)
    finally:
        gc.enable()


def test_a_plain_block_leaves_its_objects_young() -> None:
    with paused_gc():
        made = [[i] for i in range(5000)]
    enabled = gc.isenabled()
    gc.disable()  # look before any allocation can start the collection they are due
    try:
        assert enabled
        assert not _in_generation(2, made[-1])  # young (walked by the next collections)
    finally:
        gc.enable()


def test_a_paused_collector_stays_paused_after_a_nested_block() -> None:
    gc.disable()
    try:
        with paused_gc(promote=True):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
