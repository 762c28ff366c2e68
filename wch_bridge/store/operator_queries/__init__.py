"""What the operator commands (``wch-bridge status`` / ``jobs``) read and change in bulk, by part:

* ``served``: the Action Scheduler tables present, the served groups' ids, where we are looking;
* ``status``: the ``status`` snapshot (health facts + counts by hook and status);
* ``selection``: filters, one page of ``jobs list``, counts, keyset pages of ids, last errors;
* ``retries``: ``jobs retry`` (one transaction per retried action, source row locked);
* ``purge``: ``jobs purge`` (one transaction per batch of 500 ids).

Functions over an :class:`~wch_bridge.store.queue.actions.ActionStore` (its engine, tables and clock); SQLAlchemy Core
only, every value bound. Aggregates are computed in SQL; long selections are walked with keyset paging on
``action_id``; bulk writes run in short transactions so a large queue never holds locks for long and a failure
leaves nothing half-done. The names the callers use are re-exported here."""

from __future__ import annotations

from wch_bridge.store.operator_queries.purge import PURGEABLE, PurgeBatch, count_purgeable, purge_batch
from wch_bridge.store.operator_queries.retries import (
    RETRIED_AS,
    RETRIED_AS_PREFIX,
    RETRY_OF,
    RetryResult,
    earlier_retry,
    pending_retry_of,
    retry_action,
)
from wch_bridge.store.operator_queries.selection import (
    BATCH,
    ERROR_PREFIXES,
    Narrow,
    action_ids_page,
    count_actions,
    due_pending_by_hook,
    last_errors,
    list_actions,
)
from wch_bridge.store.operator_queries.served import (
    AS_TABLES,
    database_info,
    require_tables,
    served_group_ids,
)
from wch_bridge.store.operator_queries.status import CLEANUP_HOOK, StatusSnapshot, status_snapshot

__all__ = [
    "AS_TABLES",
    "BATCH",
    "CLEANUP_HOOK",
    "ERROR_PREFIXES",
    "PURGEABLE",
    "RETRIED_AS",
    "RETRIED_AS_PREFIX",
    "RETRY_OF",
    "Narrow",
    "PurgeBatch",
    "RetryResult",
    "StatusSnapshot",
    "action_ids_page",
    "count_actions",
    "count_purgeable",
    "database_info",
    "due_pending_by_hook",
    "earlier_retry",
    "last_errors",
    "list_actions",
    "pending_retry_of",
    "purge_batch",
    "require_tables",
    "retry_action",
    "served_group_ids",
    "status_snapshot",
]
