"""The worker's hot statements (take a batch, finish a batch) as fixed SQL text, one string per shape.

Building these with SQLAlchemy expressions on every batch cost ~40 % of the worker's CPU in a no-op drain
(construction, cache keys, expanding IN lists, per-row result processing; benchmarks/ANALYSIS.md). The
statements are the same ones ``ActionStore`` documents; every value is a bound parameter (ids included), only
validated table names and constant status literals are part of the text. Strings are cached per shape (number
of ids, hooks, groups), so a steady drain formats each one once.

Dialects: MySQL/MariaDB (``%s``, PyMySQL) and SQLite (``?``). Dates are bound as ``Y-m-d H:i:s`` text, as
``tables.WpDate`` binds them."""

from __future__ import annotations

from functools import lru_cache

from wch_bridge.store.tables import Tables

#: The action columns the worker reads, in this order (``ActionStore._actions_from_rows``).
ACTION_COLUMNS = ("action_id", "hook", "status", "scheduled_date_gmt", "scheduled_date_local", "priority", "args",
                  "schedule", "group_id", "attempts", "last_attempt_gmt", "last_attempt_local", "claim_id",
                  "extended_args")

#: How long a worker's claim (``DELETE … RETURNING`` on the bridge's own queue table) may wait for another worker's
#: lock there; never a statement on AS's tables, nor the queue's feed (it gives up at once: ``ClaimQueue``).
QUEUE_WAIT_S = 5

#: The pick-up queue's columns, copied from Action Scheduler's row of the same name (``ClaimQueue``).
QUEUE_COLUMNS = ("action_id", "hook", "group_id", "priority", "attempts", "scheduled_date_gmt")


