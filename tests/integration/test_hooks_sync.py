"""wch_process_sync_job end to end through the worker, on MariaDB, against the sandbox API."""

from __future__ import annotations

import re
from datetime import timedelta

from hooks_support import CATALOG, Site, plugin_fixture
from sqlalchemy import select

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox, site

HOOK = "wch_process_sync_job"


def sync_args(job_id: str, sync_type: str, entity_id: object, retry_count: int = 0) -> dict[str, object]:
    return {"job_id": job_id, "sync_type": sync_type, "entity_id": entity_id, "retry_count": retry_count}


def test_product_is_upserted_into_the_catalog_with_plugin_meta(site: Site) -> None:
    pid = site.seed.add_product("Blue Running Shoe", sku="SKU-123", regular_price="59.99", sale_price="49.99",
                                stock=7, excerpt="<p>Lightweight <b>trainer</b> &amp; more</p>",
                                image_url="https://shop.example/wp-content/uploads/shoe.jpg")
    aid = site.enqueue(HOOK, sync_args("sync_p1", "product", pid))
    site.run()
    assert site.status(aid) == "complete"
    fx = plugin_fixture("catalog_ids.json")
    item = site.sandbox.catalog(CATALOG)[str(pid)]  # retailer_id = (string) product id, whatever the SKU
    assert set(site.sandbox.catalog(CATALOG)) == {str(pid)}
    assert item == {
        "id": str(pid), "availability": "in stock", "quantity_to_sell_on_facebook": 7,
        "title": "Blue Running Shoe", "description": "Lightweight trainer & more", "condition": "new",
        "price": "59.99 USD", "sale_price": "49.99 USD", "link": "https://shop.example/product/blue-running-shoe/",
        "brand": "Acme Shoes", "image_link": "https://shop.example/wp-content/uploads/shoe.jpg",
    }
    (req,) = site.sandbox.requests("items_batch")
    assert req["body"]["allow_upsert"] is True and req["body"]["requests"][0]["method"] == "UPDATE"
    # _wch_catalog_id is Meta's item id (items_batch answers carry none): never the retailer id or the SKU
    assert site.wp.get_post_meta(pid, "_wch_catalog_id") is None, fx["expected"]["meta"]["_wch_catalog_id"]
    assert site.wp.get_post_meta(pid, "_wch_sync_status") == "synced"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", site.wp.get_post_meta(pid, "_wch_last_synced") or "")
    assert "accepted by the catalog" in (site.wp.get_post_meta(pid, "_wch_sync_message") or "")
    result = site.wp.get_transient("wch_job_result_sync_p1")
    assert result["status"] == "success" and result["result"]["product_id"] == pid
    assert result["expires_at"] - result["timestamp"] == 3600
    assert any("sync job sync_p1: product #" in line for line in site.logs(aid))


def test_variable_product_sends_each_variation_with_its_group(site: Site) -> None:
    parent = site.seed.add_product("Tee", sku="TEE", regular_price=None)
    small = site.seed.add_variation(parent, sku="TEE-S", regular_price="10.00", attributes={"pa_size": "s"}, stock=0)
    medium = site.seed.add_variation(parent, sku="TEE-M", regular_price="12.50", attributes={"pa_size": "m"})
    aid = site.enqueue(HOOK, sync_args("sync_v", "product", parent))
    site.run()
    assert site.status(aid) == "complete"
    items = site.sandbox.catalog(CATALOG)
    assert set(items) == {str(small), str(medium)}  # the variations, by their own ids; not the parent
    assert items[str(small)]["item_group_id"] == str(parent)  # (string) parent id
    assert items[str(medium)]["item_group_id"] == str(parent)
    assert items[str(small)]["availability"] == "out of stock"
    assert items[str(medium)]["price"] == "12.50 USD"
    assert items[str(medium)]["link"] == "https://shop.example/product/tee/?attribute_pa_size=m"


