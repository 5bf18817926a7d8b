"""A stopped run's folded state, kept so that ``resume`` and ``show`` fold only what came after.

Folding a 10,000-step run's 30,000 events was most of what its ``resume`` and ``show`` cost
after the imports. When a runner stops short of the run's end (it failed, was rejected or
was interrupted: a run ``resume`` can continue) it keeps its
:class:`~quarterdeck.core.journal.state.RunState`, which is the fold of every event it
journaled, as compact JSON in the ``snapshots`` table (schema v8): one row per run, tied to
the seq of the last event it folds and to that event's hash. A reader takes the snapshot
and folds the events after it.

The snapshot never outranks the journal:

- it is used only while the event at its seq still has the hash it was taken at (the chain
  up to there is the one it folds), its own digest matches (a snapshot edited or cut short
  is not read) and its format is this one; anything else folds the whole journal, as before;
- ``quarterdeck verify`` folds the events up to the snapshot's seq and compares: a snapshot
  that does not say what its events say is a problem of the run, like a broken chain;
- it is written only when the runner's state is the fold of the rows in the store (every
  event up to its last seq committed, chained), and only by the runner that holds the run.

Everything a fold makes is kept type for type (enums, tuples, the output tail's deque, gate
results' key order), so a state read back equals the full fold; the tests hold the two
equal over real runs. The log a cockpit keeps (``keep_log``) is not in a snapshot: a reader
that wants it folds everything.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter, itemgetter
from typing import Any

from quarterdeck.core.journal.events import GateResult
from quarterdeck.core.journal.parts import (
    LOG_TAIL,
    ApprovalState,
    GateState,
    PersonaUsage,
    Refusal,
    SignalSeen,
    StageState,
    StepState,
    Switch,
    Vote,
)
from quarterdeck.core.journal.state import RunState, fold
from quarterdeck.core.journal.statuses import (
    RUN_RESUMABLE,
    ApprovalStatus,
    GateStatus,
    RunStatus,
    StageStatus,
    StepStatus,
)
from quarterdeck.core.journal.store import Store
from quarterdeck.core.journal.store_errors import StoreError

#: The layout of ``data``; a snapshot of any other is not read (the journal is folded).
FORMAT = 1
#: Runs with fewer events keep no snapshot: folding them is quicker than a write at the end.
MIN_EVENTS = 1000
#: The ends that keep one: a run that can be resumed (its resume reads it). A run that
#: succeeded or was cancelled keeps none, so its end does not pay for the encoding (~50 ms
#: at 10,000 steps, ~5 us a step) for a ``show`` that may never come.
KEPT_FOR: frozenset[RunStatus] = RUN_RESUMABLE

# as the journal stores event data (``store._DATA_ENCODER``): the same values read back
_ENCODE = json.JSONEncoder(default=str, separators=(",", ":")).encode

# every field, in the constructor's order (a field added to StepState is kept too)
_STEP_FIELDS = tuple(f.name for f in fields(StepState))
_STEP_VALUES = attrgetter(*_STEP_FIELDS)  # one call per step (a run may have 10,000)
# the plain parts, every field in the constructor's order (``decode`` rebuilds them so)
_SWITCH = attrgetter(*(f.name for f in fields(Switch)))
_PERSONA = attrgetter(*(f.name for f in fields(PersonaUsage)))
_SIGNAL = attrgetter(*(f.name for f in fields(SignalSeen)))
_STATUS_AT = _STEP_FIELDS.index("status")
_GROUPS_AT = _STEP_FIELDS.index("process_groups")
_TAIL_AT = _STEP_FIELDS.index("tail")
_STEP_STATUS = StepStatus._value2member_map_


class Unusual(ValueError):
    """A state this format does not keep as it is (it keeps none), or data that is not one."""


def digest(run_id: str, seq: int, head: str, form: int, data: str) -> str:
    return hashlib.sha256(f"{run_id}\n{seq}\n{head}\n{form}\n{data}".encode()).hexdigest()


# -- encoding ----------------------------------------------------------------------------------


def encode(state: RunState) -> str:
    """The snapshot's ``data`` for ``state``; :class:`Unusual` for a state it cannot keep."""
    return _ENCODE(
        {
            "run": [
                state.id,
                state.workflow,
                state.title,
                state.status.value,
                state.started_at,
                state.finished_at,
                state.started_by,
                state.persona,
                state.error,
                state.paused,
                state.last_seq,
                state.held,
                state.held_since,
            ],
            "inputs": state.inputs,
            "memory": state.memory,
            "stages": [_stage(stage, state.approvals) for stage in state.stages.values()],
            "switches": [list(_SWITCH(s)) for s in state.switches],
            "personas": [list(_PERSONA(p)) for p in state.personas.values()],
            "approvals": [_approval(a) for a in state.approvals.values()],
            "signals": [list(_SIGNAL(s)) for s in state.signals],
            "tokens": [list(point) for point in state.token_series],
        }
    )


