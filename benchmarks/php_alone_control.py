"""The control for the side-by-side test: Action Scheduler's PHP stand-in running *alone*, no bridge worker.

``tests/reliability/test_php_side_by_side.py`` runs the stand-in's WP-CLI-style and WP-Cron-style loops beside two
bridge workers and holds every PHP error against the bridge except a deadlock whose server report shows only PHP's
statements. This script measures how often those PHP-against-PHP deadlocks happen with no bridge at all: the same
mix of groups and hooks, the same seeding (old finished rows for the cleaner included), the same 60 s cleaner
retention, no must-use plugin (PHP runs every action). It prints one line per round: seconds, PHP errors, how
many of them the side-by-side test classifies as PHP-alone deadlocks, rows the cleaner deleted.

    .venv/bin/python benchmarks/php_alone_control.py [ACTIONS] [ROUNDS]     # defaults 10000 4

Needs MariaDB/MySQL at ``WCH_TEST_MYSQL_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306/test``); works under
a scratch prefix ``phpalone_<hex>_``, dropped at the end."""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from tests.helpers.php_runner import create_runs_table  # noqa: E402
from tests.reliability import test_php_side_by_side as sbs  # noqa: E402
from wch_bridge.store import ActionStore, make_engine  # noqa: E402
from wch_bridge.store import schema as schema_mod  # noqa: E402


def main(n: int, rounds: int) -> None:
    url = os.environ.get("WCH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
    prefix = f"phpalone_{secrets.token_hex(3)}_"
    engine = make_engine(url)
    schema_mod.install(engine, prefix)
    try:
        with engine.begin() as conn:
            create_runs_table(conn, prefix)
        store = ActionStore(engine, prefix)
        store.group_ids([g for g, _h, _s in sbs.MIX if g], create=True)
        claims: set[int] = set()
        for i in range(rounds):
            first, last = sbs.seed(store, n)
            side = sbs.php_side(store, url, "none", claims)
            stop, started = threading.Event(), time.monotonic()
            loops = side.loops(stop)
            while time.monotonic() - started < 1800:
                with engine.connect() as conn:
                    left = conn.execute(text(
                        f"SELECT COUNT(*) FROM {store.t.actions.name} WHERE action_id BETWEEN :f AND :l "  # noqa: S608
                        "AND status IN ('pending', 'in-progress')"), {"f": first, "l": last}).scalar_one()
                if not left:
                    break
                time.sleep(0.5)
            stop.set()
            for loop in loops:
                loop.join(timeout=60)
            errors = [str(e) for e in side.errors]
            alone = sum(sbs.php_alone(e) for e in errors)
            print(f"round {i + 1}: {time.monotonic() - started:.0f} s, {n} actions left {left}, "  # noqa: T201
                  f"PHP errors {len(errors)} (PHP-against-PHP deadlocks {alone}), cleaner deleted {side.deleted}",
                  flush=True)
            for e in errors:
                print(f"    {e[:200]}", flush=True)  # noqa: T201
    finally:
        schema_mod.drop_prefix(engine, prefix)
        engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000, int(sys.argv[2]) if len(sys.argv) > 2 else 4)
