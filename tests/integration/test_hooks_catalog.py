"""Catalog sync (``wch_process_sync_job`` product / inventory) on MariaDB against the sandbox API: permalinks with
``%product_cat%``, hidden products, the plugin's ``catalog.*`` settings, and items marked synced only once the
batch handle reports ``finished`` (docs/plugin-contracts.md "Catalog", "Product reads")."""

from __future__ import annotations

import time

from hooks_support import CATALOG, Site, plugin_fixture

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox, site

HOOK = "wch_process_sync_job"


def sync_args(job_id: str, sync_type: str, entity_id: object) -> dict[str, object]:
    return {"job_id": job_id, "sync_type": sync_type, "entity_id": entity_id, "retry_count": 0}


def result(site: Site, job_id: str) -> dict[str, object]:
    return site.wp.get_transient(f"wch_job_result_{job_id}")["result"]


def test_catalog_link_uses_the_product_cat_path_of_the_product_base(site: Site) -> None:
    site.seed.set_options(woocommerce_permalinks={"product_base": "/shop/%product_cat%/"})
    shoes = site.seed.add_term("product_cat", "shoes")
    running = site.seed.add_term("product_cat", "running", parent=shoes)
    pid = site.seed.add_product("Road Racer", regular_price="99.00", slug="road-racer")
    site.seed.set_terms(pid, "product_cat", [running])
    loose = site.seed.add_product("Gift Card", regular_price="25.00", slug="gift-card")
    site.enqueue(HOOK, sync_args("sync_cat", "product", pid))
    site.enqueue(HOOK, sync_args("sync_uncat", "product", loose))
    site.run()
    items = site.sandbox.catalog(CATALOG)
    assert items[str(pid)]["link"] == "https://shop.example/shop/shoes/running/road-racer/"
    assert items[str(loose)]["link"] == "https://shop.example/shop/uncategorized/gift-card/"


def test_hidden_product_is_not_sent_search_only_is(site: Site) -> None:
    """Catalog visibility ``hidden`` (both exclude terms) is left out, as the head's ProductSyncService does;
    ``exclude-from-catalog`` alone (findable by search) is listed."""
    hidden = site.seed.add_product("Secret", regular_price="5.00")
    site.seed.set_terms(hidden, "product_visibility", ["exclude-from-catalog", "exclude-from-search"])
    search_only = site.seed.add_product("Findable", regular_price="5.00")
    site.seed.set_terms(search_only, "product_visibility", ["exclude-from-catalog"])
    first = site.enqueue(HOOK, sync_args("sync_hidden", "product", hidden))
    second = site.enqueue(HOOK, sync_args("sync_search", "product", search_only))
    site.run()
    assert site.status(first) == "complete" and site.status(second) == "complete"
    assert set(site.sandbox.catalog(CATALOG)) == {str(search_only)}
    skipped = result(site, "sync_hidden")
    assert skipped["synced"] is False and "hidden from the catalog" in str(skipped["skipped"])
    assert site.wp.get_post_meta(hidden, "_wch_sync_status") is None  # the plugin writes nothing either


def test_sync_disabled_in_the_plugin_settings_sends_nothing(site: Site) -> None:
    fx = plugin_fixture("catalog_settings.json")
    site.seed.set_wch_settings(fx["sync_disabled"])
    pid = site.seed.add_product("Mug", regular_price="5.00", stock=3)
    aid = site.enqueue(HOOK, sync_args("sync_off", "product", pid))
    site.run()
    assert site.status(aid) == "complete"
    assert site.sandbox.requests("items_batch") == []
    assert "catalog.sync_enabled" in str(result(site, "sync_off")["skipped"])


def test_plugin_product_selection_and_out_of_stock_rules(site: Site) -> None:
    fx = plugin_fixture("catalog_settings.json")
    chosen = site.seed.add_product("Chosen", regular_price="5.00", stock=3)
    other = site.seed.add_product("Other", regular_price="5.00", stock=3)
    empty = site.seed.add_product("Sold out", regular_price="5.00", stock=0)
    tee = site.seed.add_product("Tee", regular_price=None)
    small = site.seed.add_variation(tee, sku="TEE-S", regular_price="10.00", attributes={"pa_size": "s"}, stock=0)
    medium = site.seed.add_variation(tee, sku="TEE-M", regular_price="10.00", attributes={"pa_size": "m"}, stock=4)
    settings = fx["selected_products"]
    settings["catalog"]["sync_products"] = [str(chosen), str(empty), tee]  # ids as the settings page stores them
    site.seed.set_wch_settings(settings)
    for pid in (chosen, other, empty, tee):
        site.enqueue(HOOK, sync_args(f"sync_sel_{pid}", "product", pid))
    site.run()
    assert set(site.sandbox.catalog(CATALOG)) == {str(chosen), str(medium)}
    assert "catalog.sync_products" in str(result(site, f"sync_sel_{other}")["skipped"])
    assert "catalog.include_out_of_stock" in str(result(site, f"sync_sel_{empty}")["skipped"])
    # the plugin marks a variable product with a left-out variation partial (sync_variable_product)
    assert site.wp.get_post_meta(tee, "_wch_sync_status") == "partial"
    assert f"{small}: out of stock" in (site.wp.get_post_meta(tee, "_wch_sync_message") or "")
    assert site.wp.get_post_meta(medium, "_wch_sync_status") == "synced"
    # with include_out_of_stock on, the sold-out product is listed (as out of stock)
    settings["catalog"]["include_out_of_stock"] = True
    site.seed.set_wch_settings(settings)
    site.enqueue(HOOK, sync_args("sync_oos", "product", empty))
    site.run()
    assert site.sandbox.catalog(CATALOG)[str(empty)]["availability"] == "out of stock"


