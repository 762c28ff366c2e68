"""A persistent object cache in front of the site's transients (issue 15 point 9), as ``schema check`` and
``status`` say it, through the CLI on SQLite: found from the drop-in next to ``WCH_BRIDGE_WP_CONFIG``, or from the
must-use plugin's report (option ``wch_bridge_php_side``); a warning unless the must-use plugin serves the bridge's
transients from the database. Checked once with the real WordPress 6.1 and a Redis drop-in (/work/realas)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from wch_bridge import objectcache
from wch_bridge.store.wordpress.base import WpBase


def cli(*args: str, db: Path, wp_config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WCH_BRIDGE_WP_CONFIG"}
    if wp_config is not None:
        env["WCH_BRIDGE_WP_CONFIG"] = str(wp_config)
    return subprocess.run([str(Path(sys.executable).with_name("wch-bridge")), *args, "--dsn", f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "site.sqlite"
    assert cli("schema", "install", "--with-wordpress", db=path).returncode == 0
    return path


def site(tmp_path: Path, *, content_dir: str | None = None) -> Path:
    root = tmp_path / "www"
    (root / "wp-content").mkdir(parents=True)
    define = f"define( 'WP_CONTENT_DIR', '{content_dir}' );\n" if content_dir else ""
    config = root / "wp-config.php"
    config.write_text(f"<?php\n$table_prefix = 'wp_';\n{define}// define( 'WP_CONTENT_DIR', '/nowhere' );\n")
    return config


def php_side(db: Path, **doc: object) -> None:
    eng = create_engine(f"sqlite:///{db}")
    WpBase(eng, "wp_").update_option("wch_bridge_php_side", json.dumps({"v": 1, "mode": "hooks", **doc}),
                                     autoload="no")
    eng.dispose()


def test_drop_in_is_found_next_to_wp_config_or_under_wp_content_dir(tmp_path: Path) -> None:
    config = site(tmp_path)
    assert objectcache.drop_in(str(config)) is None
    (config.parent / "wp-content" / "object-cache.php").write_text("<?php\n")
    assert objectcache.drop_in(str(config)) == config.parent / "wp-content" / "object-cache.php"
    elsewhere = tmp_path / "content"
    elsewhere.mkdir()
    moved = site(tmp_path / "moved", content_dir=str(elsewhere))
    assert objectcache.drop_in(str(moved)) is None
    (elsewhere / "object-cache.php").write_text("<?php\n")
    assert objectcache.drop_in(str(moved)) == elsewhere / "object-cache.php"
    assert objectcache.drop_in(None) is None and objectcache.drop_in(str(tmp_path / "missing.php")) is None


def test_schema_check_and_status_warn_when_the_plugin_cannot_see_the_bridges_results(db: Path, tmp_path: Path) -> None:
    config = site(tmp_path)
    quiet = cli("schema", "check", "--json", db=db, wp_config=config)
    assert json.loads(quiet.stdout)["object_cache"] is None
    (config.parent / "wp-content" / "object-cache.php").write_text("<?php\n")
    chk = cli("schema", "check", db=db, wp_config=config)
    assert "warning: a persistent object cache is in use" in chk.stdout and "wch_job_result_*" in chk.stdout
    data = json.loads(cli("schema", "check", "--json", db=db, wp_config=config).stdout)
    assert data["object_cache"]["level"] == "warning" and data["object_cache"]["drop_in"].endswith("object-cache.php")
    status = json.loads(cli("status", "--json", db=db, wp_config=config).stdout)
    assert any(r["level"] == "warning" and "persistent object cache" in r["message"] for r in status["reasons"])


def test_the_must_use_plugins_report_is_enough_and_says_it_serves_them(db: Path) -> None:
    php_side(db, object_cache=True)  # an older must-use plugin: it reports the cache, does not serve the results
    older = json.loads(cli("schema", "check", "--json", db=db).stdout)["object_cache"]
    assert older["level"] == "warning" and older["reported_by_php"] is True and older["drop_in"] is None
    php_side(db, object_cache=True, serves_transients=True)
    served = cli("schema", "check", db=db)
    assert "found: a persistent object cache is in use (reported by the must-use plugin)" in served.stdout
    status = json.loads(cli("status", "--json", db=db).stdout)
    assert not any("object cache" in r["message"] for r in status["reasons"])
    php_side(db, object_cache=False, serves_transients=True)
    assert json.loads(cli("schema", "check", "--json", db=db).stdout)["object_cache"] is None
