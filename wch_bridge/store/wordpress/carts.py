"""The plugin's ``{prefix}wch_carts`` (reference 3.2/3.5). Times in this table are site-local, as the plugin writes
them with ``current_time('mysql')``; callers pass site-local cut-offs.

The cleanup deletes idle active carts on every schema, as the plugin's hook handlers do (E1
``class-wch-cart-cleanup-handler.php``, head ``Features/AbandonedCart/CleanupHandler.php``): ``customer_phone`` is
UNIQUE and the plugin opens a customer's next cart with a plain INSERT when it finds no *active* one, so a row kept
as ``expired`` would lock that customer out of shopping (docs/plugin-contracts.md, "Carts")."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, inspect, select, update

from wch_bridge.shop_data import Cart, CartItem, CleanupResult
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.wordpress.base import WpBase
from wch_bridge.store.wordpress.tables import to_decimal

_IN_LIST = re.compile(r"\bstatus\b\s+IN\s*\(([^)]*)\)", re.I)


def _decode_items(raw: Any) -> tuple[tuple[CartItem, ...], Any, str | None]:
    """``(items, decoded value, error)``: ``error`` says why a non-empty ``items`` column is not a JSON list."""
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) and raw else raw
    except ValueError as exc:
        return (), raw, f"items is not valid JSON ({exc.msg} at character {exc.pos})"
    if isinstance(value, dict):
        value = list(value.values())
    if value is None:
        return (), value, None
    if not isinstance(value, list):
        return (), value, f"items is JSON {type(value).__name__}, not a list of cart items"
    items = []
    for entry in value:
        if not isinstance(entry, dict):
            continue
        name = entry.get("product_name") or entry.get("name") or "Product"
        qty = to_decimal(entry.get("quantity"))
        price = to_decimal(entry.get("price_at_add", entry.get("price")))
        pid = to_decimal(entry.get("product_id"))
        items.append(
            CartItem(name=str(name), quantity=int(qty) if qty is not None and qty > 0 else 1, price=price,
                     product_id=int(pid) if pid else None)
        )
    return tuple(items), value, None


class CartsMixin(WpBase):
    @translate_errors
    def carts_table_exists(self) -> bool:
        return self.t.carts.name in inspect(self.engine).get_table_names()

    @translate_errors
    def cart_status_values(self) -> frozenset[str] | None:
        """The values ``wch_carts.status`` accepts (its ENUM / CHECK list), or None when unrestricted."""
        insp = inspect(self.engine)
        name = self.t.carts.name
        for col in insp.get_columns(name):
            if col["name"] == "status":
                enums = getattr(col["type"], "enums", None)
                if enums:
                    return frozenset(str(e) for e in enums)
        if self.dialect == "sqlite":
            for check in insp.get_check_constraints(name):
                m = _IN_LIST.search(str(check.get("sqltext") or ""))
                if m:
                    return frozenset(v.strip().strip("'\"") for v in m.group(1).split(","))
        return None

    @translate_errors
    def get_cart(self, cart_id: int) -> Cart | None:
        c = self.t.carts
        with self.engine.connect() as conn:
            row = conn.execute(select(c).where(c.c.id == int(cart_id))).first()
        if row is None:
            return None
        items, raw, items_error = _decode_items(row.items)
        return Cart(
            id=int(row.id),
            customer_phone=str(row.customer_phone or ""),
            status=str(row.status or ""),
            total=row.total if row.total is not None else to_decimal("0"),  # type: ignore[arg-type]
            items=items,
            updated_at=row.updated_at,
            created_at=row.created_at,
            reminder_sent_at=row.reminder_sent_at,
            expires_at=row.expires_at,
            raw_items=raw,
            items_error=items_error,
        )

    def _idle(self, cutoff_local: datetime) -> Any:
        c = self.t.carts
        return (c.c.status == "active") & (c.c.updated_at < cutoff_local)

    @translate_errors
    def list_idle_carts(self, cutoff_local: datetime, limit: int = 1000) -> list[int]:
        """Ids of active carts last updated before ``cutoff_local`` (site-local), oldest first."""
        c = self.t.carts
        with self.engine.connect() as conn:
            return [
                int(r[0])
                for r in conn.execute(
                    select(c.c.id).where(self._idle(cutoff_local)).order_by(c.c.updated_at, c.c.id).limit(limit)
                )
            ]

    @translate_errors
    def count_idle_carts(self, cutoff_local: datetime) -> int:
        c = self.t.carts
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(c).where(self._idle(cutoff_local))).scalar_one())

    @retry_transient
    @translate_errors
    def delete_idle_carts(self, cutoff_local: datetime) -> CleanupResult:
        """Delete every active cart idle since before ``cutoff_local`` (see the module docstring for why)."""
        if not self.carts_table_exists():
            return CleanupResult(mode="none", count=0, cutoff=cutoff_local, table_found=False)
        c = self.t.carts
        with self.engine.begin() as conn:
            res = conn.execute(delete(c).where(self._idle(cutoff_local)))
        return CleanupResult(mode="deleted", count=int(res.rowcount), cutoff=cutoff_local)

    @retry_transient
    @translate_errors
    def mark_reminder_sent(self, cart_id: int, when_local: datetime, updated_at: datetime | None) -> bool:
        """Set ``reminder_sent_at`` unless the cart changed (``updated_at``) since it was read."""
        c = self.t.carts
        cond = c.c.id == int(cart_id)
        cond = cond & (c.c.updated_at == updated_at if updated_at is not None else c.c.updated_at.is_(None))
        with self.engine.begin() as conn:
            res = conn.execute(update(c).where(cond).values(reminder_sent_at=when_local))
        return res.rowcount == 1
