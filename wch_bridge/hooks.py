"""The one table of the hooks the bridge serves: each name is spelled here and nowhere else in the package.

For every hook: whether its handler calls the WhatsApp API (served only when a client is configured, and not
taken while sends are halted), whether it is safe to run again after a crash (its sends go through the message
ledger, or it is an upsert: an orphan goes back to ``pending`` instead of being failed), its recurrence (the
bridge schedules it when missing, as the plugin does on ``init``), the hook its failures are retried through, and
a one-line description of what its handler does. The handler registry (``handlers``), the recurring set-up and
the worker's rerun rule (``app``), ``status``, the report, ``hooks list`` and the bench all read this table."""

from __future__ import annotations

from dataclasses import dataclass

SYNC_JOB = "wch_process_sync_job"
BROADCAST_BATCH = "wch_send_broadcast_batch"
CART_CLEANUP = "wch_cleanup_expired_carts"
ABANDONED_CART = "wch_process_abandoned_cart"
RETRY_MESSAGE = "wch_retry_failed_message"

#: The Action Scheduler groups the plugin queues into: ``wch`` (its first versions and the legacy queue), the
#: priority groups of its queue service (priority 1-5: critical, urgent, normal, bulk, maintenance) and the
#: catalog and order groups (reference ``wch-plugin.md`` sections 7.1 and 8). The bridge serves all of them unless
#: told otherwise (``--group``): ownership is per (group, hook), so serving a group strands nothing.
PLUGIN_GROUPS: tuple[str, ...] = ("wch", "wch-critical", "wch-urgent", "wch-normal", "wch-bulk", "wch-maintenance",
                                  "wch-catalog", "wch-orders")


@dataclass(frozen=True)
class HookSpec:
    name: str
    uses_whatsapp: bool
    safe_to_rerun: bool
    description: str
    recurrence_seconds: int | None = None  # recurring: the interval the bridge schedules it with when missing
    retry_hook: str | None = None  # the hook a retryable failure is scheduled as


HOOKS: tuple[HookSpec, ...] = (
    HookSpec(SYNC_JOB, uses_whatsapp=True, safe_to_rerun=True, retry_hook=SYNC_JOB,
             description="upserts a product or its stock into the WhatsApp catalog, or sends an order-status message"),
    HookSpec(BROADCAST_BATCH, uses_whatsapp=True, safe_to_rerun=True, retry_hook=RETRY_MESSAGE,
             description="sends a campaign message to each recipient of the batch, at most once each"),
    HookSpec(CART_CLEANUP, uses_whatsapp=False, safe_to_rerun=False, recurrence_seconds=3600,
             description="expires (or deletes) active carts idle for more than 72 hours"),
    HookSpec(ABANDONED_CART, uses_whatsapp=True, safe_to_rerun=True, retry_hook=RETRY_MESSAGE,
             description="sends one reminder (text, or the template outside 24 h) for an idle cart"),
    HookSpec(RETRY_MESSAGE, uses_whatsapp=True, safe_to_rerun=True, retry_hook=RETRY_MESSAGE,
             description="re-sends a message the ledger recorded as retryable, with backoff"),
)

BY_NAME: dict[str, HookSpec] = {h.name: h for h in HOOKS}
NAMES: tuple[str, ...] = tuple(h.name for h in HOOKS)
#: Hooks that call the WhatsApp API: served only when a client is configured (token + phone number id).
WHATSAPP_HOOKS = frozenset(h.name for h in HOOKS if h.uses_whatsapp)
#: Hooks whose side effects go through the message ledger, or that are upserts: safe to run again after a crash.
RERUNNABLE_HOOKS = frozenset(h.name for h in HOOKS if h.safe_to_rerun)
#: Hooks the bridge schedules itself when no instance is pending or running.
RECURRING: tuple[HookSpec, ...] = tuple(h for h in HOOKS if h.recurrence_seconds)


def spec(name: str) -> HookSpec | None:
    return BY_NAME.get(name)


def describe(name: str) -> str:
    """The handler's one-line description, or '' for a hook the bridge has no handler for."""
    found = BY_NAME.get(name)
    return found.description if found else ""
