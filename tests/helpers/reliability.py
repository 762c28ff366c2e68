"""Shared harness of ``tests/reliability``: a seeded site on MariaDB under a test prefix, bulk-enqueued broadcast
batches and sync jobs, real worker subprocesses (``tests.helpers.reliability_worker``), and the end-of-drain
exactly-once checks (Action Scheduler rows, AS log lines, message ledger, requests the sandbox accepted)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from tests.helpers.reliability_worker import CATALOG, PHONE_ID  # noqa: F401 - re-exported
from wch_bridge import argscodec, phpser, schedules
from wch_bridge.app import ensure_bridge_tables
from wch_bridge.devtools.wp_seed import SiteSeeder
from wch_bridge.sandbox import Sandbox
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.ledger import MessageLedger
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.timeutil import Clock

REPO = Path(__file__).resolve().parents[2]
TOKEN = "EAAGrelTOKEN0123456789abcdefSECRETxyz"
BROADCAST = "wch_send_broadcast_batch"
SYNC = "wch_process_sync_job"
FINAL = ("complete", "failed")
NULL_SCHEDULE = 'O:28:"ActionScheduler_NullSchedule":0:{}'


def phone(n: int) -> str:
    return f"+1555{n:07d}"


@dataclass
class Site:
    dsn: str
    prefix: str
    store: ActionStore
    wp: WordPressData
    ledger: MessageLedger
    recipients: dict[str, list[str]] = field(default_factory=dict)  # campaign -> phones
    products: list[int] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ seeding
    @classmethod
    def create(cls, dsn: str, prefix: str) -> Site:
        engine = make_engine(dsn, pool_size=5)
        schema_mod.install(engine, prefix, with_wordpress=True)
        store = ActionStore(engine, prefix, clock=Clock())
        ensure_bridge_tables(store)
        wp = WordPressData(engine, prefix, clock=store.clock, site=store.site)
        SiteSeeder(wp).set_options(blogname="Acme Shoes", home="https://shop.example", siteurl="https://shop.example",
                                   permalink_structure="/%postname%/", woocommerce_currency="USD")
        return cls(dsn, prefix, store, wp, MessageLedger(engine, prefix, clock=store.clock))

    def add_products(self, n: int) -> None:
        seeder = SiteSeeder(self.wp)
        for i in range(n):
            sku = f"REL-{len(self.skus):04d}"
            self.products.append(seeder.add_product(f"Shoe {sku}", sku=sku, regular_price="19.99", stock=5 + i))
            self.skus.append(sku)

    def bulk_enqueue(self, rows: list[tuple[str, Any]], group: str = "wch") -> list[int]:
        """Insert due actions (hook, args) as ``as_enqueue_async_action`` stores them, in one transaction."""
        gid = self.store.group_ids([group], create=True)[group]
        now = self.store.now().replace(microsecond=0)
        sched = phpser.serialize_schedule(schedules.SimpleSchedule(int(now.replace(tzinfo=UTC).timestamp())))
        values = []
        for hook, args in rows:
            encoded, extended = argscodec.encode_args(args)
            values.append({"hook": hook, "status": "pending", "scheduled_date_gmt": now, "scheduled_date_local": now,
                           "schedule": sched, "group_id": gid, "args": encoded, "extended_args": extended,
                           "priority": 10})
        a = self.store.t.actions
        with self.store.engine.begin() as conn:
            first = conn.execute(select(text("COALESCE(MAX(action_id), 0)")).select_from(a)).scalar_one()
            for i in range(0, len(values), 500):
                conn.execute(insert(a), values[i:i + 500])
            ids = [int(r[0]) for r in conn.execute(select(a.c.action_id).where(a.c.action_id > first))]
        return ids

    def seed_drain(self, *, batches: int, batch_size: int, campaigns: int, syncs: int, products: int) -> list[int]:
        """``batches`` broadcast batches (distinct recipients, spread over ``campaigns``) and ``syncs`` product
        sync jobs over ``products`` products, interleaved."""
        self.add_products(products)
        rows: list[tuple[str, Any]] = []
        n = 0
        for b in range(batches):
            cid = f"rel{b % campaigns}"
            batch = [phone(n + i) for i in range(batch_size)]
            n += batch_size
            self.recipients.setdefault(cid, []).extend(batch)
            rows.append((BROADCAST, {"batch": batch, "batch_num": b // campaigns, "campaign_id": cid,
                                     "message": f"Sale {cid}: 20% off"}))
        for s in range(syncs):
            rows.append((SYNC, {"job_id": f"sync_rel_{s}", "sync_type": "product",
                                "entity_id": self.products[s % len(self.products)], "retry_count": 0}))
        # interleave so every worker sees both kinds all along the drain
        bro, syn = rows[:batches], rows[batches:]
        mixed: list[tuple[str, Any]] = []
        ratio = max(1, len(bro) // max(1, len(syn)))
        while bro or syn:
            mixed.extend(bro[:ratio])
            bro = bro[ratio:]
            if syn:
                mixed.append(syn.pop(0))
        return self.bulk_enqueue(mixed)

    # ------------------------------------------------------------------ reading
    def counts(self, hooks: tuple[str, ...] = (BROADCAST, SYNC)) -> dict[str, int]:
        return self.store.count_by_status(list(hooks))

    def unfinished(self, hooks: tuple[str, ...] = (BROADCAST, SYNC)) -> int:
        c = self.counts(hooks)
        return sum(v for k, v in c.items() if k not in FINAL)

    def wait_drained(self, timeout: float, procs: list[WorkerProc] | None = None,
                     hooks: tuple[str, ...] = (BROADCAST, SYNC)) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.unfinished(hooks) == 0:
                return
            for p in procs or []:
                assert p.proc.poll() is None, f"worker exited unexpectedly ({p.proc.returncode}):\n{p.tail()}"
            time.sleep(0.5)
        raise AssertionError(f"not drained after {timeout}s: {self.counts(hooks)}")

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(text(query.replace("{p}", self.prefix)), params))

    def dispose(self) -> None:
        schema_mod.drop_prefix(self.store.engine, self.prefix)
        self.store.engine.dispose()


# ---------------------------------------------------------------------------------------------- worker processes


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_worker(site_dsn: str, prefix: str, api: str, log_dir: Path, *extra: str,
                 env: dict[str, str] | None = None) -> WorkerProc:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"worker-{time.monotonic_ns()}.log"
    out = open(path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
    full_env = {**os.environ, "WCH_REL_TOKEN": TOKEN, **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.reliability_worker", site_dsn, prefix, api, *extra],
                            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    out.close()
    return WorkerProc(proc, path)


def wait_ready(w: WorkerProc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "ready " in w.tail(100000):
            return
        assert w.proc.poll() is None, f"worker died while starting:\n{w.tail()}"
        time.sleep(0.05)
    raise AssertionError(f"worker not ready:\n{w.tail()}")


def stop_all(workers: list[WorkerProc], timeout: float = 60) -> None:
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
            raise AssertionError(f"worker did not stop on SIGTERM:\n{w.tail()}") from None


# ---------------------------------------------------------------------------------------------- checks

_DIGITS = re.compile(r"\D")


@dataclass
class DrainReport:
    actions: int
    by_status: dict[str, int]
    recipients: int
    sent: int
    ambiguous: list[str]  # ledger rows a killed run left 'sending'/'unknown' (outcome unknown by design)
    delivered_ambiguous: int


def check_drain(site: Site, sandbox: Sandbox, action_ids: list[int], *, allow_failed: bool = False) -> DrainReport:
    """The exactly-once checks at the end of a drain (each an assertion):

    * every action is ``complete`` (or ``failed`` when allowed), none ``pending``/``in-progress``, and its
      Action Scheduler log holds the matching ``action complete|failed via WCH Bridge`` line;
    * no recipient received more than one accepted message at the sandbox, and nobody outside the batches got one;
    * every recipient has a ledger row; each ``sent`` row matches exactly one accepted request (same wamid);
      ``pending``/``retry``/``failed`` rows had no message accepted;
    * rows left ``sending``/``unknown`` (a run killed between "begin send" and "mark sent") are returned as
      ``ambiguous`` for the caller to bound: WhatsApp has no idempotency key, so those are at-most-once.
    Every broadcast batch's summary transient total_sent equals the ledger's sent rows of its campaign."""
    ids = sorted(action_ids)
    rows = site.sql("SELECT action_id, status FROM {p}actionscheduler_actions WHERE action_id IN :ids",
                    ids=tuple(ids)) if ids else []
    status = {int(a): s for a, s in rows}
    assert len(status) == len(ids)
    by_status = dict(Counter(status.values()))
    allowed = {"complete", "failed"} if allow_failed else {"complete"}
    bad = {a: s for a, s in status.items() if s not in allowed}
    if bad:
        sample = sorted(bad)[:5]
        why = site.sql("SELECT action_id, message FROM {p}actionscheduler_logs WHERE action_id IN :ids ORDER BY log_id",
                       ids=tuple(sample))
        raise AssertionError(f"actions not finished as expected: {dict(Counter(bad.values()))}; logs: {why}")
    # AS log line matching the final status (the latest complete/failed line of each action)
    last: dict[int, str] = {}
    for aid, msg in site.sql(
        "SELECT action_id, message FROM {p}actionscheduler_logs WHERE action_id IN :ids AND "
        "(message = 'action complete via WCH Bridge' OR message LIKE 'action failed via WCH Bridge:%') "
        "ORDER BY log_id", ids=tuple(ids)):
        last[int(aid)] = msg
    missing = [a for a in ids if a not in last]
    assert not missing, f"{len(missing)} actions without a complete/failed log line, e.g. {missing[:5]}"
    wrong = [a for a in ids if (status[a] == "complete") != (last[a] == "action complete via WCH Bridge")]
    assert not wrong, f"log line does not match the status for {wrong[:5]}"

    # sandbox vs ledger
    accepted = [r for r in sandbox.requests("/messages") if r["status"] == 200 and isinstance(r["body"], dict)
                and r["body"].get("status") != "read"]
    per_phone: dict[str, list[dict[str, Any]]] = {}
    for r in accepted:
        per_phone.setdefault(_DIGITS.sub("", str(r["body"].get("to"))), []).append(r)
    dupes = {p: len(v) for p, v in per_phone.items() if len(v) > 1}
    assert not dupes, f"recipients that received more than one message: {list(dupes.items())[:10]}"
    expected = {(cid, _DIGITS.sub("", p)) for cid, phones in site.recipients.items() for p in phones}
    expected_phones = {p for _c, p in expected}
    strangers = set(per_phone) - expected_phones
    assert not strangers, f"messages to numbers outside the batches: {sorted(strangers)[:5]}"
    ledger_rows = {
        (str(cid), _DIGITS.sub("", str(rcpt))): (st, wamid)
        for cid, rcpt, st, wamid in site.sql("SELECT campaign_id, recipient, status, wa_message_id "
                                             "FROM {p}wch_bridge_messages WHERE campaign_id IS NOT NULL")
    }
    no_row = expected - set(ledger_rows)
    assert not no_row, f"{len(no_row)} recipients have no ledger row, e.g. {sorted(no_row)[:5]}"
    sent = 0
    ambiguous: list[str] = []
    delivered_ambiguous = 0
    for (cid, p), (st, wamid) in ledger_rows.items():
        got = per_phone.get(p, [])
        if st == "sent":
            sent += 1
            assert len(got) == 1, f"ledger says sent to {p} ({cid}) but the sandbox accepted {len(got)}"
            assert got[0].get("wamid") == wamid, f"ledger wamid for {p} differs from the one the sandbox issued"
        elif st in ("sending", "unknown"):
            ambiguous.append(f"{cid}:{p}:{st}:{len(got)}")
            delivered_ambiguous += len(got)
        else:
            assert not got, f"ledger row {cid}:{p} is {st!r} but the sandbox accepted a message"
    wamids = Counter(w for (st, w) in ledger_rows.values() if st == "sent")
    assert all(n == 1 for n in wamids.values()), "a wamid recorded twice in the ledger"
    # campaign summaries agree with the ledger
    for cid in site.recipients:
        summary = site.wp.get_transient(f"wch_broadcast_summary_{cid}")
        counts = site.ledger.campaign_counts(cid)
        assert isinstance(summary, dict), f"no summary transient for campaign {cid}"
        assert summary["total_sent"] <= counts.get("sent", 0)
    return DrainReport(len(ids), by_status, len(expected), sent, ambiguous, delivered_ambiguous)


def check_catalog(site: Site, sandbox: Sandbox) -> None:
    items = sandbox.catalog(CATALOG)
    missing = [str(p) for p in site.products if str(p) not in items]  # retailer_id = (string) product id
    assert not missing, f"products missing from the catalog: {missing[:5]}"


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str)[:2000]


# ---------------------------------------------------------------------------------------------- in-process runs


def run_settings(site: Site, sandbox: Sandbox, **changes: Any) -> Any:
    from wch_bridge.settings import Settings

    base = Settings(dsn=site.dsn, prefix=site.prefix, once=True, poll_interval=0.05, concurrency=4, grace_period=5,
                    hooks=(BROADCAST, SYNC), whatsapp_api_base=sandbox.url, whatsapp_phone_number_id=PHONE_ID,
                    whatsapp_catalog_id=CATALOG, whatsapp_token=TOKEN, whatsapp_timeout=5, messages_per_second=500)
    return base.with_(**changes)


def run_once(site: Site, sandbox: Sandbox, **changes: Any) -> Any:
    """One ``wch-bridge run --once`` in this process with the real wiring; returns the Worker."""
    from wch_bridge.app import build_worker

    worker = build_worker(run_settings(site, sandbox, **changes), site.store)
    assert worker.run() == 0
    return worker


def accepted_to(sandbox: Sandbox, number: str) -> int:
    return len(sandbox.messages_to(number))
