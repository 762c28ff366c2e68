"""4 bridge worker processes and a PHP-style claimer (Action Scheduler's own claim SQL) on 2,000 due actions:
every action runs exactly once, PHP's concurrency gate never counts the bridge, nothing is left in-progress."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.conftest import REPO
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

N = 2000
HOOK = "wch_conc_test"


@pytest.fixture(params=["claim-index", "as-indexes-only"])
def conc_store(request: pytest.FixtureRequest, mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    """With the recommended claim-order index the workers take with one locking claim read (FOR UPDATE SKIP
    LOCKED); with AS's own indexes only, they read candidates plainly and lock them by primary key."""
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix, foreign_indexes=request.param == "claim-index")
    with eng.begin() as conn:
        conn.execute(text(f"CREATE TABLE {prefix}test_runs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "  # noqa: S608
                          "action_id BIGINT NOT NULL, runner VARCHAR(64) NOT NULL)"))
    store = ActionStore(eng, prefix)
    assert store.claim_read_locks() == (request.param == "claim-index" and store.info.skip_locked)
    yield store
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def seed_due_actions(store: ActionStore, hook: str, n: int, group: str) -> None:
    from sqlalchemy import insert

    gid = store.group_ids([group], create=True)[group]
    now = store.now()
    sched = 'O:28:"ActionScheduler_NullSchedule":0:{}'
    rows = [{"hook": hook, "status": "pending", "scheduled_date_gmt": now, "scheduled_date_local": now,
             "schedule": sched, "group_id": gid, "args": f'{{"n":{i}}}', "priority": 10} for i in range(n)]
    with store.engine.begin() as conn:
        conn.execute(insert(store.t.actions), rows)


def php_claimer(dsn: str, prefix: str, stop: threading.Event, gate_samples: list[int], claims: list[int]) -> None:
    """What ActionScheduler_QueueRunner does per batch, with AS 3.8's exact statements (reference 2.4)."""
    import pymysql

    url = dsn.split("://", 1)[1]
    creds, rest = url.split("@", 1)
    host_port, db = rest.split("/", 1)
    host, _, port = host_port.partition(":")
    conn = pymysql.connect(host=host, port=int(port or 3306), user=creds.split(":")[0], password="",
                           database=db.split("?")[0], autocommit=True, client_flag=0)
    raw_cur = conn.cursor()

    class Cur:
        """PHP's runner dies on a deadlock and the next run (or the cleaner, 300 s later) picks the work up; here
        each statement is simply tried again, so the simulation leaves nothing half-done."""

        lastrowid = 0

        def execute(self, sql: str, params: object = None) -> None:
            for attempt in range(20):
                try:
                    raw_cur.execute(sql, params)
                    self.lastrowid = raw_cur.lastrowid
                    return
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] not in (1213, 1205) or attempt == 19:
                        raise
                    time.sleep(0.01 * (attempt + 1))

        def fetchone(self) -> object:
            return raw_cur.fetchone()

        def fetchall(self) -> object:
            return raw_cur.fetchall()

    cur = Cur()
    A, L, C = f"{prefix}actionscheduler_actions", f"{prefix}actionscheduler_logs", f"{prefix}actionscheduler_claims"
    while not stop.is_set():
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        try:
            cur.execute(f"INSERT INTO `{C}` (`date_created_gmt`) VALUES (%s)", (now,))
            claim_id = cur.lastrowid
            claims.append(claim_id)
            cur.execute(
                f"UPDATE {A} SET claim_id=%s, last_attempt_gmt=%s, last_attempt_local=%s "
                f"WHERE claim_id = 0 AND scheduled_date_gmt <= %s AND status=%s AND hook IN (%s) "
                f"ORDER BY priority ASC, attempts ASC, scheduled_date_gmt ASC, action_id ASC LIMIT %s",
                (claim_id, now, now, now, "pending", HOOK, 25),
            )
            cur.execute(
                f"SELECT COUNT(DISTINCT claim_id) FROM {A} WHERE claim_id != 0 AND status IN ('pending','in-progress') "
                f"AND claim_id NOT IN (SELECT claim_id FROM {C})"
            )
            gate_samples.append(int(cur.fetchone()[0]))  # claims that are not PHP's: must stay 0
            cur.execute(f"SELECT action_id FROM {A} WHERE claim_id = %s ORDER BY priority ASC, attempts ASC, "
                        f"scheduled_date_gmt ASC, action_id ASC", (claim_id,))
            ids = [r[0] for r in cur.fetchall()]
            for aid in ids:
                cur.execute(f"SELECT status FROM {A} WHERE action_id=%s", (aid,))
                if cur.fetchone()[0] != "pending":
                    cur.execute(f"INSERT INTO `{L}` (`action_id`,`message`,`log_date_gmt`,`log_date_local`) "
                                f"VALUES (%s,%s,%s,%s)", (aid, "action ignored via WP CLI", now, now))
                    continue
                cur.execute(f"UPDATE {A} SET attempts = attempts+1, status='in-progress', last_attempt_gmt = %s, "
                            f"last_attempt_local = %s WHERE action_id = %s", (now, now, aid))
                cur.execute(f"INSERT INTO {prefix}test_runs (action_id, runner) VALUES (%s, 'php')", (aid,))
                cur.execute(f"UPDATE `{A}` SET `status` = 'complete', `last_attempt_gmt` = %s, "
                            f"`last_attempt_local` = %s WHERE `action_id` = %s", (now, now, aid))
            cur.execute(f"SELECT action_id FROM {A} WHERE claim_id = %s AND status = 'pending'", (claim_id,))
            left = [r[0] for r in cur.fetchall()]
            if left:
                cur.execute(f"UPDATE {A} SET claim_id = 0 WHERE action_id IN ({','.join(str(int(i)) for i in left)})")
            cur.execute(f"DELETE FROM `{C}` WHERE `claim_id` = %s", (claim_id,))
            if not ids:
                time.sleep(0.05)
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in (1213, 1205):  # PHP's runner dies on these and the next run retries
                raise
    conn.close()


