"""``wch-bridge bench`` settings: the scenario (``BenchConfig``), its names and defaults."""

from __future__ import annotations

from dataclasses import dataclass

from wch_bridge import hooks
from wch_bridge.errors import ConfigError, WchBridgeError

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
    worker_factory: str | None = (
        None  # "path/to/file.py:func" (settings, registry) -> (store, worker): prototypes
    )
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
