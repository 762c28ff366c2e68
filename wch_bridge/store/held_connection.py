"""One pooled connection held across a take's short transactions, and kept for the thread's next take."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from wch_bridge.store.engine import translate_errors

log = logging.getLogger("wch_bridge.store")

#: A thread's held connection is kept this long after a ``held()`` block ends, for its next block: a drain's takes
#: (and an idle worker's polls) pay no pool ping and no reset-on-return rollback. Kept longer unused, it goes back
#: to the pool (whose next checkout pings it).
KEEP_S = 5.0


class HeldConnection:
    """Several short transactions on one pooled connection: each checkout of the pool costs a ping
    (``pool_pre_ping``) and a reset on return, so a take (queue, start, read) holds one connection for all of its
    transactions, and keeps it for the thread's next ``held()`` block within ``KEEP_S`` (only between committed
    transactions: a block that ends with an error, or inside a transaction, gives its connection back). ``tx()``
    opens a transaction on the held connection of this thread, or on a fresh one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()

    def _kept(self) -> Connection | None:
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None:
            return None
        if time.monotonic() <= getattr(local, "kept_until", 0.0) and not conn.closed and not conn.invalidated:
            return conn
        self.release()
        return None

    def release(self) -> None:
        """Give this thread's kept connection back to the pool (nothing when none is kept or a block holds it)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or getattr(local, "depth", 0):
            return
        local.conn = None
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a dead connection: the pool discards it
            log.debug("closing a kept connection failed", exc_info=True)

    @contextmanager
    def held(self) -> Iterator[None]:
        local = self._local
        if getattr(local, "depth", 0):
            yield
            return
        conn = self._kept() or translate_errors(self.engine.connect)()  # away: TransientStoreError
        local.conn, local.depth = conn, 1
        keep = False
        try:
            yield
            keep = not conn.closed and not conn.invalidated and not conn.in_transaction()
        finally:
            local.depth = 0
            local.kept_until = time.monotonic() + KEEP_S
            if not keep:
                self.release()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        conn = getattr(self._local, "conn", None) if getattr(self._local, "depth", 0) else None
        if conn is None:
            with self.engine.begin() as fresh:
                yield fresh
            return
        if conn.in_transaction():  # never expected; a stray autobegun read must not block the next begin
            conn.commit()
        with conn.begin():
            yield conn
