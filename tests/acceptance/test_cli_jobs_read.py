"""``wch-bridge jobs list`` and ``jobs show`` (installed console script) against MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.cli_ops import Ops, make_ops
from wch_bridge.hooks import PLUGIN_GROUPS

ITEM_KEYS = {"id", "hook", "status", "group", "priority", "scheduled_gmt", "last_attempt_gmt", "attempts",
             "last_error", "args_summary"}
ROW_KEYS = {"action_id", "hook", "status", "group", "group_id", "priority", "scheduled_date_gmt",
            "scheduled_date_local", "attempts", "last_attempt_gmt", "last_attempt_local", "claim_id", "args",
            "extended_args", "schedule"}


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def test_list_table_newest_first_with_masked_args_and_last_error(ops: Ops) -> None:
    first = ops.failed("wch_send_message", {"phone": "+15551237890", "text": "hi"},
                       message="API said no for +15551237890\nsecond line")
    second = ops.add("wch_sync_product", {"product_id": 7})
    r = ops.run("jobs", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "HOOK", "STATUS", "SCHEDULED", "(UTC)", "LAST", "ATTEMPT", "(UTC)", "ATTEMPTS",
                                "LAST", "ERROR", "·", "ARGS"]
    assert lines[1].split()[0] == str(second) and lines[2].split()[0] == str(first)
    assert "API said no for +1******7890" in lines[2] and "second line" not in r.stdout
    assert "phone=+1******7890" in lines[2]
    assert "5551237890" not in r.stdout
    # columns are aligned: every row's STATUS starts where the header's does
    col = lines[0].index("STATUS")
    assert lines[1][col:].startswith("pending") and lines[2][col:].startswith("failed")


def test_list_filters_paging_and_json_shape(ops: Ops) -> None:
    ids = [ops.add("wch_a", {"n": i}) for i in range(5)]
    bad = ops.failed("wch_b", {"n": 99}, message="nope")
    ops.add("wch_a", {"n": -1}, group="elsewhere")
    out = ops.json("jobs", "list", "--limit", "2")
    assert set(out) == {"page", "limit", "has_more", "next_page", "filters", "actions"}
    assert out["has_more"] is True and out["next_page"] == 2
    assert [a["id"] for a in out["actions"]] == [bad, ids[4]]
    assert set(out["actions"][0]) == ITEM_KEYS
    assert out["actions"][0]["last_error"] == "nope" and out["actions"][0]["status"] == "failed"
    page3 = ops.json("jobs", "list", "--limit", "2", "--page", "3")
    assert [a["id"] for a in page3["actions"]] == [ids[1], ids[0]] and page3["has_more"] is False
    only_a = ops.json("jobs", "list", "--hook", "wch_a", "--status", "pending")
    assert [a["id"] for a in only_a["actions"]] == ids[::-1]  # the other group's wch_a is not listed
    assert only_a["filters"] == {"status": "pending", "hook": "wch_a", "since": None, "since_gmt": None,
                                 "args_contains": None, "after_gmt": None, "before_gmt": None,
                                 "stuck_seconds": None, "groups": list(PLUGIN_GROUPS)}
    since = ops.json("jobs", "list", "--since", "1h", "--status", "failed")
    assert [a["id"] for a in since["actions"]] == [bad] and since["filters"]["since_gmt"]
    old = ops.add("wch_a", {"n": 1000}, delay=-7 * 86400)
    recent = ops.json("jobs", "list", "--since", "2d", "--hook", "wch_a")
    assert old not in [a["id"] for a in recent["actions"]]
    empty = ops.run("jobs", "list", "--status", "canceled")
    assert empty.returncode == 0 and "no actions match" in empty.stdout


def test_show_whole_row_decoded_args_schedule_and_logs_in_order(ops: Ops) -> None:
    aid = ops.failed("wch_send_message", {"phone": "+15551237890", "note": "x" * 250}, message="boom")
    r = ops.run("jobs", "show", str(aid))
    assert r.returncode == 0, r.stderr
    assert f"action #{aid}" in r.stdout and "failed" in r.stdout
    assert "5551237890" not in r.stdout and "+1******7890" in r.stdout
    log_lines = [ln for ln in r.stdout.splitlines() if ln.startswith("  #")]
    assert [ln.split("  ")[-1] for ln in log_lines] == [
        "action created", "action started via WCH Bridge", "action failed via WCH Bridge: boom"]
    data = ops.json("jobs", "show", str(aid))
    assert set(data) == {"action", "args", "args_error", "schedule", "retry_of", "retried_as", "logs"}
    assert set(data["action"]) == ROW_KEYS
    row = data["action"]
    assert row["action_id"] == aid and row["group"] == "wch" and row["attempts"] == 1
    assert len(row["args"]) == 32 and "+1******7890" in row["extended_args"]  # long args: md5 + extended_args
    assert "5551237890" not in str(data)
    assert data["args"] == {"phone": "+1******7890", "note": "x" * 250} and data["args_error"] is None
    assert data["schedule"]["type"] == "simple"
    assert data["schedule"]["scheduled_gmt"] == row["scheduled_date_gmt"]
    assert [lg["message"] for lg in data["logs"]][0] == "action created"
    assert [lg["log_id"] for lg in data["logs"]] == sorted(lg["log_id"] for lg in data["logs"])
    assert data["retry_of"] is None and data["retried_as"] == []


def test_show_any_group_and_unknown_id(ops: Ops) -> None:
    other = ops.add("wch_x", [], group="elsewhere")
    assert ops.json("jobs", "show", str(other))["action"]["group"] == "elsewhere"
    r = ops.run("jobs", "show", "987654")
    assert r.returncode == 1
    assert r.stdout == "" and r.stderr.strip() == f"wch-bridge: error: action #987654 not found under prefix '{ops.prefix}'"
