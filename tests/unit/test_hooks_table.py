"""The one table of hooks (``wch_bridge.hooks``): every served hook name is spelled there and nowhere else in the
package's code, and every reader (handler registry, rerun rule, recurring set-up) agrees with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from wch_bridge import hooks
from wch_bridge.handlers import default_registry

PKG = Path(__file__).resolve().parents[2] / "wch_bridge"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def spelled_outside_the_table() -> list[str]:
    """``path:line: name`` for each string literal (docstrings aside: prose may name a hook) naming a served hook
    outside ``wch_bridge/hooks.py``."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, hooks.NAMES)) + r")\b")
    found = []
    for path in sorted(PKG.rglob("*.py")):
        if path == PKG / "hooks.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                for m in pattern.finditer(node.value):
                    found.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {m.group(1)}")
    return found


def test_each_served_hook_name_is_spelled_only_in_the_table() -> None:
    assert spelled_outside_the_table() == []


def test_the_table_and_the_handlers_agree() -> None:
    assert list(default_registry()) == list(hooks.NAMES)
    assert len(set(hooks.NAMES)) == len(hooks.NAMES)
    for spec in hooks.HOOKS:
        assert spec.description and "\n" not in spec.description
        assert spec.retry_hook is None or spec.retry_hook in hooks.BY_NAME
    assert [s.name for s in hooks.RECURRING] == [hooks.CART_CLEANUP]
    assert hooks.RECURRING[0].recurrence_seconds == 3600
    assert hooks.WHATSAPP_HOOKS == set(hooks.NAMES) - {hooks.CART_CLEANUP}
    assert hooks.RERUNNABLE_HOOKS == hooks.WHATSAPP_HOOKS


def test_the_must_use_plugin_s_default_groups_are_the_sidecar_s() -> None:
    """Issue 18: the must-use plugin's default WCH_BRIDGE_GROUPS (group rows ensured; whole-group mode) is the
    sidecar's default, the plugin's own groups (hooks.PLUGIN_GROUPS)."""
    import re
    from pathlib import Path

    from wch_bridge.hooks import PLUGIN_GROUPS

    php = (Path(__file__).resolve().parents[2] / "docker" / "mu-plugins" / "wch-bridge.php").read_text()
    m = re.search(r"defined\( 'WCH_BRIDGE_GROUPS' \) \? WCH_BRIDGE_GROUPS\s*:\s*array\(([^)]*)\)", php)
    assert m, "the default list of groups in wch_bridge_groups()"
    assert tuple(re.findall(r"'([^']+)'", m.group(1))) == PLUGIN_GROUPS
