"""The one table of hooks (``wch_bridge.hooks``): every served hook name is spelled there and nowhere else in the
package (code, docstrings, comments and help text alike), and every reader (handler registry, rerun rule,
recurring set-up) agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

from wch_bridge import hooks
from wch_bridge.handlers import default_registry

PKG = Path(__file__).resolve().parents[2] / "wch_bridge"


#: The served hooks, written out here on purpose: the test must not trust the table it checks.
FIVE = ("wch_process_sync_job", "wch_send_broadcast_batch", "wch_cleanup_expired_carts",
        "wch_process_abandoned_cart", "wch_retry_failed_message")
PATTERN = re.compile(r"\b(" + "|".join(map(re.escape, FIVE)) + r")\b")


def spelled(pkg: Path) -> dict[str, list[str]]:
    """File (relative to the package's parent) -> ``line: name`` for every occurrence of a served hook's name in
    the text of each .py file under ``pkg``: code, strings, docstrings, comments and help prose alike."""
    found: dict[str, list[str]] = {}
    for path in sorted(pkg.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in PATTERN.finditer(line):
                found.setdefault(str(path.relative_to(pkg.parent)), []).append(f"{n}: {m.group(1)}")
    return found


def test_the_five_names_are_the_table_s() -> None:
    assert set(hooks.NAMES) == set(FIVE)


def test_each_served_hook_name_is_spelled_once_in_the_package() -> None:
    """Issue 14: a hook name appears once in wch_bridge/, in hooks.py; docstrings and help name the constant."""
    found = spelled(PKG)
    table = found.pop("wch_bridge/hooks.py", [])
    assert found == {}
    assert sorted(entry.split(": ")[1] for entry in table) == sorted(FIVE)


def test_the_scan_reads_prose_too(tmp_path: Path) -> None:
    pkg = tmp_path / "wch_bridge"
    pkg.mkdir()
    (pkg / "planted.py").write_text('"""Runs ``wch_process_sync_job``."""\n# wch_send_broadcast_batch\n', encoding="utf-8")
    assert spelled(pkg) == {"wch_bridge/planted.py": ["1: wch_process_sync_job", "2: wch_send_broadcast_batch"]}


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
