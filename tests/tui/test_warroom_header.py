"""The war room's banner keeps the run id and the store whole at any width: they are
what people paste to join; the alert's title gives way, elided in the middle."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from quarterdeck.core.commands import store_label
from tests.tui import test_warroom as wr


@pytest.mark.asyncio
@pytest.mark.parametrize("width", [80, 120])
async def test_banner_never_cuts_the_run_id_or_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    alert = copy.deepcopy(wr.ALERT)
    alert["commonAnnotations"]["summary"] = (
        "checkout answers 503 for every request in every region, and the queue is backing up"
    )
    monkeypatch.setattr(wr, "ALERT", alert)
    db = tmp_path / "stores" / "incident-store.db"
    db.parent.mkdir()
    wr.mid_incident(db)
    app = wr.make_app(db, "alice", wr.T0 + 35 * 60)
    async with app.run_test(size=(width, 30)) as pilot:
        await wr.loaded(pilot)
        await pilot.pause(0.1)
        banner = app.screen.query_one("#wr-banner")
        first = "".join(seg.text for seg in banner.render_line(0))
    assert wr.RUN in first, first
    label = store_label(db)
    assert label is not None and label.endswith("/incident-store.db")
    assert f"store {label}" in first, first
    if width >= 120:  # room for the title too, elided in the middle rather than cut
        assert "CheckoutDown — checkout" in first and "…" in first, first
