"""Terminal output (issue 16.8), through the installed ``wch-bridge`` against MariaDB: ``status`` fits 80 columns,
the ``jobs retry --all-failed`` question counts what will really be retried, ``jobs show`` prints large args once,
``config show`` shows the API version the client uses, and ``run`` logs a failure once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.helpers.cli_ops import Ops, make_ops

pytestmark = pytest.mark.mysql


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def test_status_fits_80_columns(ops: Ops) -> None:
    for hook in ("wch_process_sync_job", "wch_send_broadcast_batch", "a_site_hook_with_a_really_long_name_of_50_chars"):
        ops.failed(hook, {"n": 1})
        ops.add(hook, {"n": 2}, delay=-3600)  # an hour past due: long reasons
    ops.running("wch_send_broadcast_batch", {"n": 3})
    r = ops.run("status", env=ops.env(COLUMNS="80"))
    assert r.returncode in (1, 2), r.stderr
    long = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert not long, "\n".join(long)
    assert "a_site_hook_with_a_really_long_name_of_50_chars" in r.stdout  # never cut
    assert "are past due" in " ".join(r.stdout.split())  # the health reason, wrapped


def test_retry_question_counts_what_will_be_retried(ops: Ops) -> None:
    fresh = [ops.failed("wch_a", {"n": i}) for i in range(3)]
    before = ops.failed("wch_a", {"n": 9})
    assert ops.run("jobs", "retry", str(before)).returncode == 0  # it has a pending retry now: skipped in bulk
    ops.failed("wch_b", {"n": 1})  # another hook: filtered out
    r = ops.run("jobs", "retry", "--all-failed", "--hook", "wch_a", input="y\n")
    assert r.returncode == 0, r.stderr
    asked = re.search(r"Retry (\d+) failed action", r.stdout + r.stderr)
    assert asked is not None, r.stdout + r.stderr
    done = re.search(r"retried (\d+)", r.stdout)
    assert done is not None, r.stdout
    assert int(asked.group(1)) == int(done.group(1)) == len(fresh)
    assert "1 other(s) will be skipped" in r.stdout + r.stderr


def test_jobs_show_prints_large_args_once(ops: Ops) -> None:
    marker = "LARGEARGSMARKER"
    aid = ops.add("wch_x", {"note": marker + "y" * 400})
    r = ops.run("jobs", "show", str(aid))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(marker) == 1, r.stdout
    assert "(md5 of extended_args)" in r.stdout
    data = ops.json("jobs", "show", str(aid))  # the JSON keeps every column as it is
    assert marker in data["action"]["extended_args"] and marker in data["args"]["note"]


def test_config_show_names_the_effective_api_version(ops: Ops) -> None:
    r = ops.run("config", "show")
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("whatsapp_api_version")]
    assert "v21.0" in line and "default" in line
    data = ops.json("config", "show")
    assert data["settings"]["whatsapp_api_version"] == {"value": "v21.0", "source": "default",
                                                         "env": "WCH_BRIDGE_WHATSAPP_API_VERSION"}
    r = ops.run("config", "show", "--whatsapp-api-version", "v19.0")
    assert re.search(r"^whatsapp_api_version\s+v19\.0\s+option", r.stdout, re.M), r.stdout


def test_run_logs_a_failure_once(ops: Ops) -> None:
    aid = ops.add("wch_process_sync_job", {"job_id": "x", "sync_type": "nonsense", "entity_id": 1})
    r = ops.run("run", "--once", "--hooks", "wch_process_sync_job")
    assert ops.status_of(aid) == "failed", r.stderr
    lines = [line for line in r.stderr.splitlines() if re.search(rf"\baction[ :]#?{aid}\b", line)]
    assert len(lines) == 1, r.stderr
    assert "failed" in lines[0] and "WARNING" in lines[0]
