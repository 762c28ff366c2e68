"""Hostile input through the real worker (``app.build_worker``, real handlers, sandbox API), on MariaDB.

Hypothesis generates action rows (args JSON or garbage, ``extended_args``, schedule strings, each served hook), the
plugin's ``wch_settings`` option (valid PHP-serialized values and garbage), cart ``items`` JSON, and API responses
(sandbox fault ``body`` with a 200/400/403 status). For every example: nothing raises out of the worker (``run()``
returns 0), each hostile row ends ``complete`` or ``failed`` — a failure with a clear one-line message, never a
traceback — a control action in the same run completes exactly once, and no row outside the example changes (rows of
earlier examples, a far-future action, another group's action). Rows may only stay ``pending`` untouched when the
API answered with an auth-type error, which halts sends by design (see test_api_storms).

A table of SQL-meaningful strings (quotes, backslashes, ``%``, ``_``, NUL, 4-byte emoji, 8,000-byte values) round-trips
intact through ``wch-bridge enqueue`` -> run (the action fails) -> ``wch-bridge jobs retry``: the args PHP would read
from the new action are exactly those given to enqueue."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from tests.helpers.reliability import BROADCAST, SYNC, TOKEN, Site, run_settings
from wch_bridge import argscodec
from wch_bridge.app import build_worker
from wch_bridge.handlers import default_registry
from wch_bridge.handlers.base import Job
from wch_bridge.sandbox import Sandbox

pytestmark = pytest.mark.mysql

ABANDONED, RETRY = "wch_process_abandoned_cart", "wch_retry_failed_message"
CONTROL = "wch_reliability_control"
HOOKS = (BROADCAST, SYNC, ABANDONED, RETRY)
ARG_KEYS = ["batch", "batch_num", "campaign_id", "message", "job_id", "sync_type", "entity_id", "retry_count",
            "cart_id", "message_id", "template_name", "variables"]
WCH_BRIDGE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "wch-bridge")
NULL_SCHEDULE = 'O:28:"ActionScheduler_NullSchedule":0:{}'

scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=30)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                                     max_size=4), max_leaves=12)
keyed = st.dictionaries(st.sampled_from(ARG_KEYS) | st.text(max_size=6), json_values, max_size=6)
args_text = st.one_of(keyed.map(json.dumps), json_values.map(json.dumps), st.text(max_size=120),
                      st.just(""), st.just("[]"), st.just("null"), st.just('{"batch": ["+1555'))
schedules_text = st.one_of(
    st.just(NULL_SCHEDULE), st.text(max_size=80),
    st.integers(-5, 2**40).map(lambda n: f'O:30:"ActionScheduler_SimpleSchedule":1:{{s:22:"scheduled_timestamp";i:{n};}}'),
    st.integers(-5, 2**31).map(lambda n: 'O:32:"ActionScheduler_IntervalSchedule":3:{s:22:"scheduled_timestamp";'
                                         f'i:{n};s:18:"recurrence_interval";i:{n % 7 - 1};s:20:"first_timestamp";i:0;}}'),
    st.text(max_size=20).map(lambda t: f'O:28:"ActionScheduler_CronSchedule":2:{{s:8:"schedule";s:{len(t.encode())}:"{t}";}}'),
)
row = st.fixed_dictionaries({
    "hook": st.sampled_from(HOOKS), "args": args_text, "extended_args": st.none() | args_text,
    "schedule": schedules_text,
})
settings_raw = st.one_of(st.text(max_size=60), json_values.map(lambda v: _php_serialize(v)),
                         st.just('a:1:{s:3:"api";s:5:"oops"'), st.just('a:1:{s:13:"notifications";a:1:{s:26:'
                                                                      '"abandoned_cart_delay_hours";s:3:"abc";}}'))
# the items column is JSON (CHECK json_valid on MariaDB): hostile structures, always valid JSON
item = st.dictionaries(st.sampled_from(["product_id", "product_name", "name", "quantity", "price", "variation_id"])
                       | st.text(max_size=5), json_values, max_size=5)
cart_items_json = st.one_of(st.lists(item | json_values, max_size=4), json_values).map(json.dumps)
api_bodies = st.one_of(st.text(max_size=80), json_values.map(json.dumps),
                       st.just('{"error": {"code": "x", "message": 5}}'), st.just('{"messages": [{"id": 7}]}'))


def _php_serialize(value: Any) -> str:
    from wch_bridge import phpser

    try:
        return phpser.php_serialize(value)
    except Exception:  # noqa: BLE001 - not every generated value is serializable to PHP; garbage is fine too
        return json.dumps(value)


@pytest.fixture
def site(mysql_url: str, prefix: str) -> Iterator[Site]:
    s = Site.create(mysql_url, prefix)
    yield s
    s.dispose()


_carts: list[int] = []


def snapshot(site: Site, exclude: set[int]) -> dict[int, tuple]:
    a = site.store.t.actions
    cols = [a.c.action_id, a.c.status, a.c.attempts, a.c.args, a.c.extended_args, a.c.schedule,
            a.c.last_attempt_gmt, a.c.claim_id, a.c.group_id]
    with site.store.engine.connect() as conn:
        return {int(r[0]): tuple(r[1:]) for r in conn.execute(select(*cols)) if int(r[0]) not in exclude}


def insert_raw(site: Site, rows: list[dict[str, Any]]) -> list[int]:
    gid = site.store.group_ids(["wch"], create=True)["wch"]
    now = site.store.now().replace(microsecond=0)
    a = site.store.t.actions
    ids = []
    with site.store.engine.begin() as conn:
        for r in rows:
            res = conn.execute(a.insert().values(
                hook=r["hook"], status="pending", scheduled_date_gmt=now, scheduled_date_local=now,
                schedule=r["schedule"], group_id=gid, args=r["args"], extended_args=r["extended_args"], priority=10))
            ids.append(int(res.inserted_primary_key[0]))
    return ids


def set_option_raw(site: Site, name: str, value: str) -> None:
    o = site.store.t.options
    with site.store.engine.begin() as conn:
        if conn.execute(update(o).where(o.c.option_name == name).values(option_value=value)).rowcount == 0:
            conn.execute(o.insert().values(option_name=name, option_value=value, autoload="yes"))


@settings(max_examples=int(__import__("os").environ.get("WCH_REL_HYPOTHESIS_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=4), wch_settings=settings_raw, cart_items=cart_items_json, cart_phone=st.text(max_size=20), api_body=api_bodies,
       api_status=st.sampled_from([200, 400, 403]))
def test_hostile_rows_fail_alone_with_a_clear_message(site: Site, rows: list[dict[str, Any]], wch_settings: str,
                                                      cart_items: str, cart_phone: str, api_body: str,
                                                      api_status: int) -> None:
    from wch_bridge.devtools.wp_seed import SiteSeeder

    if not site.products:
        site.add_products(1)
        site.bulk_enqueue([(SYNC, {"job_id": "future"})])  # made far-future below: must never change
        a = site.store.t.actions
        with site.store.engine.begin() as conn:
            conn.execute(update(a).values(scheduled_date_gmt=text("'2099-01-01 00:00:00'")))
        site.bulk_enqueue([(SYNC, {"job_id": "other"})], group="other-plugin")  # never served
    set_option_raw(site, "wch_settings", wch_settings)
    _carts.append(1)  # customer_phone is UNIQUE: a per-example prefix keeps the generated tail
    cart_id = SiteSeeder(site.wp).add_cart(phone=f"{len(_carts)}~{cart_phone}"[:20], items=[], total="10.00",
                                           idle_hours=48)
    c = site.wp.t.carts
    with site.store.engine.begin() as conn:
        conn.execute(update(c).where(c.c.id == cart_id).values(items=cart_items))
    before = snapshot(site, set())
    ids = insert_raw(site, rows)
    ids += site.bulk_enqueue([(ABANDONED, {"cart_id": cart_id}), (SYNC, {"job_id": "ok", "sync_type": "product",
                                                                          "entity_id": site.products[0]})])
    (control,) = site.bulk_enqueue([(CONTROL, {"n": 1})])
    ran: list[int] = []

    def control_handler(job: Job) -> None:
        ran.append(job.action.action_id)

    with Sandbox(token=TOKEN) as sandbox:
        sandbox.add_fault(body=api_body, http_status=api_status, times=2)
        cfg = run_settings(site, sandbox, concurrency=3, hooks=(*HOOKS, CONTROL), whatsapp_timeout=3)
        worker = build_worker(cfg, site.store, registry={**default_registry(), CONTROL: control_handler})
        assert worker.run() == 0
    assert ran == [control] and site.store.get_status(control) == "complete"
    halted = bool(getattr(worker.services.whatsapp.gate, "halted", False))
    after = snapshot(site, set())
    for aid, old in before.items():
        assert after[aid] == old, f"row {aid} outside this example changed: {old} -> {after[aid]}"
    for aid in ids:
        status = after[aid][0]
        if status == "pending" and halted:
            assert after[aid][1] == 0, "a pending row left by a halt was never started"
            continue
        assert status in ("complete", "failed"), (aid, status, [e.message for e in site.store.get_logs(aid)])
        if status == "failed":
            msgs = [e.message for e in site.store.get_logs(aid)
                    if e.message.startswith("action failed via WCH Bridge: ")]
            assert len(msgs) == 1, msgs
            reason = msgs[0][len("action failed via WCH Bridge: "):]
            assert reason.strip() and "\n" not in reason and "Traceback" not in reason and len(reason) <= 1000
            assert TOKEN not in reason


# ---------------------------------------------------------------------------------------------- SQL-meaningful strings

NASTY = [
    "it's", 'say "hi"', "back\\slash \\\\ \\n \\u00e9", "100% off_now", "%s %d %%", "_%_", "a\x00b", "😀🛒 ok 𝔘",
    "'; DROP TABLE wp_options; --", "</script><script>alert(1)</script>", "\u2028\u2029",
    # long values: args JSON just under Action Scheduler's 8,000-character limit (wp_json_encode escapes non-ASCII:
    # é is 6 characters, a 4-byte emoji 12)
    "x" * 7900, "é" * 1300, "😀" * 650,
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WCH_BRIDGE, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value", NASTY, ids=lambda v: f"{len(v)}b:{v[:12]!r}")
def test_sql_meaningful_strings_round_trip_enqueue_run_retry(site: Site, mysql_url: str, value: str) -> None:
    args: dict[str, Any] = {"job_id": "rt", "sync_type": "no-such-type", "entity_id": 1, "note": value}
    if len(value) < 100:
        args["list"] = [value, {"k": value, value: 1}]
    db = ["--dsn", mysql_url, "--prefix", site.prefix]
    res = cli("enqueue", *db, SYNC, "--args", json.dumps(args))
    assert res.returncode == 0, res.stderr
    a = site.store.t.actions
    with site.store.engine.connect() as conn:
        (aid,) = [int(r[0]) for r in conn.execute(select(a.c.action_id).where(a.c.hook == SYNC))]
    action = site.store.get_action(aid)
    assert argscodec.decode_args(action.args_json) == args
    with Sandbox(token=TOKEN) as sandbox:
        from tests.helpers.reliability import run_once

        run_once(site, sandbox)
    assert site.store.get_status(aid) == "failed"
    assert any("Unknown sync type" in e.message for e in site.store.get_logs(aid))
    res = cli("jobs", "retry", *db, str(aid))
    assert res.returncode == 0, res.stdout + res.stderr
    with site.store.engine.connect() as conn:
        new_ids = [int(r[0]) for r in conn.execute(select(a.c.action_id).where(a.c.hook == SYNC, a.c.action_id != aid))]
    assert len(new_ids) == 1
    again = site.store.get_action(new_ids[0])
    assert again.status == "pending"
    assert argscodec.decode_args(again.args_json) == args
    assert (again.args, again.extended_args) == (action.args, action.extended_args)


def test_args_over_the_as_limit_are_refused_clearly(site: Site, mysql_url: str) -> None:
    res = cli("enqueue", "--dsn", mysql_url, "--prefix", site.prefix, SYNC, "--args", json.dumps({"note": "😀" * 700}))
    assert res.returncode != 0 and "8000 characters" in res.stderr and "Traceback" not in res.stderr
    assert site.counts() == {}
