"""How many row locks the bridge's own transactions hold: a thread in the worker process that polls
``information_schema.innodb_trx`` every few milliseconds for the connections of the worker's engine (their ids are
recorded by an engine ``connect`` event) and keeps the largest ``trx_rows_locked`` seen, with the statement that was
running then. Used by ``tests.helpers.run_worker --sample-locks-ms``."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.helpers.php_runner import connect


class LockSampler:
    def __init__(self, dsn: str, engine: Engine, every_ms: float) -> None:
        self.dsn, self.every = dsn, every_ms / 1000
        self.ids: set[int] = set()
        self.max_rows_locked = 0
        self.max_query = ""
        self.samples = 0
        self.over: dict[int, int] = {}  # rows locked -> samples seen with that many (only above 0)
        self.longest_ms = 0.0  # the longest a transaction was seen holding row locks (first to last sample)
        self._stop = threading.Event()
        event.listen(engine, "connect", self._on_connect)
        self._thread = threading.Thread(target=self._run, daemon=True, name="lock-sampler")

    def _on_connect(self, dbapi_conn: Any, _rec: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SELECT CONNECTION_ID()")
        self.ids.add(int(cur.fetchone()[0]))
        cur.close()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn = connect(self.dsn)
        seen: dict[str, str] = {}  # trx_id -> the last statement seen running in it
        holding: dict[str, float] = {}  # trx_id -> when first seen holding row locks
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    ids = sorted(self.ids)
                    if ids:
                        cur.execute("SELECT trx_id, trx_rows_locked, trx_query, trx_started FROM "
                                    "information_schema.innodb_trx "
                                    f"WHERE trx_mysql_thread_id IN ({', '.join(['%s'] * len(ids))})", ids)
                        self.samples += 1
                        for trx, locked, query, since in cur.fetchall():
                            locked = int(locked)
                            if query:
                                if len(seen) > 10000:
                                    seen.clear()
                                seen[trx] = str(query)[:300]
                            if locked:
                                self.over[locked] = self.over.get(locked, 0) + 1
                                now = time.monotonic()
                                if len(holding) > 10000:
                                    holding.clear()
                                first = holding.setdefault(trx, now)
                                self.longest_ms = max(self.longest_ms, (now - first) * 1000)
                            if locked > self.max_rows_locked:
                                self.max_rows_locked = locked
                                self.max_query = f"{seen.get(trx, '(idle)')} (started {since})"
                    time.sleep(self.every)
        finally:
            conn.close()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        return {"max_rows_locked": self.max_rows_locked, "max_query": self.max_query, "samples": self.samples,
                "connections": len(self.ids), "longest_held_ms": round(self.longest_ms),
                "rows_locked_seen": dict(sorted(self.over.items()))}
