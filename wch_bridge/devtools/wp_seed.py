"""Development seeding: write products, orders, carts and settings the way WordPress / WooCommerce / the plugin
store them, so tests and the demo exercise the same reads as a live site. Never used by the worker."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update

from wch_bridge.store.engine import translate_errors
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.timeutil import fmt


class SiteSeeder:
    """Inserts rows through ``wp`` (same engine, prefix and clock)."""

    def __init__(self, wp: WordPressData) -> None:
        self.wp = wp

    # ------------------------------------------------------------------ helpers
    def _now(self) -> tuple[datetime, datetime]:
        utc = self.wp.clock.now()
        return utc, self.wp.site.local(utc)

    def _post_values(self, **values: Any) -> dict[str, Any]:
        utc, local = self._now()
        row: dict[str, Any] = {
            "post_author": 1, "post_date": local, "post_date_gmt": utc, "post_content": "", "post_title": "",
            "post_excerpt": "", "post_status": "publish", "comment_status": "closed", "ping_status": "closed",
            "post_password": "", "post_name": "", "to_ping": "", "pinged": "", "post_modified": local,
            "post_modified_gmt": utc, "post_content_filtered": "", "post_parent": 0, "guid": "", "menu_order": 0,
            "post_type": "post", "post_mime_type": "", "comment_count": 0,
        }
        row.update(values)
        return row

    @translate_errors
    def add_post(self, meta: dict[str, Any] | None = None, **values: Any) -> int:
        """Insert a ``posts`` row (every NOT NULL column filled like ``wp_insert_post``) and its meta."""
        row = self._post_values(**values)  # reads the site's time zone: before the write transaction
        with self.wp.engine.begin() as conn:
            post_id = int(conn.execute(insert(self.wp.t.posts).values(**row)).inserted_primary_key[0])
            rows = [{"post_id": post_id, "meta_key": k, "meta_value": "" if v is None else str(v)}
                    for k, v in (meta or {}).items()]
            if rows:
                conn.execute(insert(self.wp.t.postmeta), rows)
        return post_id

    def add_attachment(self, url: str, attached_file: str | None = None) -> int:
        """An image attachment: ``guid`` = ``url`` and, as WordPress writes it, ``_wp_attached_file`` = the path
        under the uploads folder (taken from ``url`` when it has ``/wp-content/uploads/``)."""
        if attached_file is None and "/wp-content/uploads/" in url:
            attached_file = url.split("/wp-content/uploads/", 1)[1]
        meta = {"_wp_attached_file": attached_file} if attached_file else None
        return self.add_post(meta, post_type="attachment", post_status="inherit", guid=url,
                             post_mime_type="image/jpeg", post_title=url.rsplit("/", 1)[-1])

    @staticmethod
    def _stock_meta(stock: int | None, stock_status: str | None) -> dict[str, Any]:
        status = stock_status or ("outofstock" if stock is not None and stock <= 0 else "instock")
        meta: dict[str, Any] = {"_manage_stock": "yes" if stock is not None else "no", "_stock_status": status}
        if stock is not None:
            meta["_stock"] = stock
        return meta

    # ------------------------------------------------------------------ products
    def add_product(
        self,
        title: str,
        *,
        sku: str = "",
        regular_price: str | Decimal | None = "10.00",
        sale_price: str | Decimal | None = None,
        stock: int | None = None,
        stock_status: str | None = None,
        status: str = "publish",
        slug: str | None = None,
        content: str = "",
        excerpt: str = "",
        image_url: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        all_meta: dict[str, Any] = {"_sku": sku, **self._stock_meta(stock, stock_status)}
        if regular_price is not None:
            all_meta["_regular_price"] = regular_price
            all_meta["_price"] = sale_price if sale_price is not None else regular_price
        if sale_price is not None:
            all_meta["_sale_price"] = sale_price
        if image_url:
            all_meta["_thumbnail_id"] = self.add_attachment(image_url)
        all_meta.update(meta or {})
        return self.add_post(all_meta, post_type="product", post_title=title, post_status=status,
                             post_name=slug or title.lower().replace(" ", "-"), post_content=content,
                             post_excerpt=excerpt)

    def add_variation(
        self,
        parent_id: int,
        *,
        sku: str,
        regular_price: str | Decimal = "10.00",
        attributes: dict[str, str] | None = None,
        stock: int | None = None,
        stock_status: str | None = None,
        title: str = "",
    ) -> int:
        meta: dict[str, Any] = {"_sku": sku, "_regular_price": regular_price, "_price": regular_price,
                                **self._stock_meta(stock, stock_status)}
        for key, value in (attributes or {}).items():
            meta[f"attribute_{key}"] = value
        return self.add_post(meta, post_type="product_variation", post_parent=parent_id, post_title=title,
                             post_name=f"{sku.lower()}")

    @translate_errors
    def add_term(self, taxonomy: str, slug: str, *, parent: int = 0, name: str = "") -> int:
        """A taxonomy term (``terms`` + ``term_taxonomy`` rows, as ``wp_insert_term``); returns its ``term_id``."""
        with self.wp.engine.begin() as conn:
            term_id = int(conn.execute(insert(self.wp.t.terms).values(
                name=name or slug, slug=slug, term_group=0)).inserted_primary_key[0])
            conn.execute(insert(self.wp.t.term_taxonomy).values(
                term_id=term_id, taxonomy=taxonomy, description="", parent=parent, count=0))
        return term_id

    @translate_errors
    def set_terms(self, post_id: int, taxonomy: str, slugs_or_ids: list[str | int]) -> list[int]:
        """Attach terms to a post (``wp_set_object_terms``): ids, or slugs created when missing. Returns ids."""
        ids = [t if isinstance(t, int) else self._term_id(taxonomy, t) for t in slugs_or_ids]
        tt = self.wp.t.term_taxonomy
        with self.wp.engine.begin() as conn:
            for term_id in ids:
                tt_id = conn.execute(select(tt.c.term_taxonomy_id).where(
                    tt.c.term_id == term_id, tt.c.taxonomy == taxonomy)).scalar_one()
                conn.execute(insert(self.wp.t.term_relationships).values(
                    object_id=post_id, term_taxonomy_id=tt_id, term_order=0))
                conn.execute(update(tt).where(tt.c.term_taxonomy_id == tt_id).values(count=tt.c.count + 1))
        return ids

    def _term_id(self, taxonomy: str, slug: str) -> int:
        tm, tt = self.wp.t.terms, self.wp.t.term_taxonomy
        with self.wp.engine.connect() as conn:
            found = conn.execute(select(tm.c.term_id).select_from(tm.join(tt, tt.c.term_id == tm.c.term_id))
                                 .where(tm.c.slug == slug, tt.c.taxonomy == taxonomy)).scalar()
        return int(found) if found is not None else self.add_term(taxonomy, slug)

    # ------------------------------------------------------------------ orders
    @translate_errors
    def add_order(
        self,
        *,
        status: str = "processing",
        total: str = "0.00",
        currency: str = "USD",
        first_name: str = "",
        last_name: str = "",
        phone: str = "",
        country: str = "US",
        email: str = "",
        items: list[tuple[str, int, str]] = (),  # type: ignore[assignment]
        hpos: bool = True,
        wch_customer_phone: str | None = None,
        wch_order: bool = True,
    ) -> int:
        """An order in HPOS tables (with the placeholder post that reserves its id) or as a legacy post;
        ``wch_order``: it came through WhatsApp (meta ``_wch_order`` = ``1``, as the plugin's checkout writes it)."""
        utc, _ = self._now()
        wc_status = status if status.startswith("wc-") else f"wc-{status}"
        w = self.wp
        if hpos:
            order_id = self.add_post(post_type="shop_order_placehold", post_status="draft")
            with w.engine.begin() as conn:
                conn.execute(insert(w.t.orders).values(
                    id=order_id, status=wc_status, currency=currency, type="shop_order", tax_amount="0",
                    total_amount=total, customer_id=0, billing_email=email or None, date_created_gmt=utc,
                    date_updated_gmt=utc, parent_order_id=0, payment_method="cod", payment_method_title="Cash"))
                conn.execute(insert(w.t.order_addresses).values(
                    order_id=order_id, address_type="billing", first_name=first_name, last_name=last_name,
                    country=country, email=email or None, phone=phone))
                if wch_customer_phone:
                    conn.execute(insert(w.t.orders_meta).values(
                        order_id=order_id, meta_key="_wch_customer_phone", meta_value=wch_customer_phone))
                if wch_order:
                    conn.execute(insert(w.t.orders_meta).values(order_id=order_id, meta_key="_wch_order",
                                                                meta_value="1"))
        else:
            meta: dict[str, Any] = {
                "_order_currency": currency, "_order_total": total, "_billing_first_name": first_name,
                "_billing_last_name": last_name, "_billing_phone": phone, "_billing_country": country,
                "_billing_email": email, "_customer_user": 0,
            }
            if wch_customer_phone:
                meta["_wch_customer_phone"] = wch_customer_phone
            if wch_order:
                meta["_wch_order"] = "1"
            order_id = self.add_post(meta, post_type="shop_order", post_status=wc_status,
                                     post_title=f"Order &ndash; {fmt(utc)}")
        with w.engine.begin() as conn:
            for name, qty, line_total in items:
                item_id = int(conn.execute(insert(w.t.order_items).values(
                    order_item_name=name, order_item_type="line_item", order_id=order_id)).inserted_primary_key[0])
                conn.execute(insert(w.t.order_itemmeta), [
                    {"order_item_id": item_id, "meta_key": "_qty", "meta_value": str(qty)},
                    {"order_item_id": item_id, "meta_key": "_line_total", "meta_value": str(line_total)},
                ])
        return order_id

    # ------------------------------------------------------------------ carts and settings
    @translate_errors
    def add_cart(
        self,
        phone: str,
        items: list[dict[str, Any]],
        *,
        total: str = "0.00",
        status: str = "active",
        idle_hours: float = 0.0,
        reminder_sent_at: datetime | None = None,
    ) -> int:
        """A cart last updated ``idle_hours`` ago (site-local times, as the plugin writes them)."""
        _, local = self._now()
        updated = local - timedelta(hours=idle_hours)
        c = self.wp.t.carts
        with self.wp.engine.begin() as conn:
            return int(conn.execute(insert(c).values(
                customer_phone=phone, items=json.dumps(items), total=total, status=status,
                reminder_sent_at=reminder_sent_at, expires_at=updated + timedelta(hours=72),
                created_at=updated, updated_at=updated)).inserted_primary_key[0])

    @translate_errors
    def add_customer(self, phone: str, name: str = "", *, opt_in_marketing: bool = True,
                     notification_opt_out: bool | None = None, wc_customer_id: int | None = None) -> int:
        """A ``wch_customer_profiles`` row as the plugin's customer service writes it (phone in E.164 with ``+``);
        ``notification_opt_out`` only where the table has that column (M06-01 on)."""
        _, local = self._now()
        t = self.wp.t.customer_profiles
        values: dict[str, Any] = {"phone": phone, "name": name, "opt_in_marketing": int(opt_in_marketing),
                                  "wc_customer_id": wc_customer_id, "created_at": local, "updated_at": local}
        with self.wp.engine.begin() as conn:
            new_id = int(conn.execute(insert(t).values(**values)).inserted_primary_key[0])
            if notification_opt_out is not None:
                o = self.wp.t.customer_opt_out
                conn.execute(update(o).where(o.c.id == new_id).values(notification_opt_out=int(notification_opt_out)))
        return new_id

    def set_wch_settings(self, values: dict[str, Any]) -> None:
        self.wp.update_option("wch_settings", values)

    def set_options(self, **values: Any) -> None:
        for name, value in values.items():
            self.wp.update_option(name, value)
