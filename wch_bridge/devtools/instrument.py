"""Counting what the store sends to the server (benchmarks and statement-count tests only).

``StatementCounter(engine)`` attaches SQLAlchemy event listeners and counts, per engine:

* ``statements``: every cursor execution (``before_cursor_execute``), by verb (``SELECT``, ``SELECT FOR UPDATE``,
  ``UPDATE``, ``INSERT``...). A multi-row INSERT sent with ``executemany`` is one statement (PyMySQL rewrites it
  into a single ``INSERT ... VALUES (...), (...)``).
* ``round_trips``: statements plus the other client/server exchanges that are not cursor executions: ``COMMIT``
  and ``ROLLBACK`` (the pool's reset-on-return is a rollback), and the ``pool_pre_ping`` ping made on every
  connection checkout.

It can also keep the text and parameters of the statements it saw (``capture=True``), which lets a test run
``EXPLAIN`` on the exact SQL a store method sent."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def statement_verb(statement: str) -> str:
    head = statement.lstrip().split(None, 1)
    verb = head[0].upper() if head else "?"
    if verb == "SELECT" and "FOR UPDATE" in statement.upper():
        return "SELECT FOR UPDATE"
    return verb


@dataclass
class Captured:
    statement: str
    parameters: Any
    executemany: bool


@dataclass
class Counts:
    statements: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    pings: int = 0
    by_verb: dict[str, int] = field(default_factory=dict)

    @property
    def round_trips(self) -> int:
        return self.statements + self.commits + self.rollbacks + self.pings

    def as_dict(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "commits": self.commits,
            "rollbacks": self.rollbacks,
            "checkouts": self.checkouts,
            "pings": self.pings,
            "round_trips": self.round_trips,
            "by_verb": dict(sorted(self.by_verb.items())),
        }


class StatementCounter:
    """Listeners on one engine; ``counts()`` is a snapshot, ``reset()`` starts again, ``close()`` detaches."""

    def __init__(self, engine: Engine, *, capture: bool = False) -> None:
        self.engine = engine
        self.capture = capture
        self.captured: list[Captured] = []
        self._lock = threading.Lock()
        self._verbs: Counter[str] = Counter()
        self._commits = 0
        self._rollbacks = 0
        self._checkouts = 0
        self._pre_ping = bool(getattr(engine.pool, "_pre_ping", False))
        self._listeners: list[tuple[Any, str, Any]] = [
            (engine, "before_cursor_execute", self._on_execute),
            (engine, "commit", self._on_commit),
            (engine, "rollback", self._on_rollback),
            (engine.pool, "checkout", self._on_checkout),
            (engine.pool, "reset", self._on_reset),
        ]
        self._reset_rollbacks = 0
        for target, name, fn in self._listeners:
            event.listen(target, name, fn)

    # -- listeners
    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                    executemany: bool) -> None:
        verb = statement_verb(statement)
        with self._lock:
            self._verbs[verb] += 1
            if self.capture:
                self.captured.append(Captured(statement, parameters, executemany))

    def _on_commit(self, _conn: Any) -> None:
        with self._lock:
            self._commits += 1

    def _on_rollback(self, _conn: Any) -> None:
        with self._lock:
            self._rollbacks += 1

    def _on_checkout(self, _dbapi_conn: Any, _rec: Any, _proxy: Any) -> None:
        with self._lock:
            self._checkouts += 1

    def _on_reset(self, _dbapi_conn: Any, _rec: Any, state: Any = None) -> None:
        # The pool's reset-on-return: a DBAPI rollback() when the Connection did not end its own transaction
        # (e.g. ``with engine.connect()`` around a read). Counted as a rollback round trip.
        if state is not None and getattr(state, "transaction_was_reset", False):
            return
        with self._lock:
            self._reset_rollbacks += 1

    # -- results
    def counts(self) -> Counts:
        with self._lock:
            return Counts(
                statements=sum(self._verbs.values()),
                commits=self._commits,
                rollbacks=self._rollbacks + self._reset_rollbacks,
                checkouts=self._checkouts,
                pings=self._checkouts if self._pre_ping else 0,
                by_verb=dict(self._verbs),
            )

    def reset(self) -> None:
        with self._lock:
            self._verbs.clear()
            self._commits = self._rollbacks = self._checkouts = self._reset_rollbacks = 0
            self.captured.clear()

    def close(self) -> None:
        for target, name, fn in self._listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    def __enter__(self) -> StatementCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def explain(engine: Engine, statement: str, parameters: Any) -> list[dict[str, Any]]:
    """``EXPLAIN`` of a captured statement (MySQL/MariaDB), with the same parameters: rows as dicts."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            cur.execute("EXPLAIN " + statement, parameters)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            cur.close()