def test_one_variation_sync_uses_the_parent_id_as_group(site: Site) -> None:
    parent = site.seed.add_product("Cap", sku="CAP", regular_price=None)
    var = site.seed.add_variation(parent, sku="CAP-RED", regular_price="8.00", attributes={"pa_color": "red"})
    aid = site.enqueue(HOOK, sync_args("sync_v1", "product", var))
    site.run()
    assert site.status(aid) == "complete"
    assert site.sandbox.catalog(CATALOG)[str(var)]["item_group_id"] == str(parent)


def test_inventory_sync_updates_availability_and_quantity(site: Site) -> None:
    pid = site.seed.add_product("Mug", sku="MUG", regular_price="5.00", stock=3)
    site.enqueue(HOOK, sync_args("sync_first", "product", pid))
    site.run()
    site.wp.update_post_meta(pid, {"_stock": "0", "_stock_status": "outofstock"})
    aid = site.enqueue(HOOK, sync_args("sync_i", "inventory", pid))
    site.run()
    assert site.status(aid) == "complete"
    req = site.sandbox.requests("items_batch")[-1]
    assert req["body"]["allow_upsert"] is False
    assert req["body"]["requests"] == [{"method": "UPDATE", "data": {
        "id": str(pid), "availability": "out of stock", "quantity_to_sell_on_facebook": 0}}]
    assert site.wp.get_transient("wch_job_result_sync_i")["result"]["stock"] == 0
    assert site.sandbox.catalog(CATALOG)[str(pid)]["title"] == "Mug"  # the full item, updated
    # time(): a Unix timestamp, as the plugin's inventory handler writes it
    assert re.fullmatch(r"\d{9,11}", site.wp.get_post_meta(pid, "_wch_stock_last_synced") or "")


def test_inventory_update_never_creates_a_partial_item(site: Site) -> None:
    pid = site.seed.add_product("Never synced", sku="NEW", regular_price="5.00", stock=2)
    aid = site.enqueue(HOOK, sync_args("sync_inv_new", "inventory", pid))
    site.run()
    assert site.status(aid) == "failed"
    assert str(pid) not in site.sandbox.catalog(CATALOG)  # no item without title, price, link
    assert any("sync the product first" in m for m in site.logs(aid))


def test_image_url_from_the_uploads_folder_not_the_old_guid(site: Site) -> None:
    """After a site move the attachment guid keeps the old domain; WordPress serves uploads base +
    _wp_attached_file."""
    site.seed.set_options(siteurl="https://new-shop.example")
    att = site.seed.add_attachment("https://old-shop.example/wp-content/uploads/2025/01/shoe.jpg")
    pid = site.seed.add_product("Moved", sku="MV", regular_price="5.00")
    site.wp.update_post_meta(pid, {"_thumbnail_id": str(att)})
    site.enqueue(HOOK, sync_args("sync_img", "product", pid))
    site.run()
    assert site.sandbox.catalog(CATALOG)[str(pid)]["image_link"] == \
        "https://new-shop.example/wp-content/uploads/2025/01/shoe.jpg"


def test_variation_stock_managed_by_its_parent(site: Site) -> None:
    parent = site.seed.add_product("Hat", sku="HAT", regular_price=None, stock=4)  # parent manages stock
    var = site.seed.add_variation(parent, sku="HAT-S", regular_price="9.00", attributes={"pa_size": "s"})
    site.enqueue(HOOK, sync_args("sync_hat", "product", var))
    site.run()
    assert site.sandbox.catalog(CATALOG)[str(var)]["quantity_to_sell_on_facebook"] == 4


def test_unpublished_product_is_deleted_from_the_catalog(site: Site) -> None:
    pid = site.seed.add_product("Old", sku="OLD", status="draft")
    aid = site.enqueue(HOOK, sync_args("sync_d", "product", pid))
    site.run()
    assert site.status(aid) == "complete"
    (req,) = site.sandbox.requests("items_batch")
    assert req["body"]["requests"] == [{"method": "DELETE", "data": {"id": str(pid)}}]


