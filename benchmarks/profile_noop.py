"""Where the time of a no-op drain goes: ``wch-bridge bench --profile`` (cProfile of the worker's main thread,
which does all the SQL) plus CPU accounting of the worker process and of the database server.

Buckets of the main thread's wall time (cProfile ``tottime`` summed per bucket):

* ``server``   blocked in ``socket.recv_into``: waiting for MariaDB's answer (execution, the redo-log fsync of
               each COMMIT, loopback latency; also the wait to get the GIL back after the read)
* ``send``     ``socket.sendall`` (a syscall; includes getting the GIL back from the handler threads)
* ``driver``   PyMySQL's own Python code: packet parsing, row decoding, escaping parameters
* ``sqlalchemy`` statement compilation/caching, parameter processing, result rows, pool checkout/return
* ``bridge``   wch_bridge code (worker loop, store methods, building Action objects, dates)
* ``waiting``  blocked on the results queue / locks (waiting for handler threads to report)
* ``other``    the rest of the standard library

cProfile makes Python code slower (its overhead lands on ``driver``/``sqlalchemy``/``bridge``); the CPU
accounting (``getrusage`` of the worker, ``/proc/<mariadbd>/stat``) comes from a separate, unprofiled run."""

from __future__ import annotations

import json
import pstats
import subprocess
import tempfile
from pathlib import Path
from typing import Any

BUCKETS = ("server", "send", "driver", "sqlalchemy", "bridge", "waiting", "other")


def bucket_of(func: tuple[str, int, str]) -> str:
    filename, _line, name = func
    if "recv_into" in name or "'recv'" in name:
        return "server"
    if "sendall" in name:
        return "send"
    if "/pymysql/" in filename:
        return "driver"
    if "/sqlalchemy/" in filename:
        return "sqlalchemy"
    if "/wch_bridge/" in filename:
        return "bridge"
    if name in ("<method 'acquire' of '_thread.lock' objects>", "<method 'acquire' of '_thread.RLock' objects>"):
        return "waiting"
    return "other"


def breakdown(prof_path: str) -> dict[str, Any]:
    st = pstats.Stats(prof_path)
    raw: dict[str, float] = dict.fromkeys(BUCKETS, 0.0)
    top: list[tuple[float, str]] = []
    for func, (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        raw[bucket_of(func)] += tt
        top.append((tt, f"{Path(func[0]).name}:{func[1]}({func[2]})"))
    total = sum(raw.values()) or 1.0
    top.sort(reverse=True)
    return {
        "total_s": round(total, 2),
        "seconds": {k: round(v, 2) for k, v in raw.items()},
        "share": {k: round(100 * v / total, 1) for k, v in raw.items()},
        "top": [{"s": round(t, 3), "function": f} for t, f in top[:15]],
    }


def run(cli: str, args: list[str], dsn: str | None) -> dict[str, Any]:
    cmd = [cli, "bench", "--json", *args] + (["--dsn", dsn] if dsn else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def profile_noop(cli: str, dsn: str | None, say: Any, actions: int = 20_000,
                 extra: list[str] | None = None) -> dict[str, Any]:
    base = ["--actions", str(actions), "--handler", "noop", "--concurrency", "256", "--batch-size", "500",
            *(extra or [])]
    with tempfile.TemporaryDirectory() as tmp:
        prof = str(Path(tmp) / "noop.prof")
        profiled = run(cli, base + ["--profile", prof], dsn)
        bd = breakdown(prof)
    plain = run(cli, base, dsn)
    elapsed = plain["elapsed_s"]
    cpu = plain["cpu"]
    out = {
        "actions": actions,
        "profiled": {"actions_per_s": profiled["actions_per_s"], **bd},
        "unprofiled": {
            "actions_per_s": plain["actions_per_s"],
            "elapsed_s": elapsed,
            "worker_cpu_s": cpu["workers_s"],
            "db_server_cpu_s": cpu["db_server_s"],
            "worker_cpu_us_per_action": round(1e6 * cpu["workers_s"] / max(1, plain["completed"])),
            "db_cpu_us_per_action": (round(1e6 * cpu["db_server_s"] / max(1, plain["completed"]))
                                     if cpu["db_server_s"] is not None else None),
            "round_trips_per_action": plain["sql"]["round_trips_per_action"],
            "statements_per_action": plain["sql"]["statements_per_action"],
            "commits": plain["sql"]["commits"],
            "by_verb": plain["sql"]["by_verb"],
        },
    }
    say(f"profile: {json.dumps(out['profiled']['share'])}; unprofiled {out['unprofiled']}")
    return out


if __name__ == "__main__":
    import sys

    here = Path(__file__).resolve().parent
    cli = str(here.parent / ".venv" / "bin" / "wch-bridge")
    print(json.dumps(profile_noop(cli, None, print, int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
                                  sys.argv[2:]), indent=2))
