"""SQLAlchemy Table objects for the WordPress / WooCommerce / plugin tables the hooks read (query building only;
the DDL is in ``sql/*/wordpress.sql``, ``woocommerce.sql``, ``wch_plugin.sql``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text
from sqlalchemy.types import TypeDecorator

from wch_bridge.store.engine import validate_prefix
from wch_bridge.store.tables import WpDate


class Dec(TypeDecorator[Decimal]):
    """A DECIMAL column read as ``Decimal`` on every backend (SQLite hands back floats or text), bound as text."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return to_decimal(value)


def to_decimal(value: Any) -> Decimal | None:
    """``"59.99"``, ``59.99``, ``Decimal`` -> ``Decimal('59.99')``; empty / junk -> None (never via float maths)."""
    if value is None or isinstance(value, bool):
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    if not text:
        return None
    try:
        out = Decimal(text)
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


class WpTables:
    """posts/postmeta, HPOS order tables, order items and the plugin's carts under ``prefix``."""

    def __init__(self, prefix: str) -> None:
        p = validate_prefix(prefix)
        self.prefix = p
        md = MetaData()
        self.posts = Table(
            f"{p}posts",
            md,
            Column("ID", BigInteger, primary_key=True, autoincrement=True),
            Column("post_author", BigInteger),
            Column("post_date", WpDate),
            Column("post_date_gmt", WpDate),
            Column("post_content", Text),
            Column("post_title", Text),
            Column("post_excerpt", Text),
            Column("post_status", String(20)),
            Column("comment_status", String(20)),
            Column("ping_status", String(20)),
            Column("post_password", String(255)),
            Column("post_name", String(200)),
            Column("to_ping", Text),
            Column("pinged", Text),
            Column("post_modified", WpDate),
            Column("post_modified_gmt", WpDate),
            Column("post_content_filtered", Text),
            Column("post_parent", BigInteger),
            Column("guid", String(255)),
            Column("menu_order", Integer),
            Column("post_type", String(20)),
            Column("post_mime_type", String(100)),
            Column("comment_count", BigInteger),
        )
        self.postmeta = Table(
            f"{p}postmeta",
            md,
            Column("meta_id", BigInteger, primary_key=True, autoincrement=True),
            Column("post_id", BigInteger),
            Column("meta_key", String(255)),
            Column("meta_value", Text),
        )
        # taxonomy terms (product categories, product_visibility flags): read only
        self.terms = Table(
            f"{p}terms",
            md,
            Column("term_id", BigInteger, primary_key=True, autoincrement=True),
            Column("name", String(200)),
            Column("slug", String(200)),
            Column("term_group", BigInteger),
        )
        self.term_taxonomy = Table(
            f"{p}term_taxonomy",
            md,
            Column("term_taxonomy_id", BigInteger, primary_key=True, autoincrement=True),
            Column("term_id", BigInteger),
            Column("taxonomy", String(32)),
            Column("description", Text),
            Column("parent", BigInteger),
            Column("count", BigInteger),
        )
        self.term_relationships = Table(
            f"{p}term_relationships",
            md,
            Column("object_id", BigInteger, primary_key=True),
            Column("term_taxonomy_id", BigInteger, primary_key=True),
            Column("term_order", Integer),
        )
        self.orders = Table(
            f"{p}wc_orders",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=False),
            Column("status", String(20)),
            Column("currency", String(10)),
            Column("type", String(20)),
            Column("tax_amount", Dec),
            Column("total_amount", Dec),
            Column("customer_id", BigInteger),
            Column("billing_email", String(320)),
            Column("date_created_gmt", WpDate),
            Column("date_updated_gmt", WpDate),
            Column("parent_order_id", BigInteger),
            Column("payment_method", String(100)),
            Column("payment_method_title", Text),
        )
        self.order_addresses = Table(
            f"{p}wc_order_addresses",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("order_id", BigInteger),
            Column("address_type", String(20)),
            Column("first_name", Text),
            Column("last_name", Text),
            Column("country", Text),
            Column("email", String(320)),
            Column("phone", String(100)),
        )
        self.orders_meta = Table(
            f"{p}wc_orders_meta",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("order_id", BigInteger),
            Column("meta_key", String(255)),
            Column("meta_value", Text),
        )
        self.order_items = Table(
            f"{p}woocommerce_order_items",
            md,
            Column("order_item_id", BigInteger, primary_key=True, autoincrement=True),
            Column("order_item_name", Text),
            Column("order_item_type", String(200)),
            Column("order_id", BigInteger),
        )
        self.order_itemmeta = Table(
            f"{p}woocommerce_order_itemmeta",
            md,
            Column("meta_id", BigInteger, primary_key=True, autoincrement=True),
            Column("order_item_id", BigInteger),
            Column("meta_key", String(255)),
            Column("meta_value", Text),
        )
        # Only the columns every customer-profile schema has (M00-02 ... DB_VERSION 2.6.0); later columns such as
        # notification_opt_out are looked up by name (store/wordpress/customers.py).
        self.customer_profiles = Table(
            f"{p}wch_customer_profiles",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("phone", String(20)),
            Column("wc_customer_id", BigInteger),
            Column("name", String(100)),
            Column("opt_in_marketing", Integer),
            Column("created_at", WpDate),
            Column("updated_at", WpDate),
        )
        # The same table's M06-01 column, used only where the table has it (its own MetaData: same name).
        self.customer_opt_out = Table(
            f"{p}wch_customer_profiles",
            MetaData(),
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("phone", String(20)),
            Column("notification_opt_out", Integer),
        )
        # Only the columns every carts schema has (M00-06 ... DB_VERSION 2.6.0).
        self.carts = Table(
            f"{p}wch_carts",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("customer_phone", String(20)),
            Column("items", Text),
            Column("total", Dec),
            Column("status", String(20)),
            Column("reminder_sent_at", WpDate),
            Column("expires_at", WpDate),
            Column("created_at", WpDate),
            Column("updated_at", WpDate),
        )
