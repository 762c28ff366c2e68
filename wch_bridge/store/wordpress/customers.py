"""The plugin's ``{prefix}wch_customer_profiles`` (docs/plugin-contracts.md, "Tables"): one row per WhatsApp
customer, ``phone`` in E.164 with ``+`` (the plugin's ``normalize_phone``), ``name``, ``opt_in_marketing`` and, from
M06-01 on, ``notification_opt_out``. Read by phone: the raw value the producer stored and its E.164 form."""

from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import inspect, select

from wch_bridge.shop_data import CustomerProfile
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.wordpress.base import WpBase, _missing_table


def _forms(phone: str) -> list[str]:
    """The value as given, the plugin's ``normalize_phone`` form (keep digits and ``+``, add a leading ``+``) and
    the bare digits."""
    raw = (phone or "").strip()
    digits = re.sub(r"\D", "", raw)
    forms = [raw] + ([f"+{digits}", digits] if digits else [])
    return list(dict.fromkeys(f for f in forms if f))


class CustomersMixin(WpBase):
    @translate_errors
    def customer_profiles_exist(self) -> bool:
        return self.t.customer_profiles.name in inspect(self.engine).get_table_names()

    @translate_errors
    def _profile_columns(self) -> frozenset[str]:
        return frozenset(c["name"] for c in inspect(self.engine).get_columns(self.t.customer_profiles.name))

    def customer_profiles(self, phones: list[str]) -> dict[str, CustomerProfile]:
        """``{phone as given: profile}`` for the phones that have a profile (none when the table is missing)."""
        wanted = {p: _forms(p) for p in phones if isinstance(p, str) and p.strip()}
        lookup = sorted({f for forms in wanted.values() for f in forms})
        if not lookup:
            return {}
        try:
            cols = self._profile_columns()
        except Exception as exc:  # noqa: BLE001 - a missing table means no profiles
            if _missing_table(exc):
                return {}
            raise
        if not cols:
            return {}
        found = self._read_profiles(lookup, "notification_opt_out" in cols)
        out: dict[str, CustomerProfile] = {}
        for phone, forms in wanted.items():
            for form in forms:
                if form in found:
                    out[phone] = found[form]
                    break
        return out

    @translate_errors
    def _read_profiles(self, lookup: list[str], has_opt_out: bool) -> dict[str, CustomerProfile]:
        t, o = self.t.customer_profiles, self.t.customer_opt_out
        found: dict[str, CustomerProfile] = {}
        opted_out: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(lookup), 500):
                chunk = lookup[i:i + 500]
                stmt = select(t.c.phone, t.c.name, t.c.opt_in_marketing, t.c.wc_customer_id).where(
                    t.c.phone.in_(chunk))
                for row in conn.execute(stmt):
                    found[str(row.phone)] = CustomerProfile(
                        phone=str(row.phone), name=str(row.name or ""),
                        opt_in_marketing=bool(int(row.opt_in_marketing or 0)),
                        wc_customer_id=int(row.wc_customer_id) if row.wc_customer_id else None)
                if has_opt_out:
                    opted_out.update(str(r[0]) for r in conn.execute(
                        select(o.c.phone).where(o.c.phone.in_(chunk), o.c.notification_opt_out == 1)))
        return {k: replace(v, notification_opt_out=k in opted_out) for k, v in found.items()}
