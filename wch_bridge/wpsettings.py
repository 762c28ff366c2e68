"""The plugin's ``wch_settings`` option and the site's ``wp-config.php``, decoded for the bridge. Pure: no I/O.

* :func:`plugin_settings` turns the unserialized ``wch_settings`` array (``{section: {key: value}}``, reference
  wch-plugin.md 4.1/4.2) into :class:`PluginSettings`: the values the bridge needs, ``None`` where unset.
* :func:`decrypt_secret` decrypts ``api.access_token`` in both on-disk formats the plugin wrote, with the key
  material ``wp_salt('auth')`` = ``AUTH_KEY . AUTH_SALT``:

  - current (``WCH_Encryption`` from ``0a22263``, PSR-4 ``Encryption``): ``base64(HMAC-SHA256[32] || IV[16] ||
    AES-256-CBC ciphertext)``, HMAC key ``sha256(salt . 'hmac_authentication')`` over ``IV || ciphertext``;
  - legacy (E1, ``a62c50b``): ``base64(IV[16] || base64(AES-256-CBC ciphertext))`` (``openssl_encrypt`` with
    options 0 returns base64).

  The AES key is ``sha256(salt)`` (raw bytes). The HMAC format is tried first, then the legacy one (the plugin's
  own length-based guess misreads long legacy values). Errors never contain the value or the salts.
* :func:`parse_wp_config` reads ``AUTH_KEY``, ``AUTH_SALT`` and ``$table_prefix`` from ``wp-config.php`` text,
  ignoring commented-out code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wch_bridge.errors import ConfigError

__all__ = [
    "DEFAULT_ABANDONED_CART_DELAY_HOURS",
    "CatalogSync",
    "PluginSettings",
    "WpConfig",
    "decrypt_secret",
    "encrypt_secret",
    "encrypt_secret_legacy",
    "parse_wp_config",
    "catalog_sync",
    "php_truthy",
    "plugin_settings",
    "setting",
]

DEFAULT_ABANDONED_CART_DELAY_HOURS = 24.0
_IV = 16
_MAC = 32
#: WordPress's placeholder in wp-config-sample.php: wp_salt() ignores a constant with this value.
WP_PLACEHOLDER = "put your unique phrase here"


# ---------------------------------------------------------------------------------------------- wch_settings


def setting(values: Any, dotted: str, default: Any = None) -> Any:
    """``WCH_Settings::get('section.key', default)`` over the unserialized option (missing -> default)."""
    node = values
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return default if node is None else node


def php_truthy(value: Any) -> bool:
    """PHP's truthiness of a settings value (``false``, ``0``, ``"0"``, ``""``, ``[]`` and ``null`` are false)."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _text(value: Any) -> str | None:
    if value is None or value is False:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def _hours(value: Any, default: float) -> float:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        return default
    return hours if hours >= 0 else default


@dataclass(frozen=True)
class PluginSettings:
    """What the bridge reads from ``wch_settings``; ``None`` means "not set in the plugin"."""

    phone_number_id: str | None = None
    api_version: str | None = None
    catalog_id: str | None = None
    business_account_id: str | None = None
    encrypted_token: str | None = field(default=None, repr=False)
    abandoned_cart_delay_hours: float = DEFAULT_ABANDONED_CART_DELAY_HOURS
    abandoned_cart_template: str | None = None


def plugin_settings(values: Any) -> PluginSettings:
    """Decode the unserialized ``wch_settings`` value (anything else, e.g. ``False`` for a missing option, gives
    the defaults). Only keys of the plugin's settings schema/defaults are read
    (``f46ecdf:includes/class-wch-settings.php``, docs/plugin-contracts.md "Settings"):
    ``api.whatsapp_phone_number_id``, ``api.api_version``, ``api.whatsapp_business_account_id``,
    ``api.access_token``, ``catalog.catalog_id``, ``notifications.abandoned_cart_delay_hours`` and
    ``recovery.template_sequence_1`` (the first recovery template: the abandoned-cart template). The plugin has no
    template-language setting: ``template_language`` stays unset here."""
    if not isinstance(values, dict):
        values = {}
    version = _text(setting(values, "api.api_version"))
    if version and not re.fullmatch(r"v\d+\.\d+", version):
        version = None
    return PluginSettings(
        phone_number_id=_text(setting(values, "api.whatsapp_phone_number_id")),
        api_version=version,
        catalog_id=_text(setting(values, "catalog.catalog_id")),
        business_account_id=_text(setting(values, "api.whatsapp_business_account_id")),
        encrypted_token=_text(setting(values, "api.access_token")),
        abandoned_cart_delay_hours=_hours(
            setting(values, "notifications.abandoned_cart_delay_hours"), DEFAULT_ABANDONED_CART_DELAY_HOURS
        ),
        abandoned_cart_template=_text(setting(values, "recovery.template_sequence_1")),
    )


