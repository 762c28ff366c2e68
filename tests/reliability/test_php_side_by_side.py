"""PHP side by side: two bridge worker processes drain the ``wch`` group while a faithful stand-in for Action
Scheduler 3.8.2's PHP runners (``tests.helpers.php_runner``: a WP-CLI-style loop, batch 100, and a WP-Cron-style
loop, batch 25, at once; AS's exact statements in autocommit at REPEATABLE READ, the cleaner with a short retention,
the concurrency gate, nothing retried) works through the same table: ``wch`` actions mixed with other groups'
(a named group, group_id 0, and the bridge's hook name in another group), with the must-use plugin's hook-level
exclusion (its default), with its whole-group ``exclude-groups`` filter, and without it (PHP claims ``wch`` actions
too).

Proves, per round: PHP meets no error at all (every database error, deadlock and lock wait included, and every
"0 rows changed" where AS throws, would be an error on a real site: AS never retries), no action runs twice, none is
lost, nothing is left pending or in-progress, the bridge runs only ``wch`` actions and never holds a claim, PHP's
gate never counts anything but PHP's own claims, PHP's cleaner deleted old rows meanwhile, and no transaction of the
bridge holds more row locks than its batch (20 in ``run_worker``) plus a small constant (sampled from
``information_schema.innodb_trx``).

The light test (one round of 800 actions per variant) runs in the normal suite; the heavy one runs rounds of 10,000
(``WCH_SBS_ROUNDS``, default 6, and ``WCH_SBS_ACTIONS``), cycling through the variants."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import insert, text

from tests.conftest import REPO
from tests.helpers.php_runner import ORDER, PhpSide, create_runs_table, utc_now
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

pytestmark = pytest.mark.mysql

HOOK = "wch_side_by_side_test"
#: (group slug or None for group_id 0, hook, share of the round)
MIX = (("wch", HOOK, 7), ("woocommerce", "woocommerce_cleanup_sessions", 1), (None, "wp_some_plugin_job", 1),
       ("other", HOOK, 1))
WORKER_BATCH = 20  # tests.helpers.run_worker's batch size
LOCK_SLACK = 5
STALL_S = 30.0  # a round with no progress for this long is over (PHP stuck behind a claim: a failure)
#: The cleaner's retention (AS: 31 days). Short, so its deletes happen beside the bridge; but longer than any batch
#: takes, or PHP's own cleaner deletes finished rows of a claim still being worked through and that claim's release
#: throws (seen with PHP alone: at 1 s, and at 20 s on a box with a load of 28, "Unable to release actions from
#: claim id …", a row deleted meanwhile). Each round also starts with old finished rows for the cleaner to delete.
RETENTION_S = 60
OLD_SHARE = 5  # one old complete or canceled row per this many due actions
PLUGIN_VARIANTS = ("hooks", "none", "groups")


@contextmanager
def side_by_side_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    """AS's tables, the bridge's and the runs table under ``prefix``, the MIX's groups created; dropped after."""
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix)
    try:
        with eng.begin() as conn:
            create_runs_table(conn, prefix)
        store = ActionStore(eng, prefix)
        store.group_ids([g for g, _h, _s in MIX if g], create=True)
        yield store
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()


@pytest.fixture
def sbs_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    with side_by_side_store(mysql_url, prefix) as store:
        yield store


