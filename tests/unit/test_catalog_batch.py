"""The catalog batch check (``handlers/catalog.check``) without a database or API: how a finished batch settles the
items' ``_wch_sync_status``, and what a status error or a batch that stays in progress does."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError
from wch_bridge.handlers import catalog
from wch_bridge.whatsapp import BatchStatus

NOW = datetime(2026, 1, 5, 12, 0, 0)


class FakeWp:
    def __init__(self) -> None:
        self.meta: dict[int, dict[str, str]] = {}

    def update_post_meta(self, post_id: int, values: dict[str, Any]) -> None:
        self.meta.setdefault(post_id, {}).update({k: str(v) for k, v in values.items()})


class FakeClient:
    def __init__(self, answer: BatchStatus | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def check_batch_status(self, handle: str) -> BatchStatus:
        self.asked.append(handle)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def job_with(answer: BatchStatus | Exception) -> tuple[Any, FakeWp]:
    wp = FakeWp()
    clock = SimpleNamespace(now=lambda: NOW, timestamp=lambda: 1767614400.0)
    services = SimpleNamespace(wp=wp, whatsapp=FakeClient(answer), clock=clock, site=SimpleNamespace(local=lambda t: t))
    return SimpleNamespace(services=services), wp


def variable_batch(**changes: Any) -> catalog.Batch:
    batch = catalog.Batch(product_id=10, inventory_only=False, handle="h1", items=["11", "12", "13"])
    for key, value in changes.items():
        setattr(batch, key, value)
    return batch


def finished(*errors: dict[str, Any], total: int | None = None) -> BatchStatus:
    return BatchStatus(handle="h1", status="finished", errors=list(errors),
                       errors_total_count=len(errors) if total is None else total)


def test_finished_without_errors_marks_every_item_synced() -> None:
    job, wp = job_with(finished())
    out = catalog.check(job, variable_batch(), polls_done=0)
    assert out["sync_status"] == "synced" and "_poll" not in out
    assert {pid: m["_wch_sync_status"] for pid, m in wp.meta.items()} == {
        10: "synced", 11: "synced", 12: "synced", 13: "synced"}
    assert wp.meta[10]["_wch_last_synced"] == "2026-01-05 12:00:00"


def test_errors_naming_an_item_fail_that_item_and_make_the_product_partial() -> None:
    job, wp = job_with(finished({"id": "12", "message": "image_link unreachable"}))
    out = catalog.check(job, variable_batch(rejected={"14": "price missing"}), polls_done=0)
    assert out["sync_status"] == "partial"
    assert wp.meta[12] == {"_wch_sync_status": "error", "_wch_last_synced": "2026-01-05 12:00:00",
                           "_wch_sync_message": "image_link unreachable"}
    assert wp.meta[11]["_wch_sync_status"] == "synced" and wp.meta[13]["_wch_sync_status"] == "synced"
    assert "12: image_link unreachable" in wp.meta[10]["_wch_sync_message"]
    assert "14: price missing" in wp.meta[10]["_wch_sync_message"]


def test_errors_counted_but_not_tied_to_an_item_leave_items_partial() -> None:
    # the submission's rejects come back in the count (the sandbox, and Meta): only the excess is unexplained
    job, wp = job_with(finished({"message": "price missing"}, total=1))
    catalog.check(job, variable_batch(rejected={"14": "price missing"}), polls_done=0)
    assert wp.meta[10]["_wch_sync_status"] == "partial" and wp.meta[11]["_wch_sync_status"] == "synced"
    job, wp = job_with(finished({"message": "something went wrong"}, total=2))
    catalog.check(job, variable_batch(), polls_done=0)
    assert wp.meta[10]["_wch_sync_status"] == "partial" and wp.meta[11]["_wch_sync_status"] == "partial"
    assert "2 error(s) not tied to an item: something went wrong" in wp.meta[10]["_wch_sync_message"]


def test_every_item_failing_is_an_error_and_left_out_items_make_it_partial() -> None:
    job, wp = job_with(finished({"id": "5", "message": "bad"}))
    batch = catalog.Batch(product_id=5, inventory_only=False, handle="h1", items=["5"])
    assert catalog.check(job, batch, polls_done=0)["sync_status"] == "error"
    job, wp = job_with(finished())
    out = catalog.check(job, variable_batch(excluded=["19: out of stock"]), polls_done=0)
    assert out["sync_status"] == "partial" and "left out: 19: out of stock" in wp.meta[10]["_wch_sync_message"]


def test_in_progress_or_a_retryable_status_error_schedules_the_next_check() -> None:
    job, wp = job_with(BatchStatus(handle="h1", status="in progress"))
    out = catalog.check(job, variable_batch(), polls_done=0)
    delay, args = out["_poll"]
    assert delay == 60 and args["batch_poll"] == 1 and args["batch_items"] == ["11", "12", "13"]
    assert out["sync_status"] == "pending" and wp.meta == {}  # the send already wrote 'pending'
    job, _ = job_with(ApiError("rate", category=wa.THROTTLE, code=80014))
    delay, args = catalog.check(job, variable_batch(), polls_done=3)["_poll"]
    assert (delay, args["batch_poll"]) == (catalog.POLL_DELAYS[3], 4)
    job, _ = job_with(ApiError("halted", category=wa.HALT))
    assert "_poll" in catalog.check(job, variable_batch(), polls_done=0)


def test_a_permanent_status_error_marks_the_product_error() -> None:
    job, wp = job_with(ApiError("Invalid handle", category=wa.FIX, code=100))
    with pytest.raises(PermanentError, match="status unavailable"):
        catalog.check(job, variable_batch(), polls_done=0)
    assert wp.meta[10]["_wch_sync_status"] == "error"


def test_gives_up_after_the_last_check() -> None:
    job, wp = job_with(BatchStatus(handle="h1", status="in progress"))
    with pytest.raises(PermanentError, match="not finished after 8 status checks"):
        catalog.check(job, variable_batch(), polls_done=len(catalog.POLL_DELAYS))
    assert wp.meta == {}  # the items stay 'pending'


def test_inventory_batch_stamps_the_stock_sync_time_only() -> None:
    job, wp = job_with(finished())
    batch = catalog.Batch(product_id=7, inventory_only=True, handle="h1", items=["7"])
    assert catalog.check(job, batch, polls_done=0)["sync_status"] == "synced"
    assert wp.meta == {7: {"_wch_stock_last_synced": "1767614400"}}


def test_batch_args_round_trip() -> None:
    batch = variable_batch(rejected={"14": "no price"}, excluded=["19: hidden"])
    again = catalog.Batch.from_args({**batch.args(), "batch_poll": 2}, 10, False)
    assert again == batch