def _ids(value: Any) -> frozenset[int]:
    """A PHP array of ids (ints or the strings the settings page stores) as a set of ints; junk is dropped."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    out: set[int] = set()
    for item in items:
        text = str(item).strip()
        if text.isdigit() and int(text) > 0:
            out.add(int(text))
    return frozenset(out)


@dataclass(frozen=True)
class CatalogSync:
    """The plugin's catalog sync switches (``catalog.*`` of ``wch_settings``; docs/plugin-contracts.md "Catalog").

    ``configured`` is False where the site has no ``wch_settings`` option at all (the bridge configured only by its
    own settings): nothing is filtered then. ``products``/``categories`` are None for "all products"."""

    configured: bool = False
    enabled: bool = True
    include_out_of_stock: bool = True
    products: frozenset[int] | None = None
    categories: frozenset[int] | None = None


def catalog_sync(values: Any) -> CatalogSync:
    """Decode the catalog switches from the unserialized ``wch_settings`` (None: the option does not exist).

    As ``f46ecdf:includes/class-wch-product-sync-service.php`` (``is_sync_enabled``, ``validate_product``) and the
    head's ``ProductValidatorService`` read them: ``catalog.sync_enabled`` (default false), ``catalog.include_out_of_stock``
    (default false), ``catalog.sync_products`` (``'all'`` or a list of product ids). The plugin's settings page
    writes the selection as ``catalog.product_selection`` (``all``/``products``/``categories``) with
    ``catalog.products`` / ``catalog.categories`` instead, which the plugin's sync never reads (plugin bug): the
    bridge honours it when ``sync_products`` is not a list."""
    if values is None:
        return CatalogSync()
    if not isinstance(values, dict):
        values = {}
    products: frozenset[int] | None = None
    categories: frozenset[int] | None = None
    listed = setting(values, "catalog.sync_products", "all")
    mode = str(setting(values, "catalog.product_selection", "all") or "all").strip()
    if isinstance(listed, (list, dict)):
        products = _ids(listed)
    elif mode == "products":
        products = _ids(setting(values, "catalog.products", []))
    elif mode == "categories":
        categories = _ids(setting(values, "catalog.categories", []))
    return CatalogSync(
        configured=True,
        enabled=php_truthy(setting(values, "catalog.sync_enabled", False)),
        include_out_of_stock=php_truthy(setting(values, "catalog.include_out_of_stock", False)),
        products=products,
        categories=categories,
    )


# ---------------------------------------------------------------------------------------------- encryption


def _salt(auth_key: str, auth_salt: str) -> bytes:
    if not auth_key or not auth_salt:
        raise ConfigError("AUTH_KEY and AUTH_SALT are both needed to decrypt wch_settings secrets")
    return (auth_key + auth_salt).encode("utf-8")


def _aes_key(salt: bytes) -> bytes:
    return hashlib.sha256(salt).digest()


def _hmac_key(salt: bytes) -> bytes:
    return hashlib.sha256(salt + b"hmac_authentication").digest()


def _cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes | None:
    if not ciphertext or len(ciphertext) % 16:
        return None
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def _cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def _b64(value: str | bytes) -> bytes | None:
    raw = value.encode("ascii", "ignore") if isinstance(value, str) else value
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: decrypted value is not UTF-8 text (wrong AUTH_KEY/AUTH_SALT?)") from None


def decrypt_secret(value: str, auth_key: str, auth_salt: str, *, what: str = "api.access_token") -> str:
    """Decrypt a ``wch_settings`` secret written by the plugin (HMAC format first, then legacy E1).

    Raises ``ConfigError`` naming ``what`` (never the value) when neither format fits."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} in wch_settings is empty")
    salt = _salt(auth_key, auth_salt)
    decoded = _b64(value)
    if decoded is None:
        raise ConfigError(f"{what} in wch_settings is not base64: not a value the plugin encrypted")
    key = _aes_key(salt)
    if len(decoded) >= _MAC + _IV + 16:
        mac, iv, ciphertext = decoded[:_MAC], decoded[_MAC : _MAC + _IV], decoded[_MAC + _IV :]
        expected = hmac.new(_hmac_key(salt), iv + ciphertext, hashlib.sha256).digest()
        if hmac.compare_digest(mac, expected):
            plain = _cbc_decrypt(key, iv, ciphertext)
            if plain is None:
                raise ConfigError(f"{what}: HMAC matched but the AES-256-CBC padding is invalid")
            return _utf8(plain, what)
    if len(decoded) > _IV:
        inner = _b64(decoded[_IV:])
        if inner is not None:
            plain = _cbc_decrypt(key, decoded[:_IV], inner)
            if plain is not None:
                return _utf8(plain, what)
    raise ConfigError(
        f"{what} in wch_settings could not be decrypted with the given AUTH_KEY/AUTH_SALT "
        "(HMAC check failed and it is not a legacy-format value): check the salts match the site's wp-config.php"
    )


