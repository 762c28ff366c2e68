"""Secrets: a known WhatsApp token and a DSN password (a MariaDB user created for this test, dropped after) never
appear in any log record, CLI output, AS log row, ledger/option row, exception text or the report HTML.

Scenarios, each through the installed ``wch-bridge`` CLI as an operator runs it (``--log-level DEBUG`` so every
record is printed): ``run --once`` with API errors (131047 outside the window, 500, malformed JSON, then 190 which
halts sends), a failing sync job; ``status`` (text and JSON), ``jobs list``, ``jobs show`` of a failed action,
``report --out --json -``, ``schema check``, ``health``; and failing connections (wrong port, wrong password, which is
a third secret) for ``run``, ``status`` and ``schema check``."""

from __future__ import annotations

import os
import secrets as pysecrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.reliability import BROADCAST, CATALOG, PHONE_ID, SYNC, TOKEN, Site, phone
from wch_bridge.sandbox import Sandbox

pytestmark = pytest.mark.mysql

WCH_BRIDGE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "wch-bridge")



@pytest.fixture
def site(mysql_url: str, prefix: str) -> Iterator[Site]:
    s = Site.create(mysql_url, prefix)
    yield s
    s.dispose()


def test_token_and_dsn_password_never_leak(site: Site, db_user: tuple[str, str], mysql_url: str,
                                           tmp_path: Path) -> None:
    user, password = db_user
    hostpart = mysql_url.split("@", 1)[1]
    dsn = f"mysql+pymysql://{user}:{password}@{hostpart}"
    wrong_password = f"Wrong{pysecrets.token_hex(8)}Pw"
    bad_dsns = [f"mysql+pymysql://{user}:{password}@127.0.0.1:1/test",
                f"mysql+pymysql://{user}:{wrong_password}@{hostpart}"]
    forbidden = [TOKEN, password, wrong_password]
    outputs: list[tuple[str, str]] = []
    env = {**os.environ, "WCH_BRIDGE_WHATSAPP_TOKEN": TOKEN, "WCH_BRIDGE_DSN": dsn, "WCH_BRIDGE_PREFIX": site.prefix}

    def cli(*args: str, dsn_override: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        e = dict(env)
        if dsn_override:
            e["WCH_BRIDGE_DSN"] = dsn_override
        res = subprocess.run([WCH_BRIDGE, *args], capture_output=True, text=True, timeout=180, env=e)
        outputs.append((" ".join(args), res.stdout + res.stderr))
        if ok:
            assert res.returncode == 0, f"{args}: {res.stdout}{res.stderr}"
        return res

    site.add_products(1)
    batch = [phone(i) for i in range(4)]
    site.recipients["sec"] = batch
    site.bulk_enqueue([(BROADCAST, {"batch": batch, "batch_num": 0, "campaign_id": "sec", "message": "hello"}),
                       (SYNC, {"job_id": "s1", "sync_type": "product", "entity_id": site.products[0]}),
                       (SYNC, {"job_id": "s2", "sync_type": "order", "entity_id": 999999})])
    with Sandbox(token=TOKEN) as sandbox:
        run = ["run", "--once", "--log-level", "DEBUG", "--poll-interval", "0.1", "--whatsapp-api-base", sandbox.url,
               "--whatsapp-phone-number-id", PHONE_ID, "--whatsapp-catalog-id", CATALOG]
        sandbox.add_fault(code=131047, recipients=[batch[0]])
        sandbox.add_fault(code=131000, recipients=[batch[1]], times=1)
        sandbox.add_fault(body="<html>not json " + "Bearer abc" + "</html>", http_status=200, recipients=[batch[2]])
        cli(*run)
        # then the token is revoked: 190 halts all sends
        sandbox.reset()
        sandbox.add_fault(code=190)
        more = [phone(10 + i) for i in range(3)]
        site.bulk_enqueue([(BROADCAST, {"batch": more, "batch_num": 1, "campaign_id": "sec", "message": "again"})])
        halted = cli(*run, ok=False)
        assert halted.returncode == 3, halted.stderr  # `run --once`'s documented exit code for "sends halted"
    failed = site.sql("SELECT action_id FROM {p}actionscheduler_actions WHERE status = 'failed' ORDER BY action_id")
    assert failed, "the scenarios produce failed actions"
    cli("status", ok=False)  # exit 1 = warnings (failed actions, no live worker)
    cli("status", "--json", ok=False)
    cli("jobs", "list")
    cli("jobs", "show", str(failed[0][0]))
    report = tmp_path / "report.html"
    cli("report", "--out", str(report), "--json", "-")
    cli("schema", "check", ok=False)
    cli("health", ok=False)
    for bad in bad_dsns:
        for args in (("run", "--once", "--whatsapp-phone-number-id", PHONE_ID), ("status",), ("schema", "check"),
                     ("jobs", "list")):
            res = cli(*args, dsn_override=bad, ok=False)
            assert res.returncode != 0, f"{args} with a broken DSN should fail"

    haystacks = list(outputs)
    haystacks.append(("report.html", report.read_text(encoding="utf-8")))
    for table, col in (("actionscheduler_logs", "message"), ("actionscheduler_actions", "args"),
                       ("wch_bridge_messages", "error_text"), ("wch_bridge_messages", "payload"),
                       ("options", "option_value"), ("wch_bridge_workers", "worker_id")):
        rows = site.sql(f"SELECT {col} FROM {{p}}{table}")  # noqa: S608 - fixed test table names
        haystacks.append((f"{table}.{col}", "\n".join(str(r[0]) for r in rows)))
    for where, blob in haystacks:
        for secret in forbidden:
            assert secret not in blob, f"a secret leaked into {where}"
    # the scenarios really ran: API errors were recorded, the connection failures were reported
    all_out = "\n".join(b for _w, b in outputs)
    assert "190" in all_out and "131047" in all_out
    assert "Access denied" in all_out or "access denied" in all_out.lower()
