"""wch_cleanup_expired_carts and wch_process_abandoned_cart end to end through the worker (MariaDB + sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hooks_support import Site, make_site, plugin_fixture
from sqlalchemy import insert, update

from wch_bridge import phpser, schedules
from wch_bridge.sandbox import Sandbox
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox, site

CLEANUP = "wch_cleanup_expired_carts"
ABANDONED = "wch_process_abandoned_cart"
PHONE = "+16505551234"
ITEMS = [
    {"product_id": 11, "variation_id": 0, "quantity": 2, "price_at_add": "29.99", "product_name": "Blue <b>Shoe</b>"},
    {"product_id": 12, "quantity": 1, "name": "Sock & Co"},
]


def cart_row(site: Site, cart_id: int) -> object:
    cart = site.wp.get_cart(cart_id)
    assert cart is not None
    return cart


# ---------------------------------------------------------------------------------------------- cleanup


def test_run_schedules_the_recurring_cleanup_once_and_it_deletes_idle_carts(site: Site) -> None:
    old = site.seed.add_cart("+15550000001", ITEMS, idle_hours=73)
    fresh = site.seed.add_cart("+15550000002", ITEMS, idle_hours=71)
    done = site.seed.add_cart("+15550000003", ITEMS, idle_hours=100, status="converted")
    site.run()
    (first,) = site.actions(CLEANUP)[:1]
    assert first.status == "complete" and first.group == "wch" and first.args == "[]"
    sched = phpser.parse_schedule(first.schedule)
    assert isinstance(sched, schedules.IntervalSchedule) and sched.interval_seconds == 3600
    assert site.wp.get_cart(old) is None
    assert [cart_row(site, i).status for i in (fresh, done)] == ["active", "converted"]
    assert any("1 active cart(s) idle since before" in m and "deleted" in m for m in site.logs(first.action_id))
    result = site.wp.get_transient("wch_cart_cleanup_last_result")
    assert result["deleted_count"] == 1 and result["expired_count"] == 0 and result["mode"] == "deleted"
    expiry = datetime.strptime(result["expiry_date"], "%Y-%m-%d %H:%M:%S")
    now_local = site.wp.site.local(site.clock.now())
    assert timedelta(0) <= now_local - timedelta(hours=72) - expiry <= timedelta(seconds=5)
    # the worker scheduled the next hourly instance, an hour after the last run finished
    (nxt,) = [a for a in site.actions(CLEANUP) if a.status == "pending"]
    last_run = [a for a in site.actions(CLEANUP) if a.status == "complete"][-1]
    assert nxt.scheduled_date_gmt - last_run.last_attempt_gmt == timedelta(seconds=3600)
    # a second `run` finds it and does not start another recurring chain
    site.run()
    assert [a.action_id for a in site.actions(CLEANUP) if a.status == "pending"] == [nxt.action_id]


@pytest.fixture
def old_schema_site(mysql_url: str, prefix: str, sandbox: Sandbox) -> Iterator[Site]:
    engine = make_engine(mysql_url)
    parts = ("actionscheduler", "bridge", "wordpress", "woocommerce", "wch_carts_m0006")
    schema_mod.install(engine, prefix, parts=parts)
    yield make_site(ActionStore(engine, prefix), sandbox)
    schema_mod.drop_prefix(engine, prefix)
    engine.dispose()



def test_cleanup_deletes_on_the_m0006_schema_without_expired(old_schema_site: Site) -> None:
    site = old_schema_site
    assert site.wp.cart_status_values() == frozenset({"active", "completed", "abandoned"})
    old = site.seed.add_cart("+15550000001", ITEMS, idle_hours=80)
    kept = site.seed.add_cart("+15550000002", ITEMS, idle_hours=80, status="completed")
    site.run()
    (first,) = site.actions(CLEANUP)[:1]
    assert first.status == "complete"
    assert site.wp.get_cart(old) is None and cart_row(site, kept).status == "completed"
    result = site.wp.get_transient("wch_cart_cleanup_last_result")
    assert result["deleted_count"] == 1 and result["mode"] == "deleted" and result["expired_count"] == 0
    assert any("deleted" in m for m in site.logs(first.action_id))


def plugin_opens_a_cart(site: Site, phone: str) -> int:
    """What the plugin does when it finds no active cart for a customer: a plain INSERT (fixture
    plugin/cart_lifecycle.json: f46ecdf class-wch-cart-manager.php, head CartRepository::create)."""
    c = site.wp.t.carts
    now = site.wp.site.local(site.clock.now())
    with site.wp.engine.begin() as conn:
        return int(conn.execute(insert(c).values(
            customer_phone=phone, items="[]", total="0.00", status="active", expires_at=now + timedelta(hours=72),
            created_at=now, updated_at=now)).inserted_primary_key[0])


def customer_can_shop_again(site: Site) -> None:
    phone = "+15550000009"
    site.seed.add_cart(phone, ITEMS, idle_hours=80)
    site.run()
    new_id = plugin_opens_a_cart(site, phone)  # a duplicate-key error here locks the customer out
    assert cart_row(site, new_id).status == "active"


def test_after_cleanup_the_customer_can_open_a_new_cart(site: Site) -> None:
    customer_can_shop_again(site)  # head schema: status ENUM has 'expired', UNIQUE customer_phone


def test_after_cleanup_the_customer_can_open_a_new_cart_m0006(old_schema_site: Site) -> None:
    customer_can_shop_again(old_schema_site)


def test_run_schedules_the_cleanup_only_where_the_plugin_is_installed(mysql_url: str, prefix: str,
                                                                      sandbox: Sandbox) -> None:
    """No wch_carts under the prefix: `run` does not create a recurring cleanup that would only warn each hour."""
    engine = make_engine(mysql_url)
    schema_mod.install(engine, prefix, parts=("actionscheduler", "bridge", "wordpress", "woocommerce"))
    try:
        site = make_site(ActionStore(engine, prefix), sandbox)
        site.run()
        assert site.actions(CLEANUP) == []
        assert "wch_carts not found" not in site.all_log_text()
    finally:
        schema_mod.drop_prefix(engine, prefix)
        engine.dispose()


# ---------------------------------------------------------------------------------------------- abandoned cart


def test_abandoned_cart_reminder_is_plain_text_and_sets_reminder_sent_at(site: Site) -> None:
    cid = site.seed.add_cart(PHONE, ITEMS, total="59.98", idle_hours=25)
    aid = site.enqueue(ABANDONED, {"cart_id": cid})
    site.run()
    assert site.status(aid) == "complete"
    (body,) = site.sandbox.messages_to(PHONE)
    assert body["type"] == "text"
    assert body["text"]["body"] == (
        "Hi! You left some items in your cart:\n\n- Blue Shoe x2\n- Sock & Co x1\n\nTotal: $59.98\n\n"
        "Would you like to complete your order?"
    )
    cart = cart_row(site, cid)
    assert cart.reminder_sent_at is not None and cart.reminder_sent_at >= cart.updated_at
    key = f"cart:{cid}:{cart.updated_at:%Y%m%d%H%M%S}"
    assert site.ledger.get(key).status == "sent"
    assert any("reminder sent to +1******1234 (text" in m for m in site.logs(aid))
    # the same cart update is never reminded twice, even when reminder_sent_at got lost
    with site.store.engine.begin() as conn:
        conn.execute(update(site.wp.t.carts).where(site.wp.t.carts.c.id == cid).values(reminder_sent_at=None))
    again = site.enqueue(ABANDONED, {"cart_id": cid})
    site.run()
    assert site.status(again) == "complete" and len(site.sandbox.messages_to(PHONE)) == 1
    assert cart_row(site, cid).reminder_sent_at is not None


@pytest.mark.parametrize(
    ("status", "idle_hours", "reminded", "why"),
    [
        ("converted", 30, False, "status is 'converted', not 'active'"),
        ("active", 2, False, "idle 2.0 h, the reminder waits 24 h"),
        ("active", 30, True, "already reminded at"),
    ],
)
def test_carts_that_must_not_be_reminded(site: Site, status: str, idle_hours: float, reminded: bool,
                                         why: str) -> None:
    now_local = site.wp.site.local(site.clock.now())
    cid = site.seed.add_cart(PHONE, ITEMS, status=status, idle_hours=idle_hours,
                             reminder_sent_at=now_local - timedelta(hours=1) if reminded else None)
    aid = site.enqueue(ABANDONED, {"cart_id": cid})
    site.run()
    assert site.status(aid) == "complete"
    assert site.sandbox.requests("/messages") == []
    assert any(f"cart #{cid}: no reminder: {why}" in m for m in site.logs(aid))


def test_delay_comes_from_wch_settings(site: Site) -> None:
    site.seed.set_wch_settings({"notifications": {"abandoned_cart_delay_hours": 1}})
    cid = site.seed.add_cart(PHONE, ITEMS, idle_hours=2)
    aid = site.enqueue(ABANDONED, {"cart_id": cid})
    site.run()
    assert site.status(aid) == "complete" and len(site.sandbox.messages_to(PHONE)) == 1


def test_outside_24h_window_falls_back_to_the_template(site: Site) -> None:
    """The recovery template's parameters as the plugin fills them: {{1}} name, {{2}} item count, {{3}} total;
    the template name from recovery.template_sequence_1 (fixture plugin/recovery_template.json)."""
    fx = plugin_fixture("recovery_template.json")
    site.seed.set_wch_settings(fx["wch_settings"])
    site.seed.add_customer(fx["profile"]["phone"], fx["profile"]["name"])
    site.sandbox.configure(outside_window=[PHONE], templates={"cart_reminder": 3})
    cid = site.seed.add_cart(PHONE, fx["cart"]["items"], total=fx["cart"]["total"], idle_hours=30)
    aid = site.enqueue(ABANDONED, {"cart_id": cid})
    site.run()
    assert site.status(aid) == "complete"
    attempts = site.sandbox.requests("/messages")
    assert [(r["body"]["type"], r["status"]) for r in attempts] == [("text", 400), ("template", 200)]
    template = attempts[1]["body"]["template"]
    assert template["name"] == "cart_reminder" and template["components"][0]["parameters"] == [
        {"type": "text", "text": t} for t in fx["expected_body_parameters"]]
    row = site.ledger.get(f"cart:{cid}:{cart_row(site, cid).updated_at:%Y%m%d%H%M%S}")
    assert row.status == "sent" and row.kind == "template"
    assert any("(template cart_reminder" in m for m in site.logs(aid))


def test_outside_window_without_a_template_fails_with_the_reason(site: Site) -> None:
    site.sandbox.configure(outside_window=[PHONE])
    cid = site.seed.add_cart(PHONE, ITEMS, idle_hours=30)
    aid = site.enqueue(ABANDONED, {"cart_id": cid})
    site.run()
    assert site.status(aid) == "failed"
    (line,) = [m for m in site.logs(aid) if m.startswith("action failed via WCH Bridge: ")]
    assert "outside WhatsApp's 24-hour window (131047)" in line and "no abandoned-cart template is configured" in line
    assert cart_row(site, cid).reminder_sent_at is None


def test_template_name_from_wch_settings_and_v2_payload(site: Site) -> None:
    site.seed.set_wch_settings({"recovery": {"template_sequence_1": "from_plugin"}})
    site.sandbox.configure(outside_window=[PHONE])
    cid = site.seed.add_cart(PHONE, ITEMS, idle_hours=30)
    aid = site.enqueue(ABANDONED, [{"_wch_version": 2, "_wch_meta": {}, "args": {"cart_id": cid}}])
    site.run()
    assert site.status(aid) == "complete"
    assert site.sandbox.messages_to(PHONE)[0]["template"]["name"] == "from_plugin"


def test_invalid_cart_id_fails(site: Site) -> None:
    aid = site.enqueue(ABANDONED, {"cart_id": "x"})
    site.run()
    assert site.status(aid) == "failed"
    assert any("Invalid cart ID: 'cart_id' must be a positive integer" in m for m in site.logs(aid))
