"""``--metrics-port``: after a short worker run the endpoint is scraped over HTTP and parsed with prometheus-client's
own parser; ``/healthz`` and ``/readyz`` answer. On SQLite and MariaDB (the ``store`` fixture)."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.app import build_worker, start_metrics
from wch_bridge.errors import PermanentError
from wch_bridge.handlers import Job
from wch_bridge.health import judge, live_worker_seconds
from wch_bridge.models import Outcome
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore
from wch_bridge.store.ledger import MessageLedger, ledger_key
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.store.reports.health_facts import read_health_facts


def enqueue(store: ActionStore, hook: str, args: Any, delay: int = 0) -> int:
    enc, ext = argscodec.encode_args(args)
    when = store.now() + timedelta(seconds=delay)
    row = NewRow(hook=hook, scheduled_date_gmt=when, args=enc, extended_args=ext, group="wch",
                 schedule=phpser.serialize_schedule(schedules.SimpleSchedule(int(when.replace(tzinfo=UTC).timestamp()))))
    return store.insert_action(row)


def ok(job: Job) -> Outcome:
    return Outcome(message="fine")


def boom(job: Job) -> Outcome:
    raise PermanentError("nope")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - local test server
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_endpoint_after_a_short_run(store: ActionStore) -> None:
    settings = Settings(dsn="sqlite://", prefix=store.prefix, once=True, poll_interval=0.05, concurrency=2,
                        metrics_port=0, metrics_host="127.0.0.1")
    for _ in range(3):
        enqueue(store, "wch_ok", {"n": 1}, delay=-120)
    enqueue(store, "wch_boom", {"n": 2}, delay=-30)
    enqueue(store, "wch_later", [], delay=3600)  # pending, not due: depth but not past-due
    enqueue(store, "wch_stuck", [], delay=-600)  # due, but no worker serves it
    worker = build_worker(settings, store, registry={"wch_ok": ok, "wch_boom": boom})
    ledger = MessageLedger(store.engine, store.prefix, clock=store.clock)
    for phone, code in (("+15550000001", None), ("+15550000002", 131026), ("+15550000003", 131026)):
        key = ledger_key("broadcast", "c1", phone)
        ledger.claim(key, recipient=phone, kind="text", payload={}, action_id=1, hook="wch_send_broadcast_batch",
                     campaign_id="c1")
        ledger.begin_send(key)
        if code is None:
            ledger.mark_sent(key, "wamid.1")
        else:
            ledger.mark_failed(key, code, "undeliverable", retryable=False)
    assert worker.run() == 0
    server: Any = start_metrics(worker)
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, body = get(base + "/metrics")
        assert status == 200
        m = samples(body)
        assert m[("wch_bridge_actions_total", (("hook", "wch_ok"), ("outcome", "complete")))] == 3
        assert m[("wch_bridge_actions_total", (("hook", "wch_boom"), ("outcome", "failed")))] == 1
        assert m[("wch_bridge_action_duration_seconds_count", (("hook", "wch_ok"),))] == 3
        lag_count = m[("wch_bridge_pickup_lag_seconds_count", (("hook", "wch_ok"),))]
        assert lag_count == 3
        assert m[("wch_bridge_pickup_lag_seconds_bucket", (("hook", "wch_ok"), ("le", "60.0")))] == 0  # ~120 s late
        assert m[("wch_bridge_pickup_lag_seconds_bucket", (("hook", "wch_ok"), ("le", "300.0")))] == 3
        assert m[("wch_bridge_store_up", ())] == 1
        assert m[("wch_bridge_queue_depth", (("hook", "wch_later"), ("status", "pending")))] == 1
        assert m[("wch_bridge_queue_past_due", (("hook", "wch_later"),))] == 0
        assert m[("wch_bridge_queue_past_due", (("hook", "wch_stuck"),))] == 1
        assert m[("wch_bridge_queue_oldest_past_due_age_seconds", (("hook", "wch_stuck"),))] >= 599
        assert ("wch_bridge_queue_depth", (("hook", "wch_ok"), ("status", "pending"))) not in m
        assert m[("wch_bridge_messages", (("error_code", ""), ("status", "sent")))] == 1
        assert m[("wch_bridge_messages", (("error_code", "131026"), ("status", "failed")))] == 2
        assert 0 <= m[("wch_bridge_worker_heartbeat_age_seconds", ())] < 60
        assert m[("wch_bridge_worker_loop_age_seconds", ())] >= 0
        # the verdict status and the report give (wch_stuck: pending, no one runs it -> critical); the run stopped
        verdict = judge(read_health_facts(store, settings.groups, store.now(), live_worker_seconds(settings)))
        assert m[("wch_bridge_health", ())] == verdict.exit_code == 2
        assert m[("wch_bridge_live_workers", ())] == 0

        code, body = get(base + "/healthz")
        assert code == 200 and "queue health critical" in body, body
        assert get(base + "/readyz") == (200, "ok: ready\n")
        worker.observer.stopped()  # type: ignore[attr-defined]
        assert get(base + "/healthz")[0] == 503
        assert get(base + "/nothing")[0] == 404
    finally:
        server.stop()


def test_readyz_reports_missing_tables(store: ActionStore) -> None:
    from wch_bridge.store import schema as schema_mod
    from wch_bridge.store.reports import gauges

    other = ActionStore(store.engine, store.prefix + "x_", clock=store.clock)  # nothing installed there
    try:
        ok_, reason = gauges.readiness(other)
        assert not ok_ and f"{other.prefix}actionscheduler_actions" in reason
        schema_mod.install(store.engine, other.prefix)
        build_worker(Settings(dsn="sqlite://", prefix=other.prefix), other, registry={})  # adds the bridge tables
        assert gauges.readiness(other) == (True, "ready")
    finally:
        schema_mod.drop_prefix(store.engine, other.prefix)
