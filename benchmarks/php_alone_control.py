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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability import test_php_side_by_side as sbs  # noqa: E402


def main(n: int, rounds: int) -> None:
    url = os.environ.get("WCH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
    with sbs.side_by_side_store(url, f"phpalone_{secrets.token_hex(3)}_") as store:
        claims: set[int] = set()
        for i in range(rounds):
            r = sbs.run_round(store, url, n, plugin="none", timeout=1800, claims=claims, bridge_workers=0)
            alone = sum(sbs.php_alone(e) for e in r.php_errors)
            print(f"round {i + 1}: {r.seconds:.0f} s, {n} actions, unfinished {r.left}, "  # noqa: T201
                  f"PHP errors {len(r.php_errors)} (PHP-against-PHP deadlocks {alone}), cleaner deleted {r.deleted}",
                  flush=True)
            for e in r.php_errors:
                print(f"    {e[:200]}", flush=True)  # noqa: T201


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000, int(sys.argv[2]) if len(sys.argv) > 2 else 4)
