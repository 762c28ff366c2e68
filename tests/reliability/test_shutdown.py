"""Shutdown: SIGTERM to a real worker process in the middle of a broadcast batch (30 recipients, sends throttled
to 5/s so the batch takes ~6 s). The worker stops between recipients, records every message it sent in the ledger,
puts the action back to ``pending`` with a log line saying how far it got, and exits 0. A clean re-run sends only the
rest: each recipient has exactly one message at the sandbox and the action completes saying how many were sent
earlier."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.reliability import (
    BROADCAST,
    TOKEN,
    Site,
    accepted_to,
    phone,
    run_once,
    start_worker,
    wait_ready,
)
from wch_bridge.sandbox import Sandbox

pytestmark = pytest.mark.mysql

N = 30


@pytest.fixture
def site(mysql_url: str, prefix: str) -> Iterator[Site]:
    s = Site.create(mysql_url, prefix)
    yield s
    s.dispose()


def test_sigterm_mid_batch_stops_between_recipients_and_rerun_sends_only_the_rest(
        site: Site, mysql_url: str, tmp_path: Path) -> None:
    batch = [phone(i) for i in range(N)]
    site.recipients["bye"] = batch
    (aid,) = site.bulk_enqueue([(BROADCAST, {"batch": batch, "batch_num": 0, "campaign_id": "bye",
                                             "message": "Last chance"})])
    with Sandbox(token=TOKEN) as sandbox:
        w = start_worker(mysql_url, site.prefix, sandbox.url, tmp_path / "logs", "--mps", "5", "--grace", "20")
        try:
            wait_ready(w)
            deadline = time.monotonic() + 60
            while len(sandbox.requests("/messages")) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            w.proc.send_signal(signal.SIGTERM)
            assert w.proc.wait(timeout=40) == 0, w.tail()
        finally:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        sent_first = {p for p in batch if accepted_to(sandbox, p) == 1}
        assert 5 <= len(sent_first) < N, f"{len(sent_first)} sent before the stop"
        assert site.store.get_status(aid) == "pending"
        rows = {p: site.ledger.get(f"broadcast:bye:{p}") for p in batch}
        assert {p for p, r in rows.items() if r is not None and r.status == "sent"} == sent_first
        assert not [p for p, r in rows.items() if r is not None and r.status not in ("sent", "pending")]
        released = [m for (m,) in site.sql("SELECT message FROM {p}actionscheduler_logs WHERE action_id = :a", a=aid)
                    if m.startswith("action released via WCH Bridge")]
        assert len(released) == 1 and f"paused after {len(sent_first)} of {N} recipients" in released[0], released

        run_once(site, sandbox)
        assert site.store.get_status(aid) == "complete"
        for p in batch:
            assert accepted_to(sandbox, p) == 1, p
        logs = [m for (m,) in site.sql("SELECT message FROM {p}actionscheduler_logs WHERE action_id = :a", a=aid)]
        assert any(f"{N} sent ({len(sent_first)} already sent earlier)" in m for m in logs), logs