class TransitionSql:
    """SQL text for one table prefix and dialect.

    Every statement that names rows by id is pinned to the primary key on MySQL/MariaDB (``FORCE INDEX
    (PRIMARY)``): the optimizer otherwise flips to a status index as status counts change (a drained table) and the
    statement then locks every row of that status, PHP's running actions included (reference section 11.2)."""

    def __init__(self, t: Tables, dialect: str, *, mariadb: bool = False) -> None:
        self.t = t
        self.mysql = dialect == "mysql"
        # the claim on the bridge's own queue table may wait a little for another worker (MariaDB; MySQL's
        # session minimum of 1 s applies there): never statements on Action Scheduler's tables
        self.patient = f"SET STATEMENT innodb_lock_wait_timeout = {QUEUE_WAIT_S} FOR " if mariadb else ""
        self.ph = "%s" if self.mysql else "?"
        self.pk = " FORCE INDEX (PRIMARY)" if self.mysql else ""
        self.actions = t.actions.name
        self.logs = t.logs.name
        self.queue = f"{t.prefix}wch_bridge_queue"
        cols = [c if c != "priority" or t.has_priority else "10" for c in ACTION_COLUMNS]
        self.columns = ", ".join(cols)  # AS schema < 7: no priority column, every row has the default priority
        self.copy_columns = ", ".join(f"a.{c}" if c != "priority" or t.has_priority else "10" for c in QUEUE_COLUMNS)
        self.order = "priority, attempts, scheduled_date_gmt, action_id"
        # bound per instance, so each store has its own cache
        self.by_id = lru_cache(maxsize=64)(self._by_id)
        self.start = lru_cache(maxsize=64)(self._start)
        self.statuses = lru_cache(maxsize=64)(self._statuses)
        self.complete = lru_cache(maxsize=64)(self._complete)
        self.fail = lru_cache(maxsize=64)(self._fail)
        self.touch = lru_cache(maxsize=64)(self._touch)
        self.release = lru_cache(maxsize=8)(self._release)
        self.cancel = lru_cache(maxsize=64)(self._cancel)
        self.queue_due = lru_cache(maxsize=32)(self._queue_due)
        self.queue_head_rows = lru_cache(maxsize=32)(self._queue_head_rows)
        self.queue_delete = lru_cache(maxsize=64)(self._queue_delete)
        self.queue_take = lru_cache(maxsize=64)(self._queue_take)
        self.queue_next_due = lru_cache(maxsize=32)(self._queue_next_due)
        self.queue_copy = lru_cache(maxsize=32)(self._queue_copy)
        self.queue_stale = lru_cache(maxsize=32)(self._queue_stale)

    def marks(self, n: int) -> str:
        return ", ".join([self.ph] * n)

    def _in(self, n: int) -> str:
        return f"action_id IN ({self.marks(n)})" if n > 1 else f"action_id = {self.ph}"

    # ---------------------------------------------------------------- Action Scheduler rows, by primary key only
    def _by_id(self, n: int) -> str:
        """The rows of these ids: a plain (consistent, non-locking) read."""
        return (f"SELECT {self.columns} FROM {self.actions}{self.pk} "  # noqa: S608 - validated names, bound values
                f"WHERE {self._in(n)} ORDER BY action_id")

    def _start(self, n: int) -> str:
        """AS's start (``log_execution``), guarded on pending + unclaimed."""
        return (f"UPDATE {self.actions}{self.pk} SET attempts = attempts + 1, status = 'in-progress', "  # noqa: S608
                f"last_attempt_gmt = {self.ph}, last_attempt_local = {self.ph} "
                f"WHERE {self._in(n)} AND status = 'pending' AND claim_id = 0")

    def _statuses(self, n: int) -> str:
        return f"SELECT action_id, status FROM {self.actions}{self.pk} WHERE {self._in(n)}"  # noqa: S608

    def _complete(self, n: int) -> str:
        """AS's ``mark_complete``, guarded on in-progress."""
        return (f"UPDATE {self.actions}{self.pk} SET status = 'complete', last_attempt_gmt = {self.ph}, "  # noqa: S608
                f"last_attempt_local = {self.ph} WHERE {self._in(n)} AND status = 'in-progress'")

    def _fail(self, n: int) -> str:
        """AS's ``mark_failure``, guarded on in-progress."""
        return (f"UPDATE {self.actions}{self.pk} SET status = 'failed' "  # noqa: S608
                f"WHERE {self._in(n)} AND status = 'in-progress'")

    def _touch(self, n: int) -> str:
        """Refresh ``last_attempt_*`` of running rows (so PHP's cleaner leaves them be)."""
        return (f"UPDATE {self.actions}{self.pk} SET last_attempt_gmt = {self.ph}, "  # noqa: S608
                f"last_attempt_local = {self.ph} WHERE {self._in(n)} AND status = 'in-progress'")

    def _release(self, n: int) -> str:
        """A running row back to pending (a stopped or dead worker's action)."""
        return (f"UPDATE {self.actions}{self.pk} SET status = 'pending', claim_id = 0 "  # noqa: S608
                f"WHERE {self._in(n)} AND status = 'in-progress'")

    def _cancel(self, n: int) -> str:
        """AS's ``cancel_action``, guarded on pending."""
        return (f"UPDATE {self.actions}{self.pk} SET status = 'canceled' "  # noqa: S608
                f"WHERE {self._in(n)} AND status = 'pending'")

    def purge(self, n: int) -> str:
        """Delete finished rows by primary key, checking the status again (operator ``jobs purge``). MariaDB takes an
        index hint on DELETE only in the multi-table form."""
        target = f"{self.actions} FROM {self.actions}{self.pk}" if self.mysql else f"FROM {self.actions}"
        return f"DELETE {target} WHERE {self._in(n)} AND status = {self.ph}"  # noqa: S608

    @property
    def log_insert(self) -> str:
        """One log row; sent with executemany (PyMySQL folds it into one multi-row INSERT)."""
        return (f"INSERT INTO {self.logs} (action_id, message, log_date_gmt, log_date_local) "  # noqa: S608
                f"VALUES ({self.marks(4)})")

    @property
    def feed_end(self) -> str:
        """The highest of the next ``limit`` ids above a mark (NULL: none): a plain range read on the primary key (never
        a secondary index), bounding one feed of the pick-up queue."""
        return (f"SELECT MAX(action_id) FROM (SELECT action_id FROM {self.actions}{self.pk} "  # noqa: S608
                f"WHERE action_id > {self.ph} ORDER BY action_id LIMIT {self.ph}) page")

    @property
    def max_id(self) -> str:
        return f"SELECT MAX(action_id) FROM {self.actions}"  # noqa: S608

    # ---------------------------------------------------------------- the bridge's own pick-up queue
    def _queue_due(self, n_hooks: int, n_groups: int, lock: str) -> str:
        """The head of the pick-up queue: due candidates in AS's claim order, read on its claim-order index. ``lock``
        (MySQL): ``skip`` or ``wait`` for a locking read of the bridge's own table; ``""``: a plain read."""
        hint = " FORCE INDEX (claim_order)" if self.mysql else ""
        tail = {"skip": " FOR UPDATE SKIP LOCKED", "wait": " FOR UPDATE", "": ""}[lock]
        return (f"SELECT action_id FROM {self.queue}{hint} WHERE scheduled_date_gmt <= {self.ph} "  # noqa: S608
                f"AND hook IN ({self.marks(n_hooks)}) AND group_id IN ({self.marks(n_groups)}) "
                f"ORDER BY {self.order} LIMIT {self.ph}{tail}")

    def _queue_head_rows(self, n_hooks: int, n_groups: int) -> str:
        """The head of the pick-up queue with Action Scheduler's current rows, in one plain read: the queue on its
        claim-order index, AS's rows joined by primary key (a row AS no longer has comes back with NULLs)."""
        hint, pk = (" FORCE INDEX (claim_order)", " FORCE INDEX (PRIMARY)") if self.mysql else ("", "")
        cols = ", ".join(f"a.{c}" if c != "priority" or self.t.has_priority else "10" for c in ACTION_COLUMNS)
        return (f"SELECT q.action_id, {cols} FROM {self.queue} q{hint} "  # noqa: S608
                f"LEFT JOIN {self.actions} a{pk} ON a.action_id = q.action_id "
                f"WHERE q.scheduled_date_gmt <= {self.ph} AND q.hook IN ({self.marks(n_hooks)}) "
                f"AND q.group_id IN ({self.marks(n_groups)}) "
                f"ORDER BY q.priority, q.attempts, q.scheduled_date_gmt, q.action_id LIMIT {self.ph}")

    def _queue_take(self, n: int) -> str:
        """MariaDB: remove these ids and answer the ones this statement removed (waiting up to a few seconds for
        another worker's uncommitted removal: the queue is the bridge's own table)."""
        return f"{self.patient}DELETE FROM {self.queue} WHERE {self._in(n)} RETURNING action_id"  # noqa: S608

    def _queue_delete(self, n: int) -> str:
        """Remove stale ids (reconcile; MySQL's claim): never waits for a row another worker holds."""
        return f"DELETE FROM {self.queue} WHERE {self._in(n)}"  # noqa: S608

    def _queue_copy(self, n_hooks: int, n_groups: int, by_range: bool) -> str:
        """Copy candidates of Action Scheduler's table (pending, unclaimed, of the served hooks and groups) that the
        queue lacks into the queue, in one statement on the server: ``by_range``, the ids in (low, high] read on AS's
        primary key (feed, tail; parameters low, high, hooks, groups); else every pending row of the hooks, read
        through AS's own indexes (reconcile; parameters hooks, groups).

        The SELECT part is a consistent, non-locking read at READ COMMITTED (the bridge's isolation level: InnoDB
        reads the source of an ``INSERT … SELECT`` without locks there, whatever the binlog format; under
        ``binlog_format=STATEMENT`` with the binlog on, the server refuses every InnoDB write at READ COMMITTED: the
        engine logs the bridge's sessions as MIXED there, ``engine._row_capable_binlog``). Rows the queue has
        already are skipped by the NOT EXISTS read (plain too), so the statement writes, and locks, only the queue
        rows it adds (and may lock a queue row deleted but not purged yet, in its duplicate check)."""
        verb = "INSERT IGNORE" if self.mysql else "INSERT OR IGNORE"
        span = f"a.action_id > {self.ph} AND a.action_id <= {self.ph} AND " if by_range else ""
        return (f"{verb} INTO {self.queue} ({', '.join(QUEUE_COLUMNS)}) "  # noqa: S608
                f"SELECT {self.copy_columns} FROM {self.actions} a{self.pk if by_range else ''} "
                f"WHERE {span}a.hook IN ({self.marks(n_hooks)}) AND a.group_id IN ({self.marks(n_groups)}) "
                "AND a.status = 'pending' AND a.claim_id = 0 "
                f"AND NOT EXISTS (SELECT 1 FROM {self.queue} q WHERE q.action_id = a.action_id)")

    def _queue_stale(self, n_hooks: int, n_groups: int) -> str:
        """Queue rows of the served hooks and groups, up to an id, whose Action Scheduler row is gone or no longer a
        candidate (not pending, or claimed): a plain read, AS's rows joined by primary key. Parameters: hooks,
        groups, the highest id."""
        pk = " FORCE INDEX (PRIMARY)" if self.mysql else ""
        return (f"SELECT q.action_id FROM {self.queue} q LEFT JOIN {self.actions} a{pk} "  # noqa: S608
                f"ON a.action_id = q.action_id WHERE q.hook IN ({self.marks(n_hooks)}) "
                f"AND q.group_id IN ({self.marks(n_groups)}) AND q.action_id <= {self.ph} "
                "AND (a.action_id IS NULL OR a.status <> 'pending' OR a.claim_id <> 0) ORDER BY q.action_id")

    @property
    def queue_insert(self) -> str:
        verb = "INSERT IGNORE" if self.mysql else "INSERT OR IGNORE"
        return (f"{verb} INTO {self.queue} (action_id, hook, group_id, priority, attempts, "  # noqa: S608
                f"scheduled_date_gmt) VALUES ({self.marks(6)})")

    def _queue_next_due(self, n_hooks: int, n_groups: int) -> str:
        return (f"SELECT scheduled_date_gmt FROM {self.queue} WHERE hook IN ({self.marks(n_hooks)}) "  # noqa: S608
                f"AND group_id IN ({self.marks(n_groups)}) ORDER BY scheduled_date_gmt LIMIT 1")
