"""Is a run's journal what the runner wrote? The hash chain and every signed vote.

Each event row's ``hash`` links it to the previous one (``store.event_hash``), so an event
edited, inserted or removed in the middle breaks the chain from there on; events removed
at its end take the run's end with them, which the run's row still records (the runner
commits both at once: ``_check_end``); each signed
``approval.vote`` is checked again against the allowed signers, so a vote is verifiable
on any machine that has the project's config, from any copy of the store. Used by
``quarterdeck verify`` (exit 0 when the run verifies, 2 when it does not) and by
``quarterdeck show``, which warns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from hashlib import sha256
from math import isfinite
from typing import Any

from quarterdeck.core.errors import QuarterdeckError
from quarterdeck.core.journal.statuses import RUN_ENDED
from quarterdeck.core.journal.store import GENESIS, Store, event_hash


@dataclass
class Verification:
    run_id: str
    events: int = 0
    signed_votes: int = 0
    unsigned_votes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "ok": self.ok,
            "events": self.events,
            "signed_votes": self.signed_votes,
            "unsigned_votes": self.unsigned_votes,
            "problems": self.problems,
        }


def verify_run(
    store: Store,
    run_id: str,
    settings: Any = None,
    rows: list[tuple[Any, ...]] | None = None,
    *,
    snapshot: bool = True,
) -> Verification:
    """Check the chain of ``run_id``'s events and every signature in them; ``rows``, its
    ``store.raw_events(run_id)`` when the caller has read them already. ``snapshot``: also
    check the run's state snapshot against the fold of the events it stands for (a fold of
    them all: ``show`` leaves that to ``verify``)."""
    result = Verification(run_id)
    prev = GENESIS
    expected_seq: float = 1  # a float after a seq edited into a real (3.5)
    unchained = 0
    rows = store.raw_events(run_id) if rows is None else rows
    result.events = len(rows)
    problems = result.problems
    # ``event_hash`` spelled out for a row as the writer makes it (as ``store._canonical``
    # does; tests hold the two to the same answer), in the loop (no call per row), with
    # the JSON of the run id, event types, stages and steps kept (a run repeats a few of
    # them thousands of times; each step's id comes back for its started and finished
    # events). Only exact
    # strings are kept, and only a str equals one: a value of any other type finds none,
    # and its row goes to ``event_hash`` itself (as does any row not as the writer makes it).
    spelled: dict[Any, str] = {None: "null"}
    get = spelled.get
    for raw in rows:
        row_run, seq, ts, type_, stage, step, data, stored = raw
        if seq != expected_seq:
            problems.append(f"event {seq}: expected seq {expected_seq} (an event is missing)")
        # a seq edited into text or bytes (the column's type does not stop it): the next
        # one is expected one on, as after a number
        expected_seq = seq + 1 if isinstance(seq, (int, float)) else expected_seq + 1
        if stored is None:
            unchained += 1
            prev = GENESIS
            continue
        r, t, s, p = get(row_run), get(type_), get(stage), get(step)
        if r is None and type(row_run) is str:
            r = spelled[row_run] = _STR(row_run)
        if t is None and type(type_) is str:
            t = spelled[type_] = _STR(type_)
        if s is None and type(stage) is str:
            s = spelled[stage] = _STR(stage)
        if p is None and type(step) is str:
            p = spelled[step] = _STR(step)
        if (
            r is not None
            and t is not None
            and s is not None
            and p is not None
            and type(seq) is int
            and type(ts) is float
            and type(data) is str
            and isfinite(ts)
        ):
            text = f"{prev}\n[{r},{seq!r},{ts!r},{t},{s},{p},{_STR(data)}]"
            try:
                link = sha256(text.encode()).hexdigest()
            except UnicodeEncodeError:  # a lone surrogate: event_hash cannot encode it either
                link = None
        else:
            try:
                link = event_hash(prev, tuple(raw[:7]))
            except (TypeError, ValueError):  # a column edited into bytes: no JSON, no link
                link = None
        if link != stored:
            problems.append(f"event {seq} ({type_}): hash mismatch — edited after it was journaled")
        prev = stored
        if type_ == "approval.vote":
            _check_vote(result, run_id, seq, data, settings)
    _check_end(result, store, run_id, rows)
    if snapshot:
        _check_snapshot(result, store, run_id, rows)
    if unchained:
        whole = unchained == result.events
        result.problems.append(
            "recorded before the journal was hash-chained: it cannot be verified"
            if whole
            else f"{unchained} event(s) without a hash (stripped, or written by an old version)"
        )
    return result


_STR = json.encoder.encode_basestring  # ``store._canonical``'s string encoder
# where a runner's session starts: its end (``run.finished``) comes after the last of them
_SESSION_STARTS = frozenset({"run.started", "run.resumed"})


def _check_end(result: Verification, store: Store, run_id: str, rows: list[Any]) -> None:
    """A run the store says ended has that end in its journal. The chain cannot say when
    its last events were removed (nothing follows them to break), but the runner commits
    ``run.finished`` in the same transaction as the row's ended status: its last session
    (after its last start or resume) ends with one, and with the row's status."""
    try:
        status = store.get_run(run_id).status
    except QuarterdeckError:  # no row: the events alone are what there is to check
        return
    if status not in RUN_ENDED:
        return  # running, or stopped short (a crash leaves no end in the journal)
    end = None
    for raw in reversed(rows):
        if raw[3] == "run.finished":
            end = raw
            break
        if raw[3] in _SESSION_STARTS:
            break
    if end is None:
        last = f"event {rows[-1][1]} ({rows[-1][3]})" if rows else "no event"
        result.problems.append(
            f"the store says the run ended {status}, but its journal stops at {last} "
            "without that end: its last events were removed"
        )
        return
    try:
        said = json.loads(end[6]).get("status")
    except (TypeError, ValueError, AttributeError):
        said = None  # the event's data itself was edited: its link says so already
    if said != status:
        result.problems.append(
            f"the store says the run ended {status}, but its journal's end (event {end[1]}) "
            f"says {said}: the run's row was edited"
        )


