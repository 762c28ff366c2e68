"""Plain data read from WordPress / WooCommerce / the plugin's tables (filled by ``store.wordpress``, read by handlers).

Money is ``Decimal`` (never float); dates are naive ``datetime`` (``*_gmt`` in UTC, cart times site-local as the
plugin writes them with ``current_time('mysql')``). No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass(frozen=True)
class Product:
    """A ``product`` or ``product_variation`` post with the postmeta the catalog needs."""

    id: int
    post_type: str
    status: str
    title: str
    description: str
    slug: str
    parent_id: int = 0
    sku: str = ""
    regular_price: Decimal | None = None
    sale_price: Decimal | None = None
    sale_from: int | None = None  # Unix timestamps bounding the sale (_sale_price_dates_from/_to)
    sale_to: int | None = None
    price: Decimal | None = None  # _price: the active price WooCommerce computed
    manage_stock: bool = False
    stock_quantity: int | None = None
    stock_status: str = "instock"
    image_url: str | None = None
    permalink: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    catalog_id: str | None = None  # _wch_catalog_id
    variations: tuple[Product, ...] = ()
    # product_cat term ids and product_visibility term slugs (a variation has no terms: its parent's)
    category_ids: tuple[int, ...] = ()
    visibility: frozenset[str] = frozenset()

    @property
    def is_variation(self) -> bool:
        return self.post_type == "product_variation"

    @property
    def retailer_id(self) -> str:
        """Catalog ``id``: the post ID as text, as the plugin sends it (docs/plugin-contracts.md, "Catalog"); its
        product messages address items by this ``product_retailer_id``."""
        return str(self.id)

    @property
    def catalog_visibility(self) -> str:
        """WooCommerce's ``get_catalog_visibility()`` from the ``product_visibility`` terms: ``hidden`` (both
        ``exclude-from-catalog`` and ``exclude-from-search``), ``search`` (only ``exclude-from-catalog``),
        ``catalog`` (only ``exclude-from-search``), else ``visible``."""
        no_catalog, no_search = "exclude-from-catalog" in self.visibility, "exclude-from-search" in self.visibility
        if no_catalog and no_search:
            return "hidden"
        return "search" if no_catalog else "catalog" if no_search else "visible"

    @property
    def in_stock(self) -> bool:
        """``is_in_stock()``: any stock status but ``outofstock`` (``onbackorder`` counts as in stock)."""
        return self.stock_status != "outofstock"

    def sale_active(self, now_ts: int) -> bool:
        if self.sale_price is None:
            return False
        if self.sale_from is not None and now_ts < self.sale_from:
            return False
        return not (self.sale_to is not None and now_ts > self.sale_to)


@dataclass(frozen=True)
class OrderItem:
    name: str
    quantity: int
    total: Decimal | None = None
    product_id: int | None = None


@dataclass(frozen=True)
class Order:
    """An order from the authoritative store (HPOS ``wc_orders`` or legacy ``shop_order`` posts)."""

    id: int
    status: str  # without the ``wc-`` prefix: processing, completed, ...
    currency: str
    total: Decimal | None
    storage: str  # "hpos" or "posts"
    billing_first_name: str = ""
    billing_last_name: str = ""
    billing_phone: str = ""
    billing_country: str = ""
    billing_email: str = ""
    wch_customer_phone: str = ""  # order meta _wch_customer_phone (the plugin's preferred number)
    wch_order: bool = False  # order meta _wch_order: the order came through WhatsApp (the plugin notifies only those)
    date_created_gmt: datetime | None = None
    items: tuple[OrderItem, ...] = ()

    @property
    def phone(self) -> str:
        return self.wch_customer_phone or self.billing_phone


@dataclass(frozen=True)
class CartItem:
    name: str
    quantity: int
    price: Decimal | None = None
    product_id: int | None = None


@dataclass(frozen=True)
class Cart:
    """A ``{prefix}wch_carts`` row. ``items`` decoded from the JSON list the plugin stores."""

    id: int
    customer_phone: str
    status: str
    total: Decimal
    items: tuple[CartItem, ...]
    updated_at: datetime | None
    created_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    expires_at: datetime | None = None
    raw_items: Any = None
    items_error: str | None = None  # why ``items`` could not be read (malformed JSON): no reminder is sent


@dataclass(frozen=True)
class CustomerProfile:
    """A ``{prefix}wch_customer_profiles`` row (the columns the bridge reads)."""

    phone: str
    name: str
    opt_in_marketing: bool
    notification_opt_out: bool = False
    wc_customer_id: int | None = None


@dataclass(frozen=True)
class CleanupResult:
    """What ``delete_idle_carts`` did: ``mode`` is ``deleted`` (``none`` when the table is missing)."""

    mode: str
    count: int
    cutoff: datetime
    table_found: bool = True


#: A few common currency symbols (WooCommerce's get_woocommerce_currency_symbols()); others print the ISO code.
CURRENCY_SYMBOLS = {
    "USD": "$", "EUR": "€", "GBP": "£", "INR": "₹", "JPY": "¥", "CNY": "¥", "AUD": "$", "CAD": "$", "NZD": "$",
    "BRL": "R$", "MXN": "$", "ZAR": "R", "NGN": "₦", "KES": "KSh", "AED": "د.إ", "SAR": "ر.س", "EGP": "EGP",
    "TRY": "₺", "RUB": "₽", "KRW": "₩", "IDR": "Rp", "PHP": "₱", "PKR": "₨", "BDT": "৳", "CHF": "CHF",
    "SEK": "kr", "NOK": "kr", "DKK": "kr", "PLN": "zł", "ILS": "₪", "SGD": "$", "HKD": "$", "MYR": "RM",
}


@dataclass(frozen=True)
class PriceFormat:
    """The store's price display options (``woocommerce_currency``, ``_currency_pos``, ``_price_*_sep``,
    ``_price_num_decimals``): ``wc_price()`` without its HTML."""

    currency: str = "USD"
    decimals: int = 2
    position: str = "left"  # left | right | left_space | right_space
    thousand_sep: str = ","
    decimal_sep: str = "."

    @property
    def symbol(self) -> str:
        return CURRENCY_SYMBOLS.get(self.currency.upper(), self.currency.upper())

    def number(self, amount: Decimal) -> str:
        q = Decimal(1).scaleb(-self.decimals) if self.decimals > 0 else Decimal(1)
        value = amount.quantize(q, rounding=ROUND_HALF_UP)
        sign = "-" if value < 0 else ""
        text = f"{abs(value):f}"
        whole, _, frac = text.partition(".")
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        out = self.thousand_sep.join(groups)
        if self.decimals > 0:
            out += self.decimal_sep + frac
        return sign + out

    def format(self, amount: Decimal) -> str:
        """``$59.99``, ``59,99 €`` ... as plain text."""
        num, sym = self.number(amount), self.symbol
        return {
            "right": f"{num}{sym}",
            "left_space": f"{sym} {num}",
            "right_space": f"{num} {sym}",
        }.get(self.position, f"{sym}{num}")

    def catalog(self, amount: Decimal) -> str:
        """The Catalog API form ``"59.99 USD"`` (decimal point, no grouping)."""
        q = Decimal(1).scaleb(-self.decimals) if self.decimals > 0 else Decimal(1)
        return f"{amount.quantize(q, rounding=ROUND_HALF_UP):f} {self.currency.upper()}"
