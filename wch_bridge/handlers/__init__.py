"""Hook -> handler registry. ``default_registry()`` lists every hook the bridge serves."""

from __future__ import annotations

from wch_bridge.handlers.base import Handler, Job, Services

__all__ = ["Handler", "Job", "Services", "default_registry"]


def default_registry() -> dict[str, Handler]:
    """Every ``wch`` hook the bridge implements (filled in by the handler modules)."""
    registry: dict[str, Handler] = {}
    return registry
