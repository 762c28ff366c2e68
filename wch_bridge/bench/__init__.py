"""``wch-bridge bench``: drain seeded actions with the real worker and measure it.

Everything happens under a scratch table prefix ``wchbench_<hex>_`` (never the site's), dropped at the end, also
on Ctrl-C / SIGTERM. Each of ``--workers`` K processes builds its own store and ``Worker`` (``app.build_worker``
with a registry of bench handlers) and drains with ``once=True``; a ``--rate`` trickle keeps one worker polling
while this process inserts actions live, one per 1/rate seconds.

Figures: actions/s (over the common drain window of all workers), pickup lag p50/p95/p99 (the moment a pool
thread started the action minus its ``scheduled_date_gmt``), peak RSS of the worker processes (``ru_maxrss``),
SQL statements and client/server round trips per action (SQLAlchemy event listeners, ``devtools.instrument``), CPU
seconds of the workers and of the local database server over the drain."""

from wch_bridge.bench.measure import format_text
from wch_bridge.bench.runner import DEFAULT_BENCH_DSN, HANDLERS, BenchConfig, BenchUnavailable, run_bench

__all__ = ["DEFAULT_BENCH_DSN", "HANDLERS", "BenchConfig", "BenchUnavailable", "format_text", "run_bench"]
