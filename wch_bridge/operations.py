"""What the operator commands (``status``, ``jobs``, ``messages``, ``hooks``, ``health``, ``report``, ``schema``,
``enqueue``, ``config show``) read and change, in one place at layer 3.

The CLI (layer 4) imports no store, codec or PHP-serialization module: it opens the database and reaches the
operator queries, the message ledger, the heartbeat table and the schema tools through this module, and it gets
decoded args and schedules as plain values from here."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from wch_bridge import argscodec, objectcache, phpser, schedules
from wch_bridge import hooks as hook_table
from wch_bridge.app import open_engine, open_store, plugin_layers, run_action_now
from wch_bridge.errors import ActionDataError, StoreError
from wch_bridge.health import live_worker_seconds
from wch_bridge.masking import mask_phone
from wch_bridge.settings import Settings, mask_dsn
from wch_bridge.store import ActionStore, Engine, ownership, paused
from wch_bridge.store import operator_queries as queries
from wch_bridge.store import reports as reporting
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.engine import sqlite_file
from wch_bridge.store.ledger import RESENDABLE, LedgerEntry, MessageLedger
from wch_bridge.store.queue import new_rows
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.store.workers import WorkerRegistry, WorkerRow
from wch_bridge.timeutil import FMT

__all__ = [
    "CLEANUP_HOOK",
    "PLUGIN_SCHEMAS",
    "PURGEABLE",
    "REPORT_WINDOWS",
    "RESENDABLE",
    "RETRIED_AS_PREFIX",
    "RETRY_OF",
    "ActionStore",
    "Engine",
    "LedgerEntry",
    "MessageLedger",
    "Narrow",
    "RetryResult",
    "StatusSnapshot",
    "WorkerRegistry",
    "WorkerRow",
    "action_ids_page",
    "check_object_cache",
    "check_schema",
    "count_actions",
    "count_purgeable",
    "database_info",
    "decode_args",
    "drop_leftover_indexes",
    "encode_args",
    "hook_counts",
    "install_schema",
    "last_errors",
    "ledger",
    "leftover_indexes",
    "list_actions",
    "looks_live",
    "open_engine",
    "open_operator_store",
    "owners",
    "paused_hooks",
    "purge_batch",
    "retry_action",
    "run_action_now",
    "schedule_json",
    "schedule_resend",
    "schedule_single",
    "served_group_ids",
    "set_paused",
    "status_snapshot",
    "summarize_args",
    "wch_settings_layers",
    "worker_registry",
]

# -- names the commands use as they are (the operator queries of ``store.operator_queries`` and friends)
CLEANUP_HOOK = queries.CLEANUP_HOOK
PURGEABLE = queries.PURGEABLE
RETRY_OF = queries.RETRY_OF
RETRIED_AS_PREFIX = queries.RETRIED_AS_PREFIX
RetryResult = queries.RetryResult
Narrow = queries.Narrow
StatusSnapshot = queries.StatusSnapshot
action_ids_page = queries.action_ids_page
count_actions = queries.count_actions
count_purgeable = queries.count_purgeable
database_info = queries.database_info
last_errors = queries.last_errors
list_actions = queries.list_actions
purge_batch = queries.purge_batch
retry_action = queries.retry_action
served_group_ids = queries.served_group_ids
owners = ownership.owners
paused_hooks = paused.paused_hooks
set_paused = paused.set_paused
PAUSED_OPTION = paused.PAUSED_OPTION
hook_counts = ownership.hook_counts
REPORT_WINDOWS = reporting.WINDOWS
PLUGIN_SCHEMAS = schema_mod.PLUGIN_SCHEMAS
looks_live = schema_mod.looks_live
install_schema = schema_mod.install
check_schema = schema_mod.check
check_object_cache = objectcache.check
leftover_indexes = schema_mod.leftover_indexes
drop_leftover_indexes = schema_mod.drop_leftover_indexes
decode_args = argscodec.decode_args
encode_args = argscodec.encode_args
summarize_args = argscodec.args_summary


# ---------------------------------------------------------------------------------------------- opening
def open_operator_store(
    settings: Settings, *, need_tables: bool = True, must_exist: bool = True
) -> ActionStore:
    """The store of an operator command. ``must_exist``: a SQLite file that does not exist is an error, never
    created (a forgotten --dsn must not leave an empty wch-bridge.sqlite behind). ``need_tables``: the Action
    Scheduler tables are checked. Unreachable database / missing tables: a StoreError naming database and prefix."""
    path = sqlite_file(settings.dsn) if must_exist else None
    if path is not None and not os.path.exists(path):
        raise StoreError(
            f"no database at {mask_dsn(settings.dsn)}: the SQLite file {path!r} does not exist "
            "(forgot --dsn or WCH_BRIDGE_DSN?)"
        )
    store = open_store(settings)
    if need_tables:
        queries.require_tables(store)
    return store


def status_snapshot(settings: Settings, store: ActionStore) -> StatusSnapshot:
    """``status``: the served groups now, with every health fact (the object-cache drop-in next to
    ``settings.wp_config`` among them: the store reads no site files)."""
    return queries.status_snapshot(store, settings.groups, store.now(), live_worker_seconds(settings),
                                   objectcache.site_drop_in(settings.wp_config))


def ledger(store: ActionStore) -> MessageLedger:
    return MessageLedger(store.engine, store.prefix, clock=store.clock)


def worker_registry(store: ActionStore) -> WorkerRegistry:
    return WorkerRegistry(store.engine, store.t)


def wch_settings_layers(settings: Settings) -> dict[str, dict[str, object]]:
    """``config show``: the plugin's ``wch_settings`` / ``wp_config`` layers read from the database."""
    store = open_store(settings)
    return plugin_layers(settings, WordPressData(store.engine, store.prefix, clock=store.clock))


