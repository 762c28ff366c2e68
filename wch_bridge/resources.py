"""Locate the packaged data folders (sql/ and templates/) in a checkout and after ``pip install .``."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"wch-bridge data folder {name!r} not found (looked in {_PKG / '_data'} and {_PKG.parent})")


def sql_dir() -> Path:
    return _find("sql")


def templates_dir() -> Path:
    return _find("templates")
