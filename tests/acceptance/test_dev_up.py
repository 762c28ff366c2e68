"""``wch-bridge dev up`` (issue 16.6, README "Develop against a local site"): one command makes a development
database with a small shop and a sandbox next to it; the ``run`` line it prints runs the shop's sync jobs,
broadcasts and cart reminders against that sandbox with no other setting."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text as text_sql

from wch_bridge.store import make_engine
from wch_bridge.store import schema as schema_mod

WCH = str(Path(sys.executable).parent / "wch-bridge")


def test_dev_up_then_the_printed_run_line_works(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    out = tmp_path / "site"
    proc = subprocess.Popen([WCH, "dev", "up", "--out", str(out), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if " run --config " in line:
                break
        text = "".join(printed)
        assert "products" in text and "carts" in text and "customer profiles" in text, text
        url = text.split("listening on ", 1)[1].split(" ", 1)[0]
        run_line = shlex.split(printed[-1].strip())
        assert run_line[1:3] == ["run", "--config"], printed[-1]
        config = Path(run_line[3])
        assert config.stat().st_mode & 0o077 == 0  # it holds the DSN and the sandbox's token
        r = subprocess.run([WCH, *run_line[1:], "--once"], env=env, capture_output=True, text=True, timeout=120,
                           cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        with urllib.request.urlopen(url + "/_sandbox/requests", timeout=10) as resp:
            received = json.load(resp)
        assert any("items_batch" in x["path"] and x["status"] == 200 for x in received)  # catalog sync
        assert sum("/messages" in x["path"] and x["status"] == 200 for x in received) > 150  # broadcasts, carts
        s = subprocess.run([WCH, "status", "--json"], env={**env, "WCH_BRIDGE_CONFIG": str(config)},
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
        counts = {row["hook"]: row for row in json.loads(s.stdout)["counts"]}
        assert counts["wch_process_abandoned_cart"]["complete"] == counts["wch_process_abandoned_cart"]["total"] > 0
        assert counts["wch_send_broadcast_batch"]["complete"] == counts["wch_send_broadcast_batch"]["total"] > 0
        assert counts["wch_process_sync_job"]["complete"] >= 10
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "POST /v21.0/" in err  # the sandbox logged what it received
    assert not (tmp_path / "wch-bridge.sqlite").exists()


@pytest.mark.mysql
def test_dev_up_on_mariadb_and_never_over_a_site(mysql_url: str, prefix: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    eng = make_engine(mysql_url)
    site = prefix + "site_"
    try:
        proc = subprocess.Popen([WCH, "dev", "up", "--out", str(tmp_path), "--dsn", mysql_url, "--prefix", prefix,
                                 "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            text = ""
            for line in proc.stdout:
                text += line
                if " run --config " in line:
                    break
            assert f"(prefix {prefix})" in text, text
            config = (tmp_path / "wch-bridge.toml").read_text()
            assert f'prefix = "{prefix}"' in config and f'dsn = "{mysql_url}"' in config
            s = subprocess.run([WCH, "status", "--json"], env={**env, "WCH_BRIDGE_CONFIG": str(tmp_path / "wch-bridge.toml")},
                               capture_output=True, text=True, timeout=60)
            assert json.loads(s.stdout)["totals"]["pending"] > 20, s.stdout + s.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)
        schema_mod.install(eng, site, with_wordpress=True)
        with eng.begin() as conn:
            conn.execute(text_sql(f"INSERT INTO {site}options (option_name, option_value, autoload) "
                                  "VALUES ('siteurl', 'https://shop.example', 'yes')"))
        r = subprocess.run([WCH, "dev", "up", "--out", str(tmp_path / "x"), "--dsn", mysql_url, "--prefix", site,
                            "--port", "0"], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, (r.stdout, r.stderr)
        assert "hold a site" in r.stderr
    finally:
        schema_mod.drop_prefix(eng, prefix)
        schema_mod.drop_prefix(eng, site)
        eng.dispose()
