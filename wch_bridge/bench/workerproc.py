"""One bench worker process: the bench handlers, the worker's settings, and ``worker_main`` (build the store and
``Worker``, wait for the start signal, drain, send a ``WorkerReport`` back to the parent)."""

from __future__ import annotations

import contextlib
import cProfile
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from wch_bridge.bench.config import (
    BENCH_GROUP,
    BENCH_HOOK,
    BROADCAST_HOOK,
    SANDBOX_PHONE_ID,
    SANDBOX_TOKEN,
    BenchConfig,
    BenchUnavailable,
)
from wch_bridge.bench.measure import Reservoir, _ts, cpu_seconds, current_rss, peak_rss
from wch_bridge.errors import ConfigError
from wch_bridge.handlers.base import Handler, Job
from wch_bridge.models import Outcome
from wch_bridge.settings import Settings


def noop_handler(job: Job) -> Outcome | None:
    return None


def make_sleep_handler(sleep_ms: float) -> Handler:
    seconds = sleep_ms / 1000.0

    def sleep_handler(job: Job) -> Outcome | None:
        time.sleep(seconds)  # stands for a handler waiting on I/O (the GIL is released)
        return None

    return sleep_handler


def broadcast_handler() -> Handler:
    """The real ``hooks.BROADCAST_BATCH`` handler from ``wch_bridge.handlers``."""
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
            whatsapp_api_base=sandbox_url,
            whatsapp_phone_number_id=SANDBOX_PHONE_ID,
            whatsapp_token=SANDBOX_TOKEN,
        )
    return Settings(
        dsn=cfg.dsn,
        prefix=prefix,
        groups=(BENCH_GROUP,),
        concurrency=cfg.concurrency,
        batch_size=cfg.batch_size,
        poll_interval=cfg.poll_interval,
        once=cfg.rate <= 0,
        messages_per_second=cfg.messages_per_second,
        grace_period=5.0,
        log_level="WARNING",
        **extra,
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


def worker_main(
    cfg_d: dict[str, Any],
    prefix: str,
    index: int,
    sandbox_url: str | None,
    ready: Any,
    go: Any,
    stop_all: Any,
    out: Any,
) -> None:
    """Body of one worker process (spawned): build, wait for the start signal, drain, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("wch_bridge.worker").setLevel(
        logging.ERROR
    )  # per-action warnings would dominate the run
    logging.getLogger("wch_bridge.actions").setLevel(logging.ERROR)  # so would the observer's failure lines
    cfg = BenchConfig(**{**cfg_d, "rss_checkpoints": tuple(cfg_d["rss_checkpoints"])})
    rep = WorkerReport(index=index, pid=os.getpid())
    try:
        _drain(cfg, prefix, index, sandbox_url, rep, ready=ready, go=go, stop_all=stop_all, out=out)
    except BaseException as exc:  # noqa: BLE001 - report it to the parent instead of dying silently
        rep.error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            ready.put(index)
    out.put(("done", index, asdict(rep)))


def _build(cfg: BenchConfig, prefix: str, sandbox_url: str | None) -> tuple[Any, Any]:
    """``(store, worker)``: the real ones from ``app``, or a prototype's from ``--worker-factory``."""
    from wch_bridge import app

    settings = worker_settings(cfg, prefix, sandbox_url)
    if cfg.worker_factory:
        return load_factory(cfg.worker_factory)(settings, bench_registry(cfg))
    store = app.open_store(settings)
    return store, app.build_worker(settings, store, registry=bench_registry(cfg))


def _drain(
    cfg: BenchConfig,
    prefix: str,
    index: int,
    sandbox_url: str | None,
    rep: WorkerReport,
    *,
    ready: Any,
    go: Any,
    stop_all: Any,
    out: Any,
) -> None:
    from wch_bridge.devtools.instrument import StatementCounter

    store, worker = _build(cfg, prefix, sandbox_url)
    counter = StatementCounter(store.engine)
    lags = _watch(worker, cfg, index, rep, stop_all=stop_all, out=out)
    ready.put(index)
    go.wait()
    counter.reset()
    rep.rss_start = current_rss()
    cpu0 = cpu_seconds()
    rep.t_start = time.time()
    _run(worker, cfg, index)
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


def _watch(
    worker: Any, cfg: BenchConfig, index: int, rep: WorkerReport, *, stop_all: Any, out: Any
) -> Reservoir:
    """Hang the bench's callbacks on the worker: pickup lags, RSS checkpoints, progress, the parent's stop."""
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
    return lags


def _run(worker: Any, cfg: BenchConfig, index: int) -> None:
    """``worker.run()``, under cProfile for worker 0 with ``--profile``."""
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
