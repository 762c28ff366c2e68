"""A worker process for tests: the real Worker with a test handler that records each run in ``{prefix}test_runs``.

Usage: python -m tests.helpers.run_worker DSN PREFIX HOOK [--sleep-ms N] [--once] [--concurrency N]
[--sample-locks-ms N]

``--sample-locks-ms``: sample the row locks of the worker's own connections (``tests.helpers.lock_sampler``) and
print the figures at exit as one JSON line ``{"lock_sample": {...}}`` on stdout."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from sqlalchemy import text

from tests.helpers.lock_sampler import LockSampler
from wch_bridge.handlers.base import Job
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.worker import Worker


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dsn")
    p.add_argument("prefix")
    p.add_argument("hook")
    p.add_argument("--sleep-ms", type=int, default=0)
    p.add_argument("--once", action="store_true")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--grace", type=float, default=30.0)
    p.add_argument("--sample-locks-ms", type=float, default=0.0)
    ns = p.parse_args(argv)
    engine = make_engine(ns.dsn, pool_size=max(5, ns.concurrency + 2))  # as the app sizes it (app.py)
    sampler = LockSampler(ns.dsn, engine, ns.sample_locks_ms) if ns.sample_locks_ms else None
    if sampler:
        sampler.start()  # before the store's first connection, so every connection is known
    store = ActionStore(engine, ns.prefix)
    runs = f"{ns.prefix}test_runs"

    def handler(job: Job) -> None:
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {runs} (action_id, runner) VALUES (:a, :r)"),  # noqa: S608
                         {"a": job.action.action_id, "r": f"bridge-{os.getpid()}"})
        if ns.sleep_ms:
            time.sleep(ns.sleep_ms / 1000)

    settings = Settings(dsn=ns.dsn, prefix=ns.prefix, once=ns.once, concurrency=ns.concurrency, batch_size=20,
                        poll_interval=0.2, grace_period=ns.grace)
    worker = Worker(store, {ns.hook: handler}, settings)
    worker.install_signal_handlers()
    print("ready", flush=True)
    code = worker.run()
    if sampler:
        print(json.dumps({"lock_sample": sampler.stop()}), flush=True)
    if worker.abandoned_threads:
        sys.stdout.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
