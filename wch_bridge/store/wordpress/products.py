"""WooCommerce products as stored in posts + postmeta (reference D.1): simple products, variable parents and their
variations, prices, stock (a variation whose stock the parent manages takes the parent's quantity), image
(uploads base + the attachment's ``_wp_attached_file``, else its ``guid``), permalink (with the ``%product_cat%``
category path when the product base has it), categories and ``product_visibility`` flags (``wp_terms``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import select

from wch_bridge.shop_data import Product
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.wordpress.tables import to_decimal
from wch_bridge.store.wordpress.terms import Term, TermsMixin

PRODUCT_TYPES = ("product", "product_variation")


def _first(meta: dict[str, list[str]], key: str) -> str:
    values = meta.get(key) or []
    return values[0] if values else ""


def _int(text: str) -> int | None:
    d = to_decimal(text)
    return int(d) if d is not None else None


def _stock(m: dict[str, list[str]], parent_meta: dict[str, list[str]] | None) -> tuple[bool, Decimal | None]:
    """``(manage_stock, stock)``: a variation whose stock its parent manages takes the parent's (WooCommerce)."""
    manage, stock = _first(m, "_manage_stock") == "yes", to_decimal(_first(m, "_stock"))
    if parent_meta is not None and not manage and _first(parent_meta, "_manage_stock") == "yes":
        return True, to_decimal(_first(parent_meta, "_stock"))
    return manage, stock


def _description(m: dict[str, list[str]], row: Any, parent: Any | None) -> str:
    """A variation's own description, else the product's excerpt, else its content."""
    description = _first(m, "_variation_description") if parent is not None else ""
    if not description:
        src = parent if parent is not None else row
        description = str(src.post_excerpt or "") or str(src.post_content or "")
    return description