def encrypt_secret(plaintext: str, auth_key: str, auth_salt: str, *, iv: bytes | None = None) -> str:
    """The plugin's current format (``base64(HMAC || IV || ciphertext)``); for seeding development sites."""
    salt = _salt(auth_key, auth_salt)
    iv = iv if iv is not None else os.urandom(_IV)
    ciphertext = _cbc_encrypt(_aes_key(salt), iv, plaintext.encode("utf-8"))
    mac = hmac.new(_hmac_key(salt), iv + ciphertext, hashlib.sha256).digest()
    return base64.b64encode(mac + iv + ciphertext).decode("ascii")


def encrypt_secret_legacy(plaintext: str, auth_key: str, auth_salt: str, *, iv: bytes | None = None) -> str:
    """The E1 format (``base64(IV || base64(ciphertext))``); for seeding development sites."""
    salt = _salt(auth_key, auth_salt)
    iv = iv if iv is not None else os.urandom(_IV)
    ciphertext = _cbc_encrypt(_aes_key(salt), iv, plaintext.encode("utf-8"))
    return base64.b64encode(iv + base64.b64encode(ciphertext)).decode("ascii")


# ---------------------------------------------------------------------------------------------- wp-config.php


@dataclass(frozen=True)
class WpConfig:
    auth_key: str | None = field(default=None, repr=False)
    auth_salt: str | None = field(default=None, repr=False)
    table_prefix: str | None = None

    @property
    def has_salts(self) -> bool:
        return bool(self.auth_key and self.auth_salt)


_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "e": "\x1b", "\\": "\\", "$": "$", '"': '"'}


def _strip_comments(php: str) -> str:
    """Drop ``//``, ``#`` and ``/* */`` comments outside string literals (strings are kept verbatim)."""
    out: list[str] = []
    i, n = 0, len(php)
    while i < n:
        ch = php[i]
        if ch in "'\"":
            m = _STRING.match(php, i)
            if m is None:
                out.append(php[i:])
                break
            out.append(m.group(0))
            i = m.end()
        elif php.startswith("/*", i):
            end = php.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif ch == "#" or php.startswith("//", i):
            end = php.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _php_string(literal: str) -> str:
    body = literal[1:-1]
    if literal[0] == "'":
        return re.sub(r"\\([\\'])", r"\1", body)
    return re.sub(r"\\(.)", lambda m: _DQ_ESCAPES.get(m.group(1), "\\" + m.group(1)), body, flags=re.S)


def _define(php: str, name: str) -> str | None:
    pattern = re.compile(
        r"\bdefine\s*\(\s*(['\"])" + re.escape(name) + r"\1\s*,\s*(" + _STRING.pattern + r")\s*\)", re.S
    )
    for m in pattern.finditer(php):
        return _php_string(m.group(2))  # like PHP, a later define() of the same name does not win; keep first
    return None


#: The key constants wp_salt() compares for duplicates (wp-includes/pluggable.php).
_KEY_CONSTANTS = tuple(f"{a}_{b}" for a in ("AUTH", "SECURE_AUTH", "LOGGED_IN", "NONCE", "SECRET") for b in ("KEY", "SALT"))


def _usable_keys(php: str) -> dict[str, str | None]:
    """Each key constant as ``wp_salt()`` would use it: None when undefined, empty, the sample placeholder, or the
    same value as another key constant (WordPress then falls back to the ``auth_key``/``auth_salt`` options)."""
    values = {name: _define(php, name) for name in _KEY_CONSTANTS}
    seen: dict[str, int] = {}
    for v in values.values():
        if v:
            seen[v] = seen.get(v, 0) + 1
    return {n: v if v and v != WP_PLACEHOLDER and seen.get(v, 0) == 1 else None for n, v in values.items()}


def parse_wp_config(text: str) -> WpConfig:
    """``AUTH_KEY``, ``AUTH_SALT`` (None when missing, empty, the sample placeholder or duplicated: then
    ``wp_salt('auth')`` uses the ``auth_key``/``auth_salt`` options instead) and ``$table_prefix``."""
    php = _strip_comments(text)
    prefix = None
    m = re.search(r"\$table_prefix\s*=\s*(" + _STRING.pattern + r")\s*;", php, re.S)
    if m:
        prefix = _php_string(m.group(1))
    keys = _usable_keys(php)
    return WpConfig(auth_key=keys["AUTH_KEY"], auth_salt=keys["AUTH_SALT"], table_prefix=prefix)