def test_settings_page_category_selection(site: Site) -> None:
    """The plugin's Catalog tab writes ``product_selection`` = ``categories`` with ``categories`` (term ids)."""
    fx = plugin_fixture("catalog_settings.json")
    boots = site.seed.add_term("product_cat", "boots")
    inside = site.seed.add_product("Boot", regular_price="50.00", stock=2)
    site.seed.set_terms(inside, "product_cat", [boots])
    outside = site.seed.add_product("Hat", regular_price="10.00", stock=2)
    settings = fx["settings_page_categories"]
    settings["catalog"]["categories"] = [str(boots)]
    site.seed.set_wch_settings(settings)
    site.enqueue(HOOK, sync_args("sync_in", "product", inside))
    site.enqueue(HOOK, sync_args("sync_out", "product", outside))
    site.run()
    assert set(site.sandbox.catalog(CATALOG)) == {str(inside)}
    assert "catalog.categories" in str(result(site, "sync_out")["skipped"])


def test_items_stay_pending_until_the_batch_handle_reports_finished(site: Site) -> None:
    site.sandbox.configure(batch_delay_ms=1500)
    tee = site.seed.add_product("Tee", regular_price=None)
    var = site.seed.add_variation(tee, sku="TEE-S", regular_price="10.00", attributes={"pa_size": "s"}, stock=2)
    aid = site.enqueue(HOOK, sync_args("sync_pend", "product", tee))
    site.run()
    assert site.status(aid) == "complete"
    assert site.wp.get_post_meta(tee, "_wch_sync_status") == "pending"
    assert site.wp.get_post_meta(var, "_wch_sync_status") == "pending"
    assert result(site, "sync_pend")["sync_status"] == "pending"
    (check,) = [a for a in site.actions(HOOK) if a.action_id != aid]
    args = site.args_of(check)
    assert args["batch_handle"] and args["batch_poll"] == 1 and args["batch_items"] == [str(var)]
    assert any("catalog batch check 1/" in line for line in site.logs(aid))
    assert len(site.sandbox.requests("check_batch_request_status")) == 1  # asked once right after the send
    time.sleep(1.6)  # the sandbox finishes the batch after 1.5 s of real time
    site.run()
    assert site.status(check.action_id) == "pending"  # its check is due 60 s later
    site.clock.advance(61)
    site.run()
    assert site.status(check.action_id) == "complete"
    assert site.wp.get_post_meta(tee, "_wch_sync_status") == "synced"
    assert site.wp.get_post_meta(var, "_wch_sync_status") == "synced"
    assert result(site, "sync_pend")["sync_status"] == "synced"
    assert len(site.sandbox.requests("items_batch")) == 1  # checked, never sent again


def test_inventory_update_stamps_stock_sync_only_when_finished(site: Site) -> None:
    pid = site.seed.add_product("Mug", regular_price="5.00", stock=3)
    site.enqueue(HOOK, sync_args("sync_full", "product", pid))
    site.run()
    site.sandbox.configure(batch_delay_ms=60_000)
    site.wp.update_post_meta(pid, {"_stock": "1"})
    aid = site.enqueue(HOOK, sync_args("sync_inv", "inventory", pid))
    site.run()
    assert site.status(aid) == "complete"
    assert site.wp.get_post_meta(pid, "_wch_stock_last_synced") is None
    assert result(site, "sync_inv")["sync_status"] == "pending"


def test_a_batch_that_never_finishes_is_given_up_with_items_left_pending(site: Site) -> None:
    site.sandbox.configure(batch_delay_ms=3_600_000)
    pid = site.seed.add_product("Slow", regular_price="5.00", stock=3)
    current = site.enqueue(HOOK, sync_args("sync_slow", "product", pid))
    for _ in range(20):
        site.clock.advance(3601)
        site.run()
        if site.status(current) == "failed":
            break
        later = [a.action_id for a in site.actions(HOOK) if a.action_id > current]
        current = later[0]
    assert site.status(current) == "failed"
    assert len(site.actions(HOOK)) == 8  # the send (with its first check) and seven later checks
    (last,) = [m for m in site.logs(current) if m.startswith("action failed via WCH Bridge: ")]
    assert "not finished after 8 status checks" in last
    assert site.wp.get_post_meta(pid, "_wch_sync_status") == "pending"
    assert site.wp.get_transient("wch_job_result_sync_slow")["status"] == "failed"
