"""The status report against real databases: the numbers shown are the numbers seeded (read back by PARSING the
HTML: ``data-metric`` paths, ``data-value`` raw values, ``data-hook``/``data-campaign`` row keys), everything from
the database escaped, no phone number unmasked, ``--json`` equal to the HTML, and sensible output for an empty
database, a PHP-only database and a database without the optional tables."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.conftest import FIXTURES
from tests.helpers import report_seed as rs
from wch_bridge import report as report_mod
from wch_bridge.cli import main
from wch_bridge.health import HealthFacts
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import reports as reporting
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.reports.health_facts import read_health_facts
from wch_bridge.timeutil import Clock

VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source", "wbr"}


class Doc(HTMLParser):
    """Flat list of elements: tag, attributes, the attributes of every ancestor, and the text inside."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict[str, Any]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._stack: list[dict[str, Any]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        el = {"tag": tag, "attrs": a, "ancestors": [e["attrs"] for e in self._stack], "text": []}
        self.elements.append(el)
        if tag not in VOID:
            self._stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            el = self._stack.pop()
            if el["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for el in self._stack:
            el["text"].append(data)

    # --- queries
    def text_of(self, el: dict[str, Any]) -> str:
        return " ".join("".join(el["text"]).split())

    def find(self, **attrs: str) -> list[dict[str, Any]]:
        return [e for e in self.elements if all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def by_id(self, ident: str) -> dict[str, Any]:
        found = [e for e in self.elements if e["attrs"].get("id") == ident]
        assert len(found) == 1, ident
        return found[0]

    def metrics(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for e in self.elements:
            path = e["attrs"].get("data-metric")
            if path is not None:
                out[path] = {"value": e["attrs"].get("data-value"), "text": self.text_of(e),
                             "kind": e["attrs"].get("data-kind"), "ancestors": e["ancestors"]}
        return out

    def metric(self, path: str) -> float | None:
        v = self.metrics()[path]["value"]
        return None if v in (None, "") else float(v)

    def keyed(self, pattern: str, key_attr: str) -> dict[str, dict[str, float]]:
        """``{row key: {field: value}}`` for metrics whose path matches ``pattern`` (group 1 = field)."""
        out: dict[str, dict[str, float]] = {}
        for path, m in self.metrics().items():
            hit = re.fullmatch(pattern, path)
            if not hit:
                continue
            key = next(a[key_attr] for a in reversed(m["ancestors"]) if key_attr in a)
            out.setdefault(str(key), {})[hit.group(1)] = float(m["value"])
        return out


def make_report(store: ActionStore, now: datetime, window: str = "24h", dsn: str = "sqlite:///x.sqlite"
                ) -> tuple[dict[str, Any], str]:
    scope = reporting.open_scope(store.engine, store.t, ("wch",), now, window, store.site)
    sections = reporting.collect(scope, live_seconds=60)
    facts = read_health_facts(store, ("wch",), now, 60)
    data = report_mod.build_report_data(sections, facts, window=window, now=now, dsn=dsn, prefix=store.prefix)
    return data, report_mod.render_html(data)


def resolve(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def assert_html_matches_json(doc: Doc, data: dict[str, Any]) -> int:
    """Every number in the HTML is the JSON's number at the same path (and its text shows that value)."""
    n = 0
    for path, m in doc.metrics().items():
        expected = resolve(data, path)
        if expected is None:
            assert m["value"] == "", path
            continue
        assert float(m["value"]) == pytest.approx(float(expected)), path
        if m["kind"] == "num" and isinstance(expected, int) and not isinstance(expected, bool):
            assert m["text"].replace(",", "") == str(expected), path
        n += 1
    return n


def assert_safe(html: str, *, also: str = "") -> None:
    doc = Doc(html)
    assert not [t for t, _ in doc.tags if t in ("script", "img", "iframe", "object", "embed", "link")]
    assert not [k for _, a in doc.tags for k in a if k.lower().startswith("on")]
    assert not re.search(r"(?i)\b(?:src|href)\s*=\s*[\"']?(?:https?:|//)", html), "external reference"
    for raw in (rs.XSS_SCRIPT, "<img src=x", rs.XSS_IMG):
        assert raw not in html
    for phone in rs.PHONES:
        assert phone not in html and phone not in also, phone


# ---------------------------------------------------------------------------------------------- seeded
@pytest.fixture
def seeded(store: ActionStore) -> tuple[ActionStore, datetime]:
    now = store.now()
    rs.seed(store, now)
    return store, now + timedelta(seconds=1)


def test_numbers_shown_equal_numbers_seeded(seeded: tuple[ActionStore, datetime]) -> None:
    store, now = seeded
    data, html = make_report(store, now)
    doc = Doc(html)
    exp = rs.EXPECTED
    hooks = doc.keyed(r"queue\.hooks\.\d+\.counts\.(.+)", "data-hook")
    assert hooks == {h: {s: float(n) for s, n in c.items()} for h, c in exp["hooks"].items()}
    assert doc.keyed(r"queue\.past_due\.by_hook\.\d+\.(count)", "data-hook") == {
        h: {"count": float(n)} for h, n in exp["past_due"].items()}
    assert doc.metric("inputs.past_due") == 1 and doc.metric("queue.past_due.total") == 1
    assert doc.metric("inputs.oldest_past_due_age") == pytest.approx(601, abs=2)
    assert doc.metric("inputs.failed_24h") == exp["failed_in_window"]  # the default window is 24 h
    assert doc.metric("failures.failed_in_window") == exp["failed_in_window"]
    assert doc.metric("inputs.completed_24h") == exp["completed_in_window"]
    assert doc.metric("queue.throughput.completed") == exp["completed_in_window"]
    assert doc.metric("queue.throughput.failed") == exp["failed_in_window"]
    lag = doc.keyed(r"queue\.pickup_lag\.hooks\.\d+\.(samples|p50|p95|max)", "data-hook")["wch_process_sync_job"]
    assert lag == {k: float(v) for k, v in exp["sync_lag"].items()}
    # chart points: one per bucket per series, summing to the totals; lag bars per hook
    pts = [e for e in doc.elements if e["tag"] == "circle" and "pt" in e["attrs"].get("class", "")]
    assert len(pts) == 2 * len(data["queue"]["throughput"]["buckets"])
    assert sum(float(e["attrs"]["data-value"]) for e in pts if e["attrs"]["data-series"] == "completed") == 5
    assert sum(float(e["attrs"]["data-value"]) for e in pts if e["attrs"]["data-series"] == "failed") == 4
    bars = [e for e in doc.elements if e["tag"] == "rect" and "bar" in e["attrs"].get("class", "")]
    assert {(b["attrs"]["data-hook"], b["attrs"]["data-stat"]) for b in bars} >= {
        ("wch_process_sync_job", s) for s in ("p50", "p95", "max")}
    # failures: latest list with the error from the log and the retry command; grouped by message
    rows = [e for e in doc.elements if e["tag"] == "tr" and "data-action-id" in e["attrs"]]
    assert len(rows) == 4
    for e in doc.elements:
        if "data-retry" in e["attrs"]:
            assert doc.text_of(e) == f"wch-bridge jobs retry {e['attrs']['data-retry']}"
    errors = {doc.text_of(e) for e in doc.elements if e["attrs"].get("data-field") == "error"}
    assert f"API error {rs.XSS_SCRIPT} for +1******7890" in errors
    assert rs.BATCH_ERROR in errors
    groups = doc.keyed(r"failures\.by_error\.\d+\.(count)", "data-error-group")
    assert sorted(v["count"] for v in groups.values()) == [1, 1, 2]
    for field, value in exp["carts"].items():
        assert doc.metric(f"carts.{field}") == pytest.approx(value), field
    camps = doc.keyed(r"campaigns\.campaigns\.\d+\.(batches_done|batches_pending|batches_failed|sent|failed)",
                      "data-campaign")
    for camp, want in exp["campaigns"].items():
        assert camps[camp] == {k: float(v) for k, v in want.items() if k != "errors"}, camp
        codes = {str(e["error_code"]): e["count"] for c in data["campaigns"]["campaigns"] if c["campaign_id"] == camp
                 for e in c["errors"]}
        assert codes == want["errors"]
    assert doc.metric("campaigns.messages_in_window.sent") == exp["messages"]["sent"]
    assert doc.metric("campaigns.messages_in_window.failed") == exp["messages"]["failed"]
    for field, value in exp["workers"].items():
        assert doc.metric(f"workers.{field}") == value
    assert doc.metric("catalog.pending") == exp["catalog"]["pending"]
    assert doc.metric("catalog.pending_retries") == exp["catalog"]["pending_retries"]
    assert doc.metric("catalog.products.synced") == exp["catalog"]["synced"]
    assert doc.metric("catalog.products.failed") == exp["catalog"]["failed"]
    # health: the auth error (190, newer than the last sent message) is critical; reasons in words
    banner = doc.by_id("health")
    assert banner["attrs"]["data-status"] == "critical"
    reasons = [doc.text_of(e) for e in doc.elements if e["attrs"].get("data-level") in ("critical", "warning")]
    assert any("authentication error (code 190)" in r for r in reasons)
    assert any("1 action is past due" in r for r in reasons)
    assert any("4 actions failed in the last 24 h" in r for r in reasons)
    assert assert_html_matches_json(doc, data) > 40


def test_everything_from_the_database_is_escaped_and_masked(seeded: tuple[ActionStore, datetime]) -> None:
    store, now = seeded
    data, html = make_report(store, now)
    text = report_mod.render_json(data)
    assert_safe(html, also=text)
    doc = Doc(html)
    shown = " ".join(doc.text_of(e) for e in doc.elements if e["tag"] in ("td", "li", "dd", "text"))
    assert rs.XSS_SCRIPT in shown and rs.XSS_IMG.strip() in shown  # shown as text, never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    hooks = {e["attrs"]["data-hook"] for e in doc.elements if "data-hook" in e["attrs"]}
    assert rs.EVIL_HOOK in hooks and rs.EVIL_HOOK2 in hooks  # attribute values escaped, read back intact
    assert "+4*******0123" in shown and "+1******7890" in shown
    args = [doc.text_of(e) for e in doc.elements if e["attrs"].get("data-field") == "args"]
    assert args and all(len(a) <= 80 for a in args)
    assert "host-w-live +1******7890" in html
    assert "password" not in html.lower()


def test_json_holds_the_same_figures_as_the_html(seeded: tuple[ActionStore, datetime], tmp_path: Path,
                                                 db_url: str) -> None:
    store, _now = seeded
    out, js = tmp_path / "r" / "report.html", tmp_path / "report.json"
    dsn = db_url.replace("root@", "root:s3cret-pw@") if db_url.startswith("mysql") else db_url
    res = CliRunner().invoke(main, ["report", "--dsn", db_url, "--prefix", store.prefix, "--out", str(out),
                                    "--json", str(js), "--window", "7d", "--mkdir"],
                            catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "CRITICAL" in res.output
    data = json.loads(js.read_text(encoding="utf-8"))
    html = out.read_text(encoding="utf-8")
    assert data["meta"]["window"] == "7d" and data["queue"]["throughput"]["bucket_seconds"] == 900
    assert assert_html_matches_json(Doc(html), data) > 40
    assert_safe(html, also=js.read_text(encoding="utf-8"))
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left behind
    label = report_mod.database_label(dsn)
    assert "s3cret" not in json.dumps(label) and "root" not in json.dumps(label)


# ---------------------------------------------------------------------------------------------- empty / PHP-only
def test_empty_database_renders_a_sensible_report(store: ActionStore) -> None:
    data, html = make_report(store, store.now())
    doc = Doc(html)
    assert doc.by_id("health")["attrs"]["data-status"] == "warning"
    words = " ".join(r["text"] for r in data["health"]["reasons"])
    assert "No wch-bridge worker has registered" in words and "not scheduled" in words
    assert doc.metric("inputs.past_due") == 0 and data["queue"]["totals"]["total"] == 0
    assert doc.find(data_empty="hooks")
    assert doc.metric("carts.active") == 0 and doc.metric("workers.live") == 0
    buckets = data["queue"]["throughput"]["buckets"]
    assert data["queue"]["throughput"]["bucket_seconds"] == 3600 and len(buckets) in (24, 25)  # the whole day
    assert len([e for e in doc.elements if e["tag"] == "circle" and "pt" in e["attrs"].get("class", "")]) == 2 * len(
        buckets)
    assert_html_matches_json(doc, data)
    assert_safe(html)


@pytest.fixture(params=["sqlite", "mysql"])
def php_only(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Any:
    url = f"sqlite:///{tmp_path / 'php.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("mysql_url")
    eng: Engine = make_engine(url)
    rs.load_php_dump(eng, prefix, FIXTURES / "action-scheduler-real.sql")
    yield ActionStore(eng, prefix, clock=Clock())
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def test_php_written_rows_render_a_sensible_report(php_only: ActionStore) -> None:
    store = php_only
    now = datetime(2026, 11, 29, 3, 0, 0)
    data, html = make_report(store, now)
    doc = Doc(html)
    a = store.t.actions
    with store.engine.connect() as conn:
        want: dict[str, dict[str, float]] = {}
        for hook, status, n in conn.execute(select(a.c.hook, a.c.status, func.count()).where(a.c.group_id == 1)
                                            .group_by(a.c.hook, a.c.status)):
            want.setdefault(hook, {})[status] = float(n)
    assert want and doc.keyed(r"queue\.hooks\.\d+\.counts\.(.+)", "data-hook") == want
    errors = {doc.text_of(e) for e in doc.elements if e["attrs"].get("data-field") == "error"}
    assert "simulated failure for job j8" in errors
    assert any("no callbacks are registered" in e for e in errors)
    lag = doc.keyed(r"queue\.pickup_lag\.hooks\.\d+\.(samples)", "data-hook")
    assert lag.get("wch_process_sync_job", {}).get("samples", 0) >= 1
    for section in ("carts", "workers"):  # optional tables absent: "not available", not a crash
        assert not data[section]["available"]
    assert data["campaigns"]["available"] and not data["campaigns"]["ledger_available"]
    assert not data["catalog"]["products"]["available"]
    assert not data["cleanup"]["last_result"]["available"]
    assert len(doc.find(data_na="")) >= 3 or sum("data-na" in e["attrs"] for e in doc.elements) >= 3
    assert doc.by_id("health")["attrs"]["data-status"] in ("warning", "critical")
    assert_html_matches_json(doc, data)
    assert_safe(html)


def test_absent_actions_table_is_not_a_crash(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'bare.sqlite'}")
    store = ActionStore(eng, "wp_", clock=Clock())
    data, html = make_report(store, store.now())
    assert data["health"]["status"] == "critical" and not data["queue"]["available"]
    assert Doc(html).by_id("health")["attrs"]["data-status"] == "critical"


def test_schema_check_names_a_missing_report_index(store: ActionStore) -> None:
    """The report's indexes live on the bridge's own ledger table only (none on Action Scheduler's tables)."""
    dialect = "sqlite" if store.engine.dialect.name == "sqlite" else "mysql"
    specs = schema_mod.recommended_indexes(store.prefix, dialect)
    assert specs and all(sp.table == f"{store.prefix}wch_bridge_messages" for sp in specs), specs
    assert not schema_mod.check(store.engine, store.prefix).missing_indexes
    spec = specs[0]
    with store.engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql(f"DROP INDEX {spec.name}")
        else:
            conn.exec_driver_sql(f"ALTER TABLE {spec.table} DROP INDEX {spec.name}")
    assert [sp.name for sp in schema_mod.check(store.engine, store.prefix).missing_indexes] == [spec.name]


def test_big_action_ids_keep_their_retry_command() -> None:
    sections = {"health": {"available": False, "reason": "x"},
                "failures": {"available": True, "failed_in_window": 1, "by_error": [], "other_count": 0,
                             "latest": [{"action_id": 123456789, "hook": "h", "attempts": 1, "failed_gmt": None,
                                         "scheduled_gmt": None, "error": "e", "args_summary": ""}]}}
    facts = HealthFacts(now=datetime(2026, 1, 1), live_seconds=30, unreadable="x")
    data = report_mod.build_report_data(sections, facts, window="24h", now=datetime(2026, 1, 1), dsn="sqlite:///x",
                                        prefix="wp_")
    assert data["failures"]["latest"][0]["retry_command"] == "wch-bridge jobs retry 123456789"


# ---------------------------------------------------------------------------------------------- writing
def test_write_atomic_and_ticker(tmp_path: Path) -> None:
    target = tmp_path / "out" / "r.html"
    report_mod.write_atomic(target, "one")
    report_mod.write_atomic(target, "two")
    assert target.read_text() == "two" and [p.name for p in target.parent.iterdir()] == ["r.html"]
    clock = [100.0]
    calls: list[int] = []
    data = {"n": 0}

    def produce() -> dict[str, Any]:
        calls.append(1)
        raise RuntimeError("db down")  # a failing report never escapes the ticker

    ticker = report_mod.ReportTicker(produce, target, 60, monotonic=lambda: clock[0], background=False)
    ticker()
    ticker()
    clock[0] += 59
    ticker()
    clock[0] += 2
    ticker()
    assert len(calls) == 2 and ticker.errors == 2 and data["n"] == 0
    assert target.read_text() == "two"


def test_run_regenerates_the_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    out = tmp_path / "live.html"
    schema_mod.install(make_engine(url), "wp_")
    res = CliRunner().invoke(main, ["run", "--dsn", url, "--prefix", "wp_", "--once", "--report-out", str(out),
                                    "--report-every", "5"])
    assert res.exit_code == 0, res.output
    for _ in range(100):  # the ticker writes from its own thread
        if out.exists():
            break
        time.sleep(0.1)
    doc = Doc(out.read_text(encoding="utf-8"))
    assert doc.by_id("health")["attrs"]["data-status"] in ("ok", "warning", "critical")
    assert Settings(report_out=str(out)).report_every == 60.0
