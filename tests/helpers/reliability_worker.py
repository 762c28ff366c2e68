"""A real bridge worker process for the reliability scenarios (``tests/reliability``).

It builds the worker exactly as ``wch-bridge run`` does (``wch_bridge.app.build_worker``: real handlers, real
WhatsApp client and ApiGate, message ledger, heartbeats, orphan recovery), with short heartbeat/orphan timings.

Usage: python -m tests.helpers.reliability_worker DSN PREFIX API_BASE [--hooks a,b] [--concurrency N] ...
The access token comes from the environment (WCH_REL_TOKEN), never from argv. Logs go to stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from wch_bridge.app import build_worker
from wch_bridge.settings import Settings

PHONE_ID = "106540352242922"
CATALOG = "146265584024623"
DEFAULT_HOOKS = "wch_send_broadcast_batch,wch_process_sync_job"


def settings_from(argv: list[str]) -> Settings:
    p = argparse.ArgumentParser()
    p.add_argument("dsn")
    p.add_argument("prefix")
    p.add_argument("api_base")
    p.add_argument("--hooks", default=DEFAULT_HOOKS)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--poll-interval", type=float, default=0.2)
    p.add_argument("--heartbeat-interval", type=float, default=1.0)
    p.add_argument("--orphan-timeout", type=float, default=5.0)
    p.add_argument("--grace", type=float, default=10.0)
    p.add_argument("--mps", type=float, default=500.0)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--once", action="store_true")
    ns = p.parse_args(argv)
    return Settings(
        dsn=ns.dsn, prefix=ns.prefix, hooks=tuple(h for h in ns.hooks.split(",") if h), once=ns.once,
        concurrency=ns.concurrency, batch_size=ns.batch_size, poll_interval=ns.poll_interval,
        heartbeat_interval=ns.heartbeat_interval, orphan_timeout=ns.orphan_timeout, grace_period=ns.grace,
        whatsapp_api_base=ns.api_base, whatsapp_phone_number_id=PHONE_ID, whatsapp_catalog_id=CATALOG,
        whatsapp_token=os.environ.get("WCH_REL_TOKEN") or None, whatsapp_timeout=ns.timeout,
        messages_per_second=ns.mps,
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    settings = settings_from(argv)
    worker = build_worker(settings)
    worker.install_signal_handlers()
    print(f"ready {worker.worker_id}", flush=True)
    code = worker.run()
    sys.stdout.flush()
    sys.stderr.flush()
    if worker.abandoned_threads:
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
