"""Database cut: three real workers reach MariaDB only through a TCP proxy in the test. Mid-drain the proxy drops
every connection and refuses new ones for 10 s, twice. The drain then completes with the same exactly-once checks
as the kill -9 scenario (every action complete with its log line, nobody messaged twice, ledger == sandbox), no
worker ever exits during the cuts, each worker logs "database unavailable" at most once per cut (not per poll) and
at least one worker noticed each cut, and each worker says "database reachable again" after it.

No message may be left ambiguous here: nothing was killed, so every ledger row ends ``sent`` (the ledger waits for
the database to record an outcome, and recognises its own ``begin send`` after a connection lost at commit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.reliability import (
    TOKEN,
    Site,
    WorkerProc,
    check_catalog,
    check_drain,
    start_worker,
    stop_all,
    wait_ready,
)
from tests.helpers.tcp_proxy import TcpProxy
from wch_bridge.sandbox import Sandbox

pytestmark = [pytest.mark.heavy, pytest.mark.mysql]

BATCHES, SYNCS = 300, 100
CUTS, CUT_SECONDS = 2, 10.0


@pytest.fixture
def site(mysql_url: str, prefix: str) -> Iterator[Site]:
    s = Site.create(mysql_url, prefix)
    yield s
    s.dispose()


def via_proxy(dsn: str, port: int) -> str:
    scheme, rest = dsn.split("://", 1)
    creds, hostpart = rest.rsplit("@", 1) if "@" in rest else ("", rest)
    _host, _, tail = hostpart.partition("/")
    return f"{scheme}://{creds + '@' if creds else ''}127.0.0.1:{port}/{tail}"


def test_two_10s_database_cuts_mid_drain(site: Site, mysql_url: str, tmp_path: Path) -> None:
    ids = site.seed_drain(batches=BATCHES, batch_size=3, campaigns=20, syncs=SYNCS, products=30)
    host_port = mysql_url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    with TcpProxy(host, int(port or 3306)) as proxy, Sandbox(token=TOKEN, latency_ms=5) as sandbox:
        dsn = via_proxy(mysql_url, proxy.port)
        workers: list[WorkerProc] = [start_worker(dsn, site.prefix, sandbox.url, tmp_path / "logs", "--concurrency", "4")
                                     for _ in range(3)]
        alive_during_cuts: list[bool] = []
        try:
            for w in workers:
                wait_ready(w)
            for _ in range(CUTS):
                # cut while work is left and the workers are busy
                deadline = time.monotonic() + 60
                while site.counts().get("complete", 0) < 20 * (len(proxy.cuts) + 1) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert site.unfinished() > 0, "the drain ended before the cut: raise BATCHES"
                t = threading.Thread(target=proxy.cut, args=(CUT_SECONDS,))
                t.start()
                while t.is_alive():
                    alive_during_cuts.append(all(w.proc.poll() is None for w in workers))
                    time.sleep(0.5)
                t.join()
                time.sleep(3)
            site.wait_drained(timeout=150, procs=workers)
            stop_all(workers)
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
        assert all(alive_during_cuts), "a worker exited during a database cut"
        for w in workers:
            assert w.proc.returncode == 0, w.tail()
        report = check_drain(site, sandbox, ids)
        check_catalog(site, sandbox)
    assert len(proxy.cuts) == CUTS
    noticed = 0
    for w in workers:
        text = w.log_text()
        lost = text.count("database unavailable, retrying")
        assert lost <= CUTS, f"outage logged {lost} times for {CUTS} cuts (once per outage expected):\n{w.tail()}"
        assert text.count("database reachable again") >= lost
        assert "Traceback" not in text, w.tail(8000)
        noticed += lost
    assert noticed >= CUTS, "no worker noticed the cuts"
    assert report.by_status == {"complete": BATCHES + SYNCS}
    assert not report.ambiguous, f"ledger rows left ambiguous by a database cut: {report.ambiguous}"