def seed(store: ActionStore, n: int) -> tuple[int, int]:
    """``n`` due actions of the MIX, interleaved in its order; returns (first id, last id)."""
    slugs = {gid: slug for slug, gid in store.group_ids([g for g, _h, _s in MIX if g]).items()}
    gids = {slug: gid for gid, slug in slugs.items()}
    pattern = [(gids[g] if g else 0, hook) for g, hook, share in MIX for _ in range(share)]
    due = utc_now(1)
    sched = 'O:28:"ActionScheduler_NullSchedule":0:{}'
    rows = [{"hook": pattern[i % len(pattern)][1], "status": "pending", "scheduled_date_gmt": due,
             "scheduled_date_local": due, "schedule": sched, "group_id": pattern[i % len(pattern)][0],
             "args": f'{{"n":{i}}}', "priority": 10} for i in range(n)]
    day_ago = utc_now(86400)
    complete = [{**r, "status": "complete", "last_attempt_gmt": day_ago, "last_attempt_local": day_ago}
                for r in rows[:n // OLD_SHARE // 2]]
    canceled = [{**r, "status": "canceled"} for r in rows[:n // OLD_SHARE // 2]]  # last_attempt_*: the zero date
    a = store.t.actions
    with store.engine.begin() as conn:
        conn.execute(insert(a), complete)
        conn.execute(insert(a), canceled)
    with store.engine.begin() as conn:
        before = int(conn.execute(text(f"SELECT COALESCE(MAX(action_id), 0) FROM {a.name}")).scalar_one())  # noqa: S608
        for i in range(0, n, 1000):
            conn.execute(insert(a), rows[i:i + 1000])
        last = int(conn.execute(text(f"SELECT MAX(action_id) FROM {a.name}")).scalar_one())  # noqa: S608
    assert last - before == n
    return before + 1, last


@dataclass
class Round:
    n: int
    plugin: str
    php_errors: list[str] = field(default_factory=list)
    twice: int = 0
    lost: int = 0
    left: dict[str, int] = field(default_factory=dict)
    bridge_other_group: int = 0
    bridge_claimed: int = 0
    foreign_claims: int = 0
    gate_checks: int = 0
    gate_closed: int = 0
    deleted: int = 0
    by_runner: dict[str, int] = field(default_factory=dict)
    max_rows_locked: int = -1
    lock_samples: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0
    bridge_s: float = 0.0  # when both workers had exited

    def summary(self) -> str:
        top = max(self.lock_samples, key=lambda s: int(str(s["max_rows_locked"])), default={})
        return (f"n={self.n} plugin={self.plugin} php_errors={len(self.php_errors)} twice={self.twice} "
                f"lost={self.lost} left={self.left} by_runner={self.by_runner} "
                f"gate closed {self.gate_closed}/{self.gate_checks} deleted={self.deleted} "
                f"foreign_claims={self.foreign_claims} bridge_claimed={self.bridge_claimed} "
                f"bridge_other_group={self.bridge_other_group} max_rows_locked={self.max_rows_locked} "
                f"({top.get('max_query')!r}) {self.seconds:.0f}s (workers done at {self.bridge_s:.0f}s); "
                f"longest held {[s.get('longest_held_ms') for s in self.lock_samples]} ms; "
                f"locks: {[s.get('rows_locked_seen') for s in self.lock_samples]}; errors: {self.php_errors[:8]}")


def _worker(mysql_url: str, prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.run_worker", mysql_url, prefix, HOOK, "--once",
                             "--concurrency", str(WORKER_BATCH), "--sample-locks-ms", "5"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def php_side(store: ActionStore, mysql_url: str, plugin: str, claims: set[int]) -> PhpSide:
    """PHP's runners as the must-use plugin leaves them: ``hooks`` (its default: the claim's ORDER BY, from the
    filter, starts with ``AND NOT ( ( group_id IN (…) AND hook IN (…) ) )`` for the hooks the bridge owns),
    ``groups`` (``WCH_BRIDGE_EXCLUDE=groups``: the ``exclude-groups`` claim filter, ``AND group_id NOT IN (…)``)
    or ``none`` (no plugin: PHP claims ``wch`` actions too). ``claims``: every claim PHP made in earlier rounds (one
    left behind is still PHP's)."""
    if plugin == "groups":
        return PhpSide(mysql_url, store.prefix, exclude_groups=("wch",), retention_s=RETENTION_S, php_claims=claims)
    if plugin == "hooks":
        gid = store.group_ids(["wch"])["wch"]
        order_by = f"AND NOT ( ( group_id IN ( {gid} ) AND hook IN ( '{HOOK}' ) ) ) {ORDER}"
        return PhpSide(mysql_url, store.prefix, order_by=order_by, retention_s=RETENTION_S, php_claims=claims)
    assert plugin == "none"
    return PhpSide(mysql_url, store.prefix, retention_s=RETENTION_S, php_claims=claims)


def run_round(store: ActionStore, mysql_url: str, n: int, *, plugin: str, timeout: float, claims: set[int],
              bridge_workers: int = 2) -> Round:
    """One round: ``n`` due actions of the MIX, PHP's two runner loops and ``bridge_workers`` bridge workers (0: PHP
    alone, ``benchmarks/php_alone_control.py``), until everything ran, nothing moved for ``STALL_S`` or ``timeout``."""
    prefix, a = store.prefix, store.t.actions.name
    first, last = seed(store, n)
    out = Round(n, plugin)
    side = php_side(store, mysql_url, plugin, claims)
    stop = threading.Event()
    started = time.monotonic()
    workers = [_worker(mysql_url, prefix) for _ in range(bridge_workers)]
    loops = side.loops(stop)

    def unfinished() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(text(  # noqa: S608
                f"SELECT COUNT(*) FROM {a} WHERE action_id BETWEEN :f AND :l AND status IN ('pending', 'in-progress')"),
                {"f": first, "l": last}).scalar_one())

    try:
        last_left, last_change = -1, time.monotonic()
        while time.monotonic() - started < timeout and time.monotonic() - last_change < STALL_S:
            left = unfinished()
            if left != last_left:
                last_left, last_change = left, time.monotonic()
            if not out.bridge_s and all(w.poll() is not None for w in workers):
                out.bridge_s = time.monotonic() - started
            if left == 0 and all(w.poll() is not None for w in workers):
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for t in loops:
            t.join(timeout=60)
        for w in workers:
            if w.poll() is None:
                w.terminate()
        outputs = [w.communicate(timeout=60) for w in workers]
    out.seconds = time.monotonic() - started
    for w, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, stderr.decode(errors="replace")[-2000:]
        for line in stdout.decode().splitlines():
            if line.startswith('{"lock_sample"'):
                out.lock_samples.append(json.loads(line)["lock_sample"])
    out.max_rows_locked = max((int(str(s["max_rows_locked"])) for s in out.lock_samples), default=-1)
    out.php_errors = [str(e) for e in side.errors]
    out.foreign_claims, out.gate_checks, out.gate_closed = len(side.foreign_claims), side.gate_checks, side.gate_closed
    out.deleted = side.deleted
    with store.engine.connect() as conn:
        runs = conn.execute(text(  # noqa: S608
            f"SELECT r.action_id, COUNT(*), MIN(r.runner), COALESCE(MAX(a.claim_id), 0) FROM {prefix}test_runs r "
            f"LEFT JOIN {a} a ON a.action_id = r.action_id WHERE r.action_id BETWEEN :f AND :l "
            "GROUP BY r.action_id"), {"f": first, "l": last}).all()
        out.left = {str(s): int(c) for s, c in conn.execute(text(  # noqa: S608
            f"SELECT status, COUNT(*) FROM {a} WHERE action_id BETWEEN :f AND :l AND status != 'complete' "
            "GROUP BY status"), {"f": first, "l": last})}
    out.twice = sum(1 for r in runs if r[1] != 1)
    out.lost = n - len(runs)
    pattern = [g for g, _hook, share in MIX for _ in range(share)]  # rows were seeded in this order, ids contiguous
    for aid, _count, runner, claim in runs:
        side_name = "php" if runner == "php" else "bridge"
        out.by_runner[side_name] = out.by_runner.get(side_name, 0) + 1
        if side_name == "bridge":
            out.bridge_other_group += pattern[(aid - first) % len(pattern)] != "wch"
            out.bridge_claimed += bool(claim)
    return out


#: Text only the bridge's statements carry: its by-key UPDATEs are pinned to PRIMARY, its log INSERT names columns
#: without back quotes, its own tables are ``wch_bridge_*``. PHP's statements (the stand-in's, AS's text) have none.
BRIDGE_MARKERS = ("FORCE INDEX (PRIMARY)", "wch_bridge_", "(action_id, message, log_date_gmt")


def php_alone(error: str) -> bool:
    """A PHP deadlock whose server report shows only PHP's statements: two PHP runners (WP-CLI and WP-Cron at once)
    deadlocking against each other, which Action Scheduler does without any bridge (seen beside the real library
    too). Any other PHP error, or a deadlock whose report is missing or names a bridge statement, is the bridge's."""
    if "1213" not in error or " <" not in error or "no report" in error:
        return False
    report = error.split(" <", 1)[1]
    return "*** (2)" in report and not any(m in report for m in BRIDGE_MARKERS)


#: The statements whose failure AS's runner does not catch (the stand-in's name for each, as in its error lines) and
#: the exception it then dies of: ActionScheduler_DBStore::claim_actions and ::release_claim throw RuntimeException.
DIES_OF = {"claim_actions": "Unable to claim actions", "release_claim": "Unable to release actions from claim id"}


def check(r: Round) -> list[str]:
    """What is wrong with a round (empty: nothing). PHP-against-PHP deadlocks are reported in the round's line, not
    held against the bridge; in such a round their consequences (a PHP action left holding its claim stalls PHP's
    queue, so actions stay unrun) are excused too. Nothing may ever run twice."""
    bad = []
    alone = [e for e in r.php_errors if php_alone(e)]
    # what PHP does next to the action whose statement lost such a deadlock ("Unable to update the status of action
    # N …", its mark_failure) is the same PHP-alone error
    victims = {m for e in alone for m in re.findall(r"action_id`? = '?(\d+)", e)}  # $wpdb->update quotes columns
    own = [e for e in r.php_errors if e not in alone
           and not (set(re.findall(r"action #?(\d+)", e)) & victims)]
    # and a runner whose claim or claim release lost such a deadlock dies of it, as AS's runner does ("[WP CLI] runner:
    # uncaught Unable to claim actions"), or WP-Cron's shutdown monitor fails to release that claim in turn: one such
    # line per lost statement of that runner is the same error
    def runner(e: str) -> str:
        return e.split("]", 1)[0]

    lost = Counter((runner(e), where) for e in alone for where in DIES_OF if f"] {where}:" in e)
    for e in list(own):
        where = next((w for w, text in DIES_OF.items()
                      if f"runner: uncaught {text}" in e or f"FatalErrorMonitor: {text}" in e), None)
        if where is not None and lost[(runner(e), where)] > 0:
            lost[(runner(e), where)] -= 1
            own.remove(e)
    if own:
        bad.append(f"{len(own)} PHP errors")
    excused = len(own) < len(r.php_errors)
    if r.twice or ((r.lost or r.left) and not excused):
        bad.append(f"run twice {r.twice}, never run {r.lost}, left {r.left}")
    if r.bridge_other_group or r.bridge_claimed:
        bad.append(f"bridge ran {r.bridge_other_group} other-group actions, {r.bridge_claimed} with a claim")
    if not r.deleted:
        bad.append("PHP's cleaner deleted nothing")
    if r.foreign_claims:
        bad.append(f"PHP's gate counted {r.foreign_claims} claims PHP never made")
    if len(r.lock_samples) != 2 or r.max_rows_locked > WORKER_BATCH + LOCK_SLACK:
        bad.append(f"bridge transaction held {r.max_rows_locked} row locks (bound {WORKER_BATCH + LOCK_SLACK})")
    other = sum(share for g, _h, share in MIX if g != "wch") * r.n // sum(share for _g, _h, share in MIX)
    if not r.by_runner.get("bridge") or (r.by_runner.get("php", 0) < other and not excused):
        bad.append(f"work not shared as expected: {r.by_runner}")
    return bad


def run_rounds(store: ActionStore, mysql_url: str, sizes_plugins: list[tuple[int, str]], timeout: float) -> None:
    rounds, claims = [], set[int]()
    for n, plugin in sizes_plugins:
        rounds.append(run_round(store, mysql_url, n, plugin=plugin, timeout=timeout, claims=claims))
        print(f"round {len(rounds)}: {rounds[-1].summary()}", flush=True)  # noqa: T201 - shown with -s
    failures = [f"round {i + 1} ({r.summary()}): {'; '.join(check(r))}" for i, r in enumerate(rounds) if check(r)]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("plugin", PLUGIN_VARIANTS)
def test_php_runners_and_bridge_side_by_side(sbs_store: ActionStore, mysql_url: str, plugin: str) -> None:
    run_rounds(sbs_store, mysql_url, [(800, plugin)], timeout=120)


@pytest.mark.heavy
def test_php_runners_and_bridge_side_by_side_heavy(sbs_store: ActionStore, mysql_url: str) -> None:
    rounds = int(os.environ.get("WCH_SBS_ROUNDS", "6"))
    n = int(os.environ.get("WCH_SBS_ACTIONS", "10000"))
    variants = [PLUGIN_VARIANTS[i % len(PLUGIN_VARIANTS)] for i in range(rounds)]
    run_rounds(sbs_store, mysql_url, [(n, v) for v in variants], timeout=1200)


def _round(*errors: str) -> Round:
    """A round that went well but for ``errors`` (what ``check`` makes of them is all that is left to judge)."""
    return Round(10, "none", php_errors=list(errors), deleted=1, by_runner={"bridge": 7, "php": 3}, max_rows_locked=0,
                 lock_samples=[{"max_rows_locked": 0}, {"max_rows_locked": 0}])


def _deadlock(runner: str, where: str, second: str) -> str:
    claim = ("UPDATE t_actionscheduler_actions SET claim_id=589, last_attempt_gmt='2026-12-03 15:53:32' "
             "WHERE claim_id = 0 AND status='pending' ORDER BY priority")
    return (f"[{runner}] {where}: WordPress database error (1213, 'Deadlock found when trying to get lock') "
            f"<*** (1) TRANSACTION: | {claim} | *** (2) TRANSACTION: | {second} | *** WE ROLL BACK TRANSACTION (2)>")


def test_a_runner_dying_of_a_php_alone_claim_deadlock_is_the_same_php_alone_error() -> None:
    """Seen in CI: two PHP claims deadlocked against each other (no bridge statement in the server's report) and the
    losing runner died of it ("runner: uncaught Unable to claim actions", as AS's does). That line is the same
    PHP-alone error, not a second one held against the bridge; a runner dying without such a deadlock still counts,
    and so does a deadlock naming a bridge statement."""
    php_claim = "UPDATE t_actionscheduler_actions SET claim_id=590 WHERE claim_id = 0 AND status='pending'"
    bridge = "UPDATE t_actionscheduler_actions FORCE INDEX (PRIMARY) SET status='in-progress' WHERE action_id IN (1)"
    died = "[WP CLI] runner: uncaught Unable to claim actions. Database error."
    alone = _round(_deadlock("WP CLI", "claim_actions", php_claim), died)
    assert check(alone) == []
    twice = _round(_deadlock("WP CLI", "claim_actions", php_claim), died, died)
    assert check(twice) == ["1 PHP errors"]
    other_runner = _round(_deadlock("WP Cron", "claim_actions", php_claim), died)
    assert check(other_runner) == ["1 PHP errors"]
    with_bridge = _round(_deadlock("WP CLI", "claim_actions", bridge), died)
    assert check(with_bridge) == ["2 PHP errors"]


def test_a_runner_dying_of_a_php_alone_release_deadlock_is_the_same_php_alone_error() -> None:
    """Seen in CI (heavy round 3): WP-CLI's claim release (``UPDATE … SET claim_id = 0 WHERE action_id IN (…)``)
    deadlocked against WP-Cron's claim, no bridge statement in the report, and the runner died of it as AS's does
    ("Unable to release actions from claim id N", thrown by release_claim, caught by nothing). One such death per lost
    release of that runner is the same PHP-alone error; a death of another kind, or of another runner, still counts."""
    release = "UPDATE t_actionscheduler_actions SET claim_id = 0 WHERE action_id IN (26170,26178)"
    died = "[WP CLI] runner: uncaught Unable to release actions from claim id 231. (None of 100 released; 0 deleted)"
    lost = _deadlock("WP CLI", "release_claim", release)
    assert check(_round(lost, died)) == []
    assert check(_round(lost, died, died)) == ["1 PHP errors"]
    assert check(_round(_deadlock("WP Cron", "release_claim", release), died)) == ["1 PHP errors"]
    claim_died = "[WP CLI] runner: uncaught Unable to claim actions. Database error."
    assert check(_round(lost, claim_died)) == ["1 PHP errors"]
    # WP-Cron's monitor releasing the claim again after the runner died: its second loss is the same error too
    cron_lost = _deadlock("WP Cron", "release_claim", release)
    cron_died = "[WP Cron] runner: uncaught Unable to release actions from claim id 7. (None of 25 released; 0 deleted)"
    monitor = "[WP Cron] FatalErrorMonitor: Unable to release actions from claim id 7. (None of 25 released; 0 deleted)"
    assert check(_round(cron_lost, cron_died, cron_lost, monitor)) == []
    assert check(_round(cron_lost, cron_died, monitor)) == ["1 PHP errors"]


def test_the_action_whose_mark_complete_lost_a_php_alone_deadlock_is_the_same_php_alone_error() -> None:
    """AS's ``mark_complete`` is ``$wpdb->update``, whose statement quotes its columns (``WHERE `action_id` = 42``).
    When it loses a deadlock to another PHP statement, what PHP does next to that action (process_action's "we were
    unable to mark this action as having completed", then its mark_failure) is the same PHP-alone error; an error
    about another action still counts."""
    mark = ("UPDATE `t_actionscheduler_actions` SET `status` = 'complete', `last_attempt_gmt` = '2026-12-03 16:54:09',"
            " `last_attempt_local` = '2026-12-03 16:54:09' WHERE `action_id` = 42")
    lost = _deadlock("WP Cron", "mark_complete", mark)
    then = ("[WP Cron] process_action: Unidentified action 42: we were unable to mark this action as having completed."
            " It may may have been deleted by another process.")
    assert check(_round(lost, then)) == []
    other = then.replace("action 42", "action 43")
    assert check(_round(lost, other)) == ["1 PHP errors"]
