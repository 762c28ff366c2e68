"""The ``wch-bridge`` command (click). Sub-modules add their commands to ``main``."""

from __future__ import annotations

from wch_bridge.cli import bench as _bench  # noqa: F401, E402
from wch_bridge.cli import config as _config  # noqa: F401, E402
from wch_bridge.cli import demo as _demo  # noqa: F401, E402
from wch_bridge.cli import dev as _dev  # noqa: F401, E402
from wch_bridge.cli import health as _health  # noqa: F401, E402
from wch_bridge.cli import hooks as _hooks  # noqa: F401, E402
from wch_bridge.cli import jobs as _jobs  # noqa: F401, E402
from wch_bridge.cli import jobs_cancel as _jobs_cancel  # noqa: F401, E402
from wch_bridge.cli import jobs_purge as _jobs_purge  # noqa: F401, E402
from wch_bridge.cli import jobs_retry as _jobs_retry  # noqa: F401, E402
from wch_bridge.cli import jobs_run as _jobs_run  # noqa: F401, E402
from wch_bridge.cli import messages as _messages  # noqa: F401, E402
from wch_bridge.cli import report as _report  # noqa: F401, E402
from wch_bridge.cli import run as _run  # noqa: F401, E402 - registers commands
from wch_bridge.cli import sandbox as _sandbox  # noqa: F401, E402
from wch_bridge.cli import schema as _schema  # noqa: F401, E402
from wch_bridge.cli import status as _status  # noqa: F401, E402
from wch_bridge.cli.common import main

__all__ = ["main"]
