"""``wch-bridge dev up``: a development site in one command (README "Develop against a local site").

A database (a SQLite file, or ``--dsn`` MariaDB/MySQL under the ``dev_`` prefix) gets the Action Scheduler,
WordPress/WooCommerce and plugin tables and the demo's small shop (``wch_bridge.demo``: products, orders, carts,
customer profiles, the plugin's ``wch_settings`` with its phone number and catalog ids, and the jobs the plugin
would queue: sync jobs, broadcast batches, abandoned-cart reminders), on the real clock. A settings file
(``wch-bridge.toml``, read with ``--config`` or ``WCH_BRIDGE_CONFIG``) points the bridge at that database and at
a sandbox WhatsApp API the caller started, with the sandbox's token; the sandbox keeps no fault rule of the demo.
Layer 3: no click here (``wch_bridge.cli.dev`` starts the sandbox and prints)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wch_bridge.demo import Demo, DemoClock
from wch_bridge.sandbox import Sandbox

SQLITE_FILE = "dev.sqlite"
SQLITE_PREFIX = "wp_"
MYSQL_PREFIX = "dev_"
CONFIG_FILE = "wch-bridge.toml"
ACTIONS = 20  # the demo's smallest shop: enough of every kind of job


@dataclass
class DevSite:
    """What ``dev up`` made: the database, the settings file and what the shop holds."""

    dsn: str
    prefix: str
    config: Path
    token: str
    shop: dict[str, Any] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)


def new_token() -> str:
    """A token for the development sandbox (``Sandbox(token=...)``) and the settings file."""
    return "dev-" + secrets.token_hex(16)


def create(out_dir: str | Path, sandbox: Sandbox, token: str, *, dsn: str | None = None,
           prefix: str | None = None) -> DevSite:
    """Create (or replace) the development database and its settings file; ``sandbox`` runs, requiring
    ``token``."""
    out = Path(out_dir)
    demo = Demo(out, actions=ACTIONS, dsn=dsn, clock=DemoClock(lead=0.0),
                prefix=prefix or (MYSQL_PREFIX if dsn else SQLITE_PREFIX))
    if dsn is None:
        demo.db_path = out / SQLITE_FILE
        demo.dsn = f"sqlite:///{demo.db_path.resolve()}"
    demo.token = token
    store = demo.prepare_database()
    try:
        shop = demo.seed(store, sandbox)
    finally:
        store.engine.dispose()
    sandbox.reset()  # the demo's scripted faults: a development sandbox starts without any
    config = out / CONFIG_FILE
    write_config(config, {"dsn": demo.dsn, "prefix": demo.prefix, "whatsapp_api_base": sandbox.url,
                          "whatsapp_token": demo.token})
    return DevSite(dsn=demo.dsn, prefix=demo.prefix, config=config, token=demo.token, shop=shop,
                   queued=dict(demo.seeded_by_hook))


def write_config(path: Path, values: dict[str, str]) -> None:
    """The settings file (TOML: keys are setting names), readable by its owner only: it holds the DSN and the
    sandbox's token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# written by `wch-bridge dev up`: the development database and its sandbox WhatsApp API",
             "# (the phone number and catalog ids come from the plugin's wch_settings in that database)"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
