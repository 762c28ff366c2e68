"""What the operator commands are pointed at: the Action Scheduler tables (are they there?), the ids of the served
groups, and the database itself (where we are looking)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect, select

from wch_bridge.errors import SchemaError
from wch_bridge.store.engine import missing_table_message, translate_errors
from wch_bridge.store.queue.actions import ActionStore

AS_TABLES = ("actionscheduler_actions", "actionscheduler_groups", "actionscheduler_logs")


@translate_errors
def require_tables(store: ActionStore) -> None:
    """SchemaError naming the first missing Action Scheduler table (wrong prefix, WooCommerce not active...)."""
    have = set(inspect(store.engine).get_table_names())
    for suffix in AS_TABLES:
        name = f"{store.prefix}{suffix}"
        if name not in have:
            raise SchemaError(missing_table_message(name, store.engine, store.prefix))


@translate_errors
def served_group_ids(store: ActionStore, slugs: Sequence[str]) -> dict[int, str]:
    """Every group row whose slug is served (AS has no unique index on slug: duplicates count too)."""
    g = store.t.groups
    with store.engine.connect() as conn:
        rows = conn.execute(select(g.c.group_id, g.c.slug).where(g.c.slug.in_(list(slugs))))
        return {int(gid): str(slug) for gid, slug in rows}


def database_info(store: ActionStore) -> dict[str, Any]:
    """Where we are looking: dialect, server version, host, database, prefix (never the password)."""
    url = store.engine.url
    host = url.host or ""
    if url.port:
        host = f"{host}:{url.port}"
    return {
        "dialect": store.info.dialect,
        "server": store.info.version,
        "host": host or None,
        "database": url.database,
        "prefix": store.prefix,
    }
