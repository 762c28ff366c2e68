"""The worker: poll -> take -> run on a thread pool -> record outcomes (batched) -> schedule follow-ups and the
next instance of recurring actions. Signals: the first stops taking work and lets running actions finish within
the grace period; the second stops at once (running actions go back to ``pending``).

Parts: ``loop`` (the :class:`Worker`), ``execute`` (one action, no database), ``outcomes`` (writing results),
``refill`` (when to take more), ``liveness`` (heartbeats, orphans, touch, send-rate sharing), ``signals``
(stopping), ``outages`` (database outages), ``pool`` (handler threads), ``single`` (``jobs run ID``: one action
through the same path)."""

from wch_bridge.worker.execute import MAX_MESSAGE, MAX_TRANSIENT_RERUNS, Executor, Result, no_callback_message
from wch_bridge.worker.liveness import SWEEP_EVERY, Liveness, SendGate
from wch_bridge.worker.loop import Worker
from wch_bridge.worker.outcomes import OutcomeWriter, WorkerStats
from wch_bridge.worker.pool import HandlerPool
from wch_bridge.worker.refill import LINGER_S, MAX_HOLD_S, RefillPolicy
from wch_bridge.worker.signals import Stopper

__all__ = [
    "LINGER_S",
    "MAX_HOLD_S",
    "MAX_MESSAGE",
    "MAX_TRANSIENT_RERUNS",
    "SWEEP_EVERY",
    "Executor",
    "HandlerPool",
    "Liveness",
    "OutcomeWriter",
    "RefillPolicy",
    "Result",
    "SendGate",
    "Stopper",
    "Worker",
    "WorkerStats",
    "no_callback_message",
]
