"""The handler thread pool: ``size`` threads started up front, fed through one queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from wch_bridge.models import Action


class HandlerPool:
    """``size`` handler threads, all started up front: the worker's memory stays flat (no thread is created in
    the middle of a drain) and handing an action over is one queue put. Threads are daemons, so a handler stuck
    past a hard stop cannot hold the process open."""

    def __init__(self, size: int, run: Callable[[Action], None], name: str) -> None:
        self._queue: queue.SimpleQueue[Action | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, args=(run,), name=f"{name}-{i}", daemon=True)
            for i in range(max(1, size))
        ]
        for t in self._threads:
            t.start()

    def _loop(self, run: Callable[[Action], None]) -> None:
        while (action := self._queue.get()) is not None:
            run(action)  # Worker._run_one never raises

    def submit(self, action: Action) -> None:
        self._queue.put(action)

    def cancel_pending(self) -> list[Action]:
        """Take back the actions no thread has started yet."""
        out: list[Action] = []
        try:
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    out.append(item)
        except queue.Empty:
            return out

    def shutdown(self, wait: bool) -> None:
        self.cancel_pending()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()
