"""``wch-bridge demo``: the whole bridge on a bare machine, in seconds.

An embedded SQLite database (or ``--dsn`` MariaDB/MySQL under the ``demo_`` prefix) gets the Action Scheduler,
WordPress/WooCommerce and plugin tables; a believable shop is seeded the way WordPress stores it (``wp_seed``):
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
from pathlib import Path
from typing import Any

from wch_bridge import argscodec
from wch_bridge import hooks as hook_table
from wch_bridge.app import build_services, build_worker, open_store, report_data
from wch_bridge.devtools.wp_seed import SiteSeeder
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
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.timeutil import Clock
from wch_bridge.worker import Worker

log = logging.getLogger("wch_bridge.demo")

CLOCK_LEAD = 6 * 3600.0  # the demo clock starts this far in the past: room for every retry delay it jumps over
PHONE_NUMBER_ID = "106540352242922"
CATALOG_ID = "146265584024623"
SQLITE_PREFIX = "wp_"
MYSQL_PREFIX = "demo_"
CAMPAIGN = "spring-sale"
#: The admin screen's campaign (its id is the time() it was created, as the plugin's admin page makes it) with the
#: message shape it queues: {template_name, template_data (Meta's template definition), variables}.
ADMIN_CAMPAIGN = "1767744000"
ADMIN_TEMPLATE = "trail_week"
ADMIN_MESSAGE = {
    "template_name": ADMIN_TEMPLATE,
    "template_data": {
        "name": ADMIN_TEMPLATE, "language": "en_US", "status": "APPROVED", "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Trail week, {{1}}!"},
            {"type": "BODY", "text": "Hi {{1}}, the {{2}} is {{3}} off this week with code {{4}}."},
            {"type": "FOOTER", "text": "Acme Outdoor"},
        ],
    },
    "variables": {"1": {"type": "customer_name", "value": ""}, "2": {"type": "product_name", "value": "Trail Runner 2"},
                  "3": {"type": "static", "value": "15%"}, "4": {"type": "coupon_code", "value": "TRAIL15"}},
}
ADMIN_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", ""]
BATCH = 50
TIMEOUT = 90.0  # real seconds: the demo gives up waiting after this

PRODUCTS = [
    ("Trail Runner 2", "89.00", None, 34), ("City Sneaker", "64.00", "49.00", 12), ("Canvas Slip-On", "39.00", None, 0),
    ("Leather Boot", "149.00", "129.00", 7), ("Wool Socks (3 pack)", "18.00", None, 120),
    ("Rain Jacket", "119.00", None, 9), ("Running Cap", "22.00", "17.50", 45), ("Yoga Mat", "35.00", None, 18),
    ("Water Bottle 750 ml", "16.00", None, 200), ("Hiking Backpack 28 L", "98.00", "84.00", 5),
    ("Sport Sandals", "45.00", None, 26), ("Merino Base Layer", "72.00", None, 14),
]


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


def _phone(i: int) -> str:
    return f"+1555{2000000 + i:07d}"


#: Option written into the demo's tables, so a later demo run knows it may replace them.
DEMO_MARKER = "wch_bridge_demo"


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
        wp = WordPressData(store.engine, store.prefix, clock=store.clock)
        seed = SiteSeeder(wp)
        seed.set_options(**{DEMO_MARKER: "1"})
        seed.set_options(blogname="Acme Outdoor", home="https://shop.example", siteurl="https://shop.example",
                         permalink_structure="/%postname%/", woocommerce_currency="USD", timezone_string="UTC",
                         woocommerce_custom_orders_table_enabled="yes")
        seed.set_wch_settings({
            "api": {"whatsapp_phone_number_id": PHONE_NUMBER_ID, "api_version": "v21.0"},
            "catalog": {"catalog_id": CATALOG_ID, "sync_enabled": True, "include_out_of_stock": True},
            "notifications": {"abandoned_cart_delay_hours": 24, "order_status_updates": True},
            "recovery": {"template_sequence_1": "cart_reminder"},
        })
        n = self.actions
        n_sync = max(8, n // 2)
        n_carts = max(4, n // 6)
        n_customers = max(150, min(2000, n * 5))

        products = []
        for i in range(max(len(PRODUCTS), n_sync)):
            title, price, sale, stock = PRODUCTS[i % len(PRODUCTS)]
            if i >= len(PRODUCTS):
                title = f"{title} ({['Blue', 'Black', 'Olive', 'Sand'][i // len(PRODUCTS) % 4]})"
            products.append(seed.add_product(title, sku=f"ACME-{i + 1:03d}", regular_price=price, sale_price=sale,
                                             stock=stock, image_url=f"https://shop.example/img/{i + 1}.jpg",
                                             excerpt=f"{title} from Acme Outdoor."))
        orders = [seed.add_order(status=st, total=tot, first_name=fn, phone=_phone(900 + k),
                                 items=[(name, 1, tot)])
                  for k, (st, tot, fn, name) in enumerate([
                      ("processing", "89.00", "Ana", "Trail Runner 2"), ("completed", "49.00", "Ben", "City Sneaker"),
                      ("on-hold", "129.00", "Chloe", "Leather Boot"), ("processing", "36.00", "Dev", "Wool Socks")])]

        # carts of every state; the active ones idle past the 24 h delay get a reminder action
        cart_ids: list[int] = []
        items = [{"product_id": products[0], "name": "Trail Runner 2", "quantity": 1, "price": "89.00"},
                 {"product_id": products[4], "name": "Wool Socks (3 pack)", "quantity": 2, "price": "18.00"}]
        for k in range(n_carts):
            cart_ids.append(seed.add_cart(_phone(100000 + k), items, total="125.00", idle_hours=26 + k))
        outside = [_phone(100000 + k) for k in range(0, n_carts, 3)]  # these customers last wrote > 24 h ago
        fresh = seed.add_cart(_phone(600), items[:1], total="89.00", idle_hours=2)
        stale = [seed.add_cart(_phone(610 + k), items[1:], total="36.00", idle_hours=80 + k) for k in range(3)]
        done = seed.add_cart(_phone(620), items, total="125.00", status="converted", idle_hours=30)
        seed.add_cart(_phone(630), items, total="125.00", status="abandoned", idle_hours=100)
        seed.add_cart(_phone(640), items[:1], total="89.00", status="expired", idle_hours=200)

        # faults: the catalog is briefly unavailable, one order's customer cannot be reached for a while,
        # a few numbers are undeliverable, some recipients need a second try
        sandbox.configure(outside_window=outside)
        n_catalog_faults = max(3, n_sync // 6)
        sandbox.add_fault(paths=["items_batch"], code=131000, retry_after="61", times=n_catalog_faults)
        unreachable = _phone(900 + 2)  # order 3's customer: every attempt fails, the retries run out
        sandbox.add_fault(recipients=[unreachable], code=131000, retry_after="61")
        customers = [_phone(1000 + i) for i in range(n_customers)]
        undeliverable = customers[7::97][:4]
        flaky = customers[13::61][:4]
        sandbox.add_fault(recipients=undeliverable, code=131026)
        sandbox.add_fault(recipients=flaky, code=131000, retry_after="61", times=len(flaky))
        self.planned_retries = n_catalog_faults + 3 + len(flaky)

        # the queue the plugin would have built
        # the hourly wch_cleanup_expired_carts: `wch-bridge run` schedules it as the plugin does on init
        for i, pid in enumerate(products[:n_sync]):
            self.enqueue(store, hook_table.SYNC_JOB, {"job_id": f"sync_demo{i:03d}", "sync_type": "product",
                                                        "entity_id": pid, "retry_count": 0})
            if i % 4 == 3:  # a later stock change: an inventory update of an item already in the catalog
                self.enqueue(store, hook_table.SYNC_JOB, {"job_id": f"sync_stock{i:03d}",
                                                             "sync_type": "inventory", "entity_id": pid,
                                                             "retry_count": 0}, delay=1800)
        self.enqueue(store, hook_table.SYNC_JOB, {"job_id": "sync_demo_missing", "sync_type": "product",
                                                     "entity_id": 999999, "retry_count": 0})
        for k, oid in enumerate(orders):
            self.enqueue(store, hook_table.SYNC_JOB, {"job_id": f"sync_order{k}", "sync_type": "order",
                                                         "entity_id": oid, "retry_count": 0})
        for b in range(0, len(customers), BATCH):
            self.enqueue(store, hook_table.BROADCAST_BATCH, {
                "batch": customers[b:b + BATCH], "batch_num": b // BATCH, "campaign_id": CAMPAIGN,
                "message": "Spring sale at Acme Outdoor: 20% off trail shoes until Sunday. Reply STOP to opt out."})
        # the admin screen's template campaign: opted-in profiles (names personalise it); two opted out after
        # the campaign was queued, so they get nothing
        admin = [_phone(3000 + i) for i in range(max(40, min(200, n)))]
        for i, phone in enumerate(admin):
            seed.add_customer(phone, ADMIN_NAMES[i % len(ADMIN_NAMES)], opt_in_marketing=i not in (5, 17))
        for b in range(0, len(admin), BATCH):
            self.enqueue(store, hook_table.BROADCAST_BATCH, {
                "batch": admin[b:b + BATCH], "batch_num": b // BATCH, "campaign_id": int(ADMIN_CAMPAIGN),
                "message": ADMIN_MESSAGE})
        for cid in [*cart_ids, fresh, done]:
            self.enqueue(store, hook_table.ABANDONED_CART, {"cart_id": cid})
        return {"products": len(products), "orders": len(orders), "customers": len(customers),
                "admin_recipients": len(admin),
                "carts": len(cart_ids) + len(stale) + 4, "stale_carts": len(stale), "batches": -(-len(customers) // BATCH)}

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
        """Nothing running: jump the clock to the next due action (a retry delay passes at once); when only the
        recurring cleanup is left, catch up with real time, let what is then due run, and stop."""
        nxt = store.next_due_at(hooks, group_ids)
        now = self.clock.now()
        if nxt is not None and nxt <= now:
            return  # due now: the worker takes it on its next poll
        if self.remaining(store, hooks) == 0:
            if self.clock.behind() > 1:
                self.clock.jump_to(datetime.now(UTC).replace(tzinfo=None))
                return
            w.request_stop()
        elif nxt is not None:
            self.clock.jump_to(nxt)

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
            "delays; the clock never runs ahead of real time)",
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
