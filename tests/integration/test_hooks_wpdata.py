"""WordPressData (the data the hooks read) on SQLite and MariaDB: options, transients and their atomic update,
products, orders in both storage modes, carts on both carts schemas."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from wch_bridge.devtools.wp_seed import SiteSeeder
from wch_bridge.store import ActionStore
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.timeutil import Clock


def wp_of(store: ActionStore) -> tuple[WordPressData, SiteSeeder]:
    wp = WordPressData(store.engine, store.prefix, clock=store.clock)
    return wp, SiteSeeder(wp)


def raw_option(wp: WordPressData, name: str) -> tuple[str, str] | None:
    o = wp.opt
    with wp.engine.connect() as conn:
        row = conn.execute(select(o.c.option_value, o.c.autoload).where(o.c.option_name == name)).first()
    return (row[0], row[1]) if row else None


def test_options_round_trip_as_wordpress_stores_them(store: ActionStore) -> None:
    wp, _ = wp_of(store)
    wp.update_option("wch_settings", {"api": {"api_version": "v19.0"}, "list": [1, 2]})
    assert raw_option(wp, "wch_settings") == ('a:2:{s:3:"api";a:1:{s:11:"api_version";s:5:"v19.0";}'
                                              's:4:"list";a:2:{i:0;i:1;i:1;i:2;}}', "yes")
    assert wp.wch_settings() == {"api": {"api_version": "v19.0"}, "list": [1, 2]}
    wp.update_option("wch_settings", "plain")
    assert wp.get_option("wch_settings") == "plain" and wp.wch_settings() == {}
    assert wp.get_option("missing", "dflt") == "dflt"
    wp.delete_option("wch_settings")
    assert wp.get_option_raw("wch_settings") is None


def test_transients_rows_and_expiry(store: ActionStore) -> None:
    wp, _ = wp_of(store)
    wp.set_transient("wch_job_result_x", {"status": "success", "n": 1}, 3600)
    value_row = raw_option(wp, "_transient_wch_job_result_x")
    timeout_row = raw_option(wp, "_transient_timeout_wch_job_result_x")
    assert value_row == ('a:2:{s:6:"status";s:7:"success";s:1:"n";i:1;}', "no")
    assert timeout_row is not None and int(timeout_row[0]) == int(store.clock.timestamp()) + 3600
    assert wp.get_transient("wch_job_result_x") == {"status": "success", "n": 1}
    store.clock.advance(3601)
    assert wp.get_transient("wch_job_result_x") is None
    assert wp.update_transient("wch_job_result_x", lambda cur: {"was": cur}, 60) == {"was": None}


def test_update_transient_loses_no_update_under_concurrency(store: ActionStore) -> None:
    wp, _ = wp_of(store)
    errors: list[BaseException] = []

    def bump(current: object) -> dict[str, int]:
        count = current.get("count", 0) if isinstance(current, dict) else 0
        return {"count": count + 1}

    def worker() -> None:
        try:
            for _ in range(5):
                wp.update_transient("wch_broadcast_summary_c", bump, 3600)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert wp.get_transient("wch_broadcast_summary_c") == {"count": 40}


def test_price_format_and_site_time(store: ActionStore) -> None:
    wp, seed = wp_of(store)
    assert wp.price_format().format(Decimal("1234.5")) == "$1,234.50"
    seed.set_options(woocommerce_currency="EUR", woocommerce_currency_pos="right_space",
                     woocommerce_price_thousand_sep=".", woocommerce_price_decimal_sep=",",
                     timezone_string="Asia/Kolkata")
    wp2 = WordPressData(store.engine, store.prefix, clock=Clock())
    assert wp2.price_format().format(Decimal("1234.5")) == "1.234,50 €"
    assert wp2.price_format().currency == "EUR"
    now = wp2.clock.now()
    assert wp2.site.local(now) - now == timedelta(hours=5, minutes=30)
    assert abs(wp2.local_timestamp() - (int(wp2.clock.timestamp()) + 19800)) <= 1


def test_products_with_variations_prices_stock_image_and_permalink(store: ActionStore) -> None:
    wp, seed = wp_of(store)
    seed.set_options(home="https://shop.example/", permalink_structure="/%postname%/",
                     woocommerce_permalinks={"product_base": "/shop"})
    pid = seed.add_product("Shirt", sku="SH", regular_price=None, excerpt="Soft", image_url="https://img/s.jpg")
    v1 = seed.add_variation(pid, sku="SH-R", regular_price="19.90", attributes={"pa_color": "red"}, stock=3)
    seed.add_variation(pid, sku="SH-B", regular_price="21.00", attributes={"pa_color": "blue"},
                       stock_status="onbackorder")
    product = wp.get_product(pid)
    assert product is not None and product.post_type == "product" and product.image_url == "https://img/s.jpg"
    assert product.permalink == "https://shop.example/shop/shirt/"
    assert [(v.sku, v.regular_price, v.stock_quantity, v.stock_status) for v in product.variations] == [
        ("SH-R", Decimal("19.90"), 3, "instock"), ("SH-B", Decimal("21.00"), None, "onbackorder")]
    variation = wp.get_product(v1)
    assert variation is not None and variation.is_variation and variation.parent_id == pid
    assert variation.title == "Shirt" and variation.description == "Soft" and variation.image_url == "https://img/s.jpg"
    assert variation.permalink == "https://shop.example/shop/shirt/?attribute_pa_color=red"
    assert wp.get_product(999999) is None
    wp.update_post_meta(pid, {"_wch_sync_status": "synced", "_wch_catalog_id": "SH"})
    wp.update_post_meta(pid, {"_wch_sync_status": "partial"})
    assert wp.get_post_meta(pid, "_wch_sync_status") == "partial"
    assert wp.get_product(pid).catalog_id == "SH"  # type: ignore[union-attr]


def test_permalink_with_product_cat_in_the_product_base(store: ActionStore) -> None:
    """WooCommerce's ``/shop/%product_cat%/`` base: the product's first category (parent DESC, term_id ASC) with
    its ancestors' slugs first; ``uncategorized`` without a category; a variation takes its parent's."""
    wp, seed = wp_of(store)
    seed.set_options(home="https://shop.example", permalink_structure="/%postname%/",
                     woocommerce_permalinks={"product_base": "/shop/%product_cat%/"})
    shoes = seed.add_term("product_cat", "shoes")
    running = seed.add_term("product_cat", "running", parent=shoes)
    trail = seed.add_term("product_cat", "trail", parent=running)
    sale = seed.add_term("product_cat", "sale")
    pid = seed.add_product("Trail Runner", regular_price=None, slug="trail-runner")
    seed.set_terms(pid, "product_cat", [sale, trail])  # the child category wins over the top-level one
    var = seed.add_variation(pid, sku="TR-42", regular_price="89.00", attributes={"pa_size": "42"})
    plain = seed.add_product("Gift Card", slug="gift-card")
    product, variation, other = wp.get_product(pid), wp.get_product(var), wp.get_product(plain)
    assert product is not None and variation is not None and other is not None
    assert product.permalink == "https://shop.example/shop/shoes/running/trail/trail-runner/"
    assert variation.permalink == "https://shop.example/shop/shoes/running/trail/trail-runner/?attribute_pa_size=42"
    assert other.permalink == "https://shop.example/shop/uncategorized/gift-card/"
    assert set(product.category_ids) == {sale, trail} and set(variation.category_ids) == {sale, trail}


def test_product_visibility_terms(store: ActionStore) -> None:
    wp, seed = wp_of(store)
    hidden = seed.add_product("Hidden")
    seed.set_terms(hidden, "product_visibility", ["exclude-from-catalog", "exclude-from-search"])
    search_only = seed.add_product("Search only")
    seed.set_terms(search_only, "product_visibility", ["exclude-from-catalog", "featured"])
    var = seed.add_variation(hidden, sku="H-1")
    shown = seed.add_product("Shown")
    visibility = {pid: wp.get_product(pid).catalog_visibility  # type: ignore[union-attr]
                  for pid in (hidden, search_only, var, shown)}
    assert visibility == {hidden: "hidden", search_only: "search", var: "hidden", shown: "visible"}


def test_orders_come_from_the_authoritative_store(store: ActionStore) -> None:
    wp, seed = wp_of(store)
    legacy = seed.add_order(status="completed", total="12.50", currency="GBP", first_name="Ann", phone="07911 123456",
                            country="GB", items=[("Tea", 3, "12.50")], hpos=False)
    hpos = seed.add_order(status="processing", total="9.99", first_name="Bo", phone="+15550001111",
                          items=[("Mug", 1, "9.99")], hpos=True, wch_customer_phone="+15550002222")
    order = wp.get_order(legacy)
    assert order is not None and order.storage == "posts" and order.status == "completed"
    assert (order.currency, order.total, order.billing_phone, order.billing_country) == (
        "GBP", Decimal("12.50"), "07911 123456", "GB")
    assert [(i.name, i.quantity, i.total) for i in order.items] == [("Tea", 3, Decimal("12.50"))]
    assert wp.get_order(hpos) is None  # HPOS not enabled: its placeholder post is never read as an order
    seed.set_options(woocommerce_custom_orders_table_enabled="yes")
    order = wp.get_order(hpos)
    assert order is not None and order.storage == "hpos" and order.phone == "+15550002222"
    assert order.total == Decimal("9.99") and order.billing_first_name == "Bo"
    assert wp.get_order(legacy) is None  # HPOS authoritative: legacy posts are not orders any more


def test_carts_on_the_current_schema(store: ActionStore) -> None:
    wp, seed = wp_of(store)
    assert wp.cart_status_values() == frozenset({"active", "abandoned", "converted", "expired"})
    old = seed.add_cart("+15550000001", [{"product_name": "A", "quantity": "2", "price_at_add": "1.50"}],
                        total="3.00", idle_hours=80)
    seed.add_cart("+15550000002", [], idle_hours=1)
    cart = wp.get_cart(old)
    assert cart is not None and cart.total == Decimal("3.00") and cart.items[0].quantity == 2
    cutoff = wp.site.local(store.clock.now()) - timedelta(hours=72)
    assert wp.list_idle_carts(cutoff) == [old] and wp.count_idle_carts(cutoff) == 1
    assert wp.mark_reminder_sent(old, cutoff, cart.updated_at)
    assert not wp.mark_reminder_sent(old, cutoff, cart.updated_at - timedelta(seconds=1))
    result = wp.delete_idle_carts(cutoff)
    assert (result.mode, result.count) == ("deleted", 1) and wp.get_cart(old) is None


def test_carts_on_the_m0006_schema_are_deleted(engine: Engine, prefix: str) -> None:
    schema_mod.install(engine, prefix, parts=("wordpress", "wch_carts_m0006"))
    wp = WordPressData(engine, prefix)
    seed = SiteSeeder(wp)
    assert wp.cart_status_values() == frozenset({"active", "completed", "abandoned"})
    old = seed.add_cart("+15550000001", [], idle_hours=80)
    result = wp.delete_idle_carts(wp.site.local(wp.clock.now()) - timedelta(hours=72))
    assert (result.mode, result.count) == ("deleted", 1) and wp.get_cart(old) is None


def test_missing_carts_table_is_reported(engine: Engine, prefix: str) -> None:
    schema_mod.install(engine, prefix, parts=("wordpress",))
    wp = WordPressData(engine, prefix)
    assert not wp.carts_table_exists()
    assert not wp.delete_idle_carts(wp.clock.now()).table_found


def test_inbox_on_the_f46ecdf_schema_uses_message_type(engine: Engine, prefix: str) -> None:
    """f46ecdf's wch_messages has message_type (no type/updated_at/sent_at) and conversations without state."""
    schema_mod.install(engine, prefix, parts=("wordpress", "wch_plugin_f46ecdf"))
    wp = WordPressData(engine, prefix)
    when = wp.site.local(wp.clock.now()).replace(microsecond=0)
    first = wp.record_outbound("+15550000101", "template", {"template": {"name": "t"}}, "wamid.A", when)
    again = wp.record_outbound("+15550000101", "template", {"template": {"name": "t"}}, "wamid.A", when)
    assert first is not None and again is None  # one row per wa_message_id
    with engine.connect() as conn:
        (row,) = conn.execute(select(wp._inbox("messages"))).mappings().all()
        (conv,) = conn.execute(select(wp._inbox("conversations"))).mappings().all()
    assert row["message_type"] == "template" and row["direction"] == "outbound" and row["status"] == "sent"
    assert conv["customer_phone"] == "15550000101" and conv["status"] == "active"
    assert wp.log_notification(order_id=7, notification_type="status_update", phone="+15550000101",
                               wa_message_id="wamid.A", when_local=when)


def test_no_inbox_tables_records_nothing(engine: Engine, prefix: str) -> None:
    schema_mod.install(engine, prefix, parts=("wordpress",))
    wp = WordPressData(engine, prefix)
    when = wp.site.local(wp.clock.now())
    assert wp.record_outbound("+15550000101", "text", {"text": "x"}, "wamid.B", when) is None
    assert wp.log_notification(order_id=7, notification_type="status_update", phone="+1", wa_message_id="w",
                               when_local=when) is None
