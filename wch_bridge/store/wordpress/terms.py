"""Taxonomy terms of products (``terms`` / ``term_taxonomy`` / ``term_relationships``, reference D.1): the
``product_cat`` categories and the ``product_visibility`` flags, and the category path WooCommerce puts in a
permalink whose product base has ``%product_cat%`` (``wc_product_post_type_link``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select

from wch_bridge.store.engine import translate_errors
from wch_bridge.store.wordpress.base import WpBase, _missing_table

PRODUCT_TAXONOMIES = ("product_cat", "product_visibility")
#: WooCommerce's ``_x('uncategorized', 'slug', 'woocommerce')``: the path of a product without a category
UNCATEGORIZED = "uncategorized"
_MAX_DEPTH = 64  # a corrupt parent loop never hangs the read


@dataclass(frozen=True)
class Term:
    taxonomy: str
    term_id: int
    slug: str
    parent: int


class TermsMixin(WpBase):
    """Product terms, read only."""

    @translate_errors
    def product_terms(self, post_ids: list[int]) -> dict[int, list[Term]]:
        """The ``product_cat`` and ``product_visibility`` terms of each post (``get_the_terms``); a site without
        the term tables has none."""
        if not post_ids:
            return {}
        tr, tt, tm = self.t.term_relationships, self.t.term_taxonomy, self.t.terms
        query = (
            select(tr.c.object_id, tt.c.taxonomy, tm.c.term_id, tm.c.slug, tt.c.parent)
            .select_from(tr.join(tt, tt.c.term_taxonomy_id == tr.c.term_taxonomy_id)
                         .join(tm, tm.c.term_id == tt.c.term_id))
            .where(tr.c.object_id.in_(post_ids), tt.c.taxonomy.in_(PRODUCT_TAXONOMIES))
        )
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except Exception as exc:  # noqa: BLE001 - a bare Action Scheduler schema has no term tables
            if _missing_table(exc):
                return {}
            raise
        out: dict[int, list[Term]] = {}
        for object_id, taxonomy, term_id, slug, parent in rows:
            out.setdefault(int(object_id), []).append(
                Term(str(taxonomy), int(term_id), str(slug or ""), int(parent or 0)))
        return out

    @translate_errors
    def _category_parents(self, term_ids: set[int]) -> dict[int, tuple[str, int]]:
        tt, tm = self.t.term_taxonomy, self.t.terms
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tm.c.term_id, tm.c.slug, tt.c.parent)
                .select_from(tt.join(tm, tm.c.term_id == tt.c.term_id))
                .where(tt.c.taxonomy == "product_cat", tt.c.term_id.in_(sorted(term_ids)))
            ).all()
        return {int(i): (str(s or ""), int(p or 0)) for i, s, p in rows}

    def category_path(self, terms: list[Term]) -> str:
        """``%product_cat%`` as WooCommerce fills it: the product's first category ordered by ``parent`` DESC then
        ``term_id`` ASC (``wc_product_post_type_link``, WooCommerce 3.x to 10.4), its slug preceded by its
        ancestors' slugs, parents first (``get_ancestors``); ``uncategorized`` for a product without a category."""
        cats = [t for t in terms if t.taxonomy == "product_cat"]
        if not cats:
            return UNCATEGORIZED
        primary = sorted(cats, key=lambda t: (-t.parent, t.term_id))[0]
        path = [primary.slug]
        seen = {primary.term_id}
        parent = primary.parent
        while parent and parent not in seen and len(seen) < _MAX_DEPTH:
            found = self._category_parents({parent}).get(parent)
            if found is None:
                break
            seen.add(parent)
            path.insert(0, found[0])
            parent = found[1]
        return "/".join(quote(s, safe="%-_.~") for s in path if s)
