"""The report read at a glance (issue 16 point 7): the throughput chart's buckets fit where the data is, WhatsApp
error codes carry their meaning, and the banner's problem count is the number of problems listed under it.
(Layout on a phone is checked in a real browser: tests/integration/test_report_browser.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import report_seed as rs
from tests.integration.test_report import Doc, make_report
from wch_bridge import report as report_mod
from wch_bridge.health import HealthFacts, WorkerBeat
from wch_bridge.store import ActionStore

T0 = datetime(2026, 12, 3, 12, 0, 0)


def test_a_burst_of_minutes_is_drawn_in_buckets_that_show_its_shape(store: ActionStore) -> None:
    """60 actions finished over the last 3 minutes of a 24 h window: not 24 hourly buckets with one spike, but
    buckets of a minute or less, more than one of them holding work, the totals unchanged."""
    now = store.now()
    for i in range(60):
        rs.add_action(store, "wch_process_sync_job", {"job_id": f"b{i}", "sync_type": "product", "entity_id": i,
                                                      "retry_count": 0},
                      now - timedelta(seconds=200 - 3 * i), "complete", lag=1, run=1)
    data, html = make_report(store, now + timedelta(seconds=1))
    tp = data["queue"]["throughput"]
    busy = [b for b in tp["buckets"] if b["completed"]]
    assert tp["bucket_seconds"] <= 60, tp["bucket_seconds"]
    assert len(busy) >= 3, busy
    assert 12 <= len(tp["buckets"]) <= 31
    assert sum(b["completed"] for b in tp["buckets"]) == tp["completed"] == 60
    # the heading names the interval in seconds, the x labels show seconds
    doc = Doc(html)
    labels = [doc.text_of(e) for e in doc.elements if e["tag"] == "text" and "x-tick" in e["attrs"].get("class", "")]
    assert labels and all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in labels), labels


def test_the_seeded_day_is_drawn_in_quarter_hours_from_its_first_finished_action(
        store: ActionStore) -> None:
    now = store.now()
    rs.seed(store, now)  # finished actions between 2 and 6 h ago
    data, _html = make_report(store, now + timedelta(seconds=1))
    tp = data["queue"]["throughput"]
    assert tp["bucket_seconds"] == 900
    first = datetime.strptime(tp["buckets"][0]["start_gmt"], "%Y-%m-%d %H:%M:%S")
    assert now - timedelta(hours=6, minutes=15) <= first <= now - timedelta(hours=5, minutes=30)
    assert first.minute % 15 == 0 and first.second == 0  # clock-aligned
    assert tp["first_finished_gmt"] is not None


@pytest.mark.parametrize(("first_ago", "window", "want_step"), [
    (None, 86400, 3600), (None, 7 * 86400, 21600), (86000, 86400, 3600), (6 * 3600, 86400, 900),
    (120, 86400, 10), (400, 86400, 30), (3000, 86400, 300), (5 * 86400, 7 * 86400, 21600),
])
def test_fit_buckets_chooses_the_smallest_step_that_fits(first_ago: int | None, window: int, want_step: int) -> None:
    from wch_bridge.store.reports.buckets import BUCKET_STEPS, MAX_BUCKETS, MIN_BUCKETS, fit_buckets

    first = None if first_ago is None else T0 - timedelta(seconds=first_ago)
    start, step, count = fit_buckets(T0 - timedelta(seconds=window), T0, first)
    assert step == want_step and step in BUCKET_STEPS
    assert count <= MAX_BUCKETS + 1
    assert start.replace(tzinfo=UTC).timestamp() % step == 0
    assert start <= (first or T0)  # the first finished action is inside the first bucket or later
    assert start + timedelta(seconds=step * count) > T0  # the last bucket holds now
    if first is not None:
        assert count >= MIN_BUCKETS


def test_whatsapp_error_codes_carry_their_meaning(store: ActionStore) -> None:
    now = store.now()
    rs.seed(store, now)
    data, html = make_report(store, now + timedelta(seconds=1))
    by_code = {str(r["error_code"]): r["meaning"] for r in data["campaigns"]["errors_in_window"]}
    assert by_code["131026"] == "Message Undeliverable"
    camp = next(c for c in data["campaigns"]["campaigns"] if c["campaign_id"] == "camp-1")
    assert {str(e["error_code"]): e["meaning"] for e in camp["errors"]}["130429"] == "Rate limit hit"
    text = " ".join(Doc(html).text_of(e) for e in Doc(html).elements if e["attrs"].get("id") == "errors-by-code")
    assert "131026 Message Undeliverable" in text
    assert "131049 Meta chose not to deliver" in text


def test_the_banner_counts_the_problems_it_lists() -> None:
    """Three problems and a fact: "3 problems" above exactly three problem bullets; the fact apart."""
    now = T0
    beat = WorkerBeat("w1", "host-a", 1, "1", now - timedelta(hours=1), now - timedelta(seconds=3), None)
    dead = WorkerBeat("w2", "host-b", 2, "1", now - timedelta(hours=2), now - timedelta(hours=1), None)
    facts = HealthFacts(now=now, live_seconds=60, groups=("wch",), past_due=2,
                        oldest_past_due=now - timedelta(minutes=20), failed_24h=5, completed_24h=5,
                        cleanup_next=now + timedelta(minutes=30), workers=(beat, dead))
    absent = {"available": False, "reason": "not seeded"}
    sections = {k: absent for k in ("queue", "failures", "carts", "cleanup", "campaigns", "catalog", "workers")}
    data = report_mod.build_report_data(sections, facts, window="24h", now=now, dsn="sqlite:///x.sqlite", prefix="wp_")
    reasons = data["health"]["reasons"]
    assert len(reasons) >= 3 and data["health"]["facts"], data["health"]
    doc = Doc(report_mod.render_html(data))
    banner = doc.by_id("health")
    heading = next(doc.text_of(e) for e in doc.elements if e["tag"] == "strong" and banner["attrs"] in e["ancestors"])
    problems = [e for e in doc.elements if e["tag"] == "li" and e["attrs"].get("data-level") != "fact"
                and banner["attrs"] in e["ancestors"]]
    assert heading == f"{len(reasons)} problems"
    assert len(problems) == len(reasons)
    listed = [e for e in doc.elements if e["tag"] == "ul" and banner["attrs"] in e["ancestors"]]
    problem_lists = [u for u in listed if u["attrs"].get("class") == "problems"]
    assert len(problem_lists) == 1
    in_problem_list = [e for e in doc.elements if e["tag"] == "li" and problem_lists[0]["attrs"] in e["ancestors"]]
    assert len(in_problem_list) == len(reasons)
