"""The demo's shop, seeded the way WordPress stores it (``wp_seed``), the sandbox's scripted faults, and the queue
the plugin would have built for it. :class:`DemoShop` does it in named steps, in this order (ids depend on it):
site options, products, orders, carts, faults, sync jobs, the text broadcast, the admin campaign, cart reminders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wch_bridge import hooks as hook_table
from wch_bridge.devtools.wp_seed import SiteSeeder
from wch_bridge.sandbox import Sandbox
from wch_bridge.store import ActionStore
from wch_bridge.store.wordpress import WordPressData

PHONE_NUMBER_ID = "106540352242922"
CATALOG_ID = "146265584024623"
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

PRODUCTS = [
    ("Trail Runner 2", "89.00", None, 34), ("City Sneaker", "64.00", "49.00", 12), ("Canvas Slip-On", "39.00", None, 0),
    ("Leather Boot", "149.00", "129.00", 7), ("Wool Socks (3 pack)", "18.00", None, 120),
    ("Rain Jacket", "119.00", None, 9), ("Running Cap", "22.00", "17.50", 45), ("Yoga Mat", "35.00", None, 18),
    ("Water Bottle 750 ml", "16.00", None, 200), ("Hiking Backpack 28 L", "98.00", "84.00", 5),
    ("Sport Sandals", "45.00", None, 26), ("Merino Base Layer", "72.00", None, 14),
]
ORDERS = [("processing", "89.00", "Ana", "Trail Runner 2"), ("completed", "49.00", "Ben", "City Sneaker"),
          ("on-hold", "129.00", "Chloe", "Leather Boot"), ("processing", "36.00", "Dev", "Wool Socks")]

#: Option written into the demo's tables, so a later demo run knows it may replace them.
DEMO_MARKER = "wch_bridge_demo"

#: ``enqueue(hook, args, delay=0.0)``: schedules one action as the plugin would (``Demo.enqueue``).
Enqueue = Callable[..., int]


def phone(i: int) -> str:
    return f"+1555{2000000 + i:07d}"


@dataclass
class Carts:
    reminded: list[int]  # carts that get a reminder action: the idle ones, then one fresh and one converted
    idle: int  # carts idle past the 24 h delay
    stale: int  # active carts idle long enough for the cleanup
    outside: list[str]  # customers who last wrote more than 24 h ago (outside WhatsApp's window)


class DemoShop:
    """One seeding of the demo's shop for ``actions`` queued actions (the sizes scale with it)."""

    def __init__(self, store: ActionStore, sandbox: Sandbox, enqueue: Enqueue, actions: int) -> None:
        self.seed = SiteSeeder(WordPressData(store.engine, store.prefix, clock=store.clock))
        self.sandbox = sandbox
        self.enqueue = enqueue
        self.n_sync = max(8, actions // 2)
        self.n_carts = max(4, actions // 6)
        self.n_customers = max(150, min(2000, actions * 5))
        self.n_admin = max(40, min(200, actions))
        self.planned_retries = 0  # retries the faults will cause (for the progress bar's total)

    def build(self) -> dict[str, Any]:
        """Every step in order; returns what was seeded (the demo's ``counts["shop"]``)."""
        self.site_options()
        products = self.products()
        orders = self.orders()
        carts = self.carts(products)
        customers = [phone(1000 + i) for i in range(self.n_customers)]
        self.faults(carts.outside, customers)
        self.queue_syncs(products, orders)
        self.queue_broadcast(customers)
        admin = self.admin_campaign()
        for cid in carts.reminded:
            self.enqueue(hook_table.ABANDONED_CART, {"cart_id": cid})
        return {"products": len(products), "orders": len(orders), "customers": len(customers),
                "admin_recipients": len(admin),
                "carts": carts.idle + carts.stale + 4, "stale_carts": carts.stale,
                "batches": -(-len(customers) // BATCH)}

    def site_options(self) -> None:
        seed = self.seed
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

    def products(self) -> list[int]:
        """The catalog: PRODUCTS, then colour variants of them until there is one per sync job."""
        products = []
        for i in range(max(len(PRODUCTS), self.n_sync)):
            title, price, sale, stock = PRODUCTS[i % len(PRODUCTS)]
            if i >= len(PRODUCTS):
                title = f"{title} ({['Blue', 'Black', 'Olive', 'Sand'][i // len(PRODUCTS) % 4]})"
            products.append(self.seed.add_product(title, sku=f"ACME-{i + 1:03d}", regular_price=price,
                                                  sale_price=sale, stock=stock,
                                                  image_url=f"https://shop.example/img/{i + 1}.jpg",
                                                  excerpt=f"{title} from Acme Outdoor."))
        return products

    def orders(self) -> list[int]:
        return [self.seed.add_order(status=st, total=tot, first_name=fn, phone=phone(900 + k), items=[(name, 1, tot)])
                for k, (st, tot, fn, name) in enumerate(ORDERS)]

    def carts(self, products: list[int]) -> Carts:
        """Carts of every state; the active ones idle past the 24 h delay get a reminder action."""
        seed = self.seed
        cart_ids: list[int] = []
        items = [{"product_id": products[0], "name": "Trail Runner 2", "quantity": 1, "price": "89.00"},
                 {"product_id": products[4], "name": "Wool Socks (3 pack)", "quantity": 2, "price": "18.00"}]
        for k in range(self.n_carts):
            cart_ids.append(seed.add_cart(phone(100000 + k), items, total="125.00", idle_hours=26 + k))
        outside = [phone(100000 + k) for k in range(0, self.n_carts, 3)]  # these customers last wrote > 24 h ago
        fresh = seed.add_cart(phone(600), items[:1], total="89.00", idle_hours=2)
        stale = [seed.add_cart(phone(610 + k), items[1:], total="36.00", idle_hours=80 + k) for k in range(3)]
        done = seed.add_cart(phone(620), items, total="125.00", status="converted", idle_hours=30)
        seed.add_cart(phone(630), items, total="125.00", status="abandoned", idle_hours=100)
        seed.add_cart(phone(640), items[:1], total="89.00", status="expired", idle_hours=200)
        return Carts(reminded=[*cart_ids, fresh, done], idle=len(cart_ids), stale=len(stale), outside=outside)

    def faults(self, outside: list[str], customers: list[str]) -> None:
        """The catalog is briefly unavailable, one order's customer cannot be reached for a while, a few numbers
        are undeliverable, some recipients need a second try."""
        sandbox = self.sandbox
        sandbox.configure(outside_window=outside)
        n_catalog_faults = max(3, self.n_sync // 6)
        sandbox.add_fault(paths=["items_batch"], code=131000, retry_after="61", times=n_catalog_faults)
        unreachable = phone(900 + 2)  # order 3's customer: every attempt fails, the retries run out
        sandbox.add_fault(recipients=[unreachable], code=131000, retry_after="61")
        undeliverable = customers[7::97][:4]
        flaky = customers[13::61][:4]
        sandbox.add_fault(recipients=undeliverable, code=131026)
        sandbox.add_fault(recipients=flaky, code=131000, retry_after="61", times=len(flaky))
        self.planned_retries = n_catalog_faults + 3 + len(flaky)

    def queue_syncs(self, products: list[int], orders: list[int]) -> None:
        """Catalog sync of each product (some with a later inventory update), one of a missing product, and the
        order notifications. (The recurring cart cleanup: ``wch-bridge run`` schedules it as the plugin does.)"""
        for i, pid in enumerate(products[:self.n_sync]):
            self.enqueue(hook_table.SYNC_JOB, {"job_id": f"sync_demo{i:03d}", "sync_type": "product",
                                               "entity_id": pid, "retry_count": 0})
            if i % 4 == 3:  # a later stock change: an inventory update of an item already in the catalog
                self.enqueue(hook_table.SYNC_JOB, {"job_id": f"sync_stock{i:03d}", "sync_type": "inventory",
                                                   "entity_id": pid, "retry_count": 0}, delay=1800)
        self.enqueue(hook_table.SYNC_JOB, {"job_id": "sync_demo_missing", "sync_type": "product",
                                           "entity_id": 999999, "retry_count": 0})
        for k, oid in enumerate(orders):
            self.enqueue(hook_table.SYNC_JOB, {"job_id": f"sync_order{k}", "sync_type": "order",
                                               "entity_id": oid, "retry_count": 0})

    def queue_broadcast(self, customers: list[str]) -> None:
        for b in range(0, len(customers), BATCH):
            self.enqueue(hook_table.BROADCAST_BATCH, {
                "batch": customers[b:b + BATCH], "batch_num": b // BATCH, "campaign_id": CAMPAIGN,
                "message": "Spring sale at Acme Outdoor: 20% off trail shoes until Sunday. Reply STOP to opt out."})

    def admin_campaign(self) -> list[str]:
        """The admin screen's template campaign: opted-in profiles (names personalise it); two opted out after the
        campaign was queued, so they get nothing."""
        admin = [phone(3000 + i) for i in range(self.n_admin)]
        for i, number in enumerate(admin):
            self.seed.add_customer(number, ADMIN_NAMES[i % len(ADMIN_NAMES)], opt_in_marketing=i not in (5, 17))
        for b in range(0, len(admin), BATCH):
            self.enqueue(hook_table.BROADCAST_BATCH, {
                "batch": admin[b:b + BATCH], "batch_num": b // BATCH, "campaign_id": int(ADMIN_CAMPAIGN),
                "message": ADMIN_MESSAGE})
        return admin
