"""The needs DAG (quarterdeck.core.definition.graph) and the order the scheduler starts steps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from quarterdeck.core.definition.graph import CycleError, ReadyQueue, find_cycle, layers, sorter
from quarterdeck.core.journal.events import EventType
from tests.helpers import cli, run_workflow


@dataclass
class S:
    id: str
    needs: list[str] = field(default_factory=list)


def ids(groups: list[list[S]]) -> list[list[str]]:
    return [[s.id for s in group] for group in groups]


def test_layers_group_by_depth_in_definition_order() -> None:
    steps = [S("test", ["build"]), S("lint"), S("build"), S("ship", ["test", "lint"])]
    assert ids(layers(steps)) == [["lint", "build"], ["test"], ["ship"]]


def test_layers_ignore_needs_outside_the_list() -> None:
    assert ids(layers([S("a", ["elsewhere"]), S("b", ["a"])])) == [["a"], ["b"]]


def test_layers_refuse_a_cycle() -> None:
    with pytest.raises(CycleError):
        layers([S("a", ["b"]), S("b", ["a"])])


def test_find_cycle_reads_in_needs_order_from_the_earliest_step() -> None:
    needs = {"a": ["c"], "b": ["a"], "c": ["b"], "d": []}
    assert find_cycle(needs) == ["a", "c", "b", "a"]
    assert find_cycle({"x": [], "y": ["x", "unknown"]}) is None


def test_sorter_hands_out_independent_steps_in_definition_order() -> None:
    # "b" mentions "x" before "c" is seen: the ready order still follows the file
    graph = sorter({"b": ["x"], "c": [], "x": []})
    graph.prepare()
    assert graph.get_ready() == ("c", "x")


def test_runner_starts_ready_steps_in_definition_order(tmp_path: Path) -> None:
    text = (
        "name: order\nconcurrency: 1\nstages:\n  - id: s\n    steps:\n"
        "      - {id: b, uses: memory.set, needs: [x, c], with: {key: b, value: 1}}\n"
        "      - {id: c, uses: memory.set, with: {key: c, value: 1}}\n"
        "      - {id: x, uses: memory.set, with: {key: x, value: 1}}\n"
        "      - {id: d, uses: memory.set, needs: [x], with: {key: d, value: 1}}\n"
    )
    ran = run_workflow(tmp_path, text)
    assert ran.state.status == "succeeded"
    started = [e.step for e in ran.store.events(ran.state.id) if e.type == EventType.STEP_STARTED]
    assert started == ["c", "x", "b", "d"]


def test_dry_run_prints_the_steps_that_run_together_on_one_line(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: fan\nstages:\n  - id: s\n    steps:\n"
        "      - {id: build, uses: wait, with: {duration: 1ms}}\n"
        "      - {id: lint, uses: wait, with: {duration: 1ms}}\n"
        "      - {id: test, uses: wait, needs: [build], with: {duration: 1ms}}\n"
        "      - {id: ship, uses: wait, needs: [test, lint], with: {duration: 1ms}}\n"
    )
    result = cli("run", str(wf), "--dry-run", "--store", str(tmp_path / "qd.db"))
    assert result.returncode == 0, result.stderr
    plan = [line.strip() for line in result.stdout.splitlines()]
    start = plan.index("stage s")
    assert plan[start + 1 : start + 4] == [
        "build [wait] ∥ lint [wait]",
        "test [wait]",
        "ship [wait]",
    ]


def test_needs_written_in_order_are_acyclic_without_building_a_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every need names an earlier step (a chain, a fan-out): no cycle is possible, and
    # graphlib's graph (most of the check's cost at 10,000 steps) is not built
    from quarterdeck.core.definition import graph as graph_module

    chain = {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(1000)}
    fan = {"s0": [], **{f"s{i}": ["s0", "elsewhere"] for i in range(1, 1000)}}
    real = graph_module.TopologicalSorter

    def refused() -> None:
        raise AssertionError("graphlib asked about needs written in order")

    monkeypatch.setattr(graph_module, "TopologicalSorter", refused)
    assert find_cycle(chain) is None
    assert find_cycle(fan) is None
    monkeypatch.setattr(graph_module, "TopologicalSorter", real)
    # a need on a later step, or on itself, still goes through graphlib: the same answers
    assert find_cycle({"a": ["b"], "b": []}) is None
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    around = ["s0", *(f"s{i}" for i in range(999, 0, -1)), "s0"]
    assert find_cycle({**chain, "s0": ["s999"]}) == around


def _hand_outs(graph: object, rng: random.Random) -> list[tuple[str, ...]]:
    """Everything ``get_ready`` hands out while ready nodes are done in a random order."""
    graph.prepare()  # type: ignore[attr-defined]
    out: list[tuple[str, ...]] = []
    ready: list[str] = []
    while True:
        got = graph.get_ready()  # type: ignore[attr-defined]
        out.append(tuple(got))
        ready += [n for n in got if not n.startswith("outside")]
        if not ready:
            return out
        graph.done(ready.pop(rng.randrange(len(ready))))  # type: ignore[attr-defined]


def test_the_ready_queue_hands_out_what_graphlib_hands_out() -> None:
    # the scheduler's queue: the same nodes, in the same order, as graphlib's sorter, for
    # DAGs with needs forwards and backwards, duplicates and needs outside the stage
    for seed in range(200):
        shape = random.Random(seed)
        ids = [f"s{i}" for i in range(shape.randrange(1, 30))]
        order = ids[:]
        shape.shuffle(order)  # a random topological order: needs only on earlier ones
        position = {node: i for i, node in enumerate(order)}
        needs = {
            node: [
                *(n for n in ids if position[n] < position[node] and shape.random() < 0.2),
                *(["outside-" + str(shape.randrange(3))] if shape.random() < 0.05 else []),
            ]
            for node in ids
        }
        for node in ids:
            if needs[node] and shape.random() < 0.1:
                needs[node].append(needs[node][0])  # a need written twice
        expected = _hand_outs(sorter(needs), random.Random(seed))
        assert _hand_outs(ReadyQueue(needs), random.Random(seed)) == expected, needs


def test_the_ready_queue_refuses_a_cycle_and_builds_no_graph_for_needs_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(CycleError):
        ReadyQueue({"a": ["b"], "b": ["a"]}).prepare()
    from quarterdeck.core.definition import graph as graph_module

    def refused() -> None:
        raise AssertionError("graphlib asked about needs written in order")

    monkeypatch.setattr(graph_module, "TopologicalSorter", refused)
    queue = ReadyQueue({f"s{i}": [f"s{i - 1}"] if i else [] for i in range(100)})
    queue.prepare()
    assert queue.get_ready() == ("s0",)
    with pytest.raises(ValueError):
        queue.done("s1")  # never handed out
    queue.done("s0")
    assert queue.get_ready() == ("s1",)
