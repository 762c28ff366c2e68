# ruff: noqa: S608 - table names below are constants of the demo schema; values are bound
"""``wch-bridge demo`` as a subprocess in a fresh directory: exit 0, the report written, and the counts it prints
match what is in the database. The demo database then serves the other commands, and ``config show`` shows the
plugin's ``wch_settings`` layer through the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("wch-bridge", path=str(Path(sys.executable).parent)) or "wch-bridge"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    return subprocess.run([EXE, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def parse(stdout: str) -> dict[str, int]:
    pats = {
        "actions": r"actions: (?P<ran>\d+) run over (?P<hooks>\d+) hooks, (?P<complete>\d+) complete and "
                   r"(?P<failed>\d+) failed; (?P<left>\d+) left pending",
        "sync": r"catalog sync: (?P<products>\d+) products in the WhatsApp catalog, (?P<sync_complete>\d+) sync jobs "
                r"complete, (?P<retries>\d+) retries after 60/300/900 s, (?P<sync_failed>\d+) failed for good",
        "broadcast": r"broadcast 'spring-sale': (?P<sent>\d+) messages sent, (?P<bfailed>\d+) failed \((?P<codes>[^)]*)\) "
                     r"to (?P<customers>\d+) opted-in customers in (?P<batches>\d+) batches",
        "admin": r"admin campaign '1767744000' \(template trail_week, personalised per profile\): (?P<asent>\d+) sent, "
                 r"(?P<aopted>\d+) not sent \(opted out since it was queued\) of (?P<arecipients>\d+) in "
                 r"(?P<abatches>\d+) batches",
        "carts": r"carts: (?P<reminders>\d+) reminders sent \((?P<templates>\d+) as a template outside the 24-hour "
                 r"window\), (?P<expired>\d+) expired, (?P<active>\d+) still active",
        "time": r"time: (?P<seconds>[\d.]+) s, \d+ min on the demo clock",
    }
    out: dict[str, int] = {}
    for name, pat in pats.items():
        m = re.search(pat, stdout)
        assert m, f"line {name!r} not found in:\n{stdout}"
        out.update({k: int(float(v)) if k != "codes" else v for k, v in m.groupdict().items()})  # type: ignore[misc]
    return out


def one(db: sqlite3.Connection, sql: str, *params: object) -> int:
    return int(db.execute(sql, params).fetchone()[0])


def test_demo_end_to_end(tmp_path: Path) -> None:
    r = run("demo", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    report = tmp_path / "out" / "report.html"
    assert report.is_file() and "<svg" in report.read_text(encoding="utf-8")
    assert f"report: {report.resolve()}" in r.stdout
    got = parse(r.stdout)
    assert got["seconds"] < 60

    db = sqlite3.connect(tmp_path / "out" / "demo.sqlite")
    a = "wp_actionscheduler_actions"
    assert got["complete"] == one(db, f"SELECT COUNT(*) FROM {a} WHERE status = 'complete'")
    assert got["failed"] == one(db, f"SELECT COUNT(*) FROM {a} WHERE status = 'failed'")
    assert got["ran"] == got["complete"] + got["failed"]
    assert got["hooks"] == one(db, f"SELECT COUNT(DISTINCT hook) FROM {a} WHERE status IN ('complete', 'failed')")
    assert got["left"] == one(db, f"SELECT COUNT(*) FROM {a} WHERE status IN ('pending', 'in-progress') "
                                  "AND hook <> 'wch_cleanup_expired_carts'") == 0
    assert one(db, f"SELECT COUNT(*) FROM {a} WHERE status = 'pending' AND hook = 'wch_cleanup_expired_carts'") == 1
    sync = f"{a} WHERE hook = 'wch_process_sync_job'"
    assert got["sync_complete"] == one(db, f"SELECT COUNT(*) FROM {sync} AND status = 'complete'")
    assert got["sync_failed"] == one(db, f"SELECT COUNT(*) FROM {sync} AND status = 'failed'") >= 2
    retries = one(db, f"SELECT COUNT(*) FROM {sync} AND args NOT LIKE '%\"retry_count\":0%'")
    assert got["retries"] == retries >= 4  # the catalog outage and the unreachable customer's 3 retries
    assert got["products"] == one(db, "SELECT COUNT(*) FROM wp_postmeta WHERE meta_key = '_wch_sync_status' "
                                      "AND meta_value = 'synced'")
    m = "wp_wch_bridge_messages WHERE campaign_id = 'spring-sale'"
    assert got["sent"] == one(db, f"SELECT COUNT(*) FROM {m} AND status = 'sent'")
    assert got["bfailed"] == one(db, f"SELECT COUNT(*) FROM {m} AND status = 'failed'") > 0
    assert got["customers"] == one(db, f"SELECT COUNT(*) FROM {m}")
    assert got["sent"] + got["bfailed"] == got["customers"]
    batches = f"{a} WHERE hook = 'wch_send_broadcast_batch' AND status = 'complete'"
    assert got["batches"] == one(db, f"SELECT COUNT(*) FROM {batches} AND extended_args LIKE '%spring-sale%'")
    # the admin screen's template campaign: per-recipient components built from the template definition
    adm = "wp_wch_bridge_messages WHERE campaign_id = '1767744000'"
    assert got["asent"] == one(db, f"SELECT COUNT(*) FROM {adm} AND status = 'sent' AND kind = 'template'") > 0
    assert got["aopted"] == one(db, f"SELECT COUNT(*) FROM {adm} AND status = 'failed' "
                                    "AND error_text LIKE '%opt_in_marketing = 0%'") == 2
    assert got["asent"] + got["aopted"] == got["arecipients"] == one(db, f"SELECT COUNT(*) FROM {adm}")
    assert got["abatches"] + got["batches"] == one(db, f"SELECT COUNT(*) FROM {batches}")
    first = "broadcast:1767744000:+15552003000"  # the first admin recipient, profile name "Ana"
    payload = json.loads(db.execute(f"SELECT payload FROM {adm} AND idempotency_key = ?", (first,)).fetchone()[0])
    comps = payload["template"]["components"]
    assert [c["type"] for c in comps] == ["header", "body"] and comps[1]["parameters"][0]["text"] == "Ana"
    html = report.read_text(encoding="utf-8")
    assert 'data-campaign="1767744000"' in html
    for code, n in re.findall(r"(\d+) x(\d+)", str(got["codes"])):
        assert int(n) == one(db, f"SELECT COUNT(*) FROM {m} AND status = 'failed' AND error_code = ?", int(code))
    carts = "wp_wch_carts"
    assert got["reminders"] == one(db, f"SELECT COUNT(*) FROM {carts} WHERE reminder_sent_at IS NOT NULL") > 0
    assert got["templates"] == one(db, "SELECT COUNT(*) FROM wp_wch_bridge_messages WHERE kind = 'template' "
                                       "AND status = 'sent' AND campaign_id IS NULL") > 0
    assert got["expired"] == one(db, f"SELECT COUNT(*) FROM {carts} WHERE status = 'expired'") > 0
    assert got["active"] == one(db, f"SELECT COUNT(*) FROM {carts} WHERE status = 'active'")
    db.close()

    # the commands it suggests work on the demo database
    dsn = f"sqlite:///{(tmp_path / 'out' / 'demo.sqlite').resolve()}"
    assert f"wch-bridge status --dsn {dsn}" in r.stdout
    listed = run("jobs", "list", "--status", "failed", "--dsn", dsn, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "wch_process_sync_job" in listed.stdout

    # every configuration layer through the CLI, with the plugin's wch_settings the demo seeded
    (tmp_path / "bridge.toml").write_text('batch_size = 40\nwhatsapp_api_version = "v20.0"\n')
    shown = run("config", "show", "--json", "--dsn", dsn, "--concurrency", "2", cwd=tmp_path,
                env={"WCH_BRIDGE_CONFIG": str(tmp_path / "bridge.toml"), "WCH_BRIDGE_CONCURRENCY": "3",
                     "WCH_BRIDGE_WHATSAPP_CATALOG_ID": "env-catalog", "WCH_BRIDGE_BATCH_SIZE": "",
                     "WCH_BRIDGE_POLL_INTERVAL": "0.5"})
    assert shown.returncode == 0, shown.stderr
    s = json.loads(shown.stdout)["settings"]
    src = {k: (v["value"], v["source"]) for k, v in s.items()}
    assert src["concurrency"] == (2, "option")
    assert src["poll_interval"] == (0.5, "env")
    assert src["whatsapp_catalog_id"] == ("env-catalog", "env")  # also set in wch_settings
    assert src["batch_size"] == (40, "file")
    assert src["whatsapp_api_version"] == ("v20.0", "file")  # also set in wch_settings
    assert src["whatsapp_phone_number_id"] == ("106540352242922", "wch_settings")
    assert src["abandoned_cart_template"] == ("cart_reminder", "wch_settings")
    assert src["grace_period"] == (30.0, "default")


@pytest.mark.mysql
def test_demo_on_mysql(tmp_path: Path, mysql_url: str, prefix: str) -> None:
    from wch_bridge.store import make_engine
    from wch_bridge.store import schema as schema_mod

    try:
        for _ in range(2):  # a second run replaces the first run's tables (they carry the demo marker)
            r = run("demo", "--out", "out", "--dsn", mysql_url, "--prefix", prefix, "--actions", "20", cwd=tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
            got = parse(r.stdout)
            assert got["left"] == 0 and got["ran"] > 20
            assert f"--prefix {prefix}" in r.stdout and (tmp_path / "out" / "report.html").is_file()
            assert not (tmp_path / "out" / "demo.sqlite").exists()
    finally:
        eng = make_engine(mysql_url)
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()
