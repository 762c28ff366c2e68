"""DSN secrets (issue 16.2): a password given in the query string (``?password=``) is masked by ``status``,
``status --json``, ``config show [--json]`` and ``schema check`` like a ``user:password@`` one; a DSN that cannot be
read at all (a password pasted by mistake) is never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wch_bridge.store import make_engine
from wch_bridge.store import schema as schema_mod

WCH = str(Path(sys.executable).parent / "wch-bridge")


def test_mask_dsn_hides_query_string_secrets_and_unreadable_values() -> None:
    from wch_bridge.settings import dsn_secrets, mask_dsn, mask_secrets_in_text

    assert mask_dsn("mysql+pymysql://u:pw1@h/db?password=pw2&charset=utf8mb4") == (
        "mysql+pymysql://u:***@h/db?password=***&charset=utf8mb4")
    assert mask_dsn("mysql+pymysql://u@h/db?ssl_key=/k.pem&passwd=pw3") == "mysql+pymysql://u@h/db?ssl_key=***&passwd=***"
    assert "SECRET" not in mask_dsn("DbPassw0rd_SECRET")
    assert set(dsn_secrets("mysql+pymysql://u:a1@h/db?password=b2")) == {"a1", "b2"}
    assert mask_secrets_in_text("at mysql+pymysql://u:zz@h/db?password=yy", "") == "at mysql+pymysql://u:***@h/db?password=***"



@pytest.mark.mysql
def test_query_string_password_never_printed(mysql_url: str, prefix: str, db_user: tuple[str, str]) -> None:
    user, password = db_user
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix, with_wordpress=True)
    try:
        hostpart = mysql_url.split("@", 1)[1].split("?", 1)[0]
        dsn = f"mysql+pymysql://{user}@{hostpart}?password={password}&charset=utf8mb4"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
        env.update(WCH_BRIDGE_DSN=dsn, WCH_BRIDGE_PREFIX=prefix)
        commands = [("status",), ("status", "--json"), ("config", "show"), ("config", "show", "--json"),
                    ("schema", "check"), ("schema", "check", "--json"), ("jobs", "list")]
        for args in commands:
            r = subprocess.run([WCH, *args], capture_output=True, text=True, env=env, timeout=120)
            assert r.returncode in (0, 1, 2), (args, r.stderr)
            assert "Traceback" not in r.stderr, (args, r.stderr)
            assert password not in r.stdout + r.stderr, f"{args} printed the DSN password"
            if args[0] in ("status", "config") and r.returncode != 2:
                assert "password=***" in r.stdout, (args, r.stdout)
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()


@pytest.mark.parametrize("command", [("status",), ("run", "--once"), ("schema", "check"), ("config", "show"),
                                     ("jobs", "list"), ("health",), ("report", "--json", "-")])
def test_an_unreadable_dsn_is_never_echoed(command: tuple[str, ...], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    env["WCH_BRIDGE_DSN"] = "DbPassw0rd_SECRET"
    r = subprocess.run([WCH, *command], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert "SECRET" not in r.stdout + r.stderr, (command, r.stdout, r.stderr)
    if command[0] == "config":  # config show lists the settings it could resolve, with a note
        assert "unreadable DSN" in r.stdout
        return
    assert r.returncode in (1, 2), (command, r.stdout, r.stderr)
    assert "wch-bridge: error:" in r.stderr
