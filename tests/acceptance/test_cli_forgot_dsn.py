"""Forgetting --dsn (issue 16.4): read-only commands never create ``wch-bridge.sqlite`` in the current folder; a
missing table names the database (masked) and the prefix; ``mysql://`` gets a hint; messages are never empty;
``--at`` lists its forms; the sandbox's errors carry the same prefix as every other command."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

WCH = str(Path(sys.executable).parent / "wch-bridge")


def cli(cwd: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    env.update(env_extra)
    return subprocess.run([WCH, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60, input="")


@pytest.mark.parametrize("args", [("status",), ("status", "--json"), ("jobs", "list"), ("jobs", "show", "1"),
                                  ("health",), ("report", "--out", "r.html")])
def test_read_only_commands_do_not_create_a_database(tmp_path: Path, args: tuple[str, ...]) -> None:
    r = cli(tmp_path, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert not (tmp_path / "wch-bridge.sqlite").exists(), f"{args} created wch-bridge.sqlite"
    assert "wch-bridge.sqlite" in r.stderr and "does not exist" in r.stderr and "--dsn" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("args", [("status",), ("jobs", "list"), ("health",), ("run", "--once")])
def test_a_missing_table_names_the_database_and_the_prefix(tmp_path: Path, args: tuple[str, ...]) -> None:
    db = tmp_path / "empty.sqlite"
    sqlite3.connect(db).close()
    r = cli(tmp_path, *args, WCH_BRIDGE_DSN=f"sqlite:///{db}", WCH_BRIDGE_PREFIX="shop_")
    assert r.returncode == 2, (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert "does not exist in sqlite:///" in last and "empty.sqlite" in last, last
    assert "shop_" in last, last


def test_mysql_without_driver_gets_a_hint(tmp_path: Path) -> None:
    r = cli(tmp_path, "status", "--dsn", "mysql://root:Pw_secret@127.0.0.1:3306/test")
    assert r.returncode == 1, r.stderr
    assert "mysql+pymysql://" in r.stderr and "Pw_secret" not in r.stderr


def test_messages_are_never_empty(tmp_path: Path) -> None:
    for args in (("enqueue",), ("jobs", "show"), ("jobs", "list", "--status", "")):
        r = cli(tmp_path, *args)
        assert r.returncode == 1
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1 and not line.endswith(":"), line
        assert line.split(":", 2)[-1].strip(), line


def test_at_lists_the_accepted_forms(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    r = cli(tmp_path, "enqueue", "wch_process_sync_job", "--at", "tomorrow", WCH_BRIDGE_DSN=f"sqlite:///{db}")
    assert r.returncode == 1
    assert r.stderr.startswith("wch-bridge: error: --at:") and "Unix seconds" in r.stderr and "+5m" in r.stderr
    assert "ISO" in r.stderr


def test_jobs_show_negative_id_is_one_line(tmp_path: Path) -> None:
    r = cli(tmp_path, "jobs", "show", "-1")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("wch-bridge: error:")


def test_sandbox_errors_use_the_common_prefix(tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        r = cli(tmp_path, "sandbox", "--port", str(s.getsockname()[1]))
    finally:
        s.close()
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("wch-bridge: error: sandbox: cannot listen"), r.stderr
