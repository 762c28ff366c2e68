"""``wch-bridge demo``: the whole bridge on a bare machine, in seconds.

An embedded SQLite database (or ``--dsn`` MariaDB/MySQL under the ``demo_`` prefix) gets the Action Scheduler,
WordPress/WooCommerce and plugin tables; a believable shop is seeded the way WordPress stores it (``demo.shop``):
products with prices and stock, orders, carts in every state, the plugin's ``wch_settings``, and the actions the
plugin would have queued: catalog and inventory sync jobs, order notifications, a text broadcast split into
batches, an admin-screen template campaign (the plugin's message shape, personalised from customer profiles),
abandoned-cart reminders and the recurring cart cleanup. The sandbox WhatsApp API runs on a free local
port with a few scripted faults (a catalog outage that heals, an order whose notification keeps failing, a few
undeliverable numbers, customers outside the 24-hour window). The real worker (``app.build_worker``) then runs
until everything due has run; the retry delays of the plugin's rules (60/300/900 s) pass quickly because the
demo's clock (:class:`DemoClock`) starts a few hours in the past, runs at real speed and jumps over idle waits to the
next due action, never past real time: the rules are not changed, pickup lags are real seconds and no timestamp is
written in the future (so ``status`` and ``report`` read the demo database as they would a site's).
Finally the HTML report is written. Layer 3: no click here (the CLI renders the progress bar)."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from wch_bridge import argscodec
from wch_bridge import hooks as hook_table
from wch_bridge.app import build_services, build_worker, open_store, report_data
from wch_bridge.demo.shop import ADMIN_CAMPAIGN, ADMIN_TEMPLATE, CAMPAIGN, DEMO_MARKER, DemoShop
from wch_bridge.errors import ConfigError
from wch_bridge.metrics import chain_ticks
from wch_bridge.report import render_html, write_atomic
from wch_bridge.sandbox import Sandbox
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore
from wch_bridge.store import operator_queries as queries
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.queue import new_rows
from wch_bridge.store.reports import gauges as store_gauges
from wch_bridge.timeutil import Clock
from wch_bridge.worker import Worker

log = logging.getLogger("wch_bridge.demo")

CLOCK_LEAD = 6 * 3600.0  # the demo clock starts this far in the past: room for every retry delay it jumps over
SQLITE_PREFIX = "wp_"
MYSQL_PREFIX = "demo_"
TIMEOUT = 90.0  # real seconds: the demo gives up waiting after this


@dataclass
class DemoResult:
    out_dir: Path
    dsn: str
    prefix: str
    report: Path
    seconds: float
    clock_seconds: float
    lines: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[int, int], None]  # (actions finished, actions known so far)


class DemoClock(Clock):
    """Real speed, started ``lead`` seconds in the past; :meth:`jump_to` skips idle time, never past real time."""

    def __init__(self, lead: float = CLOCK_LEAD) -> None:
        super().__init__(1.0, -lead)
        self.skipped = 0.0

    def behind(self) -> float:
        """Seconds the demo clock is behind real time (>= 0)."""
        return max(0.0, time.time() - self.timestamp())

    def jump_to(self, when: datetime) -> None:
        target = min(when.replace(tzinfo=UTC).timestamp(), time.time())
        delta = target - self.timestamp()
        if delta > 0:
            self.advance(delta)
            self.skipped += delta


class Demo:
    def __init__(self, out_dir: str | Path = "demo-out", *, actions: int = 60, dsn: str | None = None,
                 clock: DemoClock | None = None, progress: Progress | None = None, prefix: str | None = None) -> None:
        if actions < 20:
            raise ConfigError(f"actions: at least 20 for a meaningful demo, got {actions}")
        self.out = Path(out_dir)
        self.actions = actions
        self.external = dsn is not None
        self.prefix = prefix or (MYSQL_PREFIX if self.external else SQLITE_PREFIX)
        self.db_path = self.out / "demo.sqlite"
        self.dsn = dsn or f"sqlite:///{self.db_path.resolve()}"
        self.clock = clock or DemoClock()
        self.progress = progress
        self.token = "demo-" + secrets.token_hex(16)
        self.seeded = 0
        self.seeded_by_hook: dict[str, int] = {}
        self.planned_retries = 0

    # ------------------------------------------------------------------ database
    def prepare_database(self) -> ActionStore:
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.external:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.db_path) + suffix).unlink(missing_ok=True)
        settings = Settings(dsn=self.dsn, prefix=self.prefix)
        store = open_store(settings, clock=self.clock)
        if self.external:
            if schema_mod.looks_live(store.engine, self.prefix) and not self._is_demo(store):
                raise ConfigError(f"dsn: the {self.prefix} tables there hold a site or queued actions; the demo "
                                  f"only replaces its own scratch tables (drop them yourself if they are a demo's)")
            schema_mod.drop_prefix(store.engine, self.prefix)
        schema_mod.install(store.engine, self.prefix, with_wordpress=True)
        return store

    def _is_demo(self, store: ActionStore) -> bool:
        """Tables a previous demo wrote carry the option ``wch_bridge_demo``: they may be replaced."""
        try:
            return store.get_option(DEMO_MARKER) is not None
        except Exception:  # noqa: BLE001 - no options table: not ours
            return False

    # ------------------------------------------------------------------ seeding
    def enqueue(self, store: ActionStore, hook: str, args: Any, *, delay: float = 0.0, priority: int = 10) -> int:
        """``as_schedule_single_action(now + delay, hook, args, 'wch')`` as the plugin stores it."""
        encoded, extended = argscodec.encode_args(args)
        when = store.now() + timedelta(seconds=delay)
        row = new_rows.single_row(hook, when, args=encoded, extended_args=extended, group="wch", priority=priority)
        self.seeded += 1
        self.seeded_by_hook[hook] = self.seeded_by_hook.get(hook, 0) + 1
        return store.insert_action(row)

    def seed(self, store: ActionStore, sandbox: Sandbox) -> dict[str, Any]:
        """The shop, the sandbox's faults and the queue the plugin would have built (``demo.shop``)."""
        shop = DemoShop(store, sandbox, partial(self.enqueue, store), self.actions)
        seeded = shop.build()
        self.planned_retries = shop.planned_retries
        return seeded

    # ------------------------------------------------------------------ running
    def settings(self, sandbox: Sandbox) -> Settings:
        return Settings(
            dsn=self.dsn, prefix=self.prefix, poll_interval=0.1, concurrency=8,
            batch_size=25, grace_period=5, heartbeat_interval=200, orphan_timeout=3600, touch_interval=3600,
            whatsapp_api_base=sandbox.url, whatsapp_token=self.token, whatsapp_timeout=10, messages_per_second=400,
        )

    def remaining(self, store: ActionStore, hooks: list[str]) -> int:
        counts = store.count_by_status([h for h in hooks if h != hook_table.CART_CLEANUP])
        return counts.get("pending", 0) + counts.get("in-progress", 0)

    def skip_idle_time(self, w: Worker, store: ActionStore, hooks: list[str], group_ids: list[int]) -> None:
        """Nothing running: jump the clock to the next due action (a retry delay passes at once). When only the
        recurring cleanup is left, keep jumping from one of its runs to the next until the clock has caught up with
        real time (each run starts when it is due: a jump straight to real time made the last one start hours
        late, a pickup lag of hours in the report), then stop."""
        nxt = store.next_due_at(hooks, group_ids)
        now = self.clock.now()
        if nxt is not None and nxt <= now:
            return  # due now: the worker takes it on its next poll
        only_cleanup_left = self.remaining(store, hooks) == 0
        if only_cleanup_left and self.clock.behind() <= 1:
            w.request_stop()
        elif nxt is not None or only_cleanup_left:
            self.clock.jump_to(nxt or datetime.now(UTC).replace(tzinfo=None))  # never past real time

    def run(self) -> DemoResult:
        t0 = time.monotonic()
        store = self.prepare_database()
        with Sandbox(token=self.token) as sandbox:
            shop = self.seed(store, sandbox)
            settings = self.settings(sandbox)
            services = build_services(settings, store)
            worker = build_worker(settings, store, services=services)
            hooks = worker.hooks
            group_ids = list(store.group_ids(settings.groups, create=True).values())
            last = [0.0]

            def tick(w: Worker) -> None:
                if time.monotonic() - last[0] < 0.15:
                    return
                last[0] = time.monotonic()
                done = w.stats.completed + w.stats.failed
                if self.progress:
                    self.progress(done, max(done + self.remaining(store, hooks), self.seeded + self.planned_retries))
                if not w.inflight_ids:
                    self.skip_idle_time(w, store, hooks, group_ids)
                if time.monotonic() - t0 > TIMEOUT:
                    log.warning("demo: giving up after %.0f s with actions still pending", TIMEOUT)
                    w.request_stop()

            worker.on_tick = chain_ticks(worker.on_tick, tick)
            worker.run()
            if self.progress:
                done = worker.stats.completed + worker.stats.failed
                self.progress(done, done)
            clock_seconds = self.clock.skipped
        report = self.out / "report.html"
        write_atomic(report, render_html(report_data(settings, store)))
        counts = self.count(store, settings)
        counts["shop"] = shop
        result = DemoResult(out_dir=self.out, dsn=self.dsn, prefix=self.prefix, report=report,
                            seconds=time.monotonic() - t0, clock_seconds=clock_seconds, counts=counts)
        result.lines = self.summary(result)
        store.engine.dispose()
        return result

    # ------------------------------------------------------------------ what happened (read back from the database)
    def count(self, store: ActionStore, settings: Settings) -> dict[str, Any]:
        snap = queries.status_snapshot(store, settings.groups, store.now())
        by_hook = snap.counts
        total = {s: sum(c.get(s, 0) for c in by_hook.values()) for s in ("complete", "failed", "pending", "in-progress")}
        ledger: dict[str, int] = {}
        codes: dict[str, int] = {}
        for status, code, n in store_gauges.ledger_counts(store):
            ledger[status] = ledger.get(status, 0) + n
            if status == "failed" and code is not None:
                codes[str(code)] = codes.get(str(code), 0) + n
        data = report_data(settings, store)
        campaigns = (data.get("campaigns") or {}).get("campaigns") or []
        campaign = next((x for x in campaigns if x.get("campaign_id") == CAMPAIGN), {})
        admin = next((x for x in campaigns if str(x.get("campaign_id")) == ADMIN_CAMPAIGN), {})
        kinds = ((data.get("campaigns") or {}).get("messages_in_window") or {}).get("by_kind") or []
        templates = sum(int(k["count"]) for k in kinds if k.get("kind") == "template" and k.get("status") == "sent")
        templates -= int(admin.get("sent") or 0)  # every admin-campaign message is a template: the rest are carts
        products = ((data.get("catalog") or {}).get("products") or {})
        gids = queries.served_group_ids(store, settings.groups)
        failed_rows, _more = queries.list_actions(store, gids, statuses=["failed"], hook=None, since=None, limit=1,
                                                  offset=0)
        return {"first_failed_id": failed_rows[0].action_id if failed_rows else None,
                "by_hook": by_hook, "actions": total, "ledger": ledger, "failed_codes": codes,
                "carts": (data.get("carts") or {}), "sync": by_hook.get(hook_table.SYNC_JOB, {}),
                "campaign": campaign, "admin_campaign": admin, "templates_sent": templates,
                "products_synced": products.get("synced", 0),
                "cleanup_pending": snap.cleanup_pending is not None}

    def summary(self, r: DemoResult) -> list[str]:
        c = r.counts
        a, shop, camp, carts, sync = c["actions"], c["shop"], c["campaign"], c["carts"], c["sync"]
        adm = c["admin_campaign"]
        ran = a["complete"] + a["failed"]
        codes = ", ".join(f"{e['error_code']} x{e['count']}" for e in camp.get("errors") or []) or "none"
        left = a["pending"] - (1 if c["cleanup_pending"] else 0)
        return [
            f"actions: {ran} run over {len(c['by_hook'])} hooks, {a['complete']} complete and {a['failed']} failed; "
            f"{left} left pending (the hourly cart cleanup is scheduled again)",
            f"catalog sync: {c['products_synced']} products in the WhatsApp catalog, {sync.get('complete', 0)} sync "
            f"jobs complete, {self.retries(c)} retries after 60/300/900 s, {sync.get('failed', 0)} failed for good",
            f"broadcast '{CAMPAIGN}': {camp.get('sent', 0)} messages sent, {camp.get('failed', 0)} failed "
            f"({codes}) to {shop['customers']} opted-in customers in {camp.get('batches_done', 0)} batches",
            f"admin campaign '{ADMIN_CAMPAIGN}' (template {ADMIN_TEMPLATE}, personalised per profile): "
            f"{adm.get('sent', 0)} sent, {adm.get('failed', 0)} not sent (opted out since it was queued) of "
            f"{shop['admin_recipients']} in {adm.get('batches_done', 0)} batches",
            f"carts: {_num(carts, 'reminders_sent')} reminders sent ({c['templates_sent']} as a template outside the "
            f"24-hour window), {_num(carts, 'expired')} expired, {_num(carts, 'active')} still active",
            f"time: {r.seconds:.1f} s, {r.clock_seconds / 60:.0f} min on the demo clock skipped while idle (retry "
            "delays, hourly cleanups; the clock never runs ahead of real time)",
        ]

    def retries(self, c: dict[str, Any]) -> int:
        """Sync actions beyond those the shop queued: each one is a retry the handler scheduled."""
        return sum(c["sync"].values()) - self.seeded_by_hook.get(hook_table.SYNC_JOB, 0)


def _num(d: Any, key: str) -> int:
    value = d.get(key) if isinstance(d, dict) else None
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
