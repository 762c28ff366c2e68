"""A server that writes its binary log in STATEMENT format refuses every InnoDB write at READ COMMITTED (error 1665),
the bridge's isolation level. The bridge logs its own sessions as MIXED there, or, when the database user may not,
says at connect what to change (instead of failing on every write)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from wch_bridge.errors import ConfigError
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.engine import _row_capable_binlog
from wch_bridge.timeutil import Clock


def test_a_user_who_may_not_switch_the_format_gets_a_clear_error() -> None:
    class Refusing:
        def execute(self, statement: str, *_: Any) -> None:
            raise RuntimeError("(1227, 'Access denied; you need (at least one of) the SUPER, BINLOG ADMIN "
                               "privilege(s) for this operation')")

    with pytest.raises(ConfigError, match="binlog_format is STATEMENT.*set binlog_format=MIXED"):
        _row_capable_binlog(Refusing(), "mysql+pymysql://wp:***@db/wp")


@pytest.mark.mysql
def test_the_bridge_writes_on_a_server_whose_binlog_is_in_statement_format(mysql_url: str, prefix: str) -> None:
    """Needs a server with the binary log on (skipped otherwise); the session starts in STATEMENT format (pymysql's
    init_command, run before the bridge's own set-up), as every session would on such a server."""
    probe = make_engine(mysql_url)
    with probe.connect() as conn:
        log_bin = int(conn.execute(text("SELECT @@log_bin")).scalar() or 0)
    probe.dispose()
    if not log_bin:
        pytest.skip("the server's binary log is off: STATEMENT format changes nothing there")
    sep = "&" if "?" in mysql_url else "?"
    eng = make_engine(f"{mysql_url}{sep}init_command=SET SESSION binlog_format%3D'STATEMENT'")
    try:
        with eng.connect() as conn:
            assert conn.execute(text("SELECT @@SESSION.binlog_format")).scalar() == "MIXED"
        schema_mod.install(eng, prefix, with_wordpress=True)
        store = ActionStore(eng, prefix, clock=Clock())
        gid = store.group_ids(["wch"], create=True)["wch"]
        from tests.integration.test_worker import add

        aid = add(store, "wch_binlog_test", {"n": 1})
        store.refresh_queue(["wch_binlog_test"], [gid], force=True)
        assert store.queue.claim(["wch_binlog_test"], [gid], store.now(), 10) == [aid]
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()
