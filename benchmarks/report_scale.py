"""The report on 1,000,000 actions / 5,000,000 log rows: ``wch-bridge report`` wall time and peak RSS.

Seeds a site's history under a scratch prefix (``wch_bridge.devtools.bulk.seed_history``: 5 hooks, 90 % complete,
4 % failed, 1 % canceled, 4 % pending, 1 % in-progress spread over 7 days, 5 log rows per action; generated
inside MariaDB from the SEQUENCE engine), ANALYZEs, then runs the real command (``--window 24h`` and ``7d``)
in a child process per run, timing it and reading the child's peak RSS (``ru_maxrss``). Drops the prefix."""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_DSN = "mysql+pymysql://root@127.0.0.1:3306/test"

_CHILD = (
    "import resource, subprocess, sys, time\n"
    "t = time.monotonic(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "el = time.monotonic() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'{p.returncode} {el:.3f} {rss}'); sys.stderr.write(p.stderr[-1500:])\n"
)


def measure(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS MB, stderr) of ``cmd`` run in a fresh grandchild."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, *cmd], capture_output=True, text=True, timeout=3600)
    code, secs, rss_kb = proc.stdout.split()[-3:]
    return int(code), float(secs), int(rss_kb) / 1024.0, proc.stderr


def run_report_scale(cli: str, dsn: str | None, n_actions: int = 1_000_000, repeats: int = 3,
                     say: Any = print, logs_per_action: int = 5) -> dict[str, Any]:
    from wch_bridge.devtools import bulk
    from wch_bridge.store import ActionStore, make_engine
    from wch_bridge.store import schema as schema_mod

    dsn = dsn or DEFAULT_DSN
    help_ = subprocess.run([cli, "report", "--help"], capture_output=True, text=True)
    if help_.returncode != 0:
        return {"todo": "wch-bridge report is not available yet"}
    prefix = f"wchbench_{secrets.token_hex(4)}_"
    engine = make_engine(dsn)
    try:
        schema_mod.install(engine, prefix, with_wordpress=True)
        store = ActionStore(engine, prefix)
        if not bulk.has_sequence_engine(store):
            return {"todo": "needs MariaDB's SEQUENCE engine to seed 1,000,000 actions"}
        t0 = time.monotonic()
        bulk.seed_history(store, n_actions, logs_per_action=logs_per_action)
        bulk.analyze(store)
        seed_s = time.monotonic() - t0
        rows = bulk.count_rows(store)
        say(f"report: seeded {rows} in {seed_s:.0f}s")
        out: dict[str, Any] = {"rows": rows, "seed_s": round(seed_s, 1)}
        with tempfile.TemporaryDirectory() as tmp:
            for window in ("24h", "7d"):
                runs = []
                for i in range(repeats):
                    html = str(Path(tmp) / f"r{window}{i}.html")
                    js = str(Path(tmp) / f"r{window}{i}.json")
                    code, secs, rss, err = measure([cli, "report", "--dsn", dsn, "--prefix", prefix, "--out", html,
                                                    "--json", js, "--window", window])
                    if code != 0:
                        raise RuntimeError(f"wch-bridge report exited {code}: {err}")
                    runs.append((secs, rss))
                    say(f"report --window {window} run {i + 1}: {secs:.2f}s, peak RSS {rss:.0f} MB")
                out[window] = {
                    "seconds": round(statistics.median(s for s, _ in runs), 2),
                    "seconds_all": [round(s, 2) for s, _ in runs],
                    "peak_rss_mb": round(statistics.median(r for _, r in runs), 1),
                    "peak_rss_mb_all": [round(r, 1) for _, r in runs],
                }
                try:
                    figures = json.loads(Path(js).read_text())
                    out[window]["health"] = (figures.get("health") or {}).get("status")
                except (OSError, ValueError):
                    pass
        return out
    finally:
        schema_mod.drop_prefix(engine, prefix)
        engine.dispose()


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    cli = str(here.parent / ".venv" / "bin" / "wch-bridge")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps(run_report_scale(cli, None, n, 1), indent=2))