def test_order_status_message_hpos_once_per_status(site: Site) -> None:
    site.seed.set_options(woocommerce_custom_orders_table_enabled="yes")
    oid = site.seed.add_order(status="processing", total="59.98", first_name="Asha", phone="(650) 555-1234",
                              country="US", items=[("Blue Shoe", 2, "59.98")])
    first = site.enqueue(HOOK, sync_args("sync_o1", "order", oid))
    site.run()
    again = site.enqueue(HOOK, sync_args("sync_o2", "order", oid))
    site.run()
    assert site.status(first) == "complete" and site.status(again) == "complete"
    (body,) = site.sandbox.messages_to("+16505551234")
    text = body["text"]["body"]
    assert text.startswith("Hi Asha!") and f"order #{oid} is now being processed" in text
    assert "- Blue Shoe x2" in text and "Total: $59.98" in text
    assert site.ledger.get(f"order:{oid}:processing").status == "sent"
    assert "already sent earlier" in site.wp.get_transient("wch_job_result_sync_o2")["result"]["summary"]


def test_order_messages_obey_the_plugin_consent_gates(site: Site) -> None:
    """Not through WhatsApp, status updates off in wch_settings, or the customer opted out: no message, the
    action completes and the result says why (fixture plugin/consent.json)."""
    fx = plugin_fixture("consent.json")
    site.seed.set_options(woocommerce_custom_orders_table_enabled="yes")
    web = site.seed.add_order(status="processing", phone="+16505550001", wch_order=False)
    opted = fx["profile_opted_out_of_notifications"]
    site.seed.add_customer(opted["phone"], opted["name"], notification_opt_out=True)
    quiet = site.seed.add_order(status="processing", phone=opted["phone"])
    ids = [site.enqueue(HOOK, sync_args("sync_web", "order", web)),
           site.enqueue(HOOK, sync_args("sync_optout", "order", quiet))]
    site.run()
    assert [site.status(i) for i in ids] == ["complete", "complete"]
    assert site.sandbox.requests("/messages") == []
    web_result = site.wp.get_transient("wch_job_result_sync_web")["result"]
    assert web_result["sent"] is False and "did not come through WhatsApp" in web_result["skipped"]
    assert "notification_opt_out" in site.wp.get_transient("wch_job_result_sync_optout")["result"]["skipped"]
    # the settings switch the plugin's settings page writes
    site.seed.set_wch_settings(fx["wch_settings_off"])
    on_wa = site.seed.add_order(status="completed", phone="+16505550002")
    aid = site.enqueue(HOOK, sync_args("sync_off", "order", on_wa))
    site.run()
    assert site.status(aid) == "complete" and site.sandbox.requests("/messages") == []
    assert "notifications.order_status_updates" in site.wp.get_transient("wch_job_result_sync_off")["result"]["skipped"]


def test_order_message_is_logged_in_the_notification_log_and_inbox(site: Site) -> None:
    fx = plugin_fixture("inbox.json")["expected_notification"]
    site.seed.set_options(woocommerce_custom_orders_table_enabled="yes")
    oid = site.seed.add_order(status="processing", total="10.00", phone="+447911123456")
    aid = site.enqueue(HOOK, sync_args("sync_log", "order", oid))
    site.run()
    assert site.status(aid) == "complete"
    log_t, msg_t = site.wp._inbox("notification_log"), site.wp._inbox("messages")
    with site.wp.engine.connect() as conn:
        (row,) = conn.execute(select(log_t)).mappings().all()
        (msg,) = conn.execute(select(msg_t)).mappings().all()
    wamid = site.ledger.get(f"order:{oid}:processing").wa_message_id
    assert row["order_id"] == oid and row["notification_type"] == fx["notification_type"]
    assert row["status"] == fx["status"] and row["wa_message_id"] == wamid and row["sent_at"] is not None
    assert row["customer_phone"] == "+447911123456"
    assert msg["wa_message_id"] == wamid and msg["direction"] == "outbound"


def test_order_from_legacy_posts_uses_wch_customer_phone(site: Site) -> None:
    oid = site.seed.add_order(status="completed", total="10.00", phone="0000", hpos=False,
                              wch_customer_phone="+447911123456")
    aid = site.enqueue(HOOK, sync_args("sync_o3", "order", oid))
    site.run()
    assert site.status(aid) == "complete"
    (body,) = site.sandbox.messages_to("+447911123456")
    assert f"order #{oid} is now completed" in body["text"]["body"]


