"""Shared fixtures: real databases (MariaDB/MySQL and SQLite), isolated by a random table prefix per test.

MySQL DSN: WCH_TEST_DSN, else a testcontainers MySQL where a Docker engine runs, else the local server
``mysql+pymysql://root@127.0.0.1:3306/test``. In CI (CI=true) a missing server FAILS the test; elsewhere it skips.
WCH_TEST_MYSQL_IMAGE names the image testcontainers starts (default ``mysql:8.0``) and makes the container required:
no fall-back to the local server (docker/test-testcontainers.sh sets it to a MariaDB image built on this machine).
WCH_TEST_CONTAINER_NETWORK: the container's network mode (podman's API needs ``slirp4netns``: its default bridge
network would change the host's firewall)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import Engine

from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.timeutil import Clock

REPO = Path(__file__).resolve().parents[1]
#: Dumps written by the real Action Scheduler (PHP): a verbatim copy of the workplace's ``shared/fixtures`` kept in
#: the repository, so the tests run from a clone anywhere (``test_fixture_copy`` checks it against the original).
FIXTURES = REPO / "tests" / "fixtures" / "php"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
LOCAL_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MYSQL_IMAGE = os.environ.get("WCH_TEST_MYSQL_IMAGE", "")
CONTAINER_NETWORK = os.environ.get("WCH_TEST_CONTAINER_NETWORK", "")

# Property tests check behaviour, not speed: no per-example deadline (a loaded 2-core machine made them flaky).
hypothesis_settings.register_profile("wch", deadline=None)
hypothesis_settings.load_profile("wch")


def _docker_engine_running() -> bool:
    """Whether testcontainers' own client (docker-py: DOCKER_HOST, else the default socket) reaches an engine."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - no engine, whatever the reason
        return False


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    dsn = os.environ.get("WCH_TEST_DSN")
    container = None
    if not dsn:
        if MYSQL_IMAGE or _docker_engine_running():
            try:
                try:
                    from testcontainers.community.mysql import MySqlContainer
                except ImportError:  # older testcontainers 4 releases
                    from testcontainers.mysql import MySqlContainer

                network = {"network_mode": CONTAINER_NETWORK} if CONTAINER_NETWORK else {}
                container = MySqlContainer(MYSQL_IMAGE or "mysql:8.0", **network)
                container.start()
                dsn = container.get_connection_url().replace("mysql://", "mysql+pymysql://")
            except Exception as exc:  # noqa: BLE001 - fall back to the machine's server, unless asked for the image
                if container is not None:
                    with contextlib.suppress(Exception):
                        container.stop()  # whatever part of it was created
                if MYSQL_IMAGE:
                    pytest.fail(f"testcontainers could not start {MYSQL_IMAGE}: {type(exc).__name__}: {exc}")
                container = None
        dsn = dsn or LOCAL_MYSQL
    try:
        eng = make_engine(dsn)
        with eng.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        eng.dispose()
    except Exception as exc:  # noqa: BLE001
        msg = f"MySQL/MariaDB not reachable at {dsn.split('@')[-1]}: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    yield dsn
    if container is not None:
        container.stop()


def new_prefix() -> str:
    return f"t{secrets.token_hex(3)}_"


@pytest.fixture
def prefix() -> str:
    return new_prefix()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wch.sqlite'}"


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wch.sqlite'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def engine(db_url: str, prefix: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


@pytest.fixture
def store(engine: Engine, prefix: str) -> ActionStore:
    """An empty Action Scheduler + plugin + bridge schema under a fresh prefix, on SQLite and on MariaDB."""
    schema_mod.install(engine, prefix, with_wordpress=True)
    return ActionStore(engine, prefix, clock=Clock())


@pytest.fixture
def mysql_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix, with_wordpress=True)
    yield ActionStore(eng, prefix, clock=Clock())
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


@pytest.fixture
def db_user(mysql_url: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a random password (a secret that must never be printed), granted the test database;
    dropped afterwards."""
    from sqlalchemy import text

    user = f"wchsec_{secrets.token_hex(4)}"
    password = f"Pw{secrets.token_hex(10)}Z"
    eng = make_engine(mysql_url)
    hosts = ("%", "127.0.0.1", "localhost")
    try:
        with eng.begin() as conn:
            for host in hosts:
                conn.execute(text(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY :pw"), {"pw": password})
                conn.execute(text(f"GRANT ALL ON test.* TO '{user}'@'{host}'"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"cannot create a MariaDB user here: {type(exc).__name__}")
    yield user, password
    with eng.begin() as conn:
        for host in hosts:
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
    eng.dispose()