def _stage(stage: StageState, approvals: dict[str, ApprovalState]) -> list[Any]:
    approval = stage.approval
    if approval is not None and approvals.get(approval.id) is not approval:
        raise Unusual(f"stage {stage.id}: its approval is not the run's {approval.id!r}")
    gate = stage.gate
    return [
        stage.id,
        stage.title,
        stage.persona,
        stage.status.value,
        stage.started_at,
        stage.finished_at,
        stage.error,
        None
        if gate is None
        else [
            gate.id,
            gate.status.value,
            [_gate_result(r) for r in gate.results],
            gate.skipped_by,
            gate.reason,
        ],
        None if approval is None else approval.id,
        [_step(step) for step in stage.steps.values()],
    ]


def _gate_result(result: Any) -> dict[str, Any]:
    if type(result) is not GateResult:
        raise Unusual(f"a gate result of type {type(result).__name__}")
    return result.to_data()  # its keys in the order journaled (show --json writes them so)


def _step(step: StepState) -> list[Any]:
    values = list(_STEP_VALUES(step))
    values[_STATUS_AT] = step.status.value
    groups, tail = step.process_groups, step.tail
    if type(groups) is tuple:  # none yet (the empty tuple), not an empty list
        values[_GROUPS_AT] = None
    if type(tail) is tuple:
        values[_TAIL_AT] = None
    elif type(tail) is deque:
        values[_TAIL_AT] = list(tail)
    else:
        raise Unusual(f"step {step.id}: a tail of type {type(tail).__name__}")
    return values


def _approval(a: ApprovalState) -> list[Any]:
    return [
        a.id,
        a.stage,
        a.status.value,
        a.prompt,
        a.evidence,
        a.approvers,
        a.min_approvals,
        a.allow_self_approval,
        a.requested_at,
        a.timeout_at,
        a.on_timeout,
        [[v.by, v.decision.value, v.reason, v.ts, v.key] for v in a.votes],
        [[r.by, r.decision.value, r.why, r.ts] for r in a.refusals],
        a.decided_by,
        a.reason,
        a.decided_at,
        a.timed_out,
        a.kind,
        a.data,
    ]


# -- decoding ----------------------------------------------------------------------------------


def decode(text: str) -> RunState:
    """The state a snapshot's ``data`` holds; :class:`Unusual` when it is not one."""
    try:
        return _decode(json.loads(text))
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise Unusual(f"not a snapshot: {exc}") from None


def _decode(data: dict[str, Any]) -> RunState:
    run = data["run"]
    if len(run) != 13:
        raise ValueError("run: 13 values expected")
    state = RunState(run[0])
    state.workflow, state.title = run[1], run[2]
    state.status = run[3]
    state.started_at, state.finished_at, state.started_by = run[4], run[5], run[6]
    state.persona, state.error, state.paused, state.last_seq = run[7], run[8], run[9], run[10]
    state.held, state.held_since = run[11], run[12]
    state.inputs = data["inputs"]
    state.memory = data["memory"]
    approvals = {}
    for a in data["approvals"]:
        approval = ApprovalState(*a[:11], votes=[], refusals=[])  # type: ignore[misc]
        approval.status = ApprovalStatus(a[2])
        approval.votes = [Vote(v[0], ApprovalStatus(v[1]), v[2], v[3], v[4]) for v in a[11]]
        approval.refusals = [Refusal(r[0], ApprovalStatus(r[1]), r[2], r[3]) for r in a[12]]
        (
            approval.decided_by,
            approval.reason,
            approval.decided_at,
            approval.timed_out,
            approval.kind,
            approval.data,
        ) = a[13:19]
        approvals[approval.id] = approval
    state.approvals = approvals
    for s in data["stages"]:
        stage = StageState(s[0], s[1], s[2], StageStatus(s[3]), {}, s[4], s[5], s[6])
        gate = s[7]
        if gate is not None:
            results = [GateResult.from_data(r, strict=True) for r in gate[2]]
            stage.gate = GateState(gate[0], GateStatus(gate[1]), results, gate[3], gate[4])
        if s[8] is not None:
            stage.approval = approvals[s[8]]
        stage.steps = {v[0]: _decode_step(v) for v in s[9]}
        state.stages[stage.id] = stage
    state.switches = [Switch(*s) for s in data["switches"]]
    state.personas = {p[0]: PersonaUsage(*p) for p in data["personas"]}
    state.signals = [SignalSeen(*s) for s in data["signals"]]
    state.token_series = [(t[0], t[1]) for t in data["tokens"]]
    return state


def _decode_step(values: list[Any]) -> StepState:
    if len(values) != len(_STEP_FIELDS):
        raise ValueError("step: wrong number of values")
    status = _STEP_STATUS.get(values[_STATUS_AT])
    if status is None:
        raise ValueError(f"step {values[0]}: no status {values[_STATUS_AT]!r}")
    values[_STATUS_AT] = status
    groups, tail = values[_GROUPS_AT], values[_TAIL_AT]
    values[_GROUPS_AT] = () if groups is None else [(g[0], g[1]) for g in groups]
    values[_TAIL_AT] = () if tail is None else deque(tail, maxlen=LOG_TAIL)
    return StepState(*values)


