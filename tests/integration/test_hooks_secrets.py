"""Settings precedence and secrets, end to end: the token decrypted from wch_settings (both plugin formats) with the
salts from wp-config.php, CLI values over wch_settings, and a token that never shows in logs or AS log rows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hooks_support import PHONE_ID, TOKEN, Site

from wch_bridge.app import build_services
from wch_bridge.wpsettings import encrypt_secret, encrypt_secret_legacy

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox, site

AUTH_KEY = "a*very$long/AUTH_KEY'with\"quotes"
AUTH_SALT = "and an AUTH_SALT #not a comment"
PHONE = "+16505551234"

_QUOTED_KEY = AUTH_KEY.replace("'", "\\'")
WP_CONFIG = f"""<?php
define( 'DB_NAME', 'wordpress' );
define( 'AUTH_KEY',  '{_QUOTED_KEY}' );
define( 'AUTH_SALT', '{AUTH_SALT}' );
$table_prefix = 'wp_';
"""


def plugin_site(site: Site, tmp_path: Path, encrypt: object = encrypt_secret) -> Site:
    wp_config = tmp_path / "wp-config.php"
    wp_config.write_text(WP_CONFIG, encoding="utf-8")
    site.seed.set_wch_settings({
        "api": {"whatsapp_phone_number_id": "555000111", "api_version": "v19.0",
                "access_token": encrypt(TOKEN, AUTH_KEY, AUTH_SALT)},  # type: ignore[operator]
        "catalog": {"catalog_id": "777", "sync_enabled": True},
    })
    site.settings = site.settings.with_(whatsapp_token=None, whatsapp_phone_number_id=None, whatsapp_catalog_id=None,
                                        wp_config=str(wp_config))
    return site


@pytest.mark.parametrize("encrypt", [encrypt_secret, encrypt_secret_legacy], ids=["hmac", "legacy"])
def test_token_decrypted_from_wch_settings_with_wp_config_salts(site: Site, tmp_path: Path, encrypt: object) -> None:
    plugin_site(site, tmp_path, encrypt)
    aid = site.enqueue("wch_send_broadcast_batch",
                       {"batch": [PHONE], "batch_num": 0, "campaign_id": "dec", "message": "hello"})
    site.run()
    assert site.status(aid) == "complete"
    (req,) = site.sandbox.requests("/messages")
    assert req["path"] == "/v19.0/555000111/messages" and req["status"] == 200
    resolved = site.last_services.settings
    assert resolved.whatsapp_catalog_id == "777" and resolved.whatsapp_api_version == "v19.0"
    assert TOKEN not in repr(resolved) and TOKEN not in repr(site.last_services.whatsapp)


def test_salts_fall_back_to_the_wp_options_values_as_wp_salt_does(site: Site, tmp_path: Path) -> None:
    """No usable AUTH_KEY (placeholder) and no AUTH_SALT in wp-config.php: WordPress uses the auth_key/auth_salt
    it generated into wp_options, and so does the bridge."""
    key, salt = "generated-into-wp_options-key-0123456789", "generated-into-wp_options-salt-9876543210"
    site.seed.set_options(auth_key=key, auth_salt=salt)
    wp_config = tmp_path / "wp-config.php"
    wp_config.write_text("<?php define( 'AUTH_KEY', 'put your unique phrase here' );\n$table_prefix = 'wp_';\n",
                         encoding="utf-8")
    site.seed.set_wch_settings({"api": {"whatsapp_phone_number_id": "555000111",
                                        "access_token": encrypt_secret(TOKEN, key, salt)}})
    site.settings = site.settings.with_(whatsapp_token=None, whatsapp_phone_number_id=None, wp_config=str(wp_config))
    aid = site.enqueue("wch_send_broadcast_batch",
                       {"batch": [PHONE], "batch_num": 0, "campaign_id": "opt", "message": "hello"})
    site.run()
    assert site.status(aid) == "complete"
    assert site.sandbox.requests("/messages")[0]["status"] == 200


def test_cli_and_env_values_win_over_wch_settings(site: Site, tmp_path: Path) -> None:
    plugin_site(site, tmp_path)
    settings = site.settings.with_(whatsapp_phone_number_id=PHONE_ID, whatsapp_api_version="v22.0",
                                   whatsapp_token=TOKEN)
    resolved = build_services(settings, site.store).settings
    assert resolved.whatsapp_phone_number_id == PHONE_ID
    assert resolved.whatsapp_api_version == "v22.0"
    assert resolved.whatsapp_catalog_id == "777"  # not given: from wch_settings


def test_without_a_token_the_whatsapp_hooks_stay_pending(site: Site) -> None:
    aid = site.enqueue("wch_send_broadcast_batch",
                       {"batch": [PHONE], "batch_num": 0, "campaign_id": "none", "message": "hello"})
    site.run(whatsapp_token=None)
    assert site.status(aid) == "pending"
    assert [a.status for a in site.actions("wch_cleanup_expired_carts")][0] == "complete"


def test_token_never_in_logs_or_action_log_rows(site: Site, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    plugin_site(site, tmp_path)
    leak = f"Invalid OAuth access token - Bearer {TOKEN} ({TOKEN})"
    site.sandbox.add_fault(code=190, recipients=[PHONE], message=leak, details=leak)
    site.sandbox.add_fault(http_status=502, paths=["items_batch"], body=f"<html>proxy saw {TOKEN}</html>",
                           retry_after="0")
    pid = site.seed.add_product("P", sku="P1", regular_price="1.00")
    sync = site.enqueue("wch_process_sync_job", {"job_id": "sync_leak", "sync_type": "product", "entity_id": pid,
                                                 "retry_count": 3})
    broadcast = site.enqueue("wch_send_broadcast_batch",
                             {"batch": [PHONE, "+16505550000"], "batch_num": 0, "campaign_id": "leak",
                              "message": "hello"})
    site.run(concurrency=1)
    assert site.status(broadcast) == "failed" and site.status(sync) == "failed"
    assert any("returned HTTP 502 with a body that is not a JSON object (gave up after 3 retries)" in m
               for m in site.logs(sync))
    failed_line = [m for m in site.logs(broadcast) if m.startswith("action failed")][0]
    assert "WhatsApp API error 190 (halt)" in failed_line and "***" in failed_line
    texts = {
        "captured logs": caplog.text,
        "action scheduler log rows": site.all_log_text(),
        "ledger rows": repr(site.ledger.list_campaign("leak")),
        "transients": repr(site.wp.get_transient("wch_broadcast_result_leak_0"))
                      + repr(site.wp.get_transient("wch_job_result_sync_leak")),
    }
    for where, text in texts.items():
        assert TOKEN not in text, where
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("wch_bridge")
                     and not r.name.startswith("wch_bridge.sandbox"))
    assert "6505551234" not in ours  # phone numbers are masked in our own log lines
