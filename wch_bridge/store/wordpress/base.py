"""WordPress options, transients, post meta and site facts (the base of ``store.wordpress.WordPressData``).

Transients live in ``{prefix}options`` as WordPress writes them without a persistent object cache:
``_transient_<name>`` (value, ``maybe_serialize``d) and ``_transient_timeout_<name>`` (Unix expiry), both with
autoload ``no``. ``update_transient`` is an atomic read-modify-write: one transaction that locks the value row
(``SELECT ... FOR UPDATE`` on MySQL; SQLite transactions start with ``BEGIN IMMEDIATE``, see ``engine.py``), and that
is retried when two writers race to create the row (the UNIQUE ``option_name`` rejects the second insert)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from wch_bridge import phpser
from wch_bridge.errors import StoreError
from wch_bridge.shop_data import PriceFormat
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.tables import Tables
from wch_bridge.store.wordpress.tables import WpTables
from wch_bridge.timeutil import Clock, SiteTime

log = logging.getLogger("wch_bridge.store.wordpress")

_RACE_ATTEMPTS = 5


def _missing_table(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "doesn't exist" in text or "no such table" in text


class WpBase:
    """Connection, tables and the option/transient/post-meta verbs shared by the WordPressData parts."""

    def __init__(
        self, engine: Engine, prefix: str, *, clock: Clock | None = None, site: SiteTime | None = None
    ) -> None:
        self.engine = engine
        self.dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
        self.clock = clock or Clock()
        self.t = WpTables(prefix)
        self.opt = Tables(prefix).options
        self._site = site

    @property
    def prefix(self) -> str:
        return self.t.prefix

    # ------------------------------------------------------------------ site facts
    @property
    def site(self) -> SiteTime:
        """The site's time zone (``timezone_string`` / ``gmt_offset``), read once."""
        if self._site is None:
            self._site = SiteTime.from_options(
                self.get_option_raw("timezone_string"), self.get_option_raw("gmt_offset")
            )
        return self._site

    def local_timestamp(self) -> int:
        """``current_time('timestamp')``: Unix seconds shifted by the site's UTC offset (what the plugin stores)."""
        now = self.clock.now()
        return int(self.clock.timestamp()) + int((self.site.local(now) - now).total_seconds())

    def price_format(self) -> PriceFormat:
        """The store currency and ``wc_price()`` display options."""
        try:
            decimals = int(str(self.get_option_raw("woocommerce_price_num_decimals") or "2"))
        except ValueError:
            decimals = 2
        thousand = self.get_option_raw("woocommerce_price_thousand_sep")
        decimal = self.get_option_raw("woocommerce_price_decimal_sep")
        return PriceFormat(
            currency=(self.get_option_raw("woocommerce_currency") or "USD").strip().upper() or "USD",
            decimals=max(0, min(decimals, 8)),
            position=(self.get_option_raw("woocommerce_currency_pos") or "left").strip() or "left",
            thousand_sep="," if thousand is None else thousand,
            decimal_sep=(decimal or "."),
        )

    def wch_settings(self) -> dict[str, Any]:
        """The plugin's ``wch_settings`` option unserialized (``{}`` when missing or unreadable)."""
        value = self.get_option("wch_settings")
        return value if isinstance(value, dict) else {}

    def hpos_enabled(self) -> bool:
        """WooCommerce's HPOS tables are authoritative (``woocommerce_custom_orders_table_enabled`` = ``yes``)."""
        return (self.get_option_raw("woocommerce_custom_orders_table_enabled") or "").strip() == "yes"

    # ------------------------------------------------------------------ options
    def options_table_exists(self) -> bool:
        """The site has ``{prefix}options`` (a bare Action Scheduler schema, as in some tests, has not)."""
        return self.opt.name in inspect(self.engine).get_table_names()

    @translate_errors
    def get_option_raw(self, name: str) -> str | None:
        """The stored ``option_value`` text, or None (also when there is no options table)."""
        o = self.opt
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(o.c.option_value).where(o.c.option_name == name)).scalar()
        except Exception as exc:  # noqa: BLE001 - a bare Action Scheduler schema has no options table
            if _missing_table(exc):
                return None
            raise

    def get_option(self, name: str, default: Any = None) -> Any:
        """``get_option()``: the value ``maybe_unserialize``d, or ``default`` when missing."""
        raw = self.get_option_raw(name)
        return default if raw is None else phpser.maybe_unserialize(raw)

    def _write_option(self, conn: Connection, name: str, text: str, autoload: str, *, exists: bool) -> None:
        o = self.opt
        if exists:
            conn.execute(update(o).where(o.c.option_name == name).values(option_value=text))
        else:
            conn.execute(insert(o).values(option_name=name, option_value=text, autoload=autoload))

    def _locked_value(self, conn: Connection, name: str) -> tuple[bool, str | None]:
        o = self.opt
        sel = select(o.c.option_value).where(o.c.option_name == name)
        if self.dialect == "mysql":
            sel = sel.with_for_update()
        row = conn.execute(sel).first()
        return (row is not None, row[0] if row is not None else None)

    def _race_retry(self, fn: Callable[[], Any], what: str) -> Any:
        for attempt in range(1, _RACE_ATTEMPTS + 1):
            try:
                return fn()
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError) or attempt == _RACE_ATTEMPTS:
                    raise
        raise StoreError(f"{what}: gave up after {_RACE_ATTEMPTS} concurrent inserts")  # pragma: no cover

    def update_option(self, name: str, value: Any, autoload: str = "yes") -> None:
        """``update_option()``: insert or replace (``maybe_serialize``d); autoload only applies to a new row."""
        text = phpser.maybe_serialize(value)

        @retry_transient
        @translate_errors
        def write() -> None:
            with self.engine.begin() as conn:
                exists, _ = self._locked_value(conn, name)
                self._write_option(conn, name, text, autoload, exists=exists)

        self._race_retry(write, f"option {name}")

    @retry_transient
    @translate_errors
    def delete_option(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.opt).where(self.opt.c.option_name == name))

    # ------------------------------------------------------------------ transients
    @staticmethod
    def _transient_names(name: str) -> tuple[str, str]:
        if not name or len(name) > 172:
            raise StoreError(f"transient name must be 1-172 characters, got {len(name or '')}")
        return f"_transient_{name}", f"_transient_timeout_{name}"

    def _expired(self, timeout_text: str | None) -> bool:
        if timeout_text is None:
            return False
        try:
            return int(str(timeout_text).strip() or "0") < int(self.clock.timestamp())
        except ValueError:
            return True

    @translate_errors
    def get_transient(self, name: str) -> Any:
        """``get_transient()``: the value, or None when missing or expired (expired rows are left to WordPress)."""
        value_name, timeout_name = self._transient_names(name)
        o = self.opt
        with self.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    select(o.c.option_name, o.c.option_value).where(o.c.option_name.in_([value_name, timeout_name]))
                ).all()
            )
        if value_name not in rows or self._expired(rows.get(timeout_name)):
            return None
        return phpser.maybe_unserialize(rows[value_name])

    def _put_transient(self, conn: Connection, name: str, value: Any, ttl: int, exists: bool) -> None:
        value_name, timeout_name = self._transient_names(name)
        o = self.opt
        has_timeout = (
            conn.execute(select(o.c.option_id).where(o.c.option_name == timeout_name)).first() is not None
        )
        expiry = str(int(self.clock.timestamp()) + max(0, int(ttl)))
        if ttl > 0:
            self._write_option(conn, timeout_name, expiry, "no", exists=has_timeout)
        self._write_option(conn, value_name, phpser.maybe_serialize(value), "no", exists=exists)

    def set_transient(self, name: str, value: Any, ttl: int) -> None:
        """``set_transient($name, $value, $ttl)`` (both rows written in one transaction)."""
        value_name, _ = self._transient_names(name)

        @retry_transient
        @translate_errors
        def write() -> None:
            with self.engine.begin() as conn:
                exists, _ = self._locked_value(conn, value_name)
                self._put_transient(conn, name, value, ttl, exists)

        self._race_retry(write, f"transient {name}")

    def update_transient(self, name: str, fn: Callable[..., Any], ttl: int, *, pass_conn: bool = False) -> Any:
        """Atomically ``set_transient(name, fn(get_transient(name)), ttl)``; returns the new value.

        ``fn`` receives None when the transient is missing or expired, and may run more than once (a lost race to
        create the row is retried), so it must only depend on what it reads. With ``pass_conn`` it is called as
        ``fn(current, conn)``: ``conn`` is the open transaction, for store reads that must see the same locked
        state (on SQLite a second connection would wait for this one)."""
        value_name, timeout_name = self._transient_names(name)
        o = self.opt

        @retry_transient
        @translate_errors
        def rmw() -> Any:
            with self.engine.begin() as conn:
                exists, raw = self._locked_value(conn, value_name)
                timeout = conn.execute(select(o.c.option_value).where(o.c.option_name == timeout_name)).scalar()
                current = None if raw is None or self._expired(timeout) else phpser.maybe_unserialize(raw)
                new = fn(current, conn) if pass_conn else fn(current)
                self._put_transient(conn, name, new, ttl, exists)
                return new

        return self._race_retry(rmw, f"transient {name}")

    # ------------------------------------------------------------------ post meta
    @translate_errors
    def get_post_meta(self, post_id: int, key: str) -> str | None:
        """The first ``meta_value`` of ``key`` on the post (``get_post_meta($id, $key, true)``), raw text."""
        pm = self.t.postmeta
        with self.engine.connect() as conn:
            return conn.execute(
                select(pm.c.meta_value)
                .where(pm.c.post_id == post_id, pm.c.meta_key == key)
                .order_by(pm.c.meta_id)
                .limit(1)
            ).scalar()

    @retry_transient
    @translate_errors
    def update_post_meta(self, post_id: int, values: dict[str, Any]) -> None:
        """``update_post_meta()`` for several keys in one transaction (scalars stored as WordPress casts them)."""
        pm = self.t.postmeta
        with self.engine.begin() as conn:
            for key, value in values.items():
                text = phpser.maybe_serialize(value)
                res = conn.execute(
                    update(pm).where(pm.c.post_id == post_id, pm.c.meta_key == key).values(meta_value=text)
                )
                if res.rowcount == 0:
                    found = conn.execute(
                        select(pm.c.meta_id).where(pm.c.post_id == post_id, pm.c.meta_key == key).limit(1)
                    ).first()
                    if found is None:
                        conn.execute(insert(pm).values(post_id=post_id, meta_key=key, meta_value=text))

    @translate_errors
    def post_meta_map(self, post_ids: list[int]) -> dict[int, dict[str, list[str]]]:
        """``{post_id: {meta_key: [values in meta_id order]}}`` for the given posts (one query)."""
        if not post_ids:
            return {}
        pm = self.t.postmeta
        out: dict[int, dict[str, list[str]]] = {int(i): {} for i in post_ids}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pm.c.post_id, pm.c.meta_key, pm.c.meta_value)
                .where(pm.c.post_id.in_(list(post_ids)))
                .order_by(pm.c.meta_id)
            )
            for post_id, key, value in rows:
                if key is not None:
                    out[int(post_id)].setdefault(str(key), []).append("" if value is None else str(value))
        return out
