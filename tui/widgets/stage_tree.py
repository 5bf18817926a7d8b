"""The stage and step tree of a run: status, durations, attempts, concurrency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.markup import escape
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from quarterdeck.core.definition.graph import CycleError
from quarterdeck.core.definition.graph import layers as dag_layers
from quarterdeck.core.durations import format_duration
from quarterdeck.core.journal.state import RunState, StageState, StepState
from quarterdeck.core.journal.statuses import (
    RUN_ACTIVE,
    ApprovalStatus,
    GateStatus,
    RunStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.tui.widgets.status import glyph, rich_text, span

NodeKey = tuple[str, ...]


def layers(steps: list[StepState]) -> dict[str, int]:
    """Each step's DAG layer; steps sharing a layer may run at the same time."""
    try:
        grouped = dag_layers([s for s in steps if s.role == "step"])
    except CycleError:  # a validated definition has none; draw no ∥ marks rather than fail
        return {}
    return {step.id: depth for depth, layer in enumerate(grouped) for step in layer}


def shown(state: RunState, stage: StageState) -> str:
    """The status a stage is drawn with: a "running" stage with no step in flight does not
    spin while the run is paused (nothing moves) or after it ended (nothing will)."""
    if stage.status != StageStatus.RUNNING:
        return stage.status
    if state.status not in RUN_ACTIVE:
        return state.status
    busy = any(step.status == StepStatus.RUNNING for step in stage.steps.values())
    if state.paused and not busy:
        return RunStatus.PAUSED
    return stage.status


class StageTree(Tree[NodeKey]):
    """Stages and their steps; the step in flight spins, concurrent steps are marked ∥."""

    DEFAULT_CSS = """
    StageTree { background: $surface; }
    """

    def __init__(self, now: Callable[[], float], **kwargs: Any) -> None:
        super().__init__("run", data=("run",), **kwargs)
        self.auto_expand = False
        self.show_root = True
        self.guide_depth = 2
        self._now = now
        self._shape: list[tuple[str, list[str]]] = []
        self._keyed: dict[NodeKey, TreeNode[NodeKey]] = {}
        self._labels: dict[NodeKey, str] = {}

    def _invalidate(self) -> None:
        """Tree's, without its screen layout: Tree laid the whole screen out (a repaint of
        every widget) on each invalidation, and it invalidates on every focus change (a
        style update), resize and added node, so opening a dashboard queued layouts the
        first key waited behind. The tree's own size is its grid cell's; what its lines
        change is the virtual size, a reactive that still lays out when it changes."""
        self._clear_line_cache()
        self._updates += 1
        self.root._reset()
        self.refresh()

    def node_for(self, key: NodeKey) -> TreeNode[NodeKey] | None:
        return self._keyed.get(key)

    def sync(self, state: RunState, frame: int) -> None:
        """Bring the tree in line with ``state``; only changed labels are repainted."""
        shape = [(sid, list(st.steps)) for sid, st in state.stages.items()]
        if shape != self._shape:
            self._rebuild(state, shape)
        self._set(("run",), self._run_label(state, frame))
        live = state.status in RUN_ACTIVE
        for stage in state.stages.values():
            label = self._stage_label(stage, frame, shown(state, stage), live)
            self._set(("stage", stage.id), label)
            concurrent = layers(list(stage.steps.values()))
            sizes: dict[int, int] = {}
            for depth in concurrent.values():
                sizes[depth] = sizes.get(depth, 0) + 1
            for step in stage.steps.values():
                parallel = sizes.get(concurrent.get(step.id, -1), 0) > 1
                self._set(("step", stage.id, step.id), self._step_label(step, frame, parallel))

    def _set(self, key: NodeKey, label: str) -> None:
        if self._labels.get(key) == label:
            return
        node = self._keyed.get(key)
        if node is not None:
            self._labels[key] = label
            node.set_label(self.process_label(label))

    def process_label(self, label: Any) -> Text:
        """Tree labels are Rich Text: resolve our ``[$variable]`` tags to the theme's colours."""
        if not isinstance(label, str):
            return super().process_label(label)
        return rich_text(label, self.app.theme_variables)

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._retheme, init=False)

    def _retheme(self) -> None:
        self._labels.clear()

    def _rebuild(self, state: RunState, shape: list[tuple[str, list[str]]]) -> None:
        selected = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self._keyed = {("run",): self.root}
        self._labels = {}
        for stage in state.stages.values():
            snode = self.root.add(stage.id, data=("stage", stage.id), expand=True)
            self._keyed[("stage", stage.id)] = snode
            for step in stage.steps.values():
                key = ("step", stage.id, step.id)
                self._keyed[key] = snode.add_leaf(step.id, data=key)
        self.root.expand()
        self._shape = shape
        if selected is not None and selected in self._keyed:
            self.move_cursor(self._keyed[selected])

    def _run_label(self, state: RunState, frame: int) -> str:
        title = escape(state.title or state.workflow or state.id)
        return f"{glyph(state.status, frame)} [b]{title}[/b]"

    def _stage_label(self, stage: StageState, frame: int, status: str, live: bool) -> str:
        parts = [glyph(status, frame), f"[b]{escape(stage.title or stage.id)}[/b]"]
        duration = span(stage.started_at, stage.finished_at, self._now)
        if duration:
            parts.append(f"[$text-muted]{duration}[/]")
        waiting = stage.approval is not None and stage.approval.status == ApprovalStatus.WAITING
        if waiting and not live:
            parts.append("[$text-muted]gate never decided[/]")  # the run ended under it
        elif stage.approval is not None:
            parts.append(f"gate {glyph(stage.approval.status)}")
        if stage.gate is not None and stage.gate.status != GateStatus.PENDING:
            parts.append(f"{escape(stage.gate.id)} {glyph(stage.gate.status)}")
        return " ".join(parts)

    def _step_label(self, step: StepState, frame: int, parallel: bool) -> str:
        parts = [glyph(step.status, frame), escape(step.id)]
        active = step.active_time(self._now())
        if active is not None:
            parts.append(f"[$text-muted]{format_duration(active)}[/]")
        if step.attempts > 1:
            parts.append(f"[$warning]×{step.attempts}[/]")
        if step.role != "step":
            parts.append(f"[$text-muted]({escape(step.role.replace('_', ' '))})[/]")
        if parallel:
            parts.append("[$accent]∥[/]")
        return " ".join(parts)
