"""``wch-bridge bench``, the run: seed under a scratch prefix ``wchbench_<hex>_``, start ``--workers`` processes
(each builds its own store and ``Worker`` and drains with ``once=True``; a ``--rate`` trickle inserts actions live
instead), collect their reports, drop the prefix (also on Ctrl-C / SIGTERM). See the package docstring.

Parts: ``config`` (``BenchConfig``), ``seeding`` (backlog, trickle), ``workerproc`` (one worker process),
``summary`` (the figures), ``measure`` (RSS, CPU, percentiles). The names they export are re-exported here."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from wch_bridge.bench.config import (
    BENCH_GROUP,
    BENCH_HOOK,
    BROADCAST_HOOK,
    DEFAULT_BENCH_DSN,
    HANDLERS,
    SANDBOX_PHONE_ID,
    SANDBOX_TOKEN,
    BenchConfig,
    BenchUnavailable,
)
from wch_bridge.bench.measure import (
    _broadcast_figures,
    cpu_seconds,
    db_server_pid,
    process_cpu_seconds,
    system_info,
)
from wch_bridge.bench.seeding import broadcast_rows, seed, trickle
from wch_bridge.bench.summary import summarize
from wch_bridge.bench.workerproc import (
    WorkerReport,
    bench_registry,
    broadcast_handler,
    load_factory,
    make_sleep_handler,
    noop_handler,
    worker_main,
    worker_settings,
)
from wch_bridge.errors import WchBridgeError

__all__ = [
    "BENCH_GROUP", "BENCH_HOOK", "BROADCAST_HOOK", "DEFAULT_BENCH_DSN", "HANDLERS", "SANDBOX_PHONE_ID",
    "SANDBOX_TOKEN", "BenchConfig", "BenchUnavailable", "WorkerReport", "bench_registry", "broadcast_handler",
    "broadcast_rows", "load_factory", "make_sleep_handler", "noop_handler", "run_bench", "seed", "trickle",
    "worker_settings",
]

log = logging.getLogger("wch_bridge.bench")


class _Interrupted(BaseException):
    pass


def run_bench(cfg: BenchConfig, *, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Create a scratch prefix, seed, drain with ``cfg.workers`` processes, verify, measure, drop the prefix."""
    from wch_bridge.store import make_engine

    cfg.validate()
    say = say or (lambda _m: None)
    registry_check = bench_registry(cfg)  # fails early (broadcast not available) before touching the database
    del registry_check
    prefix = f"wchbench_{secrets.token_hex(4)}_"
    run = _Run(cfg, say, prefix, make_engine(cfg.dsn), mp.get_context("spawn"))
    previous_term = None
    if _in_main_thread():
        previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run.execute()
    except (KeyboardInterrupt, _Interrupted):
        say("interrupted: stopping workers and dropping the scratch tables")
        raise KeyboardInterrupt from None
    finally:
        run.clean_up(previous_term)