# ---------------------------------------------------------------------------------------------- reading rows
def _fmt(dt: datetime | None) -> str | None:
    return dt.strftime(FMT) if dt is not None else None


def schedule_json(raw: str | None) -> dict[str, Any]:
    """The schedule column decoded: type, due time and the recurrence, or ``{"type": "invalid", "error": ...}``."""
    try:
        s = phpser.parse_schedule(raw)
    except ActionDataError as exc:
        return {"type": "invalid", "error": str(exc)}
    if isinstance(s, schedules.NullSchedule):
        return {"type": "async"}
    out: dict[str, Any] = {
        "type": {
            schedules.SimpleSchedule: "simple",
            schedules.IntervalSchedule: "interval",
            schedules.CronSchedule: "cron",
        }[type(s)],
        "scheduled_timestamp": s.scheduled_timestamp,
        "scheduled_gmt": _fmt(s.scheduled_at()),
    }
    if isinstance(s, schedules.IntervalSchedule):
        out.update(
            first_timestamp=s.first_timestamp, recurrence=s.recurrence, interval_seconds=s.interval_seconds
        )
    elif isinstance(s, schedules.CronSchedule):
        out.update(first_timestamp=s.first_timestamp, expression=s.expression)
    return out


# ---------------------------------------------------------------------------------------------- scheduling
def _single_row(
    hook: str, args: tuple[str, str | None], when: datetime, group: str, priority: int = 10
) -> NewRow:
    return new_rows.single_row(hook, when, args=args[0], extended_args=args[1], group=group, priority=priority)


def schedule_single(
    store: ActionStore,
    hook: str,
    args: tuple[str, str | None],
    when: datetime,
    group: str,
    priority: int,
    *,
    unique: bool = False,
) -> int:
    """``enqueue``: as ``as_schedule_single_action()``, ``args`` from :func:`encode_args`; 0 when ``unique``
    suppressed it."""
    return store.insert_action(_single_row(hook, args, when, group, priority), unique=unique)


def schedule_resend(store: ActionStore, e: LedgerEntry, now: datetime) -> int:
    """``messages resend``: a ``hooks.RETRY_MESSAGE`` action ``{message_id}`` due now, with a log line saying an
    operator asked for it."""
    row = _single_row(hook_table.RETRY_MESSAGE, argscodec.encode_args({"message_id": e.id}), now, "wch")
    aid = store.insert_action(row, now=now)
    store.log(
        aid,
        f"re-send of message #{e.id} to {mask_phone(e.recipient)} (was {e.status}) requested by an "
        "operator via wch-bridge messages resend",
        now,
    )
    return aid
