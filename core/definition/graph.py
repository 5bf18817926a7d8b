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

__all__ = ["CycleError", "HasNeeds", "find_cycle", "layers", "sorter"]


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
