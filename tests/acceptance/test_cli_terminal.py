"""Terminal output (issue 16.8): a bulk command's progress label ends its line, so the summary printed next does
not run into it (``canceled 1canceling`` when stdout and stderr share a terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wch_bridge.store import make_engine
from wch_bridge.store import schema as schema_mod

WCH = str(Path(sys.executable).parent / "wch-bridge")


@pytest.mark.mysql
def test_progress_label_ends_its_line(mysql_url: str, prefix: str) -> None:
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix, with_wordpress=True)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
        env.update(WCH_BRIDGE_DSN=mysql_url, WCH_BRIDGE_PREFIX=prefix)
        for _ in range(2):
            assert subprocess.run([WCH, "enqueue", "wch_t16_hook", "--force"], env=env, capture_output=True).returncode == 0
        r = subprocess.run([WCH, "jobs", "cancel", "--hook", "wch_t16_hook", "--yes"], env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("canceled 2"), r.stdout
        assert "canceling" in r.stderr and r.stderr.endswith("\n"), repr(r.stderr)
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()
