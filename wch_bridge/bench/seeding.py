"""The bench's actions: a seeded backlog (``seed``: no-op rows or broadcast batches, bulk-inserted) or a live
trickle (``trickle``: one due action every 1/rate s)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.bench.config import BENCH_GROUP, BENCH_HOOK, BROADCAST_HOOK, BenchConfig
from wch_bridge.bench.measure import _ts


def broadcast_rows(cfg: BenchConfig, campaign_id: str, due: datetime) -> Iterator[Any]:
    from wch_bridge.store.queue.actions import NewRow

    schedule = phpser.serialize_schedule(schedules.SimpleSchedule(int(_ts(due))))
    per = max(1, cfg.recipients_per_batch)
    n_batches = -(-cfg.actions // per)
    serial = 0
    for b in range(n_batches):
        phones = []
        for _ in range(min(per, cfg.actions - b * per)):
            serial += 1
            phones.append(f"+1555{serial:07d}")
        payload = {
            "batch": phones,
            "batch_num": b,
            "total_batches": n_batches,
            "campaign_id": campaign_id,
            "message": f"Bench broadcast {campaign_id}: hello",
        }
        args, extended = argscodec.encode_args(payload)
        yield NewRow(
            hook=BROADCAST_HOOK,
            scheduled_date_gmt=due,
            schedule=schedule,
            args=args,
            extended_args=extended,
            group=BENCH_GROUP,
        )


def seed(store: Any, cfg: BenchConfig, campaign_id: str) -> tuple[int, float]:
    """The backlog: ``cfg.actions`` due actions (broadcast: recipients in batches). Returns (rows, seconds)."""
    from wch_bridge.devtools import bulk

    t0 = time.monotonic()
    due = store.now() - timedelta(seconds=1)
    if cfg.handler == "broadcast":
        res = bulk.insert_actions(store, broadcast_rows(cfg, campaign_id, due), created_log=True, chunk=500)
    elif bulk.has_sequence_engine(store):
        res = bulk.seed_due_sequence(
            store, cfg.actions, BENCH_HOOK, group=BENCH_GROUP, scheduled_gmt=due, created_log=True
        )
    else:
        from wch_bridge.store.queue.actions import NewRow

        sched = phpser.serialize_schedule(schedules.NullSchedule())
        rows = (
            NewRow(hook=BENCH_HOOK, scheduled_date_gmt=due, schedule=sched, args=f"[{i}]", group=BENCH_GROUP)
            for i in range(cfg.actions)
        )
        res = bulk.insert_actions(store, rows, created_log=True)
    # Fresh statistics, as a live table has them: right after a bulk load InnoDB's are stale and MariaDB picks
    # status_scheduled_date_gmt + filesort for the due query (all pending rows read per poll) until its
    # background recalculation runs, which would make the first seconds of every drain unrepresentative.
    bulk.analyze(store)
    return res.count, time.monotonic() - t0


def trickle(store: Any, cfg: BenchConfig, stop: Callable[[], bool]) -> int:
    """Insert ``cfg.actions`` actions live, one every 1/rate s, each due the instant it is inserted (scheduled at
    a whole second and inserted right after that second starts, so lag = start - scheduled is exact)."""
    from wch_bridge.store.queue.actions import NewRow

    interval = 1.0 / cfg.rate
    next_at = float(int(time.time()) + 1)
    n = 0
    while n < cfg.actions and not stop():
        delay = next_at - time.time()
        if delay > 0:
            time.sleep(delay)
        whole = int(time.time())
        due = datetime.fromtimestamp(whole, UTC).replace(tzinfo=None)
        sched = phpser.serialize_schedule(schedules.SimpleSchedule(whole))
        store.insert_action(
            NewRow(hook=BENCH_HOOK, scheduled_date_gmt=due, schedule=sched, args=f"[{n}]", group=BENCH_GROUP)
        )
        n += 1
        next_at += interval
    return n
