"""Fixtures of the ``test_hooks_*`` tests (loaded with ``pytest_plugins = ("hooks_fixtures",)``): a running
sandbox API that requires the test token, and a seeded site on MariaDB (``mysql_store``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hooks_support import TOKEN, Site, make_site

from wch_bridge.sandbox import Sandbox
from wch_bridge.store import ActionStore


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN) as box:
        yield box


@pytest.fixture
def site(mysql_store: ActionStore, sandbox: Sandbox) -> Site:
    return make_site(mysql_store, sandbox)
