"""wch-bridge: runs WhatsApp Commerce Hub's Action Scheduler jobs from a Python sidecar."""

__version__ = "0.1.0"
