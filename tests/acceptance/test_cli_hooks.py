"""Nothing stranded, said plainly (issue 18 point 4), through the CLI as a subprocess on SQLite: ``enqueue`` of a
hook no one runs is refused unless ``--force``; ``run --hooks`` naming a hook without a handler fails at start;
``status`` and ``hooks list`` name the hooks no one runs, as critical, apart from "no live worker"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TYPO = "wch_send_mesage"


def cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("wch-bridge")), *args, "--dsn", f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "site.sqlite"
    assert cli("schema", "install", "--with-wordpress", db=path).returncode == 0
    return path


def test_enqueue_refuses_a_hook_no_one_runs_unless_forced(db: Path) -> None:
    refused = cli("enqueue", TYPO, "--args", "{}", db=db)
    assert refused.returncode == 1 and "no one runs wch_send_mesage" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert cli("enqueue", "wch_process_sync_job", "--args", "{}", db=db).returncode == 0
    forced = cli("enqueue", TYPO, "--args", "{}", "--force", db=db)
    assert forced.returncode == 0 and "scheduled action #" in forced.stdout


def test_status_and_hooks_list_name_the_hooks_no_one_runs(db: Path) -> None:
    cli("enqueue", TYPO, "--args", "{}", "--force", db=db)
    status = cli("status", "--json", db=db)
    rep = json.loads(status.stdout)
    assert status.returncode == 2 and rep["unowned"] == [{"group": "wch", "hook": TYPO, "pending": 1}]
    critical = [r["message"] for r in rep["reasons"] if r["level"] == "critical"]
    assert any("hooks no one runs: wch_send_mesage (1 in wch)" in m for m in critical), critical
    listed = cli("hooks", "list", "--json", db=db)
    rows = {r["hook"]: r for r in json.loads(listed.stdout)["hooks"]}
    assert listed.returncode == 2
    assert rows[TYPO]["owner"] == "nobody" and rows[TYPO]["pending"] == 1 and rows[TYPO]["handler"] == ""
    assert rows["wch_process_sync_job"]["owner"] == "bridge" and rows["wch_process_sync_job"]["handler"]
    text = cli("hooks", "list", db=db)
    assert "HANDLER" in text.stdout and "hooks no one runs" in text.stdout


def test_run_with_an_unknown_hook_fails_at_start(db: Path) -> None:
    proc = cli("run", "--once", "--hooks", f"wch_process_sync_job,{TYPO}", db=db)
    assert proc.returncode == 1, proc.stderr
    assert f"no handler for {TYPO}" in proc.stderr and "Traceback" not in proc.stderr


def test_report_and_metrics_name_the_hooks_no_one_runs(db: Path, tmp_path: Path) -> None:
    """The report's banner and ``/metrics`` say it too, as critical, with the hook's name and count."""
    from prometheus_client import CollectorRegistry, generate_latest

    from wch_bridge.metrics import StoreCollector
    from wch_bridge.store import ActionStore, make_engine

    cli("enqueue", TYPO, "--args", "{}", "--force", db=db)
    out = tmp_path / "r.json"
    rep = cli("report", "--out", str(tmp_path / "r.html"), "--json", str(out), db=db)
    assert rep.returncode == 0, rep.stderr
    data = json.loads(out.read_text())
    assert data["health"]["status"] == "critical"
    assert any("hooks no one runs" in r["text"] and TYPO in r["text"] for r in data["health"]["reasons"])
    assert "hooks no one runs" in (tmp_path / "r.html").read_text()
    store = ActionStore(make_engine(f"sqlite:///{db}"), "wp_")
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, ["wch"], worker_id=lambda: None))
    text = generate_latest(registry).decode()
    assert f'wch_bridge_unowned_pending{{group="wch",hook="{TYPO}"}} 1.0' in text, text


def test_run_warns_at_start_about_pending_hooks_no_one_runs(db: Path) -> None:
    """Issue 18 point 4: the worker says at start, once, which pending hooks of its groups no one runs."""
    cli("enqueue", TYPO, "--args", "{}", "--force", db=db)
    proc = cli("run", "--once", db=db)
    lines = [ln for ln in proc.stderr.splitlines() if "no one runs" in ln]
    assert len(lines) == 1, proc.stderr
    assert f"{TYPO} (1 in wch)" in lines[0] and "WARNING" in lines[0], lines


def test_the_served_groups_default_to_the_plugin_s_own(db: Path) -> None:
    """Issue 18: the plugin queues into priority groups (wch-critical … wch-maintenance, wch-catalog, wch-orders);
    with no --group the bridge serves all of them, so its hooks queued there are run, not stranded."""
    from wch_bridge.hooks import PLUGIN_GROUPS

    assert {"wch", "wch-critical", "wch-urgent", "wch-normal", "wch-bulk", "wch-maintenance", "wch-catalog",
            "wch-orders"} <= set(PLUGIN_GROUPS)
    queued = cli("enqueue", "wch_cleanup_expired_carts", "--args", "{}", "--group", "wch-maintenance", db=db)
    assert queued.returncode == 0, queued.stderr
    proc = cli("run", "--once", db=db)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(cli("jobs", "list", "--json", "--status", "complete", "--group", "wch-maintenance",
                            db=db).stdout)
    assert [j["hook"] for j in listed["actions"]] == ["wch_cleanup_expired_carts"], listed
