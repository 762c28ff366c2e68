"""``wch-bridge bench``, the run: seed under a scratch prefix ``wchbench_<hex>_``, start ``--workers`` processes
(each builds its own store and ``Worker`` and drains with ``once=True``; a ``--rate`` trickle inserts actions live
instead), collect their reports, drop the prefix (also on Ctrl-C / SIGTERM). See the package docstring."""

from __future__ import annotations

import contextlib
import cProfile
import logging
import multiprocessing as mp
import os
import queue
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wch_bridge import argscodec, hooks, phpser, schedules
from wch_bridge.bench.measure import (
    Reservoir,
    _broadcast_figures,
    _r,
    _ts,
    cpu_seconds,
    current_rss,
    db_server_pid,
    peak_rss,
    percentile,
    process_cpu_seconds,
    system_info,
)
from wch_bridge.errors import ConfigError, WchBridgeError
from wch_bridge.handlers.base import Handler, Job
from wch_bridge.models import Outcome
from wch_bridge.settings import Settings

log = logging.getLogger("wch_bridge.bench")

DEFAULT_BENCH_DSN = "mysql+pymysql://root@127.0.0.1:3306/test"
BENCH_HOOK = "wch_bridge_bench"
BROADCAST_HOOK = hooks.BROADCAST_BATCH
BENCH_GROUP = "wch"
HANDLERS = ("noop", "sleep", "broadcast")
SANDBOX_TOKEN = "bench-token-not-a-secret"
SANDBOX_PHONE_ID = "100000000000001"


class BenchUnavailable(WchBridgeError):
    """A bench mode needs a part of the bridge that is not there (yet)."""