class _Run:
    """One bench run's moving parts (scratch prefix, worker processes, sandbox), so they are torn down in one
    place whatever happens."""

    def __init__(self, cfg: BenchConfig, say: Callable[[str], None], prefix: str, engine: Any, ctx: Any) -> None:
        self.cfg, self.say, self.prefix, self.engine, self.ctx = cfg, say, prefix, engine, ctx
        self.procs: list[Any] = []
        self.sandbox: Any = None
        self.stop_all = ctx.Event()

    def execute(self) -> dict[str, Any]:
        from wch_bridge.store import ActionStore
        from wch_bridge.store import schema as schema_mod

        cfg, say = self.cfg, self.say
        say(f"scratch prefix {self.prefix}")
        schema_mod.install(self.engine, self.prefix, with_wordpress=cfg.handler == "broadcast")
        store = ActionStore(self.engine, self.prefix)
        campaign_id = f"bench-{secrets.token_hex(3)}"
        if cfg.rate > 0:
            seeded, seed_s = 0, 0.0
        else:
            seeded, seed_s = seed(store, cfg, campaign_id)
            say(f"seeded {seeded} actions in {seed_s:.1f}s")
        sandbox_url = None
        if cfg.handler == "broadcast":
            from wch_bridge.sandbox import Sandbox

            self.sandbox = Sandbox(latency_ms=cfg.api_latency_ms, token=SANDBOX_TOKEN).start()
            self.sandbox.configure(mps_limit=cfg.messages_per_second)
            sandbox_url = self.sandbox.url
        go, out = self._start_workers(sandbox_url)
        return self._drain(store, go, out, seeded, seed_s)

    def _start_workers(self, sandbox_url: str | None) -> tuple[Any, Any]:
        """Spawn the worker processes and wait until each has built its worker; returns ``(go, out)``."""
        ready, go, out = self.ctx.Queue(), self.ctx.Event(), self.ctx.Queue()
        cfg_d = asdict(self.cfg)
        for i in range(self.cfg.workers):
            p = self.ctx.Process(target=worker_main,
                                 args=(cfg_d, self.prefix, i, sandbox_url, ready, go, self.stop_all, out),
                                 name=f"wch-bench-{i}", daemon=True)
            p.start()
            self.procs.append(p)
        for _ in self.procs:
            ready.get(timeout=120)
        return go, out

    def _drain(self, store: Any, go: Any, out: Any, seeded: int, seed_s: float) -> dict[str, Any]:
        """Start the workers, wait for their reports, check exactly-once and measure."""
        cfg, procs = self.cfg, self.procs
        db_pid = db_server_pid() if _is_local(cfg.dsn) else None
        db_cpu0 = process_cpu_seconds(db_pid)
        my_cpu0 = cpu_seconds()
        t_go = time.time()
        go.set()
        produced = trickle(store, cfg, self.stop_all.is_set) if cfg.rate > 0 else seeded
        if cfg.rate > 0:
            _wait_all_done(store, produced, self.stop_all)
        reports = _collect(out, procs, self.say)
        t_done = time.time()
        db_cpu = process_cpu_seconds(db_pid)
        parent_cpu = cpu_seconds() - my_cpu0
        for p in procs:
            p.join(timeout=30)
        errors = [r["error"] for r in reports if r.get("error")]
        if errors:
            raise WchBridgeError("bench worker failed: " + "; ".join(errors))
        status = store.count_by_status()
        dup = _duplicate_starts(store)
        result = summarize(cfg, reports, seeded if cfg.rate <= 0 else produced, seed_s, t_go, t_done, status, dup)
        result["cpu"] = {
            "workers_s": round(sum(r["cpu_s"] for r in reports), 2),
            "db_server_s": round(db_cpu - db_cpu0, 2) if db_cpu is not None and db_cpu0 is not None else None,
            "bench_parent_s": round(parent_cpu, 2),
        }
        if self.sandbox is not None:
            result["broadcast"] = _broadcast_figures(self.sandbox.requests("/messages"), result)
        result["system"] = system_info(store.info.version)
        result["prefix"] = self.prefix
        return result

    def clean_up(self, previous_term: Any) -> None:
        """Stop the workers and the sandbox, drop the scratch tables (unless ``--keep``), restore SIGTERM."""
        from wch_bridge.store import schema as schema_mod

        self.stop_all.set()
        for p in self.procs:
            if p.is_alive():
                p.join(timeout=3)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                self.sandbox.stop()
        try:
            if self.cfg.keep:
                self.say(f"kept the scratch tables under {self.prefix} (drop them with the bench's drop_prefix)")
            else:
                schema_mod.drop_prefix(self.engine, self.prefix)
        finally:
            self.engine.dispose()
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise _Interrupted()


def _is_local(dsn: str) -> bool:
    return any(h in dsn for h in ("@127.0.0.1", "@localhost", "@[::1]", "unix_socket"))


def _wait_all_done(store: Any, expected: int, stop_all: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = store.count_by_status([BENCH_HOOK])
        if st.get("complete", 0) + st.get("failed", 0) >= expected:
            break
        time.sleep(0.2)
    stop_all.set()


def _collect(out: Any, procs: list[Any], say: Callable[[str], None]) -> list[dict[str, Any]]:
    reports: dict[int, dict[str, Any]] = {}
    while len(reports) < len(procs):
        try:
            kind, index, payload = out.get(timeout=1.0)
        except queue.Empty:
            dead = [p for i, p in enumerate(procs) if not p.is_alive() and i not in reports]
            if dead and out.empty():
                time.sleep(0.5)
                if out.empty():
                    raise WchBridgeError(
                        f"bench worker process exited without a report (exit code {dead[0].exitcode})"
                    ) from None
            continue
        if kind == "progress":
            say(f"worker {index}: {payload} actions done")
        elif kind == "done":
            reports[index] = payload
    return [reports[i] for i in sorted(reports)]


def _duplicate_starts(store: Any) -> dict[str, int]:
    """Exactly-once check on the logs: actions with more than one 'action started' line, or with none."""
    from wch_bridge.devtools import bulk

    return bulk.start_log_anomalies(store)
