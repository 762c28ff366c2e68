"""The dependency rules of ARCHITECTURE.md / docs/DESIGN.md, checked with ast on every module of the package:

1. each third-party library has one home (SQLAlchemy in the store, requests in whatsapp, jinja2 in report, click in
   the CLI);
2. imports only go down the layers, and each module imports only what the allow-list below gives its layer (the
   CLI reaches the store, the codecs and PHP serialization only through ``app`` / ``operations``; handlers never
   import the store; the store never imports handlers or the worker);
3. no import cycles (a lazy import inside a function counts: it only hides the circle).

Every form of import is read: ``import wch_bridge.x``, ``from wch_bridge.x import y``, ``from wch_bridge import x``
(``x`` is the module ``wch_bridge.x``), relative imports, and imports inside functions. The checker itself is
tested on synthetic graphs and on a copy of the package with an upward import and a circle planted."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "wch_bridge"

# ---------------------------------------------------------------------------------------------- the rules
#: The layers, lowest first, by top-level module or package of ``wch_bridge`` ("" is ``wch_bridge/__init__``).
LAYERS: dict[int, frozenset[str]] = {
    # values and pure rules: no I/O
    0: frozenset(
        {
            "",
            "models",
            "errors",
            "timeutil",
            "schedules",
            "retry",
            "error_codes",
            "settings",
            "resources",
            "masking",
            "phones",
            "config",
            "hooks",
            "owners",
            "health",
        }
    ),
    # the collaborators: SQL, PHP serialization, args codec, handlers, the WhatsApp client, WordPress data
    1: frozenset(
        {"store", "phpser", "argscodec", "handlers", "whatsapp", "api_gate", "wpsettings", "shop_data", "objectcache"}
    ),
    # the worker, the report (only jinja2 user), the sandbox API, metrics
    2: frozenset({"worker", "report", "sandbox", "metrics"}),
    # wiring: builds the concrete collaborators from Settings; what the operator commands need; the demo and bench
    3: frozenset({"app", "operations", "bench", "demo", "dev", "devtools"}),
    # click commands
    4: frozenset({"cli"}),
}
L0, L1, L2, L3 = LAYERS[0], LAYERS[1], LAYERS[2], LAYERS[3]

#: What each top-level module may import (besides its own sub-modules). Only its own layer or lower.
ALLOWED: dict[str, frozenset[str]] = {
    **{name: L0 for name in L0},
    "phpser": L0,
    "api_gate": L0,
    "wpsettings": L0,
    "shop_data": L0,
    "argscodec": L0 | {"phpser"},
    "whatsapp": L0 | {"api_gate"},
    "handlers": L0 | {"whatsapp", "api_gate", "shop_data", "wpsettings"},  # never the store
    "store": L0 | {"phpser", "argscodec", "shop_data"},  # never handlers, whatsapp or the worker
    "report": L0,
    "sandbox": L0,
    "worker": L0 | {"store", "handlers", "phpser", "argscodec"},
    "metrics": L0 | {"store", "worker", "objectcache"},
    "app": L0 | L1 | L2,
    "operations": L0 | L1 | {"app"},
    "objectcache": L0 | {"store", "wpsettings"},  # the site's object-cache drop-in (a health fact), schema check
    "devtools": L0 | L1,  # development and test tooling that speaks SQL; never imported by the running worker
    "bench": L0 | L1 | L2 | {"app", "devtools"},
    "demo": L0 | L1 | L2 | {"app", "devtools"},
    "dev": L0 | L2 | {"demo"},  # the development site: the demo's shop and a sandbox
    # the CLI: through app / operations; never the store, the codecs, PHP serialization, handlers or the worker
    "cli": L0 | {"report", "sandbox"} | L3,
}

HOMES = {"sqlalchemy": ("store", "devtools"), "requests": ("whatsapp",), "jinja2": ("report",), "click": ("cli",)}

#: Circles that exist today and are being removed elsewhere; the test fails on any other circle.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset(
    {
    }
)


# ---------------------------------------------------------------------------------------------- the checker
def module_paths(pkg: Path) -> dict[str, Path]:
    """Dotted name under ``wch_bridge`` ("" for the package itself, "store" for store/__init__.py) -> file."""
    out = {}
    for path in sorted(pkg.rglob("*.py")):
        parts = path.relative_to(pkg).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _ours(name: str) -> str | None:
    """``wch_bridge.x.y`` -> ``x.y``; ``wch_bridge`` -> ``""``; anything else -> None."""
    if name == "wch_bridge":
        return ""
    return name[len("wch_bridge.") :] if name.startswith("wch_bridge.") else None


def _module(name: str, mods: dict[str, Path]) -> str:
    """The module a dotted name refers to: itself, or its longest prefix that is a module."""
    while name not in mods and name:
        name = name.rpartition(".")[0]
    return name


def imported(mod: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package modules ``mod`` imports (anywhere in the file, functions included)."""
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {_module(ours, mods) for a in node.names if (ours := _ours(a.name)) is not None}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base: str | None = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = _ours(node.module or "")
            if base is None:
                continue
            for alias in node.names:  # ``from wch_bridge import x``: x is a module when there is one
                sub = f"{base}.{alias.name}" if base else alias.name
                out.add(sub if sub in mods else _module(base, mods))
    out.discard(mod)
    return out