# -- the store ---------------------------------------------------------------------------------


def save(store: Store, state: RunState, owner: str | None) -> bool:
    """Keep ``state`` as its run's snapshot, when it is the fold of the rows in the store;
    whether it was kept. One transaction, fenced by the claim as the runner's commits are:
    a runner that no longer holds the run writes nothing."""
    seq = state.last_seq
    if seq < MIN_EVENTS or state.status not in KEPT_FOR:
        return False
    data = encode(state)  # Unusual: no snapshot (readers fold the journal)
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute(
            "SELECT owner, (SELECT hash FROM events WHERE run_id = ?1 AND seq = ?2),"
            " (SELECT COUNT(*) FROM events WHERE run_id = ?1 AND seq <= ?2)"
            " FROM runs WHERE id = ?1",
            (state.id, seq),
        ).fetchone()
        if found is None or (owner is not None and found[0] != owner):
            conn.execute("ROLLBACK")
            return False
        head, count = found[1], found[2]
        if head is None or count != seq:  # not all committed, or not chained: the fold it is not
            conn.execute("ROLLBACK")
            return False
        conn.execute(
            "INSERT OR REPLACE INTO snapshots (run_id, seq, head, format, data, digest)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (state.id, seq, head, FORMAT, data, digest(state.id, seq, head, FORMAT, data)),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True


def keep(store: Store, state: RunState, owner: str | None) -> None:
    """:func:`save`, for a runner that stops: a snapshot that cannot be kept (a state this
    format does not keep, a store that refuses the write) is left out, and the run's end
    is not made to fail for it: readers then fold the whole journal."""
    try:
        save(store, state, owner)
    except (Unusual, StoreError, sqlite3.Error, ValueError, TypeError, RecursionError):
        pass  # no snapshot: every reader folds the journal, as it did before snapshots


def stored(store: Store, run_id: str) -> tuple[int, str, int, str, str, str | None] | None:
    """The run's snapshot row ``(seq, head, format, data, digest, hash of the event at
    seq)``, or None (none kept, or a store from before snapshots)."""
    try:
        row = store.conn.execute(
            "SELECT s.seq, s.head, s.format, s.data, s.digest, e.hash FROM snapshots s"
            " LEFT JOIN events e ON e.run_id = s.run_id AND e.seq = s.seq WHERE s.run_id = ?",
            (run_id,),
        ).fetchone()
    except StoreError:  # a store from before snapshots (no table): the journal is folded
        return None
    return None if row is None else tuple(row)


def load(store: Store, run_id: str) -> RunState | None:
    """The run's snapshot as a state, when it still stands for its events (see the module's
    docstring); None to fold the whole journal."""
    row = stored(store, run_id)
    if row is None:
        return None
    seq, head, form, data, kept_digest, hash_now = row
    if form != FORMAT or hash_now is None or hash_now != head:
        return None
    if digest(run_id, seq, head, form, data) != kept_digest:
        return None
    try:
        state = decode(data)
    except Unusual:
        return None
    if state.id != run_id or state.last_seq != seq:
        return None
    return state


def fold_stored(store: Store, run_id: str) -> RunState:
    """The fold of the run's journal: its snapshot and the events after it, or every event
    when it has no snapshot that stands (see :func:`load`). :class:`StoreError` when its
    events do not read as the runner writes them (see :func:`reading`)."""
    with reading(store, run_id):
        state = load(store, run_id)
        if state is None:
            return fold(run_id, store.events(run_id))
        for event in store.events(run_id, after=state.last_seq):
            state.apply(event)
    return state


def fold_rows(store: Store, run_id: str, rows: Sequence[Sequence[Any]]) -> RunState:
    """:func:`fold_stored` of rows already read (``store.raw_events``, ordered by seq)."""
    with reading(store, run_id):
        state = load(store, run_id)
        if state is None:
            return fold(run_id, store.events_of(rows))
        for event in store.events_of(rows_after(rows, state.last_seq)):
            state.apply(event)
    return state


@contextmanager
def reading(store: Store, run_id: str) -> Iterator[None]:
    """Folding the run's events inside: one that does not fold raises a :class:`StoreError`
    naming the run, the store and ``verify``. A column of another type (a text ``seq`` or
    ``ts``, a number for ``data``), data that is not JSON or does not fit its event's
    payload (``PayloadError`` and ``JSONDecodeError`` are ``ValueError``): the runner never
    writes such rows, so something else did; ``verify`` says which rows."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        from quarterdeck.core.commands import cli_command

        cause = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise StoreError(
            f"run {run_id}: its journal in {store.path} does not read as the runner writes it"
            f" ({cause})",
            hint=f"`{cli_command('verify', run_id, store=store.path)}` lists the events that "
            "were changed after they were journaled",
            path=store.path,
            kind="unreadable",
        ) from exc


def rows_after(rows: Sequence[Sequence[Any]], seq: int) -> Sequence[Sequence[Any]]:
    """Rows ``(run_id, seq, ...)`` ordered by seq: those after ``seq``."""
    return rows[bisect_right(rows, seq, key=itemgetter(1)) :]
