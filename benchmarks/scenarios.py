"""Issue 7's benchmark scenarios: each run through ``wch-bridge bench --json`` (the real worker, a scratch prefix)
at least 3 times; the median goes into ``benchmarks/RESULTS.md`` next to its target, with the Python, MariaDB and
CPU it ran on and the machine's load average while it ran (other work on a shared machine shows up there).

    .venv/bin/python benchmarks/scenarios.py [--repeats 3] [--only noop,sleep,...] [--out benchmarks/RESULTS.md]

Scenarios: noop (20,000 actions, one process, ``--concurrency 256 --batch-size 500``; noop_c32: the same with the
pool of the other scenarios, 32 threads and batches of 100), sleep (5,000 x 20 ms, --concurrency 32), broadcast (10,000
recipients, sandbox latency 50 ms, 80 msg/s; broadcast_k2: the same with 2 worker processes), lag (1 action/s
trickle, poll 1 s), report (1,000,000 actions / 5,000,000 logs, ``report_scale.py``), rss (RSS after N actions vs
after 10,000; N from --rss-actions / WCH_BENCH_RSS_ACTIONS), profile (cProfile of a no-op drain: where the time
goes)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = REPO / ".venv" / "bin"
CLI = str(VENV_BIN / "wch-bridge") if (VENV_BIN / "wch-bridge").exists() else "wch-bridge"
PY = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def bench(args: list[str], dsn: str | None, timeout: float = 3600, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [CLI, "bench", "--json", *args] + (["--dsn", dsn] if dsn else [])
    load0 = loadavg()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    res = json.loads(proc.stdout)
    res["_load"] = round((load0 + loadavg()) / 2, 2)
    res["_wall"] = round(time.monotonic() - t0, 1)
    return res


def med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def repeat(name: str, args: list[str], n: int, dsn: str | None, say: Any,
           env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    runs = []
    for i in range(n):
        res = bench(args, dsn, env=env)
        say(f"{name} run {i + 1}/{n}: {res['actions_per_s']} actions/s, {res['sql']['statements_per_action']} "
            f"stmts/action, lag p99 {res['pickup_lag_s']['p99']}, load {res['_load']}"
            + (f", {res['broadcast']['msg_per_s_sustained']} msg/s, {res['broadcast']['duplicates']} dup"
               if "broadcast" in res else ""))
        runs.append(res)
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def pick(fn: Any) -> list[Any]:
        return [fn(r) for r in runs]

    out = {
        "runs": len(runs),
        "actions_per_s": med(pick(lambda r: r["actions_per_s"])),
        "actions_per_s_all": pick(lambda r: r["actions_per_s"]),
        "lag_p50": med(pick(lambda r: r["pickup_lag_s"]["p50"])),
        "lag_p95": med(pick(lambda r: r["pickup_lag_s"]["p95"])),
        "lag_p99": med(pick(lambda r: r["pickup_lag_s"]["p99"])),
        "lag_p99_all": pick(lambda r: r["pickup_lag_s"]["p99"]),
        "peak_rss_mb": med(pick(lambda r: r["peak_rss_mb"])),
        "statements_per_action": med(pick(lambda r: r["sql"]["statements_per_action"])),
        "round_trips_per_action": med(pick(lambda r: r["sql"]["round_trips_per_action"])),
        "workers_cpu_s": med(pick(lambda r: r["cpu"]["workers_s"])),
        "db_cpu_s": med(pick(lambda r: r["cpu"]["db_server_s"])),
        "elapsed_s": med(pick(lambda r: r["elapsed_s"])),
        "load": med(pick(lambda r: r["_load"])),
        "exactly_once_ok": all(not any(r["exactly_once"].values()) for r in runs),
        "system": runs[-1]["system"],
        "by_verb": runs[-1]["sql"]["by_verb"],
    }
    if "broadcast" in runs[0]:
        out["msg_per_s"] = med(pick(lambda r: r["broadcast"]["msg_per_s_sustained"]))
        out["msg_per_s_all"] = pick(lambda r: r["broadcast"]["msg_per_s_sustained"])
        out["duplicates"] = max(pick(lambda r: r["broadcast"]["duplicates"]))
        out["rejected"] = max(pick(lambda r: r["broadcast"]["rejected"]))
        out["messages"] = med(pick(lambda r: r["broadcast"]["accepted"]))
    return out


SCENARIOS: dict[str, list[str]] = {
    "noop": ["--actions", "20000", "--handler", "noop", "--workers", "1", "--concurrency", "256", "--batch-size",
             "500"],
    "noop_c32": ["--actions", "20000", "--handler", "noop", "--workers", "1", "--concurrency", "32",
                 "--batch-size", "100"],
    "sleep": ["--actions", "5000", "--handler", "sleep", "--sleep-ms", "20", "--concurrency", "32",
              "--batch-size", "100"],
    "broadcast": ["--actions", "10000", "--handler", "broadcast", "--api-latency-ms", "50",
                  "--messages-per-second", "80", "--concurrency", "8", "--batch-size", "100"],
    "broadcast_k2": ["--actions", "10000", "--handler", "broadcast", "--api-latency-ms", "50",
                     "--messages-per-second", "80", "--concurrency", "8", "--batch-size", "100", "--workers", "2"],
    "lag": ["--actions", "60", "--rate", "1", "--poll-interval", "1", "--handler", "noop", "--concurrency", "8"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="noop,noop_c32,sleep,profile,lag,broadcast,broadcast_k2,rss,report")
    ap.add_argument("--dsn", default=os.environ.get("WCH_BRIDGE_BENCH_DSN"))
    ap.add_argument("--rss-actions", type=int, default=int(os.environ.get("WCH_BENCH_RSS_ACTIONS", "1000000")))
    ap.add_argument("--report-actions", type=int, default=1_000_000)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--json-out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    results: dict[str, Any] = {}
    if Path(args.json_out).exists():  # keep earlier figures of scenarios not re-run now
        try:
            results = json.loads(Path(args.json_out).read_text())
        except ValueError:
            results = {}

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def save() -> None:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str))
        from results_md import render  # benchmarks/results_md.py

        Path(args.out).write_text(render(results))

    for name in only:
        try:
            if name in SCENARIOS:
                results[name] = summary(repeat(name, SCENARIOS[name], args.repeats, args.dsn, say))
            elif name == "profile":
                from profile_noop import profile_noop  # benchmarks/profile_noop.py

                results["profile"] = profile_noop(CLI, args.dsn, say)
            elif name == "rss":
                n = args.rss_actions
                cps = "10000,100000" + (f",{n}" if n > 100_000 else "")
                res = bench(["--actions", str(n), "--handler", "noop", "--concurrency", "256", "--batch-size", "500",
                             "--rss-checkpoints", cps], args.dsn, timeout=6 * 3600)
                results["rss"] = {"actions": n, "rss_mb": res["rss_mb"], "peak_rss_mb": res["peak_rss_mb"],
                                  "actions_per_s": res["actions_per_s"], "elapsed_s": res["elapsed_s"],
                                  "load": res["_load"], "exactly_once": res["exactly_once"]}
                say(f"rss: {results['rss']}")
            elif name == "report":
                from report_scale import run_report_scale  # benchmarks/report_scale.py

                results["report"] = run_report_scale(CLI, args.dsn, args.report_actions, args.repeats, say)
            else:
                say(f"unknown scenario {name!r}")
                continue
        except Exception as exc:  # noqa: BLE001 - record it and go on with the other scenarios
            say(f"{name}: FAILED: {exc}")
            results[name] = {"error": str(exc)[:2000]}
        results["_generated"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        save()
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