def import_graph(pkg: Path) -> dict[str, set[str]]:
    mods = module_paths(pkg)
    return {mod: imported(mod, path, mods) for mod, path in mods.items()}


def top(mod: str) -> str:
    return mod.split(".")[0]


def layer_of(mod: str) -> int | None:
    return next((n for n, names in LAYERS.items() if top(mod) in names), None)


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import the allow-list does not give (imports inside one top-level package are free)."""
    out = []
    for mod, targets in sorted(graph.items()):
        for target in sorted(targets):
            if top(target) == top(mod):
                continue
            if top(target) not in ALLOWED.get(top(mod), frozenset()):
                out.append(
                    f"wch_bridge.{mod} (layer {layer_of(mod)}) imports wch_bridge.{target} "
                    f"(layer {layer_of(target)}): not in the allow-list of {top(mod) or '__init__'}"
                )
    return out


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def third_party(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


# ---------------------------------------------------------------------------------------------- the package
def test_every_module_has_a_layer_and_an_allow_list() -> None:
    for mod in module_paths(PKG):
        assert layer_of(mod) is not None, f"wch_bridge.{mod} has no layer in tests/unit/test_layers.py"
        assert top(mod) in ALLOWED, f"wch_bridge.{mod} has no allow-list in tests/unit/test_layers.py"


def test_the_allow_list_only_points_down() -> None:
    for name, allowed in ALLOWED.items():
        mine = layer_of(name)
        assert mine is not None
        for target in allowed:
            target_layer = layer_of(target)
            assert target_layer is not None and target_layer <= mine, f"{name} may import {target} (layer up)"


def test_third_party_libraries_live_in_one_place() -> None:
    for mod, path in module_paths(PKG).items():
        for lib in third_party(path):
            if lib in HOMES:
                assert top(mod) in HOMES[lib], f"wch_bridge.{mod} imports {lib}; only {HOMES[lib]} may"


def test_imports_follow_the_allow_list() -> None:
    assert violations(import_graph(PKG)) == []


def test_no_import_cycles() -> None:
    new = [sorted(c) for c in cycles(import_graph(PKG)) if c not in KNOWN_CYCLES]
    assert new == [], f"import circles: {new}"


def test_the_cli_goes_through_app() -> None:
    """Point 5 of issue 14: no store, codec or PHP-serialization import under wch_bridge/cli/."""
    graph = import_graph(PKG)
    bad = {
        (m, t)
        for m, ts in graph.items()
        if top(m) == "cli"
        for t in ts
        if top(t) in ("store", "argscodec", "phpser", "handlers", "worker")
    }
    assert bad == set()


# ---------------------------------------------------------------------------------------------- the checker
def test_checker_on_synthetic_graphs() -> None:
    assert violations({"store.queue.actions": {"worker"}}) != []
    assert violations({"handlers.carts": {"store.wordpress"}}) != []
    assert violations({"cli.jobs": {"store.operator_queries"}}) != []
    assert violations({"cli.jobs": {"operations"}, "operations": {"store.operator_queries", "app"}}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _copy(tmp_path: Path) -> Path:
    pkg = tmp_path / "wch_bridge"
    shutil.copytree(PKG, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def test_checker_catches_a_planted_upward_import(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    assert violations(import_graph(pkg)) == []
    # the form the old test read as plain ``wch_bridge`` and never checked
    (pkg / "store" / "planted.py").write_text(
        '"""Planted."""\n\nfrom wch_bridge import worker\n', encoding="utf-8"
    )
    found = violations(import_graph(pkg))
    assert (
        len(found) == 1
        and "wch_bridge.store.planted (layer 1) imports wch_bridge.worker (layer 2)" in found[0]
    )


def test_checker_catches_a_planted_relative_upward_import(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    (pkg / "cli" / "planted.py").write_text(
        '"""Planted."""\n\nfrom ..store import operator_queries\n', encoding="utf-8"
    )
    found = violations(import_graph(pkg))
    assert len(found) == 1 and "wch_bridge.cli.planted (layer 4) imports wch_bridge.store.operator_queries" in found[0]


def test_checker_catches_a_planted_circle(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    assert [c for c in cycles(import_graph(pkg)) if c not in KNOWN_CYCLES] == []
    # a lazy import inside a function still makes a circle: cli.context -> cli.common -> cli.context
    common = pkg / "cli" / "common.py"
    common.write_text(
        common.read_text(encoding="utf-8")
        + "\n\ndef _planted() -> None:\n    from wch_bridge.cli import context  # noqa: F401\n",
        encoding="utf-8",
    )
    new = [c for c in cycles(import_graph(pkg)) if c not in KNOWN_CYCLES]
    assert new == [frozenset({"cli.common", "cli.context"})]
