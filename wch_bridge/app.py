"""Wiring: the only place that builds concrete collaborators (store, WhatsApp client, worker, report) from
Settings. Everything else receives them, so tests can pass real alternatives without patching."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from wch_bridge.handlers import Handler, Services, default_registry
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.timeutil import Clock
from wch_bridge.worker import Worker

log = logging.getLogger("wch_bridge.app")


def open_engine(settings: Settings) -> Engine:
    return make_engine(settings.dsn, pool_size=max(5, settings.concurrency + 2))


def open_store(settings: Settings, clock: Clock | None = None) -> ActionStore:
    return ActionStore(open_engine(settings), settings.prefix, clock=clock or Clock(speed=settings.clock_speed))


def ensure_bridge_tables(store: ActionStore) -> None:
    """The bridge's own tables (message ledger, worker heartbeats) are created on first run."""
    schema_mod.install(store.engine, store.prefix, parts=("bridge",))


def build_services(settings: Settings, store: ActionStore) -> Services:
    return Services(clock=store.clock, site=store.site, settings=settings)


def secrets_of(settings: Settings) -> tuple[str, ...]:
    from wch_bridge.settings import _DSN_PASSWORD

    out = [s for s in (settings.whatsapp_token, settings.auth_key, settings.auth_salt) if s]
    m = _DSN_PASSWORD.match(settings.dsn or "")
    if m and m.group(2):
        out.append(m.group(2))
    return tuple(out)


def build_worker(
    settings: Settings,
    store: ActionStore | None = None,
    *,
    registry: dict[str, Handler] | None = None,
    services: Services | None = None,
) -> Worker:
    store = store or open_store(settings)
    ensure_bridge_tables(store)
    services = services or build_services(settings, store)
    return Worker(store, registry if registry is not None else default_registry(), settings, services,
                  secrets=secrets_of(settings))
