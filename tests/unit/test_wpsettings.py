"""wch_settings decoding, token decryption in both plugin formats, and wp-config.php parsing (no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wch_bridge.errors import ConfigError
from wch_bridge.phpser import php_serialize, php_unserialize
from wch_bridge.wpsettings import (
    decrypt_secret,
    encrypt_secret,
    encrypt_secret_legacy,
    parse_wp_config,
    plugin_settings,
    setting,
)

AUTH_KEY = "k3y/with'quote\"and\\slash#not-a-comment // still key"
AUTH_SALT = "s@lt;$(){}[]"
TOKEN = "EAAGm0PX4ZCpsBAKZBsecret-token-value-that-is-long-enough-to-span-several-AES-blocks-1234567890"


def _php_openssl_encrypt(plain: bytes, key: bytes, iv: bytes) -> bytes:
    """openssl_encrypt($plain, 'aes-256-cbc', $key, OPENSSL_RAW_DATA, $iv): PKCS#7 padded AES-256-CBC."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def php_hmac_format(plain: str, iv: bytes) -> str:
    """WCH_Encryption::encrypt (0a22263) / Encryption::encrypt (PSR-4), written out independently."""
    salt = (AUTH_KEY + AUTH_SALT).encode()
    key = hashlib.sha256(salt).digest()
    ct = _php_openssl_encrypt(plain.encode(), key, iv)
    mac = hmac.new(hashlib.sha256(salt + b"hmac_authentication").digest(), iv + ct, hashlib.sha256).digest()
    return base64.b64encode(mac + iv + ct).decode()


def php_legacy_format(plain: str, iv: bytes) -> str:
    """E1 WCH_Encryption::encrypt: base64(iv . openssl_encrypt(..., 0, iv)) where options 0 yields base64."""
    key = hashlib.sha256((AUTH_KEY + AUTH_SALT).encode()).digest()
    ct_b64 = base64.b64encode(_php_openssl_encrypt(plain.encode(), key, iv))
    return base64.b64encode(iv + ct_b64).decode()


IV = bytes(range(16))


@pytest.mark.parametrize("plain", [TOKEN, "short", "ünïcødé-tøken"])
def test_decrypts_current_hmac_format(plain: str) -> None:
    assert decrypt_secret(php_hmac_format(plain, IV), AUTH_KEY, AUTH_SALT) == plain


@pytest.mark.parametrize("plain", [TOKEN, "short", "x" * 33])
def test_decrypts_legacy_e1_format_even_when_long(plain: str) -> None:
    # a long legacy value decodes to >= 49 bytes: the plugin's own length guess would misread it as HMAC format
    value = php_legacy_format(plain, IV)
    assert len(base64.b64decode(value)) >= 49 or plain == "short"
    assert decrypt_secret(value, AUTH_KEY, AUTH_SALT) == plain


def test_our_encrypt_helpers_round_trip_and_match_php() -> None:
    assert encrypt_secret(TOKEN, AUTH_KEY, AUTH_SALT, iv=IV) == php_hmac_format(TOKEN, IV)
    assert encrypt_secret_legacy(TOKEN, AUTH_KEY, AUTH_SALT, iv=IV) == php_legacy_format(TOKEN, IV)
    assert decrypt_secret(encrypt_secret(TOKEN, AUTH_KEY, AUTH_SALT), AUTH_KEY, AUTH_SALT) == TOKEN


def test_wrong_salt_fails_without_leaking_anything() -> None:
    value = php_hmac_format(TOKEN, IV)
    with pytest.raises(ConfigError) as err:
        decrypt_secret(value, AUTH_KEY, "other-salt")
    text = str(err.value)
    assert "api.access_token" in text and "AUTH_KEY/AUTH_SALT" in text
    assert TOKEN not in text and value not in text and AUTH_SALT not in text and AUTH_KEY not in text


def test_tampered_hmac_value_is_rejected() -> None:
    raw = bytearray(base64.b64decode(php_hmac_format(TOKEN, IV)))
    raw[-1] ^= 0x01
    with pytest.raises(ConfigError, match="could not be decrypted"):
        decrypt_secret(base64.b64encode(bytes(raw)).decode(), AUTH_KEY, AUTH_SALT)


@pytest.mark.parametrize("value", ["", "   ", "not base64 !!", base64.b64encode(b"tiny").decode()])
def test_junk_values_give_clear_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="api.access_token"):
        decrypt_secret(value, AUTH_KEY, AUTH_SALT)


def test_missing_salts_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="AUTH_KEY and AUTH_SALT"):
        decrypt_secret(php_hmac_format(TOKEN, IV), "", AUTH_SALT)


# ---------------------------------------------------------------------------------------------- wch_settings


def test_plugin_settings_from_the_serialized_option() -> None:
    stored = php_serialize(
        {
            "api": {
                "whatsapp_phone_number_id": "106540352242922",
                "access_token": "ENCRYPTED",
                "api_version": "v19.0",
                "whatsapp_business_account_id": 1234,
            },
            "catalog": {"catalog_id": 146265584024623, "sync_enabled": True},
            "notifications": {"abandoned_cart_delay_hours": "6", "abandoned_cart_reminder": True},
            "recovery": {"template_sequence_1": "cart_reminder_1"},
        }
    )
    ps = plugin_settings(php_unserialize(stored))
    assert ps.phone_number_id == "106540352242922"
    assert ps.api_version == "v19.0"
    assert ps.catalog_id == "146265584024623"
    assert ps.business_account_id == "1234"
    assert ps.encrypted_token == "ENCRYPTED"
    assert ps.abandoned_cart_delay_hours == 6.0
    assert ps.abandoned_cart_template == "cart_reminder_1"
    assert "ENCRYPTED" not in repr(ps)