def _check_vote(result: Verification, run_id: str, seq: int, text: str, settings: Any) -> None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError):  # TypeError: not text
        result.problems.append(f"event {seq}: approval.vote data is not JSON")
        return
    if not isinstance(data, dict):
        result.problems.append(f"event {seq}: approval.vote data is not a JSON object")
        return
    signature = data.get("signature") or ""
    if not signature:
        result.unsigned_votes += 1  # vouched for by the runner's own account
        return
    # only a signed vote needs the signature checks (``show`` of a run without one never
    # imports them)
    from quarterdeck.core.identity import (
        SignatureError,
        allowed_signers_path,
        approval_message,
        verify,
    )

    signers = allowed_signers_path(settings)
    if signers is None:
        result.problems.append(
            f"event {seq}: a signed vote by {data.get('by')!r}, but no allowed_signers in the "
            "config to check it"
        )
        return
    kind = "approve" if data.get("decision") == "approved" else "reject"
    message = approval_message(
        run_id,
        str(data.get("gate", "")),
        kind,
        str(data.get("by", "")),
        str(data.get("reason", "")),
    )
    try:
        checked = verify(message, signature, str(data.get("by", "")), signers)
    except SignatureError as exc:
        result.problems.append(f"event {seq}: vote by {data.get('by')!r}: {exc}")
        return
    if data.get("key") and data["key"] != checked.fingerprint:
        result.problems.append(f"event {seq}: vote by {data.get('by')!r}: key fingerprint differs")
        return
    result.signed_votes += 1


def _check_snapshot(
    result: Verification, store: Store, run_id: str, rows: list[tuple[Any, ...]]
) -> None:
    """The run's state snapshot says what its events say (core/journal/snapshot.py): kept
    for the chain as it is, unchanged since, and equal to the fold of the events up to it."""
    from quarterdeck.core.journal import snapshot
    from quarterdeck.core.journal.state import fold

    kept = snapshot.stored(store, run_id)
    if kept is None:
        return
    seq, head, form, data, digest, hash_now = kept
    where = f"the state snapshot at event {seq}"
    if snapshot.digest(run_id, seq, head, form, data) != digest:
        result.problems.append(f"{where}: changed after it was kept (its digest differs)")
        return
    if hash_now != head:
        result.problems.append(f"{where}: kept for another journal (event {seq}'s hash differs)")
        return
    if form != snapshot.FORMAT:
        return  # another version's layout: never read here, nothing to compare
    try:
        upto = [r for r in rows if r[1] <= seq]
        folded = snapshot.encode(fold(run_id, store.events_of(upto)))
    except (TypeError, ValueError) as exc:
        # snapshot.Unusual and PayloadError are ValueErrors; TypeError, ValueError too: a
        # column edited into another type (a text seq or ts). The events do not fold, so
        # they do not say what the snapshot says
        folded = f"({exc})"
    if folded != data:
        result.problems.append(f"{where}: does not match the fold of its events")
