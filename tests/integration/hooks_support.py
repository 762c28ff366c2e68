"""Shared harness of the ``test_hooks_*`` end-to-end tests: a seeded site on MariaDB, a running sandbox API and the
real worker (``app.build_worker``) run with ``once=True`` against a clock the test moves forward."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.app import build_services, build_worker
from wch_bridge.devtools.wp_seed import SiteSeeder
from wch_bridge.handlers import Services
from wch_bridge.models import Action
from wch_bridge.sandbox import Sandbox
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore
from wch_bridge.store.ledger import MessageLedger
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.worker import Worker

PLUGIN_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugin"


def plugin_fixture(name: str) -> Any:
    """A fixture in tests/fixtures/plugin: a shape the plugin's code produces, with the commit and file it was
    read from in its ``_source``."""
    return json.loads((PLUGIN_FIXTURES / name).read_text(encoding="utf-8"))


TOKEN = "EAAGsecretTOKENvalue0123456789abcdefXYZ"
PHONE_ID = "106540352242922"
CATALOG = "146265584024623"


@dataclass
class Site:
    store: ActionStore
    sandbox: Sandbox
    settings: Settings
    wp: WordPressData = field(init=False)
    seed: SiteSeeder = field(init=False)
    ledger: MessageLedger = field(init=False)
    last_services: Services | None = None
    last_worker: Worker | None = None

    def __post_init__(self) -> None:
        self.wp = WordPressData(self.store.engine, self.store.prefix, clock=self.store.clock)
        self.seed = SiteSeeder(self.wp)
        self.ledger = MessageLedger(self.store.engine, self.store.prefix, clock=self.store.clock)

    @property
    def clock(self) -> Any:
        return self.store.clock

    def enqueue(self, hook: str, args: Any, *, group: str = "wch", delay: int = 0) -> int:
        """``as_schedule_single_action(now + delay, hook, args, group)`` as the plugin stores it."""
        encoded, extended = argscodec.encode_args(args)
        when = self.store.now() + timedelta(seconds=delay)
        ts = int(when.replace(tzinfo=UTC).timestamp())
        row = NewRow(hook=hook, scheduled_date_gmt=when, schedule=phpser.serialize_schedule(
            schedules.SimpleSchedule(ts)), args=encoded, extended_args=extended, group=group)
        return self.store.insert_action(row)

    def run(self, **changes: Any) -> Worker:
        """One ``wch-bridge run --once`` with the real wiring (services, registry, recurring cleanup)."""
        settings = self.settings.with_(**changes) if changes else self.settings
        services = build_services(settings, self.store)
        worker = build_worker(settings, self.store, services=services)
        self.last_services, self.last_worker = services, worker
        assert worker.run() == 0
        return worker

    # ------------------------------------------------------------------ reading back
    def action(self, action_id: int) -> Action:
        action = self.store.get_action(action_id)
        assert action is not None
        return action

    def status(self, action_id: int) -> str:
        return self.action(action_id).status

    def logs(self, action_id: int) -> list[str]:
        return [entry.message for entry in self.store.get_logs(action_id)]

    def actions(self, hook: str) -> list[Action]:
        a = self.store.t.actions
        with self.store.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(a.c.action_id).where(a.c.hook == hook).order_by(a.c.action_id))]
        return [self.action(i) for i in ids]

    def args_of(self, action: Action) -> Any:
        return json.loads(action.args_json)

    def all_log_text(self) -> str:
        lg = self.store.t.logs
        with self.store.engine.connect() as conn:
            return "\n".join(r[0] for r in conn.execute(select(lg.c.message)))


def make_site(store: ActionStore, sandbox: Sandbox, **changes: Any) -> Site:
    settings = Settings(
        dsn="mysql+pymysql://unused", prefix=store.prefix, once=True, poll_interval=0.05, concurrency=4,
        grace_period=5, whatsapp_api_base=sandbox.url, whatsapp_phone_number_id=PHONE_ID,
        whatsapp_catalog_id=CATALOG, whatsapp_token=TOKEN, whatsapp_timeout=10,
    ).with_(**changes)
    site = Site(store=store, sandbox=sandbox, settings=settings)
    site.seed.set_options(blogname="Acme Shoes", home="https://shop.example", siteurl="https://shop.example",
                          permalink_structure="/%postname%/", woocommerce_currency="USD")
    return site
