"""What the bench measures and how it prints it: RSS and CPU of processes (and of the local database server), a lag
reservoir and percentiles, the system line, the broadcast figures from the sandbox's request log, the text form."""

from __future__ import annotations

import array
import json
import os
import platform
import random
import resource
from datetime import UTC, datetime
from typing import Any

LAG_RESERVOIR = 200_000  # lag samples kept per worker (exact percentiles up to this many actions)


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss()


def peak_rss() -> int:
    """Peak RSS of this process in bytes (``ru_maxrss`` is KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def db_server_pid() -> int | None:
    """The local mariadbd/mysqld process, to read its CPU time (None when not visible)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
                if fh.read().strip() in ("mariadbd", "mysqld"):
                    return int(pid)
        except OSError:
            continue
    return None


def process_cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Reservoir:
    """Uniform sample of at most ``size`` floats (exact when fewer were added); constant memory."""

    def __init__(self, size: int = LAG_RESERVOIR, seed: int = 7) -> None:
        self.size = size
        self.seen = 0
        self.values = array.array("d")
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.values[j] = value


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[k]


def _ts(dt: datetime) -> float:
    return dt.replace(tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------------------------- worker process

def system_info(server_version: str | None = None) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "database": server_version,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _broadcast_figures(requests: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    """From the sandbox's request log: accepted messages, rejections (rate limit 130429 and others: any
    non-200), sustained rate (accepted messages over the span from the first to the last one) and duplicates
    (accepted messages beyond the first to the same recipient: the bench sends one campaign)."""
    ok = [r for r in requests if r.get("status") == 200]
    per_recipient: dict[str, int] = {}
    for r in ok:
        body = r.get("body") if isinstance(r.get("body"), dict) else {}
        to = str(body.get("to", ""))
        per_recipient[to] = per_recipient.get(to, 0) + 1
    times = sorted(float(r["time"]) for r in ok if isinstance(r.get("time"), int | float))
    sustained = None
    if len(times) >= 2 and times[-1] > times[0]:
        sustained = round((len(times) - 1) / (times[-1] - times[0]), 1)
    return {
        "requests": len(requests),
        "accepted": len(ok),
        "rejected": sum(1 for r in requests if r.get("status") not in (200, None)),
        "recipients": len(per_recipient),
        "duplicates": sum(n - 1 for n in per_recipient.values() if n > 1),
        "msg_per_s_sustained": sustained,
        "msg_per_s_overall": round(len(ok) / max(1e-9, result["elapsed_s"]), 1),
    }


def format_text(res: dict[str, Any]) -> str:
    sc = res["scenario"]
    lag = res["pickup_lag_s"]
    sql = res["sql"]
    lines = [
        f"handler={sc['handler']} actions={sc['actions']}"
        + (f" recipients={sc['recipients']}" if sc.get("recipients") else "")
        + f" workers={sc['workers']} concurrency={sc['concurrency']} "
        f"batch={sc['batch_size']}" + (f" rate={sc['rate']}/s poll={sc['poll_interval']}s" if sc.get("rate") else ""),
        f"  throughput     {res['actions_per_s']:,.1f} actions/s  ({res['completed']} complete, {res['failed']} failed "
        f"in {res['elapsed_s']:.2f} s)",
        f"  pickup lag     p50 {_fmt_s(lag['p50'])}  p95 {_fmt_s(lag['p95'])}  p99 {_fmt_s(lag['p99'])}  "
        f"max {_fmt_s(lag['max'])}",
        f"  peak RSS       {res['peak_rss_mb']:.1f} MB (worker process)",
        f"  SQL            {sql['statements_per_action']:.2f} statements/action, {sql['round_trips_per_action']:.2f} "
        f"round trips/action  {json.dumps(sql['by_verb'])}",
        f"  CPU            workers {res['cpu']['workers_s']} s, database server {res['cpu']['db_server_s']} s",
        f"  exactly once   {json.dumps(res['exactly_once'])}; final status {json.dumps(res['final_status'])}",
    ]
    if "broadcast" in res:
        b = res["broadcast"]
        lines.append(f"  broadcast      {b['accepted']} messages, sustained {b['msg_per_s_sustained']} msg/s, "
                     f"{b['duplicates']} duplicates, {b['rejected']} rejected by the API")
    rss = res["rss_mb"]
    if any(k.startswith("after_") for k in rss):
        lines.append("  RSS            " + ", ".join(f"{k.replace('_', ' ')} {v} MB" for k, v in rss.items()))
    s = res["system"]
    lines.append(f"  system         {s['python']}, {s['database']}, {s['cpu']} x{s['cores']}")
    return "\n".join(lines)


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"
