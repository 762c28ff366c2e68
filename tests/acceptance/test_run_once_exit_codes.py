"""``run --once`` exit codes cron can act on (issue 16.3): 0 when it served what was due, 3 when WhatsApp sends were
halted (error 190), 4 when it left due actions of hooks it runs but could not serve (no WhatsApp settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wch_bridge.sandbox import Sandbox
from wch_bridge.store import make_engine
from wch_bridge.store import schema as schema_mod

WCH = str(Path(sys.executable).parent / "wch-bridge")
TOKEN = "EAAG16exitTOKENabcdef0123456789"
BROADCAST = "wch_send_broadcast_batch"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    dsn = f"sqlite:///{tmp_path / 'site.sqlite'}"
    eng = make_engine(dsn)
    schema_mod.install(eng, "wp_", with_wordpress=True)
    eng.dispose()
    out = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    out.update(WCH_BRIDGE_DSN=dsn, WCH_BRIDGE_PREFIX="wp_", WCH_BRIDGE_POLL_INTERVAL="0.1")
    return out


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WCH, *args], capture_output=True, text=True, env=env, timeout=120)


def enqueue_broadcast(env: dict[str, str], campaign: str) -> None:
    args = {"batch": ["+15550001111", "+15550002222"], "batch_num": 0, "campaign_id": campaign, "message": "hi"}
    r = cli(env, "enqueue", BROADCAST, "--args", json.dumps(args))
    assert r.returncode == 0, r.stderr


def test_exit_0_when_everything_due_was_served(env: dict[str, str]) -> None:
    enqueue_broadcast(env, "ok")
    with Sandbox(token=TOKEN) as sandbox:
        r = cli({**env, "WCH_BRIDGE_WHATSAPP_TOKEN": TOKEN}, "run", "--once", "--whatsapp-api-base", sandbox.url,
                "--whatsapp-phone-number-id", "1234567890")
    assert r.returncode == 0, r.stderr


def test_exit_3_when_sends_were_halted(env: dict[str, str]) -> None:
    enqueue_broadcast(env, "halt")
    with Sandbox(token=TOKEN) as sandbox:
        sandbox.add_fault(code=190)
        r = cli({**env, "WCH_BRIDGE_WHATSAPP_TOKEN": TOKEN}, "run", "--once", "--whatsapp-api-base", sandbox.url,
                "--whatsapp-phone-number-id", "1234567890")
    assert "halted" in r.stderr
    assert r.returncode == 3, r.stderr


def test_exit_4_when_due_work_is_left_that_it_cannot_serve(env: dict[str, str]) -> None:
    enqueue_broadcast(env, "noconf")
    r = cli(env, "run", "--once")
    assert r.returncode == 4, r.stderr
    assert "cannot serve" in r.stderr and BROADCAST in r.stderr
