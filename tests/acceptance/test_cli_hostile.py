"""Never a traceback: every command, driven with hostile option values (durations, dates, ids, paths, DSNs, ports),
answers with ONE line on stderr (``wch-bridge: error: ...``; a worker's own log lines aside) and exit 1 or 2.

The deterministic cases are the ones an operator hit (issue 16); the hypothesis test then throws generated values
at the same option slots of every command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wch_bridge.store import make_engine
from wch_bridge.store import schema as schema_mod

WCH = str(Path(sys.executable).parent / "wch-bridge")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A SQLite development database with every table (so only the hostile value can be wrong)."""
    folder = tmp_path_factory.mktemp("hostile")
    dsn = f"sqlite:///{folder / 'site.sqlite'}"
    eng = make_engine(dsn)
    schema_mod.install(eng, "wp_", with_wordpress=True)
    eng.dispose()
    yield dsn, folder


def cli(site: tuple[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    dsn, folder = site
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    env.update(WCH_BRIDGE_DSN=dsn, WCH_BRIDGE_PREFIX="wp_")
    return subprocess.run([WCH, *args], capture_output=True, text=True, env=env, cwd=folder, timeout=60, input="")


def assert_one_line_error(r: subprocess.CompletedProcess[str], args: tuple[str, ...], *, must_fail: bool) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, (args, r.stderr[-2000:])
    if r.returncode == 0 and not must_fail:
        return
    assert r.returncode in (1, 2), (args, r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not LOG_LINE.match(ln)]
    assert len(lines) == 1, (args, r.stderr)
    assert lines[0].startswith(("wch-bridge: error: ", "aborted: ")), (args, r.stderr)
    assert not lines[0].rstrip().endswith(":"), f"an empty message: {lines[0]!r}"


def busy_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


# the cases of issue 16, point 1 (and the empty messages of point 4)
ISSUE_CASES = [
    ("report", "--out", "{dir}"),
    ("report", "--out", "/proc/x.html"),
    ("report", "--out", "{dir}/missing-folder/r.html"),  # a missing folder is an error unless --mkdir (16.8)
    ("run", "--once", "--report-out", "/proc/x.html"),
    ("jobs", "list", "--since", "99999999999d"),
    ("jobs", "list", "--since", "999999d"),
    ("jobs", "retry", "--all-failed", "--since", "99999999999d"),
    ("jobs", "purge", "--status", "failed", "--older-than", "99999999999d"),
    ("enqueue", "h", "--at", "99999999999999"),
    ("enqueue", "h", "--at", "+99999999999d"),
    ("enqueue", "h", "--at", "tomorrow"),
    ("run", "--once", "--dsn", "mysql+pymysql://root@127.0.0.1:3306/test?charset=nonexistent"),
    ("status", "--dsn", "mysql+pymysql://root@127.0.0.1:3306/test?charset=nonexistent"),
    ("jobs", "show", "-1"),
    ("jobs", "show"),
    ("enqueue",),
    ("jobs", "list", "--status", ""),
    ("status", "--dsn", "mysql://root@127.0.0.1:3306/test"),
    # an in-memory SQLite database: schema check listed every missing table, one line each (found by hypothesis)
    ("schema", "check", "--dsn", "sqlite://"),
    ("status", "--dsn", "sqlite:///:memory:"),
    ("run", "--once", "--dsn", "sqlite://"),
    # a value holding a carriage return or newline must not split the error line (found by hypothesis)
    ("run", "--once", "--config", "/proc/\r"),
    ("report", "--out", "/proc/x\ny.html"),
]


@pytest.mark.parametrize("case", ISSUE_CASES, ids=lambda c: " ".join(c))
def test_the_reported_cases_are_one_line(site: tuple[str, Path], case: tuple[str, ...]) -> None:
    args = tuple(a.replace("{dir}", str(site[1])) for a in case)
    assert_one_line_error(cli(site, *args), args, must_fail=True)


def test_a_busy_metrics_port_is_one_line(site: tuple[str, Path]) -> None:
    for port in busy_port():
        args = ("run", "--once", "--metrics-port", str(port))
        assert_one_line_error(cli(site, *args), args, must_fail=True)


def test_usage_errors_are_one_line(site: tuple[str, Path]) -> None:
    for args in (("jobs", "show", "-1"), ("jobs", "list", "--limit", "0"), ("nosuch",), ("jobs", "list", "--status")):
        r = cli(site, *args)
        assert r.returncode == 1
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---------------------------------------------------------------------------------------------- generated values
huge = st.integers(min_value=10**6, max_value=10**30)
durations = st.one_of(
    st.text(max_size=12),
    st.builds(lambda n, u: f"{n}{u}", st.one_of(huge, st.integers(-10**12, 0)), st.sampled_from("smhdwy")),
)
dates = st.one_of(
    st.text(max_size=20),
    huge.map(str),
    st.builds(lambda n, u: f"+{n}{u}", huge, st.sampled_from(["", "s", "m", "h", "d"])),
    st.sampled_from(["tomorrow", "0000-00-00", "9999-99-99T99:99", "-1", "1e10", "+-5m"]),
)
ids = st.one_of(st.integers(-10**20, 0).map(str), st.integers(10**19, 10**30).map(str), st.text(max_size=8))
paths = st.one_of(
    st.sampled_from(["/proc/x.html", "/", "/proc", "/nonexistent/dir/x.html", "", "/dev/null/x", ".", "{dir}"]),
    st.text(max_size=10).map(lambda t: "/proc/" + t.replace("\0", "")),
)
dsns = st.one_of(
    st.text(max_size=30),
    st.sampled_from([
        "DbPassw0rd_SECRET", "mysql://root@127.0.0.1:1/x", "mysql+pymysql://u:p@127.0.0.1:1/x",
        "mysql+pymysql://root@127.0.0.1:3306/test?charset=nonexistent", "sqlite:////proc/x/y.sqlite",
        "postgresql://u:p@127.0.0.1:1/x", "sqlite:///", "mysql+pymysql://[::1", "://", "sqlite://",
    ]),
)
def _not_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


ports = st.one_of(st.integers(max_value=-1).map(str), st.integers(min_value=65536).map(str),
                  st.text(max_size=6).filter(_not_int))
prefixes = st.text(max_size=12)

#: each command with one hostile slot: (strategy, argv builder)
SLOTS: list[tuple[st.SearchStrategy[str], Callable[[str], tuple[str, ...]]]] = [
    (durations, lambda v: ("jobs", "list", "--since", v)),
    (durations, lambda v: ("jobs", "retry", "--all-failed", "--yes", "--since", v)),
    (durations, lambda v: ("jobs", "purge", "--status", "failed", "--yes", "--older-than", v)),
    (dates, lambda v: ("enqueue", "wch_process_sync_job", "--at", v)),
    (ids, lambda v: ("jobs", "show", v)),
    (ids, lambda v: ("jobs", "retry", v)),
    (ids, lambda v: ("jobs", "cancel", v)),
    (ids, lambda v: ("jobs", "list", "--page", v)),
    (paths, lambda v: ("report", "--out", v)),
    (paths, lambda v: ("report", "--json", v)),
    (paths, lambda v: ("run", "--once", "--report-out", v)),
    (paths, lambda v: ("run", "--once", "--config", v)),
    (paths, lambda v: ("config", "show", "--no-db", "--whatsapp-token-file", v)),
    (dsns, lambda v: ("status", "--dsn", v)),
    (dsns, lambda v: ("jobs", "list", "--dsn", v)),
    (dsns, lambda v: ("run", "--once", "--dsn", v)),
    (dsns, lambda v: ("schema", "check", "--dsn", v)),
    (dsns, lambda v: ("health", "--dsn", v)),
    (dsns, lambda v: ("config", "show", "--dsn", v)),
    (dsns, lambda v: ("report", "--json", "-", "--dsn", v)),
    (dsns, lambda v: ("enqueue", "h", "--dsn", v)),
    (prefixes, lambda v: ("status", "--prefix", v)),
    (ports, lambda v: ("sandbox", "--port", v)),
    (ports, lambda v: ("run", "--once", "--metrics-port", v)),
    (st.integers(max_value=19).map(str), lambda v: ("demo", "--actions", v)),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_command_answers_hostile_values_in_one_line(site: tuple[str, Path], data: st.DataObject) -> None:
    strategy, build = data.draw(st.sampled_from(SLOTS))
    value = data.draw(strategy).replace("\0", "").replace("{dir}", str(site[1]))
    args = build(value)
    assert_one_line_error(cli(site, *args), args, must_fail=False)
