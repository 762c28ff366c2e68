"""``--log-format json``: one JSON object per line, per-action fields from the worker's on_result callback
(``metrics.ActionObserver``), and no secret or unmasked phone number in either format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from wch_bridge.cli.common import setup_logging
from wch_bridge.metrics import ActionObserver
from wch_bridge.models import Action
from wch_bridge.worker import Result

TOKEN = "EAAGsecretTOKEN0123456789"
PHONE = "+15551237890"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def result(kind: str, message: str = "") -> Result:
    action = Action(action_id=42, hook="wch_send_broadcast_batch", status="in-progress",
                    scheduled_date_gmt=datetime(2026, 5, 1, 12, 0, 0))
    return Result(action=action, kind=kind, message=message, started=100.0, finished=100.25,
                  finished_at=datetime(2026, 5, 1, 12, 0, 30))


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_per_action_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json", secrets=(TOKEN,))
    obs = ActionObserver()
    obs.on_result(result("complete"))
    obs.on_result(result("failed", f"send to {PHONE} failed with token {TOKEN}"))
    out = lines(capsys.readouterr().err)
    assert [x["outcome"] for x in out] == ["complete", "failed"]
    for rec in out:
        assert rec["action_id"] == 42 and rec["hook"] == "wch_send_broadcast_batch"
        assert rec["duration"] == pytest.approx(0.25)
        assert {"time", "level", "logger", "message"} <= set(rec)
    assert "+1******7890" in out[1]["message"]
    raw = json.dumps(out)
    assert TOKEN not in raw and PHONE not in raw and "15551237890" not in raw


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_or_phone_in_either_format(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    redact = setup_logging("INFO", fmt, secrets=(TOKEN,))
    redact.add("decrypted-later-secret")
    log = logging.getLogger("wch_bridge.test")
    log.info("calling with Bearer %s for %s", TOKEN, PHONE)
    log.warning("late secret decrypted-later-secret, phone 44 7700 900123")
    try:
        raise RuntimeError(f"boom {TOKEN} {PHONE}")
    except RuntimeError:
        log.exception("handler raised")
    err = capsys.readouterr().err
    assert TOKEN not in err and "decrypted-later-secret" not in err
    assert PHONE not in err and "7700 900123" not in err
    assert "+1******7890" in err
    if fmt == "json":
        recs = lines(err)
        assert len(recs) == 3 and recs[2]["error"].startswith("RuntimeError: boom ***")


def test_action_ids_are_not_mistaken_for_phone_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    obs = ActionObserver()
    res = result("complete")
    res.action = Action(action_id=123456789012, hook="h", status="in-progress", scheduled_date_gmt=None)
    obs.on_result(res)
    rec = lines(capsys.readouterr().err)[0]
    assert rec["action_id"] == 123456789012 and "action:123456789012" in rec["message"]  # ":" keeps it unmasked
