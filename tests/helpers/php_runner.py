# ruff: noqa: S608 - raw AS statements on a validated test prefix, exactly as PHP issues them
"""A PHP-style Action Scheduler runner for tests that run the bridge beside it: ``ActionScheduler_QueueRunner::
do_batch`` with the DBStore's exact statements (reference 2.3 and 2.4.3-2.4.8), over plain PyMySQL.

Each round: PHP's concurrency gate (``get_claim_count``, sampled for claims that are not PHP's own), a claim row,
the claim UPDATE (the 3.0-3.9.2 ``UPDATE ... ORDER BY ... LIMIT``, or the 3.9.3+ SKIP LOCKED derived table, or
alternating), then per claimed action: bail if the claim was lost, ``get_status``, the started log, the start
UPDATE, the "hook" (a row in ``{prefix}test_runs``), ``mark_complete``, the complete log; then the release of what
is left and the claim row's deletion.

Deadlocks and lock-wait timeouts (1213, 1205): PHP's runner dies on them and a later run (or the cleaner) picks
the work up; here the statement is simply tried again, so the simulation never leaves anything half-done."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

ORDER = "ORDER BY priority ASC, attempts ASC, scheduled_date_gmt ASC, action_id ASC"
RETRYABLE = (1213, 1205)


def create_runs_table(conn: Any, prefix: str) -> None:
    """``{prefix}test_runs``: one row per run of an action, by runner (``php`` or the bridge's)."""
    from sqlalchemy import text

    conn.execute(text(f"CREATE TABLE {prefix}test_runs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                      "action_id BIGINT NOT NULL, runner VARCHAR(64) NOT NULL)"))


def _connect(dsn: str) -> Any:
    import pymysql

    rest = dsn.split("://", 1)[1]
    creds, hostdb = rest.rsplit("@", 1)
    host_port, db = hostdb.split("/", 1)
    host, _, port = host_port.partition(":")
    user, _, password = creds.partition(":")
    return pymysql.connect(host=host, port=int(port or 3306), user=user, password=password,
                           database=db.split("?")[0], autocommit=True)


class PhpRunner:
    """Run rounds until ``stop`` is set. ``hooks``: the WP-CLI ``--hooks`` filter (None: every hook and group).
    ``claim``: ``plain`` (3.0-3.9.2), ``skip_locked`` (3.9.3+) or ``alternate``. ``order_by``: the claim's ORDER BY
    as a filter returned it (the must-use plugin puts its condition in front). Results: ``gate_samples``
    (claims counted by the gate that are not PHP's: must stay 0), ``claims`` (claim ids), ``errors``."""

    def __init__(self, dsn: str, prefix: str, *, hooks: Sequence[str] | None = None, batch: int = 10,
                 claim: str = "alternate", context: str = "Async Request", pause: float = 0.0,
                 order_by: str = ORDER) -> None:
        self.dsn, self.prefix, self.hooks, self.batch = dsn, prefix, list(hooks) if hooks else None, batch
        self.order_by = order_by  # what the filter action_scheduler_claim_actions_order_by returned
        self.claim, self.context, self.pause = claim, context, pause
        self.gate_samples: list[int] = []
        self.claims: list[int] = []
        self.errors: list[str] = []

    def thread(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(stop,), daemon=True)
        t.start()
        return t

    def run(self, stop: threading.Event) -> None:
        import pymysql

        conn = _connect(self.dsn)
        cur = conn.cursor()

        def execute(sql: str, params: object = None) -> Any:
            for attempt in range(20):
                try:
                    cur.execute(sql, params)
                    return cur
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] not in RETRYABLE or attempt == 19:
                        raise
                    time.sleep(0.01 * (attempt + 1))
            return cur

        rounds = 0
        try:
            while not stop.is_set():
                rounds += 1
                ran = self._round(execute, rounds)
                time.sleep(self.pause if ran else 0.05)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.errors.append(repr(exc))
        finally:
            conn.close()

    def _round(self, execute: Any, rounds: int) -> int:
        p = self.prefix
        a, lg, c = f"{p}actionscheduler_actions", f"{p}actionscheduler_logs", f"{p}actionscheduler_claims"
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        gate = execute(f"SELECT COUNT(DISTINCT claim_id) FROM {a} WHERE claim_id != 0 AND status IN "
                       f"( 'pending', 'in-progress') AND claim_id NOT IN (SELECT claim_id FROM {c})").fetchone()
        self.gate_samples.append(int(gate[0]))
        claim_id = execute(f"INSERT INTO `{c}` (`date_created_gmt`) VALUES (%s)", (now,)).lastrowid
        self.claims.append(claim_id)
        hooks = f" AND hook IN ({', '.join(['%s'] * len(self.hooks))})" if self.hooks else ""
        hook_params = tuple(self.hooks or ())
        plain = self.claim == "plain" or (self.claim == "alternate" and rounds % 2 == 1)
        if plain:
            execute(f"UPDATE {a} SET claim_id=%s, last_attempt_gmt=%s, last_attempt_local=%s WHERE claim_id = 0 "
                    f"AND scheduled_date_gmt <= %s AND status=%s{hooks} {self.order_by} LIMIT %s",
                    (claim_id, now, now, now, "pending", *hook_params, self.batch))
        else:
            execute(f"UPDATE {a} t1 JOIN ( SELECT action_id from {a} WHERE claim_id = 0 AND scheduled_date_gmt <= %s "
                    f"AND status=%s{hooks} {self.order_by} LIMIT %s FOR UPDATE SKIP LOCKED ) t2 ON t1.action_id = "
                    f"t2.action_id SET claim_id=%s, last_attempt_gmt=%s, last_attempt_local=%s",
                    (now, "pending", *hook_params, self.batch, claim_id, now, now))
        ids = [r[0] for r in execute(f"SELECT action_id FROM {a} WHERE claim_id = %s {ORDER}", (claim_id,)).fetchall()]
        log_sql = f"INSERT INTO `{lg}` (`action_id`,`message`,`log_date_gmt`,`log_date_local`) VALUES (%s,%s,%s,%s)"
        for aid in ids:
            if execute(f"SELECT action_id FROM {a} WHERE claim_id = %s AND action_id = %s",
                       (claim_id, aid)).fetchone() is None:
                break  # "bail if we lost the claim"
            if execute(f"SELECT status FROM {a} WHERE action_id=%s", (aid,)).fetchone()[0] != "pending":
                execute(log_sql, (aid, f"action ignored via {self.context}", now, now))
                continue
            execute(log_sql, (aid, f"action started via {self.context}", now, now))
            execute(f"UPDATE {a} SET attempts = attempts+1, status='in-progress', last_attempt_gmt = %s, "
                    f"last_attempt_local = %s WHERE action_id = %s", (now, now, aid))
            execute(f"INSERT INTO {p}test_runs (action_id, runner) VALUES (%s, 'php')", (aid,))
            execute(f"UPDATE `{a}` SET `status` = 'complete', `last_attempt_gmt` = %s, `last_attempt_local` = %s "
                    f"WHERE `action_id` = %s", (now, now, aid))
            execute(log_sql, (aid, f"action complete via {self.context}", now, now))
        left = [r[0] for r in execute(f"SELECT action_id FROM {a} WHERE claim_id = %s AND status = 'pending'",
                                      (claim_id,)).fetchall()]
        if left:
            execute(f"UPDATE {a} SET claim_id = 0 WHERE action_id IN ({', '.join(['%s'] * len(left))})", tuple(left))
        execute(f"DELETE FROM `{c}` WHERE `claim_id` = %s", (claim_id,))
        return len(ids)