def test_four_workers_and_php_run_everything_exactly_once(conc_store: ActionStore, mysql_url: str) -> None:
    prefix = conc_store.prefix
    seed_due_actions(conc_store, HOOK, N, group="wch")
    stop = threading.Event()
    samples: list[int] = []
    claims: list[int] = []
    php = threading.Thread(target=php_claimer, args=(mysql_url, prefix, stop, samples, claims), daemon=True)
    php.start()
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.helpers.run_worker", mysql_url, prefix, HOOK, "--once",
                          "--concurrency", "4"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and conc_store.count_by_status([HOOK]).get("pending"):
            time.sleep(0.2)
    finally:
        stop.set()
        php.join(timeout=30)
    with conc_store.engine.connect() as conn:
        runs = conn.execute(text(f"SELECT action_id, COUNT(*) FROM {prefix}test_runs GROUP BY action_id")).all()  # noqa: S608
        by_runner = dict(conn.execute(text(
            f"SELECT CASE WHEN runner='php' THEN 'php' ELSE 'bridge' END r, COUNT(*) FROM {prefix}test_runs GROUP BY r"  # noqa: S608
        )).all())
        bridge_claimed = conn.execute(text(
            f"SELECT COUNT(*) FROM {prefix}actionscheduler_actions a JOIN {prefix}test_runs r "  # noqa: S608
            "ON r.action_id = a.action_id WHERE r.runner != 'php' AND a.claim_id != 0")).scalar()
    assert len(runs) == N, "every action ran"
    assert all(n == 1 for _, n in runs), "no action ran twice"
    assert by_runner.get("bridge", 0) > 0
    assert conc_store.count_by_status([HOOK]) == {"complete": N}
    assert bridge_claimed == 0, "the bridge never writes a claim"
    assert samples and max(samples) == 0, "PHP's get_claim_count never saw a claim that is not PHP's"