@dataclass(frozen=True)
class BenchConfig:
    actions: int = 20_000
    handler: str = "noop"
    sleep_ms: float = 20.0
    api_latency_ms: float = 50.0
    workers: int = 1
    concurrency: int = 32
    batch_size: int = 100
    dsn: str = DEFAULT_BENCH_DSN
    poll_interval: float = 1.0
    rate: float = 0.0  # > 0: trickle (actions inserted live at this rate) instead of a seeded backlog
    messages_per_second: float = 80.0
    recipients_per_batch: int = 50
    rss_checkpoints: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    profile: str | None = None  # cProfile output of worker 0's main thread
    progress: bool = False
    worker_factory: str | None = None  # "path/to/file.py:func" (settings, registry) -> (store, worker): prototypes
    keep: bool = False  # debugging: leave the scratch tables in place

    def validate(self) -> None:
        if self.handler not in HANDLERS:
            raise ConfigError(f"--handler must be one of {', '.join(HANDLERS)}, got {self.handler!r}")
        for name in ("actions", "workers", "concurrency", "batch_size"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')}: must be a positive integer")
        if self.sleep_ms < 0 or self.api_latency_ms < 0 or self.rate < 0:
            raise ConfigError("--sleep-ms, --api-latency-ms and --rate must be >= 0")
        if self.rate > 0 and self.workers != 1:
            raise ConfigError("--rate (trickle) runs one worker: use --workers 1")
        if self.profile and self.workers != 1:
            raise ConfigError("--profile needs --workers 1")


# ---------------------------------------------------------------------------------------------- handlers

def noop_handler(job: Job) -> Outcome | None:
    return None


def make_sleep_handler(sleep_ms: float) -> Handler:
    seconds = sleep_ms / 1000.0

    def sleep_handler(job: Job) -> Outcome | None:
        time.sleep(seconds)  # stands for a handler waiting on I/O (the GIL is released)
        return None

    return sleep_handler


def broadcast_handler() -> Handler:
    """The real ``wch_send_broadcast_batch`` handler from ``wch_bridge.handlers``."""
    from wch_bridge import handlers

    handler = handlers.default_registry().get(BROADCAST_HOOK)
    if handler is None:
        raise BenchUnavailable(
            f"--handler broadcast is not available yet: wch_bridge.handlers has no {BROADCAST_HOOK} "
            "handler registered in default_registry()"
        )
    return handler


def bench_registry(cfg: BenchConfig) -> dict[str, Handler]:
    if cfg.handler == "noop":
        return {BENCH_HOOK: noop_handler}
    if cfg.handler == "sleep":
        return {BENCH_HOOK: make_sleep_handler(cfg.sleep_ms)}
    return {BROADCAST_HOOK: broadcast_handler()}


# ---------------------------------------------------------------------------------------------- measuring

@dataclass
class WorkerReport:
    index: int
    pid: int
    t_start: float = 0.0
    t_end: float = 0.0
    completed: int = 0
    failed: int = 0
    released: int = 0
    not_recorded: int = 0
    taken: int = 0
    cpu_s: float = 0.0
    peak_rss: int = 0
    rss_start: int = 0
    rss_end: int = 0
    rss_at: dict[int, int] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    lag_seen: int = 0
    error: str | None = None


def worker_settings(cfg: BenchConfig, prefix: str, sandbox_url: str | None) -> Settings:
    extra: dict[str, Any] = {}
    if sandbox_url:
        extra.update(
            whatsapp_api_base=sandbox_url, whatsapp_phone_number_id=SANDBOX_PHONE_ID, whatsapp_token=SANDBOX_TOKEN,
        )
    return Settings(
        dsn=cfg.dsn, prefix=prefix, groups=(BENCH_GROUP,), concurrency=cfg.concurrency, batch_size=cfg.batch_size,
        poll_interval=cfg.poll_interval, once=cfg.rate <= 0, messages_per_second=cfg.messages_per_second,
        grace_period=5.0, log_level="WARNING", **extra,
    )


def load_factory(spec: str) -> Callable[[Settings, dict[str, Handler]], tuple[Any, Any]]:
    """``path/to/file.py:func`` or ``package.module:func``: builds ``(store, worker)`` for a prototype."""
    import importlib
    import importlib.util

    target, _, func = spec.rpartition(":")
    if not target or not func:
        raise ConfigError(f"--worker-factory: expected module:function or path.py:function, got {spec!r}")
    if target.endswith(".py"):
        mod_spec = importlib.util.spec_from_file_location(f"wch_bench_factory_{abs(hash(target))}", target)
        if mod_spec is None or mod_spec.loader is None:
            raise ConfigError(f"--worker-factory: cannot load {target}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, func)  # type: ignore[no-any-return]


def _worker_main(cfg_d: dict[str, Any], prefix: str, index: int, sandbox_url: str | None, ready: Any, go: Any,
                 stop_all: Any, out: Any) -> None:
    """Body of one worker process (spawned): build, wait for the start signal, drain, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("wch_bridge.worker").setLevel(logging.ERROR)  # per-action warnings would dominate the run
    logging.getLogger("wch_bridge.actions").setLevel(logging.ERROR)  # so would the observer's failure lines
    cfg = BenchConfig(**{**cfg_d, "rss_checkpoints": tuple(cfg_d["rss_checkpoints"])})
    rep = WorkerReport(index=index, pid=os.getpid())
    try:
        from wch_bridge import app
        from wch_bridge.store.instrument import StatementCounter

        settings = worker_settings(cfg, prefix, sandbox_url)
        if cfg.worker_factory:
            store, worker = load_factory(cfg.worker_factory)(settings, bench_registry(cfg))
        else:
            store = app.open_store(settings)
            worker = app.build_worker(settings, store, registry=bench_registry(cfg))
        counter = StatementCounter(store.engine)
        lags = Reservoir()
        checkpoints = sorted(cfg.rss_checkpoints)
        offset = time.time() - time.monotonic()
        done = [0]
        last_progress = [time.monotonic()]

        def on_result(r: Any) -> None:
            done[0] += 1
            if r.action.scheduled_date_gmt is not None and r.started:
                lags.add((r.started + offset) - _ts(r.action.scheduled_date_gmt))
            if checkpoints and done[0] >= checkpoints[0]:
                rep.rss_at[checkpoints.pop(0)] = current_rss()

        def on_tick(w: Any) -> None:
            if stop_all.is_set():
                w.request_stop()
            if cfg.progress and time.monotonic() - last_progress[0] >= 5.0:
                last_progress[0] = time.monotonic()
                out.put(("progress", index, done[0]))

        worker.on_result = on_result
        worker.on_tick = on_tick
        ready.put(index)
        go.wait()
        counter.reset()
        rep.rss_start = current_rss()
        cpu0 = cpu_seconds()
        rep.t_start = time.time()
        if cfg.profile and index == 0:
            prof = cProfile.Profile()
            prof.enable()
            try:
                worker.run()
            finally:
                prof.disable()
                prof.dump_stats(cfg.profile)
        else:
            worker.run()
        rep.t_end = time.time()
        rep.cpu_s = cpu_seconds() - cpu0
        rep.rss_end = current_rss()
        rep.peak_rss = peak_rss()
        st = worker.stats
        rep.completed, rep.failed, rep.released = st.completed, st.failed, st.released
        rep.not_recorded, rep.taken = st.not_recorded, st.taken
        rep.counts = counter.counts().as_dict()
        rep.lags = list(lags.values)
        rep.lag_seen = lags.seen
        counter.close()
        store.engine.dispose()
    except BaseException as exc:  # noqa: BLE001 - report it to the parent instead of dying silently
        rep.error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            ready.put(index)
    out.put(("done", index, asdict(rep)))


# ---------------------------------------------------------------------------------------------- seeding

def broadcast_rows(cfg: BenchConfig, campaign_id: str, due: datetime) -> Iterator[Any]:
    from wch_bridge.store.actions import NewRow

    schedule = phpser.serialize_schedule(schedules.SimpleSchedule(int(_ts(due))))
    per = max(1, cfg.recipients_per_batch)
    n_batches = -(-cfg.actions // per)
    serial = 0
    for b in range(n_batches):
        phones = []
        for _ in range(min(per, cfg.actions - b * per)):
            serial += 1
            phones.append(f"+1555{serial:07d}")
        payload = {"batch": phones, "batch_num": b, "total_batches": n_batches, "campaign_id": campaign_id,
                   "message": f"Bench broadcast {campaign_id}: hello"}
        args, extended = argscodec.encode_args(payload)
        yield NewRow(hook=BROADCAST_HOOK, scheduled_date_gmt=due, schedule=schedule, args=args,
                     extended_args=extended, group=BENCH_GROUP)


def seed(store: Any, cfg: BenchConfig, campaign_id: str) -> tuple[int, float]:
    """The backlog: ``cfg.actions`` due actions (broadcast: recipients in batches). Returns (rows, seconds)."""
    from wch_bridge.store import bulk

    t0 = time.monotonic()
    due = store.now() - timedelta(seconds=1)
    if cfg.handler == "broadcast":
        res = bulk.insert_actions(store, broadcast_rows(cfg, campaign_id, due), created_log=True, chunk=500)
    elif bulk.has_sequence_engine(store):
        res = bulk.seed_due_sequence(store, cfg.actions, BENCH_HOOK, group=BENCH_GROUP, scheduled_gmt=due,
                                     created_log=True)
    else:
        from wch_bridge.store.actions import NewRow

        sched = phpser.serialize_schedule(schedules.NullSchedule())
        rows = (NewRow(hook=BENCH_HOOK, scheduled_date_gmt=due, schedule=sched, args=f"[{i}]", group=BENCH_GROUP)
                for i in range(cfg.actions))
        res = bulk.insert_actions(store, rows, created_log=True)
    # Fresh statistics, as a live table has them: right after a bulk load InnoDB's are stale and MariaDB picks
    # status_scheduled_date_gmt + filesort for the due query (all pending rows read per poll) until its
    # background recalculation runs, which would make the first seconds of every drain unrepresentative.
    bulk.analyze(store)
    return res.count, time.monotonic() - t0


def trickle(store: Any, cfg: BenchConfig, stop: Callable[[], bool]) -> int:
    """Insert ``cfg.actions`` actions live, one every 1/rate s, each due the instant it is inserted (scheduled at
    a whole second and inserted right after that second starts, so lag = start - scheduled is exact)."""
    from wch_bridge.store.actions import NewRow

    interval = 1.0 / cfg.rate
    next_at = float(int(time.time()) + 1)
    n = 0
    while n < cfg.actions and not stop():
        delay = next_at - time.time()
        if delay > 0:
            time.sleep(delay)
        whole = int(time.time())
        due = datetime.fromtimestamp(whole, UTC).replace(tzinfo=None)
        sched = phpser.serialize_schedule(schedules.SimpleSchedule(whole))
        store.insert_action(NewRow(hook=BENCH_HOOK, scheduled_date_gmt=due, schedule=sched, args=f"[{n}]",
                                   group=BENCH_GROUP))
        n += 1
        next_at += interval
    return n


# ---------------------------------------------------------------------------------------------- the run

class _Interrupted(BaseException):
    pass


def run_bench(cfg: BenchConfig, *, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Create a scratch prefix, seed, drain with ``cfg.workers`` processes, verify, measure, drop the prefix."""
    from wch_bridge.sandbox import Sandbox
    from wch_bridge.store import ActionStore, make_engine
    from wch_bridge.store import schema as schema_mod

    cfg.validate()
    say = say or (lambda _m: None)
    registry_check = bench_registry(cfg)  # fails early (broadcast not available) before touching the database
    del registry_check
    prefix = f"wchbench_{secrets.token_hex(4)}_"
    engine = make_engine(cfg.dsn)
    ctx = mp.get_context("spawn")
    procs: list[Any] = []
    sandbox: Sandbox | None = None
    stop_all = ctx.Event()
    previous_term = None
    if _in_main_thread():
        previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        say(f"scratch prefix {prefix}")
        schema_mod.install(engine, prefix, with_wordpress=cfg.handler == "broadcast")
        store = ActionStore(engine, prefix)
        campaign_id = f"bench-{secrets.token_hex(3)}"
        if cfg.rate > 0:
            seeded, seed_s = 0, 0.0
        else:
            seeded, seed_s = seed(store, cfg, campaign_id)
            say(f"seeded {seeded} actions in {seed_s:.1f}s")
        sandbox_url = None
        if cfg.handler == "broadcast":
            sandbox = Sandbox(latency_ms=cfg.api_latency_ms, token=SANDBOX_TOKEN).start()
            sandbox.configure(mps_limit=cfg.messages_per_second)
            sandbox_url = sandbox.url
        ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
        cfg_d = asdict(cfg)
        for i in range(cfg.workers):
            p = ctx.Process(target=_worker_main, args=(cfg_d, prefix, i, sandbox_url, ready, go, stop_all, out),
                            name=f"wch-bench-{i}", daemon=True)
            p.start()
            procs.append(p)
        for _ in procs:
            ready.get(timeout=120)
        db_pid = db_server_pid() if _is_local(cfg.dsn) else None
        db_cpu0 = process_cpu_seconds(db_pid)
        my_cpu0 = cpu_seconds()
        t_go = time.time()
        go.set()
        produced = trickle(store, cfg, stop_all.is_set) if cfg.rate > 0 else seeded
        if cfg.rate > 0:
            _wait_all_done(store, produced, stop_all)
        reports = _collect(out, procs, say)
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
        result = _summarize(cfg, reports, seeded if cfg.rate <= 0 else produced, seed_s, t_go, t_done, status, dup)
        result["cpu"] = {
            "workers_s": round(sum(r["cpu_s"] for r in reports), 2),
            "db_server_s": round(db_cpu - db_cpu0, 2) if db_cpu is not None and db_cpu0 is not None else None,
            "bench_parent_s": round(parent_cpu, 2),
        }
        if sandbox is not None:
            result["broadcast"] = _broadcast_figures(sandbox.requests("/messages"), result)
        result["system"] = system_info(store.info.version)
        result["prefix"] = prefix
        return result
    except (KeyboardInterrupt, _Interrupted):
        say("interrupted: stopping workers and dropping the scratch tables")
        raise KeyboardInterrupt from None
    finally:
        stop_all.set()
        for p in procs:
            if p.is_alive():
                p.join(timeout=3)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        if sandbox is not None:
            with contextlib.suppress(Exception):
                sandbox.stop()
        try:
            if cfg.keep:
                say(f"kept the scratch tables under {prefix} (drop them with the bench's drop_prefix)")
            else:
                schema_mod.drop_prefix(engine, prefix)
        finally:
            engine.dispose()
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
    from wch_bridge.store import bulk

    return bulk.start_log_anomalies(store)


def _summarize(cfg: BenchConfig, reports: list[dict[str, Any]], n: int, seed_s: float, t_go: float,
               t_done: float, status: dict[str, int], dup: dict[str, int]) -> dict[str, Any]:
    completed = sum(r["completed"] for r in reports)
    failed = sum(r["failed"] for r in reports)
    finished = completed + failed
    t0 = min(r["t_start"] for r in reports)
    t1 = max(r["t_end"] for r in reports)
    elapsed = max(1e-9, t1 - t0)
    lags: list[float] = []
    for r in reports:
        lags.extend(r["lags"])
    counts: dict[str, Any] = {"statements": 0, "round_trips": 0, "commits": 0, "rollbacks": 0, "pings": 0,
                              "by_verb": {}}
    for r in reports:
        c = r["counts"]
        for k in ("statements", "round_trips", "commits", "rollbacks", "pings"):
            counts[k] += c.get(k, 0)
        for verb, v in c.get("by_verb", {}).items():
            counts["by_verb"][verb] = counts["by_verb"].get(verb, 0) + v
    per = max(1, finished)
    rss_at: dict[str, int] = {}
    for r in reports:
        for k, v in r["rss_at"].items():
            rss_at[str(k)] = max(rss_at.get(str(k), 0), v)
    mb = 1024 * 1024
    return {
        "scenario": {
            "handler": cfg.handler, "actions": n, "workers": cfg.workers, "concurrency": cfg.concurrency,
            "batch_size": cfg.batch_size, "sleep_ms": cfg.sleep_ms if cfg.handler == "sleep" else None,
            "api_latency_ms": cfg.api_latency_ms if cfg.handler == "broadcast" else None,
            "rate": cfg.rate or None, "poll_interval": cfg.poll_interval,
            "recipients": cfg.actions if cfg.handler == "broadcast" else None,
            "worker_factory": cfg.worker_factory,
        },
        "seed_seconds": round(seed_s, 2),
        "elapsed_s": round(elapsed, 3),
        "wall_s": round(t_done - t_go, 3),
        "completed": completed,
        "failed": failed,
        "released": sum(r["released"] for r in reports),
        "not_recorded": sum(r["not_recorded"] for r in reports),
        "actions_per_s": round(finished / elapsed, 1),
        "pickup_lag_s": {
            "p50": _r(percentile(lags, 50)), "p95": _r(percentile(lags, 95)), "p99": _r(percentile(lags, 99)),
            "max": _r(max(lags) if lags else None), "samples": len(lags),
        },
        "peak_rss_mb": round(max(r["peak_rss"] for r in reports) / mb, 1),
        "rss_mb": {
            "start": round(max(r["rss_start"] for r in reports) / mb, 1),
            "end": round(max(r["rss_end"] for r in reports) / mb, 1),
            **{f"after_{k}": round(v / mb, 1) for k, v in sorted(rss_at.items(), key=lambda kv: int(kv[0]))},
        },
        "sql": {
            "statements_per_action": round(counts["statements"] / per, 3),
            "round_trips_per_action": round(counts["round_trips"] / per, 3),
            **counts,
        },
        "final_status": status,
        "exactly_once": dup,
        "workers": [
            {"index": r["index"], "completed": r["completed"], "failed": r["failed"], "taken": r["taken"],
             "elapsed_s": round(r["t_end"] - r["t_start"], 3), "cpu_s": round(r["cpu_s"], 2),
             "peak_rss_mb": round(r["peak_rss"] / mb, 1)}
            for r in reports
        ],
    }


