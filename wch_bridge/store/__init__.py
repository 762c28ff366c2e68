"""The only package that speaks SQL. ``open_store(dsn, prefix)`` is the entry point."""

from sqlalchemy.engine import Engine

from wch_bridge.store.engine import DbInfo, make_engine, mask_dsn, validate_prefix
from wch_bridge.store.queue.actions import ActionStore

__all__ = ["ActionStore", "Engine", "DbInfo", "make_engine", "mask_dsn", "validate_prefix"]
