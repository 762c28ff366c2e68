"""Prometheus metrics, health probes and the per-action log line (``wch-bridge run --metrics-port P``).

* :class:`ActionObserver` is the worker's ``on_result`` / ``on_tick`` callback: it counts every finished action by
  hook and outcome, observes run duration and pickup lag (start minus ``scheduled_date_gmt``), and writes one log
  line per action with ``action_id``, ``hook``, ``outcome`` and ``duration`` as record attributes (the JSON log
  format prints them as fields).
* :class:`StoreCollector` computes gauges at scrape time from cheap aggregate queries (``store.reports.gauges``), cached
  for a few seconds: queue depth and oldest past-due age per hook, ledger messages by status and error code,
  heartbeat age, and the health verdict ``wch_bridge_health`` (0/1/2: ``wch_bridge.health.judge`` on the facts of
  ``store.reports.health_facts``, the verdict ``status`` and the report give) with the live workers and the hooks no one
  runs from the same facts. It also exports the WhatsApp send gate's counters (rate-limit waits, pauses, halt).
* :class:`MetricsServer` serves ``/metrics``, ``/healthz`` (liveness: the worker loop turns; its body also names the
  last scraped health verdict, which never fails the probe) and ``/readyz`` (database reachable, tables present)
  from a small threaded WSGI server.

Every metric lives in the observer's own ``CollectorRegistry`` (never the process-global one)."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from wch_bridge import objectcache
from wch_bridge.health import HealthFacts, judge, live_worker_seconds
from wch_bridge.settings import Settings
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.reports import gauges as store_gauges
from wch_bridge.store.reports.health_facts import read_health_facts
from wch_bridge.worker import Result, Worker

log = logging.getLogger("wch_bridge.actions")
server_log = logging.getLogger("wch_bridge.metrics")

NS = "wch_bridge"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))
LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, float("inf"))
OUTCOMES = {"complete": "complete", "failed": "failed", "release": "released"}


class ActionObserver:
    """Worker callbacks: ``on_result(result)`` (metrics + one log line, a warning for a failure: the worker then
    does not log it again, ``app.build_worker``) and ``on_tick(worker)`` (loop liveness).

    Durations are real seconds (monotonic); the pickup lag is in the clock's time (the demo's compressed clock
    reports lags as the queue saw them)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, clock_speed: float = 1.0) -> None:
        self.registry = registry or CollectorRegistry()
        self.clock_speed = clock_speed
        self.actions = Counter(f"{NS}_actions", "Actions run by this worker, by hook and outcome "
                               "(complete, failed, released back to pending).", ["hook", "outcome"],
                               registry=self.registry)
        self.duration = Histogram(f"{NS}_action_duration_seconds", "Time the handler took, by hook.", ["hook"],
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.lag = Histogram(f"{NS}_pickup_lag_seconds", "Start time minus scheduled_date_gmt, by hook.", ["hook"],
                             buckets=LAG_BUCKETS, registry=self.registry)
        self.loop = Gauge(f"{NS}_worker_loop_age_seconds", "Seconds since the worker loop last turned.",
                          registry=self.registry)
        self.loop.set_function(self.loop_age)
        self.started = time.monotonic()
        self.last_tick = self.started
        self.running = True
        self.worker_id: str | None = None

    # -- callbacks ------------------------------------------------------------------------------------------
    def on_result(self, res: Result) -> None:
        hook = res.action.hook
        outcome = OUTCOMES.get(res.kind, res.kind)
        duration = max(0.0, res.finished - res.started) if res.finished else 0.0
        self.actions.labels(hook, outcome).inc()
        if res.kind != "release":
            self.duration.labels(hook).observe(duration)
        lag = self.pickup_lag(res, duration)
        if lag is not None:
            self.lag.labels(hook).observe(lag)
        detail = f": {res.message}" if res.message and res.kind != "complete" else ""
        level = logging.WARNING if res.kind == "failed" else logging.INFO  # the one line of a failure
        log.log(level, "action:%d %s %s in %.3f s%s", res.action.action_id, hook, outcome, duration, detail,
                extra={"action_id": res.action.action_id, "hook": hook, "outcome": outcome,
                       "duration": round(duration, 6)})

    def pickup_lag(self, res: Result, duration: float) -> float | None:
        scheduled = res.action.scheduled_date_gmt
        if scheduled is None or res.finished_at is None:
            return None
        return max(0.0, (res.finished_at - scheduled).total_seconds() - duration * self.clock_speed)

    def on_tick(self, worker: Worker | None = None) -> None:
        self.last_tick = time.monotonic()
        if worker is not None:
            self.worker_id = worker.worker_id

    # -- liveness -------------------------------------------------------------------------------------------
    def loop_age(self) -> float:
        return max(0.0, time.monotonic() - self.last_tick)

    def stopped(self) -> None:
        self.running = False

    def alive(self, max_age: float) -> tuple[bool, str]:
        if not self.running:
            return False, "worker loop has stopped"
        age = self.loop_age()
        if age > max_age:
            return False, f"worker loop has not turned for {age:.0f} s"
        return True, f"worker loop turned {age:.1f} s ago"


def chain_ticks(*callbacks: Callable[[Worker], Any] | None) -> Callable[[Worker], None] | None:
    """One ``on_tick`` from several (None entries skipped); a failing one does not stop the others."""
    live = [c for c in callbacks if c is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]  # type: ignore[return-value]

    def tick(worker: Worker) -> None:
        errors: list[BaseException] = []
        for cb in live:
            try:
                cb(worker)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others ran
                errors.append(exc)
        if errors:
            raise errors[0]

    return tick


class StoreCollector(Collector):
    """Gauges computed when Prometheus scrapes, from aggregate queries cached ``cache_seconds``."""

    def __init__(self, store: ActionStore, groups: Sequence[str], *, worker_id: Callable[[], str | None],
                 gate: Any = None, cache_seconds: float = 5.0, live_seconds: float | None = None,
                 wp_config: str | None = None) -> None:
        self.store = store
        self.wp_config = wp_config  # where the site's object-cache drop-in is looked for (a health fact)
        self.live_seconds = live_worker_seconds(Settings()) if live_seconds is None else live_seconds
        self.last_health: str | None = None  # the verdict of the last scrape (shown by /healthz)
        self.groups = tuple(groups)
        self.worker_id = worker_id
        self.gate = gate
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] | None = None

    def describe(self) -> Iterable[Any]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterable[Any]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (now, self._query())
            families = list(self._cached[1])
        families += self._gate_families()
        return families

    def _query(self) -> list[Any]:
        up = GaugeMetricFamily(f"{NS}_store_up", "1 when the last gauge queries succeeded.")
        try:
            now = self.store.now()
            q = store_gauges.queue_gauges(self.store, self.groups, now)
            ledger = store_gauges.ledger_counts(self.store)
            wid = self.worker_id()
            beat = store_gauges.heartbeat_at(self.store, wid) if wid else None
            facts = read_health_facts(self.store, self.groups, now, self.live_seconds,
                                      objectcache.site_drop_in(self.wp_config))
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is away
            server_log.debug("metrics gauges unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *self._queue_families(q, now), *self._health_families(facts, ledger, beat, now)]

    def _queue_families(self, q: store_gauges.QueueGauges, now: datetime) -> list[Any]:
        depth = GaugeMetricFamily(f"{NS}_queue_depth", "Actions pending or in progress, by hook and status.",
                                  labels=["hook", "status"])
        for (hook, status), n in sorted(q.depth.items()):
            depth.add_metric([hook, status], n)
        past = GaugeMetricFamily(f"{NS}_queue_past_due", "Pending actions already due, by hook.", labels=["hook"])
        oldest = GaugeMetricFamily(f"{NS}_queue_oldest_past_due_age_seconds",
                                   "Age of the oldest pending action that is due, by hook (0: none due).",
                                   labels=["hook"])
        for hook in sorted({h for h, _ in q.depth}):
            past.add_metric([hook], q.past_due.get(hook, 0))
            when = q.oldest_due.get(hook)
            oldest.add_metric([hook], max(0.0, (now - when).total_seconds()) if when else 0.0)
        return [depth, past, oldest]

    def _health_families(self, facts: HealthFacts, ledger: list[tuple[str, int | None, int]], beat: datetime | None,
                         now: datetime) -> list[Any]:
        verdict = judge(facts)
        self.last_health = verdict.level
        health = GaugeMetricFamily(f"{NS}_health", "The health verdict `wch-bridge status` and the report give: "
                                   "0 ok, 1 warning, 2 critical.")
        health.add_metric([], float(verdict.exit_code))
        live = GaugeMetricFamily(f"{NS}_live_workers", "Workers whose heartbeat is within the orphan timeout.")
        live.add_metric([], float(len(facts.live_workers())))
        msgs = GaugeMetricFamily(f"{NS}_messages", "Messages in the ledger ({prefix}wch_bridge_messages) by status "
                                 "and WhatsApp error code ('' when none).", labels=["status", "error_code"])
        for status, code, n in sorted(ledger, key=lambda r: (r[0], r[1] or 0)):
            msgs.add_metric([status, "" if code is None else str(code)], n)
        hb = GaugeMetricFamily(f"{NS}_worker_heartbeat_age_seconds",
                               "Seconds since this worker last wrote its heartbeat row (-1: none yet).")
        hb.add_metric([], (now - beat).total_seconds() if beat else -1.0)
        nobody = GaugeMetricFamily(f"{NS}_unowned_pending", "Pending actions of hooks no one runs (neither the "
                                   "bridge nor PHP), by group and hook: alert on any.", labels=["group", "hook"])
        for u in facts.unowned:
            nobody.add_metric([str(u["group"]), str(u["hook"])], int(u["pending"]))
        return [health, live, msgs, hb, nobody]

    def _gate_families(self) -> list[Any]:
        if self.gate is None:
            return []
        s = self.gate.stats()
        out = []
        for name, key, doc in (
            ("api_rate_limit_waits", "rate_limit_waits", "Sends that waited for the messages-per-second limit."),
            ("api_rate_limit_wait_seconds", "rate_limit_wait_seconds", "Time spent waiting for the rate limit."),
            ("api_throttle_events", "throttle_events", "Shared pauses after WhatsApp rate-limit errors."),
            ("api_pause_wait_seconds", "pause_wait_seconds", "Time senders waited in those pauses."),
            ("api_sends", "acquired", "Sends let through the gate."),
        ):
            c = CounterMetricFamily(f"{NS}_{name}", doc)
            c.add_metric([], float(s.get(key) or 0))
            out.append(c)
        halted = GaugeMetricFamily(f"{NS}_api_halted", "1 while sends are halted (expired token, locked account).")
        halted.add_metric([], 1.0 if s.get("halted") else 0.0)
        out.append(halted)
        return out


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class MetricsServer:
    """``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz`` on ``host:port`` in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, *, live: Callable[[], tuple[bool, str]],
                 ready: Callable[[], tuple[bool, str]], host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics_app = make_wsgi_app(registry)
        self.live = live
        self.ready = ready
        self.httpd = make_server(host, port, self.app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.host = host
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="wch-metrics", daemon=True)

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/healthz", "/readyz"):
            ok, reason = (self.live if path == "/healthz" else self.ready)()
            body = (("ok: " if ok else "unavailable: ") + reason + "\n").encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        if path in ("/metrics", "/"):
            return self.metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def liveness_limit(poll_interval: float) -> float:
    """How long the loop may go without turning before ``/healthz`` fails (a poll never blocks longer)."""
    return max(30.0, 5 * poll_interval)


def serve(worker: Worker, observer: ActionObserver, *, host: str, port: int, gate: Any = None,
          cache_seconds: float = 5.0) -> MetricsServer:
    """Register the scrape-time gauges for ``worker`` and start the HTTP server."""
    observer.worker_id = worker.worker_id
    collector = StoreCollector(worker.store, worker.settings.groups, worker_id=lambda: observer.worker_id, gate=gate,
                               cache_seconds=cache_seconds, live_seconds=live_worker_seconds(worker.settings),
                               wp_config=worker.settings.wp_config)
    observer.registry.register(collector)
    limit = liveness_limit(worker.settings.poll_interval)

    def live() -> tuple[bool, str]:
        ok, reason = observer.alive(limit)
        health = collector.last_health
        return ok, reason + (f"; queue health {health} (as of the last /metrics scrape)" if health else "")

    server = MetricsServer(observer.registry, live=live,
                           ready=lambda: store_gauges.readiness(worker.store), host=host, port=port)
    server_log.info("metrics on http://%s:%d/metrics (and /healthz, /readyz)", host, server.port)
    return server.start()
