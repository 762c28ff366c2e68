"""`wch-bridge schema install|check` and `enqueue` as a user runs them (the installed console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text

from wch_bridge import phpser, schedules
from wch_bridge.app import ensure_bridge_tables
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

CLI = str(Path(sys.executable).parent / "wch-bridge")


def cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, input=input, timeout=120)


@pytest.fixture
def db(mysql_url: str, prefix: str) -> Iterator[tuple[str, str]]:
    yield mysql_url, prefix
    eng = make_engine(mysql_url)
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def test_install_then_check(db: tuple[str, str]) -> None:
    dsn, prefix = db
    out = cli("schema", "install", "--dsn", dsn, "--prefix", prefix)
    assert out.returncode == 0, out.stderr
    for t in ("actionscheduler_actions", "actionscheduler_claims", "actionscheduler_groups", "actionscheduler_logs",
              "wch_bridge_messages", "wch_bridge_workers"):
        assert f"{prefix}{t}" in out.stdout
    assert f"{prefix}wch_carts" not in out.stdout  # the plugin's tables come with --with-wordpress
    chk = cli("schema", "check", "--dsn", dsn, "--prefix", prefix, "--json")
    assert chk.returncode == 0, chk.stderr
    data = json.loads(chk.stdout)
    assert data["ok"] is True and data["found"]["SKIP LOCKED"] == "supported"
    assert data["found"]["priority column"] == "present"
    assert data["missing_indexes"] == []


def test_check_fails_without_tables_and_names_them(db: tuple[str, str]) -> None:
    dsn, prefix = db
    chk = cli("schema", "check", "--dsn", dsn, "--prefix", prefix)
    assert chk.returncode == 2
    assert f"table {prefix}actionscheduler_actions is missing" in chk.stderr
    assert "not ok" in chk.stdout


def test_install_refuses_a_live_site_without_yes(db: tuple[str, str]) -> None:
    dsn, prefix = db
    eng = make_engine(dsn)
    schema_mod.install(eng, prefix, with_wordpress=True)
    with eng.begin() as conn:
        conn.execute(insert(ActionStore(eng, prefix).t.options).values(
            option_name="siteurl", option_value="https://shop.example", autoload="yes"))
    refused = cli("schema", "install", "--dsn", dsn, "--prefix", prefix)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert cli("schema", "install", "--dsn", dsn, "--prefix", prefix, "--yes").returncode == 0


PLUGIN_TABLES = ("wch_carts", "wch_customer_profiles", "wch_conversations", "wch_messages", "wch_notification_log")


@pytest.mark.parametrize("generation", ["head", "f46ecdf"])
def test_with_wordpress_creates_the_plugins_tables_as_its_installer_does(db: tuple[str, str], generation: str) -> None:
    """Columns of the plugin's installer: head DatabaseManager (DB_VERSION 2.6.0) or f46ecdf
    class-wch-database-manager.php (1.2.0)."""
    dsn, prefix = db
    out = cli("schema", "install", "--with-wordpress", "--plugin-schema", generation, "--dsn", dsn, "--prefix", prefix)
    assert out.returncode == 0, out.stderr
    eng = make_engine(dsn)
    insp = inspect(eng)
    cols = {t: {c["name"]: c for c in insp.get_columns(f"{prefix}{t}")} for t in PLUGIN_TABLES}
    assert {"phone", "name", "opt_in_marketing", "notification_opt_out", "wc_customer_id"} <= set(cols["wch_customer_profiles"])
    assert {"order_id", "notification_type", "customer_phone", "template_name", "wa_message_id", "status",
            "retry_count", "sent_at", "error_message"} <= set(cols["wch_notification_log"])
    assert {"customer_phone", "wa_conversation_id", "status", "last_message_at"} <= set(cols["wch_conversations"])
    assert {"conversation_id", "direction", "wa_message_id", "content", "status"} <= set(cols["wch_messages"])
    carts_status = set(cols["wch_carts"]["status"]["type"].enums)
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(f"{prefix}wch_carts")} | {
        tuple(i["column_names"]) for i in insp.get_indexes(f"{prefix}wch_carts") if i.get("unique")}
    assert ("customer_phone",) in uniques
    if generation == "head":
        assert "type" in cols["wch_messages"] and "message_type" not in cols["wch_messages"]
        assert {"raw_payload", "sent_at", "updated_at"} <= set(cols["wch_messages"])
        assert {"state", "message_count", "unread_count"} <= set(cols["wch_conversations"])
        assert carts_status == {"active", "abandoned", "converted", "expired"}
        assert {"email", "total_orders", "total_spent", "marketing_opted_at"} <= set(cols["wch_customer_profiles"])
    else:
        assert "message_type" in cols["wch_messages"] and "type" not in cols["wch_messages"]
        assert carts_status == {"active", "completed", "abandoned"}
        assert "email" not in cols["wch_customer_profiles"]
    eng.dispose()


def test_run_adds_no_index_to_the_sites_tables_and_drop_indexes_removes_old_ones(db: tuple[str, str]) -> None:
    dsn, prefix = db
    eng = make_engine(dsn)
    schema_mod.install(eng, prefix)
    actions = f"{prefix}actionscheduler_actions"
    before = {ix["name"] for ix in inspect(eng).get_indexes(actions)}
    assert not {n for n in before if n.startswith("wch_bridge")}, "install adds no index to AS's table"
    ensure_bridge_tables(ActionStore(eng, prefix))  # what `wch-bridge run` does at start
    assert {ix["name"] for ix in inspect(eng).get_indexes(actions)} == before
    chk = cli("schema", "check", "--dsn", dsn, "--prefix", prefix)
    assert chk.returncode == 0 and "leftover" not in chk.stdout and "ADD INDEX" not in chk.stdout, chk.stdout
    with eng.begin() as conn:  # what an earlier version added
        conn.execute(text(f"ALTER TABLE {actions} ADD INDEX wch_bridge_claim_order (claim_id, status, priority, "
                          "attempts, scheduled_date_gmt, action_id)"))
    chk = cli("schema", "check", "--dsn", dsn, "--prefix", prefix)
    assert "leftover: index wch_bridge_claim_order" in chk.stdout, chk.stdout
    dropped = cli("schema", "drop-indexes", "--dsn", dsn, "--prefix", prefix, "--yes")
    assert dropped.returncode == 0 and f"dropped index wch_bridge_claim_order from {actions}" in dropped.stdout
    assert {ix["name"] for ix in inspect(eng.connect().engine).get_indexes(actions)} == before
    again = cli("schema", "drop-indexes", "--dsn", dsn, "--prefix", prefix, "--yes")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_schema_check_advises_fix_schema_only_where_action_scheduler_knows_the_schema_8_indexes(
        db: tuple[str, str]) -> None:
    """AS 3.8.2 (store schema 7) has no schema-8 indexes and its `fix-schema` would not add them: not advised."""
    dsn, prefix = db
    eng = make_engine(dsn)
    schema_mod.install(eng, prefix, with_wordpress=True)
    actions = f"{prefix}actionscheduler_actions"
    with eng.begin() as conn:
        conn.execute(text(f"ALTER TABLE {actions} DROP INDEX status_last_attempt_gmt"))
        conn.execute(text(f"DELETE FROM {prefix}options WHERE option_name = 'schema-ActionScheduler_StoreSchema'"))
        conn.execute(text(f"INSERT INTO {prefix}options (option_name, option_value, autoload) "
                          "VALUES ('schema-ActionScheduler_StoreSchema', :v, 'yes')"), {"v": "7.0.1700000000"})
    out = cli("schema", "check", "--dsn", dsn, "--prefix", prefix)
    assert "fix-schema" not in out.stdout, out.stdout
    with eng.begin() as conn:
        conn.execute(text(f"UPDATE {prefix}options SET option_value = '8.0.1700000000' "
                          "WHERE option_name = 'schema-ActionScheduler_StoreSchema'"))
    out = cli("schema", "check", "--dsn", dsn, "--prefix", prefix)
    assert "status_last_attempt_gmt" in out.stdout and "fix-schema" in out.stdout, out.stdout


def test_enqueue_writes_what_as_schedule_single_action_writes(db: tuple[str, str]) -> None:
    dsn, prefix = db
    eng = make_engine(dsn)
    schema_mod.install(eng, prefix)
    args = json.dumps({"order_id": 123, "note": "a/b é"})
    out = cli("enqueue", "wch_process_sync_job", "--args", args, "--at", "1795917481", "--priority", "5",
              "--dsn", dsn, "--prefix", prefix)
    assert out.returncode == 0, out.stderr
    new_id = int(out.stdout.split("#")[1].split(":")[0])
    store = ActionStore(eng, prefix)
    a = store.get_action(new_id)
    assert a is not None
    assert a.args == '{"order_id":123,"note":"a\\/b \\u00e9"}' and a.priority == 5 and a.group == "wch"
    assert a.schedule == phpser.serialize_schedule(schedules.SimpleSchedule(1795917481))
    assert str(a.scheduled_date_gmt) == "2026-11-29 01:58:01"
    assert [e.message for e in store.get_logs(new_id)] == ["action created"]
    dup = cli("enqueue", "wch_process_sync_job", "--unique", "--dsn", dsn, "--prefix", prefix)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    bad = cli("enqueue", "wch_x", "--args", "{nope", "--dsn", dsn, "--prefix", prefix)
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr and "Traceback" not in bad.stderr
    badp = cli("enqueue", "wch_x", "--dsn", dsn, "--prefix", "x;drop")
    assert badp.returncode == 1 and "invalid table prefix" in badp.stderr.lower()
