"""Helpers of the operator-CLI acceptance tests: run the INSTALLED ``wch-bridge`` as a subprocess against a
fresh prefix on MariaDB, seed actions the way the worker leaves them, and snapshot the tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.timeutil import Clock

WCH = Path(sys.executable).parent / "wch-bridge"


def ts(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


@dataclass
class Ops:
    url: str
    prefix: str
    store: ActionStore

    # ------------------------------------------------------------------ running the CLI
    def env(self, **extra: str) -> dict[str, str]:
        # piped output, as in a cron job: no inherited terminal width (tests that want one pass COLUMNS)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_") and k not in ("COLUMNS", "LINES")}
        env.update(WCH_BRIDGE_DSN=self.url, WCH_BRIDGE_PREFIX=self.prefix, **extra)
        return env

    def run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(WCH), *args], input=input if input is not None else "", capture_output=True,
                              text=True, env=env or self.env(), timeout=timeout)

    def json(self, *args: str, code: int = 0) -> Any:
        r = self.run(*args, "--json")
        assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
        return json.loads(r.stdout)

    # ------------------------------------------------------------------ seeding
    def add(self, hook: str, args: Any = None, *, group: str = "wch", delay: float = -1, priority: int = 10) -> int:
        when = self.store.now() + timedelta(seconds=delay)
        a, ext = argscodec.encode_args(args if args is not None else [])
        sched = phpser.serialize_schedule(schedules.SimpleSchedule(ts(when)))
        return self.store.insert_action(NewRow(hook=hook, scheduled_date_gmt=when, schedule=sched, args=a,
                                               extended_args=ext, group=group, priority=priority))

    def run_to(self, aid: int, ok: bool, message: str = "boom", *, ago: float = 0) -> None:
        """Take and finish an action as the worker does (optionally ``ago`` seconds in the past)."""
        now = self.store.now() - timedelta(seconds=ago)
        assert self.store.take([aid], "WCH Bridge", now) == [aid]
        assert self.store.finish([(aid, ok, message)], "WCH Bridge", now) == {aid: None}

    def failed(self, hook: str, args: Any = None, message: str = "boom", **kw: Any) -> int:
        aid = self.add(hook, args, **kw)
        self.run_to(aid, False, message)
        return aid

    def running(self, hook: str, args: Any = None, **kw: Any) -> int:
        aid = self.add(hook, args, **kw)
        assert self.store.take([aid], "WCH Bridge") == [aid]
        return aid

    # ------------------------------------------------------------------ reading back
    def rows(self) -> list[dict[str, Any]]:
        a = self.store.t.actions
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(a).order_by(a.c.action_id))]

    def logs(self) -> list[tuple[int, str]]:
        lg = self.store.t.logs
        with self.store.engine.connect() as conn:
            return [(int(r.action_id), str(r.message)) for r in conn.execute(select(lg).order_by(lg.c.log_id))]

    def snapshot(self) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
        return self.rows(), self.logs()

    def messages(self, aid: int) -> list[str]:
        return [e.message for e in self.store.get_logs(aid)]

    def status_of(self, aid: int) -> str | None:
        return self.store.get_status(aid)


def make_ops(url: str, prefix: str) -> Iterator[Ops]:
    eng = make_engine(url)
    schema_mod.install(eng, prefix, with_wordpress=True)
    try:
        yield Ops(url, prefix, ActionStore(eng, prefix, clock=Clock()))
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()

