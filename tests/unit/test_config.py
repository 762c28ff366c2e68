"""Configuration precedence (option > env > file > wch_settings > default), conversion and errors, on the pure
``wch_bridge.config`` and once through ``wch-bridge config show --json`` (in-process, --no-db)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from wch_bridge import config
from wch_bridge.cli import main
from wch_bridge.errors import ConfigError
from wch_bridge.settings import Settings
from wch_bridge.wpsettings import PluginSettings


def test_every_settings_field_has_a_kind() -> None:
    assert set(config.FIELDS) == {f.name for f in fields(Settings)}


def test_precedence_option_env_file_plugin_default() -> None:
    option = {"concurrency": 2}
    env = {"concurrency": "3", "batch_size": "30", "whatsapp_phone_number_id": "env-id"}
    file = {"concurrency": 4, "batch_size": 40, "poll_interval": 2.5, "whatsapp_phone_number_id": "file-id",
            "whatsapp_catalog_id": "file-cat"}
    plugin = config.plugin_layer(PluginSettings(phone_number_id="wp-id", catalog_id="wp-cat", api_version="v19.0",
                                                abandoned_cart_template="cart_1"))
    r = config.resolve(option=option, env=env, file=file, wch_settings=plugin)
    s = r.settings
    assert (s.concurrency, r.sources["concurrency"]) == (2, "option")
    assert (s.batch_size, r.sources["batch_size"]) == (30, "env")
    assert (s.poll_interval, r.sources["poll_interval"]) == (2.5, "file")
    assert (s.whatsapp_phone_number_id, r.sources["whatsapp_phone_number_id"]) == ("env-id", "env")
    assert (s.whatsapp_catalog_id, r.sources["whatsapp_catalog_id"]) == ("file-cat", "file")
    assert (s.whatsapp_api_version, r.sources["whatsapp_api_version"]) == ("v19.0", "wch_settings")
    assert (s.abandoned_cart_template, r.sources["abandoned_cart_template"]) == ("cart_1", "wch_settings")
    assert (s.template_language, r.sources["template_language"]) == (None, "default")  # no such plugin setting
    assert (s.grace_period, r.sources["grace_period"]) == (30.0, "default")
    assert set(r.sources) == set(config.FIELDS)


def test_text_values_are_converted_by_kind() -> None:
    env = {"groups": "wch, wch_extra", "hooks": "a,b", "once": "yes", "max_actions": "", "metrics_port": "9464",
           "clock_speed": "60"}
    s = config.resolve(env=env).settings
    assert s.groups == ("wch", "wch_extra") and s.hooks == ("a", "b") and s.once is True
    assert s.max_actions is None and s.metrics_port == 9464 and s.clock_speed == 60.0


@pytest.mark.parametrize(("layer", "values", "needle"), [
    ("env", {"concurrency": "many"}, "concurrency: expected an integer, got 'many' (from WCH_BRIDGE_CONCURRENCY)"),
    ("file", {"poll_interval": "soon"}, "poll_interval: expected a number"),
    ("file", {"once": "perhaps"}, "once: expected true or false"),
    ("option", {"concurrency": 0}, "concurrency: must be a positive number"),
    ("env", {"log_format": "xml"}, "log_format: must be 'text' or 'json'"),
    ("env", {"metrics_port": "70000"}, "metrics_port: must be 0-65535"),
])
def test_invalid_values_name_the_setting(layer: str, values: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve(**{layer: values})
    assert str(err.value).startswith(needle.split(":")[0] + ":")
    assert needle in str(err.value)


def test_secret_values_are_never_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as err:
        config.coerce("whatsapp_token", ["not", "text"], "file")
    assert "not" not in str(err.value) and "***" in str(err.value)


def test_env_layer_reads_file_twins_and_direct_vars_win(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-from-file\n")
    dsn = tmp_path / "dsn"
    dsn.write_text("mysql+pymysql://u:pw@db/wp")
    environ = {"WCH_BRIDGE_WHATSAPP_TOKEN_FILE": str(token), "WCH_BRIDGE_DSN_FILE": str(dsn),
               "WCH_BRIDGE_AUTH_KEY": "direct", "WCH_BRIDGE_AUTH_KEY_FILE": str(token), "UNRELATED": "x",
               "WCH_BRIDGE_PREFIX": "  "}
    layer = config.env_layer(environ)
    assert layer == {"whatsapp_token": "tok-from-file", "dsn": "mysql+pymysql://u:pw@db/wp", "auth_key": "direct"}
    with pytest.raises(ConfigError, match=r"^auth_salt: cannot read .*WCH_BRIDGE_AUTH_SALT_FILE"):
        config.env_layer({"WCH_BRIDGE_AUTH_SALT_FILE": str(tmp_path / "missing")})


def test_config_file_keys_are_field_names(tmp_path: Path) -> None:
    secret = tmp_path / "tok"
    secret.write_text("file-token")
    path = tmp_path / "bridge.toml"
    path.write_text(f'concurrency = 4\ngroups = ["wch", "x"]\nwhatsapp_phone_number_id = 1065403\n'
                    f'whatsapp_token_file = "{secret}"\n')
    assert config.load_file(str(path)) == {"concurrency": 4, "groups": ["wch", "x"],
                                           "whatsapp_phone_number_id": 1065403, "whatsapp_token": "file-token"}
    s = config.resolve(file=config.load_file(str(path))).settings
    assert s.groups == ("wch", "x") and s.whatsapp_phone_number_id == "1065403"
    path.write_text("concurency = 4\n")
    with pytest.raises(ConfigError, match="^concurency: unknown setting"):
        config.load_file(str(path))


def test_fill_unset_only_touches_unset_fields() -> None:
    s = Settings(whatsapp_phone_number_id="mine")
    out = config.fill_unset(s, {"wch_settings": {"whatsapp_phone_number_id": "plugin", "whatsapp_catalog_id": "c"},
                                "wp_config": {"auth_key": "k"}})
    assert (out.whatsapp_phone_number_id, out.whatsapp_catalog_id, out.auth_key) == ("mine", "c", "k")


def test_rows_mask_secrets_and_dsn_password() -> None:
    r = config.resolve(env={"dsn": "mysql+pymysql://wp:hunter2@db/wp", "whatsapp_token": "EAAGtoken"})
    rows = {x["setting"]: x for x in r.rows()}
    assert rows["dsn"]["value"] == "mysql+pymysql://wp:***@db/wp" and rows["whatsapp_token"]["value"] == "***"
    assert "hunter2" not in json.dumps(r.rows()) and "EAAGtoken" not in json.dumps(r.rows())


def test_precedence_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("WCH_BRIDGE_"):
            monkeypatch.delenv(name)
    cfg = tmp_path / "bridge.toml"
    cfg.write_text('concurrency = 4\nbatch_size = 40\npoll_interval = 2.5\n')
    token = tmp_path / "token"
    token.write_text("EAAGsecret-token-123")
    env = {"WCH_BRIDGE_CONFIG": str(cfg), "WCH_BRIDGE_CONCURRENCY": "3", "WCH_BRIDGE_BATCH_SIZE": "30",
           "WCH_BRIDGE_WHATSAPP_TOKEN_FILE": str(token)}
    r = CliRunner().invoke(main, ["config", "show", "--json", "--no-db", "--concurrency", "2"], env=env)
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)["settings"]
    assert data["concurrency"] == {"value": 2, "source": "option", "env": "WCH_BRIDGE_CONCURRENCY"}
    assert (data["batch_size"]["value"], data["batch_size"]["source"]) == (30, "env")
    assert (data["poll_interval"]["value"], data["poll_interval"]["source"]) == (2.5, "file")
    assert (data["grace_period"]["value"], data["grace_period"]["source"]) == (30.0, "default")
    assert (data["whatsapp_token"]["value"], data["whatsapp_token"]["source"]) == ("***", "env")
    assert "EAAGsecret" not in r.output


def test_invalid_env_value_fails_in_one_line() -> None:
    r = CliRunner().invoke(main, ["config", "show", "--no-db"], env={"WCH_BRIDGE_CONCURRENCY": "lots"})
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wch-bridge: error: concurrency")
