"""The report masks phone numbers in every string, but the plugin's admin campaign ids are ``time()`` integers
(ten digits, f46ecdf class-wch-admin-broadcasts.php ajax_save_campaign): they stay readable."""

from __future__ import annotations

from datetime import datetime

from wch_bridge.health import HealthFacts
from wch_bridge.report import build_report_data


def test_numeric_campaign_id_is_not_masked_but_phones_are() -> None:
    sections = {"campaigns": {"available": True, "campaigns": [
        {"campaign_id": "1767744000", "sent": 3, "errors": []},
        {"campaign_id": "promo +16505551234", "sent": 1, "errors": []}]}}
    data = build_report_data(sections, HealthFacts(now=datetime(2026, 1, 7), live_seconds=30), window="24h", now=datetime(2026, 1, 7), dsn="sqlite://", prefix="wp_")
    ids = [c["campaign_id"] for c in data["campaigns"]["campaigns"]]
    assert ids[0] == "1767744000"
    assert "16505551234" not in ids[1]
