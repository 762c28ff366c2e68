"""SQLAlchemy Table objects for one validated table prefix.

Only query building lives here; the DDL comes from ``sql/`` (exactly as WordPress/AS create the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text
from sqlalchemy.types import TypeDecorator

from wch_bridge.store.engine import validate_prefix
from wch_bridge.timeutil import fmt, parse_db_date


class WpDate(TypeDecorator[datetime]):
    """A MySQL DATETIME as WordPress uses it: bound as ``Y-m-d H:i:s``; NULL and the zero date read as None."""

    impl = String(19)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return fmt(value)
        return str(value)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return parse_db_date(value)


class Tables:
    """The tables under ``prefix``. ``has_priority`` is False on AS schema < 7 (no ``priority`` column)."""

    def __init__(self, prefix: str, *, has_priority: bool = True) -> None:
        self.prefix = validate_prefix(prefix)
        self.has_priority = has_priority
        md = MetaData()
        self.metadata = md
        p = self.prefix
        cols: list[Column[Any]] = [
            Column("action_id", BigInteger, primary_key=True, autoincrement=True),
            Column("hook", String(191), nullable=False),
            Column("status", String(20), nullable=False),
            Column("scheduled_date_gmt", WpDate),
            Column("scheduled_date_local", WpDate),
        ]
        if has_priority:
            cols.append(Column("priority", Integer, nullable=False))
        cols += [
            Column("args", String(191)),
            Column("schedule", Text),
            Column("group_id", BigInteger, nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("last_attempt_gmt", WpDate),
            Column("last_attempt_local", WpDate),
            Column("claim_id", BigInteger, nullable=False),
            Column("extended_args", String(8000)),
        ]
        self.actions = Table(f"{p}actionscheduler_actions", md, *cols)
        self.claims = Table(
            f"{p}actionscheduler_claims",
            md,
            Column("claim_id", BigInteger, primary_key=True, autoincrement=True),
            Column("date_created_gmt", WpDate),
        )
        self.groups = Table(
            f"{p}actionscheduler_groups",
            md,
            Column("group_id", BigInteger, primary_key=True, autoincrement=True),
            Column("slug", String(255), nullable=False),
        )
        self.logs = Table(
            f"{p}actionscheduler_logs",
            md,
            Column("log_id", BigInteger, primary_key=True, autoincrement=True),
            Column("action_id", BigInteger, nullable=False),
            Column("message", Text, nullable=False),
            Column("log_date_gmt", WpDate),
            Column("log_date_local", WpDate),
        )
        self.options = Table(
            f"{p}options",
            md,
            Column("option_id", BigInteger, primary_key=True, autoincrement=True),
            Column("option_name", String(191), nullable=False),
            Column("option_value", Text, nullable=False),
            Column("autoload", String(20), nullable=False),
        )
        self.messages = Table(
            f"{p}wch_bridge_messages",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("idempotency_key", String(191), nullable=False),
            Column("action_id", BigInteger, nullable=False),
            Column("hook", String(191), nullable=False),
            Column("campaign_id", String(100)),
            Column("recipient", String(32), nullable=False),
            Column("kind", String(20), nullable=False),
            Column("payload", Text),
            Column("status", String(20), nullable=False),
            Column("wa_message_id", String(128)),
            Column("error_code", Integer),
            Column("error_text", Text),
            Column("attempts", Integer, nullable=False),
            Column("created_at", WpDate, nullable=False),
            Column("updated_at", WpDate, nullable=False),
            Column("sent_at", WpDate),
        )
        self.workers = Table(
            f"{p}wch_bridge_workers",
            md,
            Column("worker_id", String(64), primary_key=True),
            Column("host", String(255), nullable=False),
            Column("pid", Integer, nullable=False),
            Column("version", String(32), nullable=False),
            Column("started_at", WpDate, nullable=False),
            Column("heartbeat_at", WpDate, nullable=False),
            Column("stopped_at", WpDate),
            Column("in_hand", Integer, nullable=False),
            Column("in_hand_ids", Text),
            Column("served_groups", Text),  # JSON list: what this worker owns, for the must-use plugin to read
            Column("served_hooks", Text),
        )
        self.carts = Table(
            f"{p}wch_carts",
            md,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("customer_phone", String(20), nullable=False),
            Column("items", Text),
            Column("total", String(20)),
            Column("status", String(20)),
            Column("reminder_sent_at", WpDate),
            Column("expires_at", WpDate),
            Column("created_at", WpDate),
            Column("updated_at", WpDate),
        )
