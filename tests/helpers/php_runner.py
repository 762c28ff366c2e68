# ruff: noqa: S608 - raw AS statements on a validated test prefix, exactly as PHP issues them
"""A faithful stand-in for Action Scheduler 3.8.2's PHP runners, for tests that run the bridge beside them.

Every statement is the one ``ActionScheduler_DBStore`` / ``ActionScheduler_DBLogger`` / ``ActionScheduler_QueueCleaner``
send through ``$wpdb`` (reference ``action-scheduler.md`` 2.3, 2.4.3-2.4.9, 5.2, 5.5), in autocommit on a PyMySQL
connection of the runner's own at REPEATABLE READ (the server default PHP runs at), and **nothing is retried**:

- a database error (deadlock 1213, lock wait 1205, anything) is what ``$wpdb`` prints to the site's error log; the
  call then answers as ``$wpdb`` does (``false``, ``null``, an empty list) and PHP's code goes on with that answer;
- the "0 rows changed" cases where PHP throws (``log_execution``, ``mark_complete``, ``mark_failure``, a claim release
  that changed fewer rows than it selected, ``get_status`` of a missing row) raise ``AsException`` as PHP does, with
  PHP's consequences (a failed action, a runner that dies, a claim left behind);

and each is recorded in ``PhpSide.errors``: on a real site every one of them is an error someone sees. A test beside
the bridge asserts there are none.

Two runner loops at once, as on a site with a system cron calling WP-CLI and visitors triggering WP-Cron:

- ``WP CLI`` (``wp action-scheduler run``, batch 100, cleanup batch 100): per batch the cleaner, the concurrency
  gate (``get_claim_count`` >= 1: the run ends, "There are too many concurrent batches."), ``stake_claim``, the
  actions, ``release_claim``; until a claim comes back empty;
- ``WP Cron`` (``ActionScheduler_QueueRunner::run``, batch 25, cleanup batch 20): the cleaner and the gate once, then
  ``do_batch`` until one processes nothing or the 30 s time limit is likely to be exceeded.

An action's hook is a row in ``{prefix}test_runs`` (runner ``php``). With ``exclude_groups`` (the must-use plugin's
``exclude-groups`` claim filter) the claim adds ``AND group_id NOT IN (…)``; ``order_by`` is what the filter
``action_scheduler_claim_actions_order_by`` returned (the must-use plugin's hook-level exclusion); ``claim`` picks
3.9.3's SKIP LOCKED claim statement instead of 3.8.2's, or alternates (the rest stays 3.8.2's). ``retention_s``: the
cleaner's retention (31 days as in AS; tests shorten it so its deletes happen beside the bridge)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ORDER = "ORDER BY priority ASC, attempts ASC, scheduled_date_gmt ASC, action_id ASC"
TIME_LIMIT_S = 30  # action_scheduler_queue_runner_time_limit; the cleaner's periods are 10x this


def create_runs_table(conn: Any, prefix: str) -> None:
    """``{prefix}test_runs``: one row per run of an action, by runner (``php`` or the bridge's)."""
    from sqlalchemy import text

    conn.execute(text(f"CREATE TABLE {prefix}test_runs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                      "action_id BIGINT NOT NULL, runner VARCHAR(64) NOT NULL)"))


def connect(dsn: str) -> Any:
    """A PyMySQL connection from a ``mysql+pymysql://user[:pw]@host[:port]/db`` DSN: autocommit, REPEATABLE READ,
    WordPress's session (utf8mb4, sql_mode without the modes wpdb removes). Raw PyMySQL reports changed rows, as
    mysqli does for ``$wpdb``."""
    import pymysql

    rest = dsn.split("://", 1)[1]
    creds, hostdb = rest.rsplit("@", 1)
    host_port, db = hostdb.split("/", 1)
    host, _, port = host_port.partition(":")
    user, _, password = creds.partition(":")
    conn = pymysql.connect(host=host, port=int(port or 3306), user=user, password=password,
                           database=db.split("?")[0], autocommit=True, charset="utf8mb4")
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT @@SESSION.sql_mode")
        bad = {"NO_ZERO_DATE", "ONLY_FULL_GROUP_BY", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "TRADITIONAL", "ANSI"}
        modes = [m for m in str(cur.fetchone()[0]).split(",") if m and m.upper() not in bad]
        cur.execute("SET SESSION sql_mode = %s", (",".join(modes),))
    return conn


def utc_now(delta_s: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=delta_s)).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class PhpError:
    runner: str  # the runner's context: "WP CLI" / "WP Cron"
    where: str  # the store method (or statement) that failed
    message: str
    #: for a deadlock: the statements of MariaDB's LATEST DETECTED DEADLOCK report, read right after it
    deadlock: str = ""

    def __str__(self) -> str:
        return f"[{self.runner}] {self.where}: {self.message}" + (f" <{self.deadlock}>" if self.deadlock else "")


class AsException(Exception):
    """An exception PHP's code throws (``InvalidArgumentException``, ``RuntimeException``, ...)."""


class Gated(Exception):
    """WP-CLI's ``There are too many concurrent batches.`` (not an error: the run simply ends)."""


@dataclass
class PhpSide:
    """What both runner loops share and report: errors, the claims PHP made, the gate's answers."""

    dsn: str
    prefix: str
    exclude_groups: Sequence[str] = ()
    retention_s: int = 2678400  # action_scheduler_retention_period (31 days)
    #: what ``action_scheduler_claim_actions_order_by`` returned (the must-use plugin's hook-level exclusion puts
    #: its ``AND NOT (…)`` in front of AS's ORDER BY)
    order_by: str = ORDER
    #: the claim statement: ``plain`` (3.0-3.9.2), ``skip_locked`` (3.9.3+'s derived table), ``alternate``
    claim: str = "plain"
    errors: list[PhpError] = field(default_factory=list)
    php_claims: set[int] = field(default_factory=set)
    gate_checks: int = 0
    gate_closed: int = 0  # invocations that did nothing because a claim was active
    foreign_claims: list[int] = field(default_factory=list)  # claims the gate counted that PHP never made
    actions_run: int = 0
    deleted: int = 0  # old actions the cleaners deleted
    invocations: dict[str, int] = field(default_factory=dict)

    def loops(self, stop: threading.Event, *, cli_batch: int = 100, cron_batch: int = 25) -> list[threading.Thread]:
        """Start the WP-CLI-style and the WP-Cron-style loop; they run until ``stop`` is set."""
        runners = [PhpRunner(self, "WP CLI", batch=cli_batch, cleanup_batch=cli_batch),
                   PhpRunner(self, "WP Cron", batch=cron_batch, cleanup_batch=20)]
        threads = [threading.Thread(target=r.loop, args=(stop,), daemon=True, name=r.context) for r in runners]
        for t in threads:
            t.start()
        return threads


class Wpdb:
    """``$wpdb`` over one connection: a database error is recorded (wpdb prints it to the error log) and answered
    with ``None``; callers map that to wpdb's ``false`` / ``null`` / ``[]`` as PHP's code sees it."""

    def __init__(self, conn: Any, side: PhpSide, context: str) -> None:
        self.conn, self.side, self.context = conn, side, context

    def _run(self, where: str, sql: str, params: Sequence[Any], fetch: Callable[[Any], Any]) -> Any:
        import pymysql

        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, tuple(params))
                return fetch(cur)
        except pymysql.err.MySQLError as exc:
            report = self._deadlock_report() if exc.args and exc.args[0] == 1213 else ""
            self.side.errors.append(PhpError(self.context, where, f"WordPress database error {exc.args!r}", report))
            return None

    def _deadlock_report(self) -> str:
        """The two statements of the latest deadlock and the index each waited on (the test's diagnosis: whose
        statement closed the cycle)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute("SHOW ENGINE INNODB STATUS")
                status = str(cur.fetchone()[2])
        except Exception as exc:  # noqa: BLE001 - a diagnosis only
            return f"no report: {exc!r}"
        part = status.split("LATEST DETECTED DEADLOCK", 1)[-1].split("\nTRANSACTIONS\n", 1)[0]
        keep = [ln.strip()[:240] for ln in part.splitlines()
                if ln.startswith(("UPDATE", "DELETE", "INSERT", "SELECT", "*** (", "*** WE ROLL"))
                or " index " in ln and "RECORD LOCKS" in ln]
        return " | ".join(keep)

    def query(self, where: str, sql: str, *params: Any) -> int | None:
        """Rows changed (``$wpdb->query``), None on error."""
        return self._run(where, sql, params, lambda cur: cur.rowcount)

    def insert_id(self, where: str, sql: str, *params: Any) -> int | None:
        return self._run(where, sql, params, lambda cur: cur.lastrowid)

    def get_results(self, where: str, sql: str, *params: Any) -> list[tuple[Any, ...]] | None:
        return self._run(where, sql, params, lambda cur: list(cur.fetchall()))

    def get_var(self, where: str, sql: str, *params: Any) -> Any:
        rows = self.get_results(where, sql, *params)
        return rows[0][0] if rows else None


class DbStore:
    """``ActionScheduler_DBStore`` + ``ActionScheduler_DBLogger`` 3.8.2: the statements, and when they throw."""

    def __init__(self, db: Wpdb, prefix: str, exclude_groups: Sequence[str]) -> None:
        self.db = db
        self.a, self.lg = f"{prefix}actionscheduler_actions", f"{prefix}actionscheduler_logs"
        self.c, self.g = f"{prefix}actionscheduler_claims", f"{prefix}actionscheduler_groups"
        self.exclude_groups = list(exclude_groups)

    # -- logger
    def log(self, action_id: int, message: str) -> None:
        now = utc_now()
        self.db.insert_id("log", f"INSERT INTO `{self.lg}` (`action_id`, `message`, `log_date_gmt`, `log_date_local`) "
                                 "VALUES (%s, %s, %s, %s)", action_id, message, now, now)

    # -- claims
    def get_claim_count(self) -> int:
        got = self.db.get_var("get_claim_count", f"SELECT COUNT(DISTINCT claim_id) FROM {self.a} WHERE claim_id != 0 "
                                                 "AND status IN ( %s, %s)", "pending", "in-progress")
        return int(got or 0)

    def active_claim_ids(self) -> list[int]:
        """Not PHP's: the test's look at which claims the gate counted (a plain read)."""
        rows = self.db.get_results("(test) claims counted", f"SELECT DISTINCT claim_id FROM {self.a} WHERE "
                                   "claim_id != 0 AND status IN ('pending', 'in-progress')")
        return [int(r[0]) for r in rows or []]

    def generate_claim_id(self, now: str) -> int:
        return int(self.db.insert_id("generate_claim_id", f"INSERT INTO `{self.c}` (`date_created_gmt`) VALUES (%s)",
                                     now) or 0)

    def claim_actions(self, claim_id: int, limit: int, now: str, *, order_by: str = ORDER,
                      skip_locked: bool = False) -> list[int]:
        where = "WHERE claim_id = 0 AND scheduled_date_gmt <= %s AND status=%s"
        params: list[Any] = [claim_id, now, now, now, "pending"]
        if self.exclude_groups:
            ids: list[int] = []
            for slug in self.exclude_groups:
                ids += [int(r[0]) for r in self.db.get_results(
                    "get_group_ids", f"SELECT group_id FROM {self.g} WHERE slug=%s", slug) or []]
            if not ids:
                raise AsException(f'The group "{self.exclude_groups[0]}" does not exist.')
            where += f" AND group_id NOT IN ( {','.join(str(i) for i in ids)} )"
        if not skip_locked:
            changed = self.db.query("claim_actions", f"UPDATE {self.a} SET claim_id=%s, last_attempt_gmt=%s, "
                                    f"last_attempt_local=%s {where} {order_by} LIMIT %s", *params, limit)
        else:
            changed = self.db.query("claim_actions", f"UPDATE {self.a} t1 JOIN ( SELECT action_id from {self.a} "
                                    f"{where} {order_by} LIMIT %s FOR UPDATE SKIP LOCKED ) t2 ON t1.action_id = "
                                    "t2.action_id SET claim_id=%s, last_attempt_gmt=%s, last_attempt_local=%s",
                                    *params[3:], limit, *params[:3])
        if changed is None:
            raise AsException("Unable to claim actions. Database error.")
        return self.find_actions_by_claim_id(claim_id, now)

    def find_actions_by_claim_id(self, claim_id: int, cut_off: str | None = None) -> list[int]:
        cut_off = cut_off or utc_now()
        rows = self.db.get_results("find_actions_by_claim_id", f"SELECT action_id, scheduled_date_gmt FROM {self.a} "
                                   f"WHERE claim_id = %s {ORDER}", claim_id) or []
        return [int(aid) for aid, when in rows if str(when) <= cut_off]

    def release_claim(self, claim_id: int) -> None:
        ids = [int(r[0]) for r in self.db.get_results(
            "release_claim", f"SELECT action_id FROM {self.a} WHERE claim_id = %s", claim_id) or []]
        changed: int | None = 0
        if ids:
            changed = self.db.query("release_claim", f"UPDATE {self.a} SET claim_id = 0 WHERE action_id IN "
                                    f"({','.join(str(i) for i in ids)})")
        self.db.query("release_claim", f"DELETE FROM `{self.c}` WHERE `claim_id` = %s", claim_id)
        if (changed or 0) < len(ids):
            gone = self.db.get_var("(test) rows deleted meanwhile", f"SELECT {len(ids)} - COUNT(*) FROM {self.a} "
                                   f"WHERE action_id IN ({','.join(str(i) for i in ids)})")
            raise AsException(f"Unable to release actions from claim id {claim_id}. ({changed} of {len(ids)} "
                              f"released; {gone} deleted meanwhile)")

    def unclaim_action(self, action_id: int) -> None:
        self.db.query("unclaim_action", f"UPDATE `{self.a}` SET `claim_id` = %s WHERE `action_id` = %s", "0", action_id)

    # -- one action
    def get_status(self, action_id: int) -> str:
        status = self.db.get_var("get_status", f"SELECT status FROM {self.a} WHERE action_id=%s", action_id)
        if status is None:
            raise AsException("Invalid action ID. No status found.")
        return str(status)

    def fetch_action(self, action_id: int) -> tuple[Any, ...] | None:
        rows = self.db.get_results("fetch_action", f"SELECT a.*, g.slug AS `group` FROM {self.a} a LEFT JOIN {self.g} "
                                   "g ON a.group_id=g.group_id WHERE a.action_id=%s", action_id)
        return rows[0] if rows else None  # None: a NullAction, whose execute() does nothing

    def log_execution(self, action_id: int) -> None:
        now = utc_now()
        changed = self.db.query("log_execution", f"UPDATE {self.a} SET attempts = attempts+1, status=%s, "
                                "last_attempt_gmt = %s, last_attempt_local = %s WHERE action_id = %s",
                                "in-progress", now, now, action_id)
        if not changed:
            raise AsException(f"Unable to update the status of action {action_id} to in-progress.")

    def mark_complete(self, action_id: int) -> None:
        now = utc_now()
        changed = self.db.query("mark_complete", f"UPDATE `{self.a}` SET `status` = %s, `last_attempt_gmt` = %s, "
                                "`last_attempt_local` = %s WHERE `action_id` = %s", "complete", now, now, action_id)
        if not changed:
            raise AsException(f"Unidentified action {action_id}: we were unable to mark this action as having "
                              "completed. It may may have been deleted by another process.")

    def mark_failure(self, action_id: int) -> None:
        changed = self.db.query("mark_failure", f"UPDATE `{self.a}` SET `status` = %s WHERE `action_id` = %s",
                                "failed", action_id)
        if not changed:
            raise AsException(f"Unidentified action {action_id}: we were unable to mark this action as having "
                              "failed. It may may have been deleted by another process.")

    # -- the cleaner's
    def query_old(self, status: str, cutoff: str, limit: int, *, claimed: bool = False) -> list[int]:
        sql = f"SELECT a.action_id FROM {self.a} a WHERE 1=1 AND a.status IN (%s) AND a.last_attempt_gmt <= %s"
        if claimed:
            sql += " AND a.claim_id != 0"
        rows = self.db.get_results("query_actions", f"{sql} LIMIT %s, %s", status, cutoff, 0, limit)
        return [int(r[0]) for r in rows or []]

    def delete_action(self, action_id: int) -> None:
        deleted = self.db.query("delete_action", f"DELETE FROM `{self.a}` WHERE `action_id` = %s", action_id)
        if not deleted:
            # thrown, then caught by the cleaner (action_scheduler_failed_old_action_deletion): not shown anywhere
            raise AsException(f"Unidentified action {action_id}: we were unable to delete this action.")
        self.db.query("clear_deleted_action_logs", f"DELETE FROM `{self.lg}` WHERE `action_id` = %s", action_id)


class PhpRunner:
    """One runner loop (``context`` ``WP CLI`` or ``WP Cron``): invocation after invocation, each on a fresh
    connection (a new PHP process or request), until ``stop`` is set."""

    def __init__(self, side: PhpSide, context: str, *, batch: int, cleanup_batch: int) -> None:
        self.side, self.context, self.batch, self.cleanup_batch = side, context, batch, cleanup_batch
        self.current: int | None = None  # the FatalErrorMonitor's tracked action
        self.claim: int | None = None
        self.stakes = 0

    def error(self, where: str, message: str) -> None:
        self.side.errors.append(PhpError(self.context, where, message))

    def loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            conn = connect(self.side.dsn)
            try:
                store = DbStore(Wpdb(conn, self.side, self.context), self.side.prefix, self.side.exclude_groups)
                ran = self.invocation(store, stop)
            finally:
                conn.close()
            self.side.invocations[self.context] = self.side.invocations.get(self.context, 0) + 1
            time.sleep(0.02 if ran else 0.2)

    def invocation(self, store: DbStore, stop: threading.Event) -> int:
        """One ``wp action-scheduler run`` or one ``action_scheduler_run_queue`` (WP-Cron); returns actions run."""
        self.claim, self.current = None, None
        started, ran = time.monotonic(), 0
        try:
            if self.context == "WP CLI":
                while not stop.is_set():
                    n = self.batch_cli(store)
                    if not n:
                        break
                    ran += n
                return ran
            self.clean(store)
            if self.gate_open(store):
                while not stop.is_set():
                    n = self.do_batch(store)
                    ran += n
                    elapsed = time.monotonic() - started
                    if not n or elapsed + 3 * elapsed / max(ran, 1) > TIME_LIMIT_S:
                        break
        except Gated:
            pass
        except AsException as exc:
            self.error("runner", f"uncaught {exc}")
            if self.context == "WP Cron" and self.claim is not None:
                self.fatal_error_monitor(store)
        return ran

    def fatal_error_monitor(self, store: DbStore) -> None:
        """WP-Cron died on an uncaught exception: the monitor fails the tracked action and releases the claim."""
        try:
            if self.current is not None:
                store.mark_failure(self.current)
                store.log(self.current, "unexpected shutdown: PHP Fatal error Uncaught Exception")
            if self.claim is not None:
                store.release_claim(self.claim)
        except AsException as exc:
            self.error("FatalErrorMonitor", str(exc))

    def gate_open(self, store: DbStore) -> bool:
        self.side.gate_checks += 1
        if store.get_claim_count() < 1:
            return True
        self.side.gate_closed += 1
        foreign = [c for c in store.active_claim_ids() if c not in self.side.php_claims]
        self.side.foreign_claims.extend(foreign)
        return False

    def clean(self, store: DbStore) -> None:
        """``ActionScheduler_QueueCleaner::clean(300)``: retention (short here), reset_timeouts, mark_failures."""
        cutoff = utc_now(self.side.retention_s)
        for status in ("complete", "canceled"):
            for aid in store.query_old(status, cutoff, self.cleanup_batch):
                try:
                    store.delete_action(aid)
                    self.side.deleted += 1
                except AsException:
                    pass  # caught by the cleaner; another runner's cleaner deleted it first
        period = 10 * TIME_LIMIT_S
        for aid in store.query_old("pending", utc_now(period), self.cleanup_batch, claimed=True):
            store.unclaim_action(aid)
            store.log(aid, "action reset")
        for aid in store.query_old("in-progress", utc_now(period), self.cleanup_batch):
            store.mark_failure(aid)  # throws on 0 rows: not caught, the runner dies
            store.log(aid, f"action marked as failed after {period} seconds. Unknown error occurred. Check server, "
                           "PHP and database error logs to diagnose cause.")

    def stake(self, store: DbStore, limit: int) -> list[int]:
        """``stake_claim``: the claim row, the claim UPDATE, the claim read back."""
        now = utc_now()
        self.claim = store.generate_claim_id(now)
        self.side.php_claims.add(self.claim)
        self.stakes += 1
        skip = self.side.claim == "skip_locked" or (self.side.claim == "alternate" and self.stakes % 2 == 0)
        return store.claim_actions(self.claim, limit, now, order_by=self.side.order_by, skip_locked=skip)

    def batch_cli(self, store: DbStore) -> int:
        """``ActionScheduler_WPCLI_QueueRunner::setup`` then ``run``."""
        self.clean(store)
        if not self.gate_open(store):
            raise Gated
        ids = self.stake(store, self.batch)
        if not ids:
            return 0  # the command's loop ends (the empty claim is never released: as in PHP)
        done = 0
        assert self.claim is not None
        for aid in ids:
            if aid not in store.find_actions_by_claim_id(self.claim):
                self.error("run", "The claim has been lost. Aborting current batch.")
                break
            self.process_action(store, aid)
            done += 1
        store.release_claim(self.claim)
        self.claim = None
        return done

    def do_batch(self, store: DbStore) -> int:
        """``ActionScheduler_QueueRunner::do_batch``."""
        ids = self.stake(store, self.batch)
        done = 0
        assert self.claim is not None
        for aid in ids:
            if aid not in store.find_actions_by_claim_id(self.claim):
                break  # "bail if we lost the claim"
            self.process_action(store, aid)
            done += 1
        store.release_claim(self.claim)
        self.claim = None
        return done

    def process_action(self, store: DbStore, aid: int) -> None:
        """``ActionScheduler_Abstract_QueueRunner::process_action``."""
        valid = False
        self.current = aid
        try:
            if store.get_status(aid) != "pending":
                store.log(aid, f"action ignored via {self.context}")
                return
            valid = True
            store.log(aid, f"action started via {self.context}")
            row = store.fetch_action(aid)
            store.log_execution(aid)
            if row is not None:  # the hook
                if store.db.query("hook", f"INSERT INTO {self.side.prefix}test_runs (action_id, runner) "
                                  "VALUES (%s, 'php')", aid) is None:
                    raise AsException("the hook's own query failed")
                self.side.actions_run += 1
            store.log(aid, f"action complete via {self.context}")
            store.mark_complete(aid)
        except AsException as exc:
            self.error("process_action", str(exc))
            if valid:
                store.mark_failure(aid)  # may throw in turn: the runner dies, the monitor still tracks aid
                store.log(aid, f"action failed via {self.context}: {exc}")
        self.current = None