def test_plugin_settings_defaults_for_a_missing_or_odd_option() -> None:
    for value in (False, None, "", [], {"api": "not a section"}):
        ps = plugin_settings(value)
        assert ps.phone_number_id is None and ps.encrypted_token is None
        assert ps.abandoned_cart_delay_hours == 24.0
        assert ps.abandoned_cart_template is None


def test_plugin_settings_ignores_a_malformed_version_and_delay() -> None:
    ps = plugin_settings({"api": {"api_version": "latest"}, "notifications": {"abandoned_cart_delay_hours": "x"}})
    assert ps.api_version is None and ps.abandoned_cart_delay_hours == 24.0


def test_only_keys_of_the_plugins_settings_are_read() -> None:
    """f46ecdf class-wch-settings.php has no notifications.abandoned_cart_template, notifications.template_language
    or general.language: values under those names are not the plugin's and are ignored."""
    ps = plugin_settings({"notifications": {"abandoned_cart_template": "cart_tpl", "template_language": "es_ES"},
                          "general": {"language": "fr_FR"}, "recovery": {"template_sequence_1": "r1"}})
    assert ps.abandoned_cart_template == "r1"
    assert not hasattr(ps, "template_language")


def test_setting_walks_sections() -> None:
    values = {"a": {"b": {"c": 3}}, "l": [1, 2]}
    assert setting(values, "a.b.c") == 3
    assert setting(values, "a.x", "d") == "d"
    assert setting(values, "l.1") == 2
    assert setting("junk", "a.b", 0) == 0


# ---------------------------------------------------------------------------------------------- wp-config.php

WP_CONFIG = r"""<?php
/** The name of the database for WordPress */
define( 'DB_NAME', 'wordpress' );
// define( 'AUTH_KEY', 'commented-out-line' );
/* define('AUTH_SALT', 'commented-out-block'); */
define( 'AUTH_KEY',         'k3y/with\'quote"and\\slash#not-a-comment // still key' );
define( "AUTH_SALT",        "s@lt;\$(){}[]" );
define( 'SECURE_AUTH_KEY',  'put your unique phrase here' );
# a shell-style comment with $table_prefix = 'nope_';
$table_prefix = 'shop_';
"""


def test_parse_wp_config_reads_salts_and_prefix() -> None:
    cfg = parse_wp_config(WP_CONFIG)
    assert cfg.auth_key == AUTH_KEY
    assert cfg.auth_salt == AUTH_SALT
    assert cfg.table_prefix == "shop_"
    assert cfg.has_salts
    assert AUTH_KEY not in repr(cfg) and AUTH_SALT not in repr(cfg)


def test_parse_wp_config_placeholder_and_missing_values() -> None:
    cfg = parse_wp_config("<?php define('AUTH_KEY', 'put your unique phrase here');\n$table_prefix  =  \"wp_\";")
    assert cfg.auth_key is None and cfg.auth_salt is None and not cfg.has_salts
    assert cfg.table_prefix == "wp_"
    assert parse_wp_config("<?php // nothing here").table_prefix is None


def test_duplicated_or_empty_key_constants_are_not_used() -> None:
    """wp_salt() ignores a key constant whose value another key constant also has (or an empty one)."""
    cfg = parse_wp_config("<?php define('AUTH_KEY', 'same'); define('SECURE_AUTH_KEY', 'same');"
                          " define('AUTH_SALT', '');")
    assert cfg.auth_key is None and cfg.auth_salt is None
    ok = parse_wp_config("<?php define('AUTH_KEY', 'k1'); define('AUTH_SALT', 's1'); define('NONCE_KEY', 'n');")
    assert (ok.auth_key, ok.auth_salt) == ("k1", "s1")


def test_salts_from_wp_config_decrypt_the_token() -> None:
    cfg = parse_wp_config(WP_CONFIG)
    assert cfg.auth_key is not None and cfg.auth_salt is not None
    assert decrypt_secret(php_hmac_format(TOKEN, IV), cfg.auth_key, cfg.auth_salt) == TOKEN


def test_catalog_sync_switches_as_the_plugin_reads_them() -> None:
    from wch_bridge.wpsettings import CatalogSync, catalog_sync

    assert catalog_sync(None) == CatalogSync()  # no wch_settings option: the bridge's own settings, no filter
    defaults = catalog_sync({"api": {}})
    assert defaults.configured and not defaults.enabled and not defaults.include_out_of_stock
    assert defaults.products is None and defaults.categories is None
    listed = catalog_sync({"catalog": {"sync_enabled": "1", "sync_products": {"0": "12", "1": 7, "2": "x"},
                                       "include_out_of_stock": True}})
    assert listed.enabled and listed.include_out_of_stock and listed.products == frozenset({7, 12})
    page = catalog_sync({"catalog": {"sync_enabled": True, "product_selection": "categories",
                                     "categories": ["3", "4"]}})
    assert page.categories == frozenset({3, 4}) and page.products is None
    assert catalog_sync({"catalog": {"product_selection": "products", "products": ["9"]}}).products == {9}
    assert catalog_sync({"catalog": {"sync_products": "all", "sync_enabled": False}}).products is None
