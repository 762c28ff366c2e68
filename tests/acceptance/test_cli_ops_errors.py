"""Error paths of the operator commands: one clear line on stderr, no traceback, exit 1 (usage) or 2
(environment), and never the DSN password."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import new_prefix
from tests.helpers.cli_ops import WCH, Ops, make_ops

COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["jobs", "list"],
    ["jobs", "list", "--json"],
    ["jobs", "show", "1"],
    ["jobs", "retry", "1"],
    ["jobs", "retry", "--all-failed", "--yes"],
    ["jobs", "cancel", "1"],
    ["jobs", "cancel", "--hook", "wch_x", "--yes"],
    ["jobs", "purge", "--status", "complete", "--older-than", "1d", "--yes"],
]


def run(*args: str, dsn: str, prefix: str = "wp_") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    env.update(WCH_BRIDGE_DSN=dsn, WCH_BRIDGE_PREFIX=prefix)
    return subprocess.run([str(WCH), *args], capture_output=True, text=True, env=env, input="", timeout=60)


def one_clean_line(r: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("wch-bridge: error: ")
    assert r.stdout == ""
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_unreachable_database_exits_2_without_password(args: list[str]) -> None:
    r = run(*args, dsn="mysql+pymysql://root:s3cr3t-pw@127.0.0.1:1/test")
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = one_clean_line(r)
    assert "cannot reach the database" in line and "127.0.0.1:1" in line
    assert "s3cr3t-pw" not in r.stderr + r.stdout


def test_wrong_password_exits_2_without_password(mysql_url: str) -> None:
    bad = mysql_url.replace("root@", "root:not-the-pw@", 1) if "root@" in mysql_url else None
    if bad is None:
        pytest.skip("the test DSN already has a password")
    r = run("status", dsn=bad)
    assert r.returncode == 2
    one_clean_line(r)
    assert "not-the-pw" not in r.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_missing_tables_exit_2(args: list[str], mysql_url: str) -> None:
    fresh = new_prefix()  # nothing installed under it
    r = run(*args, dsn=mysql_url, prefix=fresh)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = one_clean_line(r)
    assert f"{fresh}actionscheduler_actions does not exist" in line


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_bad_prefix_exits_1(args: list[str], mysql_url: str) -> None:
    r = run(*args, dsn=mysql_url, prefix="x;drop")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "invalid table prefix 'x;drop'" in one_clean_line(r)


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def test_usage_errors_exit_1(ops: Ops) -> None:
    for args in (["jobs", "list", "--since", "yesterday"], ["jobs", "list", "--status", "done"],
                 ["jobs", "list", "--limit", "0"], ["jobs", "show"], ["jobs", "show", "x"], ["jobs", "nope"],
                 ["status", "--bogus"], ["jobs", "show", "5"]):
        r = ops.run(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip()


def test_sqlite_database_works_too(tmp_path: object) -> None:
    from pathlib import Path

    from wch_bridge.store import make_engine
    from wch_bridge.store import schema as schema_mod

    url = f"sqlite:///{Path(str(tmp_path)) / 'ops.sqlite'}"
    schema_mod.install(make_engine(url), "wp_")
    r = run("status", "--json", dsn=url)
    assert r.returncode == 1, r.stderr  # no worker, no cleanup scheduled: warnings
    assert '"dialect": "sqlite"' in r.stdout
    r = run("jobs", "list", dsn=url)
    assert r.returncode == 0 and "no actions match" in r.stdout
