"""The ``wch-bridge`` command (click). Sub-modules add their commands to ``main``."""

from __future__ import annotations

from wch_bridge.cli.common import main
from wch_bridge.cli import run as _run  # noqa: F401,E402 - registers commands
from wch_bridge.cli import schema as _schema  # noqa: F401,E402

__all__ = ["main"]
