"""``run`` says what a long action is doing (issue 16.8): one info line when an action is still running after
``LONG_RUNNING_NOTE`` seconds, and a broadcast batch's progress every ``PROGRESS_EVERY`` seconds."""

from __future__ import annotations

import logging
import time

import pytest
from hooks_support import Site

from wch_bridge.handlers import broadcast
from wch_bridge.handlers.base import Job
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore
from wch_bridge.worker import Worker, liveness

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox, site

RECIPIENTS = [f"+1555000{i:04d}" for i in range(8)]


def test_a_batch_logs_its_progress(site: Site, monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(broadcast, "PROGRESS_EVERY", 0.05)
    monkeypatch.setattr(broadcast, "MAX_THREADS", 1)  # one recipient after the other
    site.sandbox.configure(latency_ms=80)
    aid = site.enqueue("wch_send_broadcast_batch", {"batch": RECIPIENTS, "batch_num": 3, "campaign_id": "c9",
                                                    "message": "hello"})
    with caplog.at_level(logging.INFO, logger="wch_bridge"):
        site.run()
    assert site.status(aid) == "complete"
    lines = [r.getMessage() for r in caplog.records if "recipients done" in r.getMessage()]
    assert lines and all(r.levelno == logging.INFO for r in caplog.records if "recipients done" in r.getMessage())
    assert lines[0].startswith("broadcast c9 batch 3: ") and f"of {len(RECIPIENTS)} recipients done" in lines[0]
    done = [int(line.split(": ")[1].split(" ")[0]) for line in lines]
    assert done == sorted(done) and done[-1] < len(RECIPIENTS)  # the batch's own summary line says the end


def test_a_long_action_is_noted_once(store: ActionStore, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    from tests.integration.test_worker import add  # noqa: PLC0415 - the worker tests' seeding helper

    monkeypatch.setattr(liveness, "LONG_RUNNING_NOTE", 0.2)
    slow = add(store, "wch_slow")
    quick = add(store, "wch_quick")

    def handler(job: Job) -> None:
        time.sleep(0.8 if job.action.hook == "wch_slow" else 0)

    settings = Settings(dsn="sqlite://", prefix=store.prefix, once=True, poll_interval=0.05, concurrency=2)
    with caplog.at_level(logging.INFO, logger="wch_bridge.worker"):
        assert Worker(store, {"wch_slow": handler, "wch_quick": handler}, settings).run() == 0
    notes = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(notes) == 1, notes
    assert notes[0].startswith(f"action {slow} (wch_slow) still running after ") and notes[0].endswith("s")
    assert not any(f"action {quick} " in n for n in notes)