class ProductsMixin(TermsMixin):
    """Product reads (and the plugin's sync post meta, via ``update_post_meta``)."""

    def _product_base_url(self) -> tuple[str, bool]:
        """The product permalink base (``woocommerce_permalinks`` ``product_base``, default ``product``; it may
        hold ``%product_cat%``) under the home URL, and whether pretty permalinks are on."""
        home = (self.get_option_raw("home") or self.get_option_raw("siteurl") or "").rstrip("/")
        pretty = bool((self.get_option_raw("permalink_structure") or "").strip())
        permalinks = self.get_option("woocommerce_permalinks")
        base = "product"
        if isinstance(permalinks, dict) and str(permalinks.get("product_base") or "").strip("/"):
            base = str(permalinks["product_base"]).strip("/")
        return (f"{home}/{base}" if pretty else home), pretty

    def _link_base(self, terms: list[Term]) -> tuple[str, bool]:
        """The product base with ``%product_cat%`` filled (``wc_product_post_type_link``: the product's category
        path, parents first), and whether pretty permalinks are on."""
        base, pretty = self._product_base_url()
        if pretty and "%product_cat%" in base:
            base = base.replace("%product_cat%", self.category_path(terms))
        return base, pretty

    @staticmethod
    def _permalink(link_base: tuple[str, bool], slug: str, post_id: int) -> str:
        base, pretty = link_base
        if pretty and slug:
            return f"{base}/{quote(slug)}/"
        return f"{base}/?" + (urlencode({"product": slug}) if slug else urlencode({"p": post_id}))

    def _uploads_base(self) -> str:
        """The uploads URL as WordPress computes it (``wp_upload_dir``): ``upload_url_path`` when set, else the
        site URL + ``upload_path`` (default ``wp-content/uploads``)."""
        custom = (self.get_option_raw("upload_url_path") or "").strip()
        if custom:
            return custom.rstrip("/")
        site = (self.get_option_raw("siteurl") or self.get_option_raw("home") or "").rstrip("/")
        path = (self.get_option_raw("upload_path") or "").strip().strip("/")
        if path and not path.startswith(("/", "\\")) and ":" not in path:
            return f"{site}/{path}"
        return f"{site}/wp-content/uploads"

    @translate_errors
    def _attachment_urls(self, ids: list[int]) -> dict[int, str]:
        """Image URLs of attachments: uploads base + ``_wp_attached_file`` (what WordPress serves; the ``guid``
        keeps the domain the file was uploaded under, wrong after a site move), else the ``guid``."""
        if not ids:
            return {}
        p = self.t.posts
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(p.c.ID, p.c.guid).where(p.c.ID.in_(ids), p.c.post_type == "attachment")
            ).all()
        found = {int(i): str(g or "") for i, g in rows}
        files = {i: _first(m, "_wp_attached_file").strip() for i, m in self.post_meta_map(list(found)).items()}
        out: dict[int, str] = {}
        base = self._uploads_base() if any(files.values()) else ""
        for i, guid in found.items():
            f = files.get(i, "")
            if f.startswith(("http://", "https://")):
                out[i] = f
            elif f:
                out[i] = f"{base}/{quote(f.lstrip('/'), safe='/')}"
            elif guid:
                out[i] = guid
        return out

    @translate_errors
    def _product_rows(self, product_id: int) -> tuple[Any, list[Any]]:
        p = self.t.posts
        cols = [p.c.ID, p.c.post_type, p.c.post_status, p.c.post_title, p.c.post_excerpt, p.c.post_content,
                p.c.post_name, p.c.post_parent, p.c.menu_order]
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(p.c.ID == product_id, p.c.post_type.in_(PRODUCT_TYPES))).first()
            if row is None or row.post_type != "product":
                return row, []
            children = conn.execute(
                select(*cols)
                .where(p.c.post_parent == product_id, p.c.post_type == "product_variation",
                       p.c.post_status.notin_(["trash", "auto-draft"]))
                .order_by(p.c.menu_order, p.c.ID)
            ).all()
        return row, list(children)

    def get_product(self, product_id: int) -> Product | None:
        """The product (with its variations) or the single variation; None when no such product post exists."""
        row, children = self._product_rows(int(product_id))
        if row is None:
            return None
        parent_row = None
        if row.post_type == "product_variation" and row.post_parent:
            parent_row, _ = self._product_rows(int(row.post_parent))
        ids = [int(row.ID)] + [int(c.ID) for c in children] + ([int(parent_row.ID)] if parent_row else [])
        meta = self.post_meta_map(ids)
        base_id = int(parent_row.ID) if parent_row is not None else int(row.ID)  # terms live on the product
        terms = self.product_terms([base_id]).get(base_id, [])
        category_ids = tuple(t.term_id for t in terms if t.taxonomy == "product_cat")
        visibility = frozenset(t.slug for t in terms if t.taxonomy == "product_visibility")
        link_base = self._link_base(terms)
        thumbs = {i: _int(_first(m, "_thumbnail_id")) for i, m in meta.items()}
        images = self._attachment_urls([t for t in thumbs.values() if t])

        def build(r: Any, parent: Any | None) -> Product:
            m = meta.get(int(r.ID), {})
            parent_id = int(parent.ID) if parent is not None else 0
            thumb = thumbs.get(int(r.ID)) or (thumbs.get(parent_id) if parent_id else None)
            attributes = {k[len("attribute_"):]: v[0] for k, v in m.items() if k.startswith("attribute_") and v}
            slug = str(parent.post_name if parent is not None else r.post_name or "")
            link = self._permalink(link_base, slug, parent_id or int(r.ID))
            if parent is not None and attributes:
                link += ("&" if "?" in link else "?") + urlencode({f"attribute_{k}": v for k, v in attributes.items()})
            title = str(r.post_title or "") or (str(parent.post_title or "") if parent is not None else "")
            manage, stock = _stock(m, meta.get(parent_id, {}) if parent is not None else None)
            return Product(
                id=int(r.ID),
                post_type=str(r.post_type),
                status=str(r.post_status or ""),
                title=title,
                description=_description(m, r, parent),
                slug=str(r.post_name or ""),
                parent_id=parent_id,
                sku=_first(m, "_sku").strip(),
                regular_price=to_decimal(_first(m, "_regular_price")),
                sale_price=to_decimal(_first(m, "_sale_price")),
                sale_from=_int(_first(m, "_sale_price_dates_from")),
                sale_to=_int(_first(m, "_sale_price_dates_to")),
                price=to_decimal(_first(m, "_price")),
                manage_stock=manage,
                stock_quantity=int(stock) if stock is not None else None,
                stock_status=_first(m, "_stock_status") or "instock",
                image_url=images.get(thumb) if thumb else None,
                permalink=link,
                attributes=attributes,
                catalog_id=_first(m, "_wch_catalog_id") or None,
                category_ids=category_ids,
                visibility=visibility,
            )

        if row.post_type == "product_variation":
            return build(row, parent_row)
        product = build(row, None)
        variations = tuple(build(c, row) for c in children)
        return Product(**{**product.__dict__, "variations": variations})