def test_every_retry_step_then_failed(site: Site) -> None:
    pid = site.seed.add_product("Flaky", sku="FLAKY", regular_price="1.00")
    site.sandbox.add_fault(code=131000, paths=["items_batch"], retry_after="0")
    current = site.enqueue(HOOK, sync_args("sync_r", "product", pid))
    for expected_delay, next_count in ((60, 1), (300, 2), (900, 3)):
        site.run()
        action = site.action(current)
        assert action.status == "complete"
        retry = site.actions(HOOK)[-1]
        assert retry.action_id != current and retry.status == "pending"
        assert site.args_of(retry) == sync_args("sync_r", "product", pid, next_count)
        assert retry.scheduled_date_gmt - action.last_attempt_gmt == timedelta(seconds=expected_delay)
        assert any(f"retry {next_count}/3 scheduled as action #{retry.action_id} ({HOOK}, due in "
                   f"{expected_delay} s)" in line for line in site.logs(current))
        stored = site.wp.get_transient("wch_job_result_sync_r")
        assert stored["status"] == "retrying" and stored["result"]["next_retry_in"] == expected_delay
        site.clock.advance(expected_delay - 30)  # (the clock also runs in real time: keep a margin)
        site.run()
        assert site.status(retry.action_id) == "pending"  # not due yet
        site.clock.advance(30)
        current = retry.action_id
    site.run()
    assert site.status(current) == "failed"
    assert len(site.actions(HOOK)) == 4
    (last,) = [m for m in site.logs(current) if m.startswith("action failed via WCH Bridge: ")]
    assert "WhatsApp API error 131000" in last and last.endswith("(gave up after 3 retries)")
    stored = site.wp.get_transient("wch_job_result_sync_r")
    assert stored["status"] == "failed" and "gave up after 3 retries" in stored["result"]["error"]


def test_permanent_failures_end_failed_without_retry(site: Site) -> None:
    pid = site.seed.add_product("Bad", sku="BAD", regular_price="1.00")
    site.sandbox.add_fault(code=100, paths=["items_batch"])
    cases = {
        site.enqueue(HOOK, sync_args("sync_x1", "bogus", 1)): "Unknown sync type: bogus",
        site.enqueue(HOOK, sync_args("sync_x2", "product", 999999)): "Product not found: #999999",
        site.enqueue(HOOK, sync_args("sync_x3", "order", 999999)): "Order not found: #999999",
        site.enqueue(HOOK, sync_args("sync_x4", "product", "abc")): "Invalid product ID: 'abc'",
        site.enqueue(HOOK, sync_args("sync_x5", "product", pid)): "WhatsApp API error 100 (fix)",
    }
    site.run()
    for aid, reason in cases.items():
        assert site.status(aid) == "failed"
        assert any(m.startswith("action failed via WCH Bridge: ") and reason in m for m in site.logs(aid)), reason
    assert len(site.actions(HOOK)) == len(cases)  # no retry for any of them
    assert site.wp.get_transient("wch_job_result_sync_x1")["result"]["error"] == "Unknown sync type: bogus"
    assert site.wp.get_post_meta(pid, "_wch_sync_status") == "error"


def test_wrapped_v2_payload(site: Site) -> None:
    site.seed.set_options(woocommerce_custom_orders_table_enabled="yes")
    oid = site.seed.add_order(status="on-hold", total="3.00", phone="+16505550000")
    meta = {"version": 2, "attempt": 1, "priority": 3, "job_id": "job_6779a1b2c3d4e5.12345678",
            "created_at": 1767225600, "scheduled_at": 1767225600, "group": "wch-normal"}
    wrapped = [{"_wch_version": 2, "_wch_meta": meta,
                "args": sync_args("sync_v2", "order", oid)}]
    aid = site.enqueue(HOOK, wrapped, group="wch-normal")
    site.run(groups=("wch", "wch-normal"))
    assert site.status(aid) == "complete"
    assert site.action(aid).extended_args  # long v2 payloads live in extended_args
    (body,) = site.sandbox.messages_to("+16505550000")
    assert "is now on hold" in body["text"]["body"]
