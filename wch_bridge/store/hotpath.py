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

CLAIM_INDEX = "wch_bridge_claim_order"
QUEUE_INDEX = "wch_bridge_report_queue"

#: The action columns the worker reads, in this order (``ActionStore._actions_from_rows``).
ACTION_COLUMNS = ("action_id", "hook", "status", "scheduled_date_gmt", "scheduled_date_local", "priority", "args",
                  "schedule", "group_id", "attempts", "last_attempt_gmt", "last_attempt_local", "claim_id",
                  "extended_args")


class TransitionSql:
    """SQL text for one table prefix and dialect."""

    def __init__(self, t: Tables, dialect: str, *, skip_locked: bool) -> None:
        self.t = t
        self.mysql = dialect == "mysql"
        self.ph = "%s" if self.mysql else "?"
        self.skip_locked = skip_locked
        self.actions = t.actions.name
        self.logs = t.logs.name
        cols = [c for c in ACTION_COLUMNS if c != "priority" or t.has_priority]
        if not t.has_priority:  # AS schema < 7: keep the column order, every row has the default priority
            cols.insert(ACTION_COLUMNS.index("priority"), "10")
        self.columns = ", ".join(cols)
        self.order = ("priority, " if t.has_priority else "") + "attempts, scheduled_date_gmt, action_id"
        # bound per instance, so each store has its own cache
        self.due = lru_cache(maxsize=32)(self._due)
        self.lock_ids = lru_cache(maxsize=32)(self._lock_ids)
        self.start = lru_cache(maxsize=32)(self._start)
        self.running = lru_cache(maxsize=32)(self._running)
        self.statuses = lru_cache(maxsize=32)(self._statuses)
        self.complete = lru_cache(maxsize=32)(self._complete)
        self.fail = lru_cache(maxsize=32)(self._fail)

    def marks(self, n: int) -> str:
        return ", ".join([self.ph] * n)

    def _due(self, n_hooks: int | None, n_groups: int | None, locking: bool) -> str:
        """Due, unclaimed pending rows (of ``n_hooks`` hooks and ``n_groups`` groups; None: any) in AS's claim
        order. ``locking``: the MySQL claim read, pinned to the claim-order index (so it locks only the rows it
        returns) and skipping rows others hold."""
        a = self.actions
        hint = f" FORCE INDEX ({CLAIM_INDEX})" if locking else ""
        lock = (" FOR UPDATE SKIP LOCKED" if self.skip_locked else " FOR UPDATE") if locking else ""
        hooks = f" AND hook IN ({self.marks(n_hooks)})" if n_hooks is not None else ""
        groups = f" AND group_id IN ({self.marks(n_groups)})" if n_groups is not None else ""
        return (
            f"SELECT {self.columns} FROM {a}{hint} "  # noqa: S608 - validated table name, bound values
            f"WHERE claim_id = 0 AND status = 'pending' AND scheduled_date_gmt <= {self.ph}{hooks}{groups} "
            f"ORDER BY {self.order} LIMIT {self.ph}{lock}"
        )

    def _lock_ids(self, n: int) -> str:
        """Of these candidates, the ones still pending and unclaimed, locked (MySQL) for the guarded start."""
        lock = ""
        if self.mysql:
            lock = " FOR UPDATE SKIP LOCKED" if self.skip_locked else " FOR UPDATE"
        return (f"SELECT action_id FROM {self.actions} WHERE action_id IN ({self.marks(n)}) "  # noqa: S608
                f"AND status = 'pending' AND claim_id = 0 ORDER BY action_id{lock}")

    def _start(self, n: int) -> str:
        """AS's start (``log_execution``), guarded on pending + unclaimed."""
        return (f"UPDATE {self.actions} SET attempts = attempts + 1, status = 'in-progress', "  # noqa: S608
                f"last_attempt_gmt = {self.ph}, last_attempt_local = {self.ph} "
                f"WHERE action_id IN ({self.marks(n)}) AND status = 'pending' AND claim_id = 0")

    def _running(self, n: int) -> str:
        lock = " FOR UPDATE" if self.mysql else ""
        return (f"SELECT action_id FROM {self.actions} WHERE action_id IN ({self.marks(n)}) "  # noqa: S608
                f"AND status = 'in-progress'{lock}")

    def _statuses(self, n: int) -> str:
        return f"SELECT action_id, status FROM {self.actions} WHERE action_id IN ({self.marks(n)})"  # noqa: S608

    def _complete(self, n: int) -> str:
        """AS's ``mark_complete``, guarded on in-progress."""
        return (f"UPDATE {self.actions} SET status = 'complete', last_attempt_gmt = {self.ph}, "  # noqa: S608
                f"last_attempt_local = {self.ph} WHERE action_id IN ({self.marks(n)}) AND status = 'in-progress'")

    def _fail(self, n: int) -> str:
        """AS's ``mark_failure``, guarded on in-progress."""
        return (f"UPDATE {self.actions} SET status = 'failed' "  # noqa: S608
                f"WHERE action_id IN ({self.marks(n)}) AND status = 'in-progress'")

    @property
    def log_insert(self) -> str:
        """One log row; sent with executemany (PyMySQL folds it into one multi-row INSERT)."""
        return (f"INSERT INTO {self.logs} (action_id, message, log_date_gmt, log_date_local) "  # noqa: S608
                f"VALUES ({self.marks(4)})")

    def next_due(self, by_hook: bool, by_group: bool, hinted: bool) -> str:
        """The due date of the next pending, unclaimed action (of one hook / one group): one index range, first
        entry (``hinted``: pinned to the bridge's queue index)."""
        hint = f" FORCE INDEX ({QUEUE_INDEX})" if hinted else ""
        group = f" AND group_id = {self.ph}" if by_group else ""
        hook = f" AND hook = {self.ph}" if by_hook else ""
        return (f"SELECT scheduled_date_gmt FROM {self.actions}{hint} WHERE status = 'pending'"  # noqa: S608
                f"{group}{hook} AND claim_id = 0 ORDER BY scheduled_date_gmt LIMIT 1")

    def index_names(self) -> str:
        """MySQL: the names of the indexes on the actions table."""
        return ("SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() "
                "AND table_name = %s")
