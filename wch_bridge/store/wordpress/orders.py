"""WooCommerce orders from the authoritative store (reference D.2-D.4): the HPOS tables when the option
``woocommerce_custom_orders_table_enabled`` is ``yes``, else ``shop_order`` posts and their postmeta. Line items
come from ``woocommerce_order_items`` / ``_itemmeta`` in both modes. Orders are only read, never written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from wch_bridge.shop_data import Order, OrderItem
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.wordpress.base import WpBase
from wch_bridge.store.wordpress.tables import to_decimal

ORDER_TYPES = ("shop_order",)


def _status(raw: Any) -> str:
    text = str(raw or "")
    return text[3:] if text.startswith("wc-") else text


def _truthy(meta_value: str) -> bool:
    """A PHP-truthy meta value (``update_meta_data('_wch_order', true)`` stores ``"1"``)."""
    return meta_value.strip() not in ("", "0")


def _qty(raw: str | None) -> int:
    d = to_decimal(raw)
    return int(d) if d is not None else 1


class OrdersMixin(WpBase):
    @translate_errors
    def _order_items(self, order_id: int) -> tuple[OrderItem, ...]:
        oi, im = self.t.order_items, self.t.order_itemmeta
        with self.engine.connect() as conn:
            items = conn.execute(
                select(oi.c.order_item_id, oi.c.order_item_name)
                .where(oi.c.order_id == order_id, oi.c.order_item_type == "line_item")
                .order_by(oi.c.order_item_id)
            ).all()
            ids = [int(i.order_item_id) for i in items]
            meta: dict[int, dict[str, str]] = {i: {} for i in ids}
            if ids:
                for item_id, key, value in conn.execute(
                    select(im.c.order_item_id, im.c.meta_key, im.c.meta_value)
                    .where(im.c.order_item_id.in_(ids), im.c.meta_key.in_(["_qty", "_line_total", "_product_id"]))
                    .order_by(im.c.meta_id)
                ):
                    meta[int(item_id)].setdefault(str(key), "" if value is None else str(value))
        out = []
        for item in items:
            m = meta[int(item.order_item_id)]
            pid = to_decimal(m.get("_product_id"))
            out.append(OrderItem(name=str(item.order_item_name or ""), quantity=_qty(m.get("_qty")),
                                 total=to_decimal(m.get("_line_total")), product_id=int(pid) if pid else None))
        return tuple(out)

    @translate_errors
    def _hpos_order(self, order_id: int) -> Order | None:
        o, a, om = self.t.orders, self.t.order_addresses, self.t.orders_meta
        with self.engine.connect() as conn:
            row = conn.execute(select(o).where(o.c.id == order_id, o.c.type.in_(ORDER_TYPES))).first()
            if row is None:
                return None
            billing = conn.execute(
                select(a).where(a.c.order_id == order_id, a.c.address_type == "billing")
            ).first()
            wch_meta: dict[str, str] = {}
            for key, value in conn.execute(
                select(om.c.meta_key, om.c.meta_value)
                .where(om.c.order_id == order_id, om.c.meta_key.in_(["_wch_customer_phone", "_wch_order"]))
                .order_by(om.c.id)
            ):
                wch_meta.setdefault(str(key), "" if value is None else str(value))
        return Order(
            id=int(row.id),
            status=_status(row.status),
            currency=str(row.currency or ""),
            total=row.total_amount,
            storage="hpos",
            billing_first_name=str(billing.first_name or "") if billing else "",
            billing_last_name=str(billing.last_name or "") if billing else "",
            billing_phone=str(billing.phone or "") if billing else "",
            billing_country=str(billing.country or "") if billing else "",
            billing_email=str((billing.email if billing else None) or row.billing_email or ""),
            wch_customer_phone=wch_meta.get("_wch_customer_phone", ""),
            wch_order=_truthy(wch_meta.get("_wch_order", "")),
            date_created_gmt=row.date_created_gmt,
            items=self._order_items(order_id),
        )

    @translate_errors
    def _legacy_order(self, order_id: int) -> Order | None:
        p = self.t.posts
        with self.engine.connect() as conn:
            row = conn.execute(
                select(p.c.ID, p.c.post_status, p.c.post_date_gmt)
                .where(p.c.ID == order_id, p.c.post_type.in_(ORDER_TYPES))
            ).first()
        if row is None:
            return None
        meta = self.post_meta_map([order_id]).get(order_id, {})

        def m(key: str) -> str:
            values = meta.get(key) or []
            return values[0] if values else ""

        return Order(
            id=int(row.ID),
            status=_status(row.post_status),
            currency=m("_order_currency"),
            total=to_decimal(m("_order_total")),
            storage="posts",
            billing_first_name=m("_billing_first_name"),
            billing_last_name=m("_billing_last_name"),
            billing_phone=m("_billing_phone"),
            billing_country=m("_billing_country"),
            billing_email=m("_billing_email"),
            wch_customer_phone=m("_wch_customer_phone"),
            wch_order=_truthy(m("_wch_order")),
            date_created_gmt=row.post_date_gmt,
            items=self._order_items(order_id),
        )

    def get_order(self, order_id: int) -> Order | None:
        """The order from the authoritative store, or None (placeholder posts under HPOS are never read)."""
        order_id = int(order_id)
        return self._hpos_order(order_id) if self.hpos_enabled() else self._legacy_order(order_id)
