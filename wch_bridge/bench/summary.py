"""The bench's result: the workers' reports summed into the figures ``wch-bridge bench`` prints and writes."""

from __future__ import annotations

from typing import Any

from wch_bridge.bench.config import BenchConfig
from wch_bridge.bench.measure import _r, percentile

_MB = 1024 * 1024
_COUNTS = ("statements", "round_trips", "commits", "rollbacks", "pings")


def summarize(
    cfg: BenchConfig,
    reports: list[dict[str, Any]],
    n: int,
    seed_s: float,
    t_go: float,
    t_done: float,
    status: dict[str, int],
    dup: dict[str, int],
) -> dict[str, Any]:
    completed = sum(r["completed"] for r in reports)
    failed = sum(r["failed"] for r in reports)
    finished = completed + failed
    t0 = min(r["t_start"] for r in reports)
    t1 = max(r["t_end"] for r in reports)
    elapsed = max(1e-9, t1 - t0)
    lags: list[float] = []
    for r in reports:
        lags.extend(r["lags"])
    counts = _sql_counts(reports)
    per = max(1, finished)
    return {
        "scenario": _scenario(cfg, n),
        "seed_seconds": round(seed_s, 2),
        "elapsed_s": round(elapsed, 3),
        "wall_s": round(t_done - t_go, 3),
        "completed": completed,
        "failed": failed,
        "released": sum(r["released"] for r in reports),
        "not_recorded": sum(r["not_recorded"] for r in reports),
        "actions_per_s": round(finished / elapsed, 1),
        "pickup_lag_s": {
            "p50": _r(percentile(lags, 50)),
            "p95": _r(percentile(lags, 95)),
            "p99": _r(percentile(lags, 99)),
            "max": _r(max(lags) if lags else None),
            "samples": len(lags),
        },
        "peak_rss_mb": round(max(r["peak_rss"] for r in reports) / _MB, 1),
        "rss_mb": _rss_mb(reports),
        "sql": {
            "statements_per_action": round(counts["statements"] / per, 3),
            "round_trips_per_action": round(counts["round_trips"] / per, 3),
            **counts,
        },
        "final_status": status,
        "exactly_once": dup,
        "workers": [
            {
                "index": r["index"],
                "completed": r["completed"],
                "failed": r["failed"],
                "taken": r["taken"],
                "elapsed_s": round(r["t_end"] - r["t_start"], 3),
                "cpu_s": round(r["cpu_s"], 2),
                "peak_rss_mb": round(r["peak_rss"] / _MB, 1),
            }
            for r in reports
        ],
    }


def _scenario(cfg: BenchConfig, n: int) -> dict[str, Any]:
    return {
        "handler": cfg.handler,
        "actions": n,
        "workers": cfg.workers,
        "concurrency": cfg.concurrency,
        "batch_size": cfg.batch_size,
        "sleep_ms": cfg.sleep_ms if cfg.handler == "sleep" else None,
        "api_latency_ms": cfg.api_latency_ms if cfg.handler == "broadcast" else None,
        "rate": cfg.rate or None,
        "poll_interval": cfg.poll_interval,
        "recipients": cfg.actions if cfg.handler == "broadcast" else None,
        "worker_factory": cfg.worker_factory,
    }


def _sql_counts(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Statements, round trips, commits... of all workers, in total and by SQL verb."""
    counts: dict[str, Any] = {k: 0 for k in _COUNTS}
    counts["by_verb"] = {}
    for r in reports:
        c = r["counts"]
        for k in _COUNTS:
            counts[k] += c.get(k, 0)
        for verb, v in c.get("by_verb", {}).items():
            counts["by_verb"][verb] = counts["by_verb"].get(verb, 0) + v
    return counts


def _rss_mb(reports: list[dict[str, Any]]) -> dict[str, float]:
    """RSS at the start, the end and each checkpoint (the largest of the workers), in MiB."""
    rss_at: dict[str, int] = {}
    for r in reports:
        for k, v in r["rss_at"].items():
            rss_at[str(k)] = max(rss_at.get(str(k), 0), v)
    return {
        "start": round(max(r["rss_start"] for r in reports) / _MB, 1),
        "end": round(max(r["rss_end"] for r in reports) / _MB, 1),
        **{f"after_{k}": round(v / _MB, 1) for k, v in sorted(rss_at.items(), key=lambda kv: int(kv[0]))},
    }
