"""``wch-bridge bench``: drain seeded actions with the real worker under a scratch prefix and measure it."""

from __future__ import annotations

import click

from wch_bridge import hooks
from wch_bridge.bench import (
    DEFAULT_BENCH_DSN,
    HANDLERS,
    BenchConfig,
    BenchUnavailable,
    format_text,
    run_bench,
)
from wch_bridge.cli.common import EXIT_ENV, echo_json, fail, handle_errors, main
from wch_bridge.settings import mask_dsn


@main.command("bench")
@click.option("--actions", type=int, default=20_000, show_default=True,
              help="Actions to seed and drain (broadcast: recipients, in batches of 50).")
@click.option("--handler", type=click.Choice(HANDLERS), default="noop", show_default=True,
              help="noop; sleep (waits --sleep-ms, like a handler waiting on I/O); broadcast (the real "
                   f"{hooks.BROADCAST_BATCH} handler against the sandbox API).")
@click.option("--sleep-ms", type=float, default=20.0, show_default=True, help="Handler wait with --handler sleep.")
@click.option("--api-latency-ms", type=float, default=50.0, show_default=True,
              help="Sandbox API latency with --handler broadcast.")
@click.option("--messages-per-second", type=float, default=80.0, show_default=True,
              help="Broadcast send limit (the setting and the sandbox's own limit).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--concurrency", type=int, default=32, show_default=True, help="Handler threads per worker.")
@click.option("--batch-size", type=int, default=100, show_default=True, help="Actions taken per poll at most.")
@click.option("--poll-interval", type=float, default=1.0, show_default=True, help="Worker poll interval (s).")
@click.option("--rate", type=float, default=0.0, show_default=True,
              help="Trickle instead of a backlog: insert --actions actions live at this many per second "
                   "(pickup-lag scenario; one worker).")
@click.option("--profile", "profile_out", default=None, metavar="PATH",
              help="Write a cProfile of the worker's main thread to PATH (--workers 1).")
@click.option("--rss-checkpoints", default="10000,100000,1000000", show_default=True,
              help="Record the worker's RSS after this many actions (comma-separated).")
@click.option("--progress", is_flag=True, help="Print progress every 5 s on stderr.")
@click.option("--keep", is_flag=True, hidden=True, help="Debugging: do not drop the scratch tables.")
@click.option("--worker-factory", default=None, hidden=True,
              help="path.py:func or module:func returning (store, worker): measure a prototype worker.")
@click.option("--dsn", default=DEFAULT_BENCH_DSN, show_default=True, envvar="WCH_BRIDGE_BENCH_DSN",
              help="Database to run in (tables under a scratch prefix wchbench_<hex>_, dropped afterwards). "
                   "[env WCH_BRIDGE_BENCH_DSN]")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@handle_errors
def bench_cmd(actions: int, handler: str, sleep_ms: float, api_latency_ms: float, messages_per_second: float,
              workers: int, concurrency: int, batch_size: int, poll_interval: float, rate: float,
              profile_out: str | None, rss_checkpoints: str, progress: bool, keep: bool, worker_factory: str | None, dsn: str, as_json: bool) -> None:
    """Seed ACTIONS due actions under a scratch prefix, drain them with the real worker, print actions/s,
    pickup lag p50/p95/p99, peak RSS and SQL statements per action; drop the scratch tables (also on Ctrl-C)."""
    cfg = BenchConfig(
        actions=actions, handler=handler, sleep_ms=sleep_ms, api_latency_ms=api_latency_ms, workers=workers,
        concurrency=concurrency, batch_size=batch_size, dsn=dsn, poll_interval=poll_interval, rate=rate,
        messages_per_second=messages_per_second, profile=profile_out, progress=progress,
        worker_factory=worker_factory, keep=keep, rss_checkpoints=_ints(rss_checkpoints),
    )

    def say(msg: str) -> None:
        if progress or not as_json:
            click.echo(f"bench: {msg}", err=True)

    say(f"database {mask_dsn(dsn)}")
    try:
        res = run_bench(cfg, say=say)
    except BenchUnavailable as exc:
        fail(str(exc), EXIT_ENV)
        return
    except KeyboardInterrupt:
        fail("interrupted; scratch tables dropped", 130)
        return
    if as_json:
        echo_json(res)
    else:
        click.echo(format_text(res))


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(sorted(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
