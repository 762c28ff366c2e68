"""The MySQL fixture started through testcontainers, for real (docker/test-testcontainers.sh runs this file with the
store tests: podman's Docker-compatible API, a MariaDB image built on this machine, WCH_TEST_MYSQL_IMAGE set).

Without WCH_TEST_MYSQL_IMAGE these tests skip: the rest of the suite uses WCH_TEST_DSN or the local server."""

from __future__ import annotations

import os
import socket

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from wch_bridge.store import make_engine

IMAGE = os.environ.get("WCH_TEST_MYSQL_IMAGE", "")
pytestmark = pytest.mark.skipif(not IMAGE, reason="WCH_TEST_MYSQL_IMAGE unset (docker/test-testcontainers.sh sets it)")


def _our_containers() -> list:
    import docker

    client = docker.from_env(timeout=30)
    try:
        return [
            c
            for c in client.containers.list(filters={"label": "org.testcontainers=true"})
            if IMAGE in c.image.tags or c.attrs.get("Config", {}).get("Image") in (IMAGE, IMAGE.split("/", 1)[-1])
        ]
    finally:
        client.close()


def test_mysql_url_is_the_testcontainers_server(mysql_url: str) -> None:
    """The DSN the store tests get points at the container testcontainers started, not at the local server."""
    ours = _our_containers()
    assert len(ours) == 1, [c.name for c in ours]
    container = ours[0]
    published = container.ports.get("3306/tcp") or []
    url = make_url(mysql_url)
    assert url.port in {int(p["HostPort"]) for p in published}, (url.port, published)
    assert os.environ.get("WCH_TEST_DSN") is None

    eng = make_engine(mysql_url)
    try:
        with eng.connect() as conn:
            hostname = conn.execute(text("SELECT @@hostname")).scalar_one()
            version = conn.execute(text("SELECT VERSION()")).scalar_one()
    finally:
        eng.dispose()
    assert hostname != socket.gethostname()  # not the machine's own server
    assert container.id.startswith(hostname) or hostname == container.attrs["Config"].get("Hostname"), hostname
    assert "MariaDB" in version, version
