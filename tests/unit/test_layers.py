"""The dependency rules of docs/DESIGN.md, checked with ast: each third-party library has one home, and imports
only go down the layers."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "wch_bridge"

# module (relative dotted name under wch_bridge) -> layer
LAYER = {
    "models": 0, "errors": 0, "timeutil": 0, "schedules": 0, "retry": 0, "settings": 0, "resources": 0,
    "masking": 0, "phones": 0, "config": 0, "hooks": 0, "owners": 0, "health": 0,
    "store": 1, "phpser": 1, "argscodec": 1, "handlers": 1, "whatsapp": 1, "sendgate": 1, "wpsettings": 1, "wcdata": 1,
    "worker": 2, "report": 2, "sandbox": 2, "bench": 3, "metrics": 2, "demo": 3,
    "app": 3,
    "cli": 4,
}
HOMES = {"sqlalchemy": ("store",), "requests": ("whatsapp",), "jinja2": ("report",), "click": ("cli",)}


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def top(name: str) -> str:
    return name.split(".")[0]


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_every_module_has_a_layer() -> None:
    for mod, _ in modules():
        if mod in ("__init__",):
            continue
        assert top(mod) in LAYER, f"wch_bridge.{mod} has no layer in tests/unit/test_layers.py"


def test_third_party_libraries_live_in_one_place() -> None:
    for mod, path in modules():
        for name in imports(path):
            lib = top(name)
            if lib in HOMES:
                assert top(mod) in HOMES[lib], f"wch_bridge.{mod} imports {lib}; only {HOMES[lib]} may"


def test_imports_only_go_down() -> None:
    for mod, path in modules():
        if mod == "__init__":
            continue
        mine = LAYER[top(mod)]
        for name in imports(path):
            if not name.startswith("wch_bridge."):
                continue
            target = top(name[len("wch_bridge."):])
            if target == top(mod) or target == "__init__" or target not in LAYER:
                continue
            assert LAYER[target] <= mine, f"wch_bridge.{mod} (layer {mine}) imports wch_bridge.{target} (layer {LAYER[target]})"
            if top(mod) == "handlers":
                assert target != "store", f"handlers must not import the store ({mod})"
            if top(mod) == "store":
                assert target not in ("handlers", "worker"), f"the store must not import {target} ({mod})"
