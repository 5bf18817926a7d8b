"""The ``needs`` DAG of a stage's steps, on :class:`graphlib.TopologicalSorter`.

One place knows how steps depend on each other: validation asks it for a cycle to report,
``run --dry-run`` for the layers it prints, and the engine's scheduler builds its ready-queue
with :func:`sorter`. Needs that name no step of the list are ignored here; validation
reports them on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Protocol, TypeVar

__all__ = ["CycleError", "HasNeeds", "ReadyQueue", "find_cycle", "layers", "sorter"]


class HasNeeds(Protocol):
    """What the DAG needs from a step: its id and the ids it waits for."""

    @property
    def id(self) -> str: ...

    @property
    def needs(self) -> list[str]: ...


S = TypeVar("S", bound=HasNeeds)


def sorter(needs: Mapping[str, Iterable[str]]) -> TopologicalSorter[str]:
    """A sorter over ``needs`` (step id → ids it waits for), nodes in the mapping's order.

    Every node is added before any edge, so ``get_ready`` hands out independent steps in
    definition order rather than in the order edges happen to mention them. Needs outside
    the mapping become nodes too: the caller decides what an unknown one means.
    """
    graph: TopologicalSorter[str] = TopologicalSorter()
    for node in needs:
        graph.add(node)
    for node, waits_for in needs.items():
        for need in waits_for:
            graph.add(node, need)
    return graph


class ReadyQueue:
    """The part of :func:`sorter` the scheduler uses (``prepare``, ``get_ready``, ``done``),
    handing out the same nodes in the same order, on two dicts.

    graphlib keeps a node-info object per step and walks the whole graph for a cycle in
    ``prepare``, in Python: ~5 µs a step of every run. Here ``prepare`` only asks graphlib
    (for its :class:`CycleError`) when some need names a later step; in order, as people
    write chains and fan-outs, there can be no cycle. A need outside the mapping becomes a
    node that is ready at once and never done (its dependents never start), as in
    :func:`sorter`.
    """

    __slots__ = ("_after", "_handed", "_in_order", "_needs", "_ready", "_waiting")

    def __init__(self, needs: Mapping[str, Iterable[str]]) -> None:
        self._needs = needs
        order = {node: i for i, node in enumerate(needs)}
        waiting: dict[str, int] = {}
        after: dict[str, list[str]] = {}
        outside: dict[str, None] = {}
        in_order = True
        for i, (node, waits_for) in enumerate(needs.items()):
            count = 0
            for need in waits_for:
                count += 1
                found = order.get(need)
                if found is None:
                    outside[need] = None
                elif found >= i:
                    in_order = False
                after.setdefault(need, []).append(node)
            waiting[node] = count
        self._in_order = in_order
        self._waiting = waiting
        self._after = after
        self._ready = [node for node, count in waiting.items() if count == 0]
        self._ready += [need for need in outside if need not in waiting]
        self._handed: set[str] = set()

    def prepare(self) -> None:
        """Raise :class:`CycleError` (graphlib's own) when the needs have a cycle."""
        if not self._in_order:
            sorter(self._needs).prepare()

    def get_ready(self) -> tuple[str, ...]:
        """The nodes that became ready since the last call, in graphlib's order."""
        ready, self._ready = self._ready, []
        self._handed.update(ready)
        return tuple(ready)

    def done(self, node: str) -> None:
        """Mark a node handed out by :meth:`get_ready` done; its dependents may be ready."""
        if node not in self._handed:
            raise ValueError(f"node {node!r} was not handed out by get_ready, or is done")
        self._handed.discard(node)
        waiting, ready = self._waiting, self._ready
        for dependent in self._after.get(node, ()):
            waiting[dependent] -= 1
            if not waiting[dependent]:
                ready.append(dependent)


def find_cycle(needs: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in ``needs`` as ids in needs order, the first repeated last; None if acyclic.

    graphlib reports a cycle along successor edges, so it is given the graph reversed (a
    step's needs as its successors): the message then reads the way the file does, "a
    needs b needs a", starting from the earliest step on the cycle.

    When every need names a step written before the one that needs it (chains and
    fan-outs as people write them) there is no cycle, and graphlib is not asked: building
    its graph was most of what checking the needs of a large workflow cost.
    """
    order = {node: i for i, node in enumerate(needs)}
    if all(
        order.get(need, -1) < i for i, waits_for in enumerate(needs.values()) for need in waits_for
    ):
        return None
    graph: TopologicalSorter[str] = TopologicalSorter()
    for node in needs:
        graph.add(node)
    for node, waits_for in needs.items():
        for need in waits_for:
            if need in needs:
                graph.add(need, node)
    try:
        graph.prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def layers(steps: Sequence[S]) -> list[list[S]]:
    """Steps grouped by DAG depth, each layer in definition order: a layer may run at once.

    Raises :class:`CycleError` for a cyclic graph, which a validated workflow never has.
    """
    order = {step.id: i for i, step in enumerate(steps)}
    by_id = {step.id: step for step in steps}
    graph = sorter({s.id: [n for n in s.needs if n in order] for s in steps})
    graph.prepare()
    out: list[list[S]] = []
    while graph.is_active():
        ready = sorted(graph.get_ready(), key=order.__getitem__)
        out.append([by_id[node] for node in ready])
        graph.done(*ready)
    return out
