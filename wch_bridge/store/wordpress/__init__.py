"""``WordPressData``: everything the hooks read from (and the little they write to) a WordPress + WooCommerce site.

Handlers never import this module: ``app.build_services`` puts an instance in ``Services.wp``. The verbs, by part:

* options and transients (``base``): ``get_option``/``get_option_raw``/``update_option``/``delete_option``,
  ``get_transient``/``set_transient``/``update_transient`` (atomic read-modify-write), ``wch_settings()``,
  ``price_format()``, ``site``/``local_timestamp()``, ``hpos_enabled()``,
  ``get_post_meta``/``update_post_meta``;
* products (``products``): ``get_product(id)`` -> ``shop_data.Product`` with variations, prices, stock, image,
  permalink;
* orders (``orders``): ``get_order(id)`` -> ``shop_data.Order`` from HPOS or legacy posts;
* carts (``carts``): ``get_cart``, ``list_idle_carts``, ``count_idle_carts``, ``delete_idle_carts``,
  ``cart_status_values``, ``mark_reminder_sent``;
* customers (``customers``): ``customer_profiles(phones)`` -> ``shop_data.CustomerProfile`` by phone;
* inbox (``inbox``): ``record_outbound`` (``wch_conversations``/``wch_messages``), ``log_notification``.

Every statement is SQLAlchemy Core with bound parameters; table names come from ``WpTables`` (validated prefix)."""

from __future__ import annotations

from wch_bridge.store.wordpress.carts import CartsMixin
from wch_bridge.store.wordpress.customers import CustomersMixin
from wch_bridge.store.wordpress.inbox import InboxMixin
from wch_bridge.store.wordpress.orders import OrdersMixin
from wch_bridge.store.wordpress.products import ProductsMixin

__all__ = ["WordPressData"]


class WordPressData(ProductsMixin, OrdersMixin, CartsMixin, CustomersMixin, InboxMixin):
    """WordPress / WooCommerce / WCH plugin data under one table prefix (see the module docstring)."""
