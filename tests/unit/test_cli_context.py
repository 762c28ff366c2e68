"""The CLI's one command context (``wch_bridge.cli.context.pass_cli_context``) and its one usage error: Settings
resolved once from --dsn/--prefix/--group (env vars, defaults), the store opened once, errors mapped to one line
and an exit code; and the click defaults of every command equal to the Settings defaults."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from wch_bridge import config, operations
from wch_bridge.cli import main
from wch_bridge.cli.common import UsageError
from wch_bridge.cli.context import DEFAULTS, CliContext, pass_cli_context
from wch_bridge.errors import StoreError
from wch_bridge.settings import Settings


def _group(seen: list[Any]) -> click.Group:
    @click.group()
    def root() -> None:
        """Test group."""

    @root.command("probe")
    @pass_cli_context
    @click.option("--fail", "failing", default=None)
    def probe(cli: CliContext, failing: str | None) -> None:
        seen.append(cli.settings)
        if failing == "usage":
            raise UsageError("give one thing or the other")
        if failing == "store":
            raise StoreError("cannot reach the database")
        seen.append((cli.store(), cli.store()))

    @root.command("lazy")
    @pass_cli_context(lazy=True)
    def lazy(cli: CliContext) -> None:
        raise UsageError("checked before the settings")

    return root


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    calls: list[Settings] = []

    def fake_open(settings: Settings, **kw: Any) -> object:
        calls.append(settings)
        return object()

    monkeypatch.setattr(operations, "open_operator_store", fake_open)
    return calls


def _env(**extra: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {config.env_name(f): None for f in config.FIELDS}
    env.update({"WCH_BRIDGE_CONFIG": None, **extra})
    return env


def test_settings_resolved_from_options_env_and_defaults_and_store_opened_once(
    opened: list[Settings],
) -> None:
    seen: list[Any] = []
    result = CliRunner().invoke(
        _group(seen), ["probe", "--prefix", "shop_"], env=_env(WCH_BRIDGE_GROUPS="a,b")
    )
    assert result.exit_code == 0, result.output
    settings, (first, second) = seen
    assert (settings.prefix, settings.groups, settings.dsn) == ("shop_", ("a", "b"), DEFAULTS.dsn)
    assert first is second and opened == [settings]


def test_usage_error_is_one_line_and_exit_1(opened: list[Settings]) -> None:
    result = CliRunner().invoke(_group([]), ["probe", "--fail", "usage"], env=_env())
    assert (result.exit_code, result.stderr) == (1, "wch-bridge: error: give one thing or the other\n")


def test_environment_error_is_one_line_and_exit_2(opened: list[Settings]) -> None:
    result = CliRunner().invoke(_group([]), ["probe", "--fail", "store"], env=_env())
    assert (result.exit_code, result.stderr) == (2, "wch-bridge: error: cannot reach the database\n")


def test_a_bad_setting_stops_the_command_before_it_runs(opened: list[Settings]) -> None:
    seen: list[Any] = []
    result = CliRunner().invoke(_group(seen), ["probe"], env=_env(WCH_BRIDGE_PREFIX="a-b"))
    assert result.exit_code == 1 and result.stderr.startswith(
        "wch-bridge: error: prefix: invalid table prefix"
    )
    assert seen == [] and opened == []


def test_a_lazy_command_checks_its_arguments_first() -> None:
    result = CliRunner().invoke(_group([]), ["lazy"], env=_env(WCH_BRIDGE_PREFIX="a-b"))
    assert (result.exit_code, result.stderr) == (1, "wch-bridge: error: checked before the settings\n")


def _commands(group: click.Group, path: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((f"{path} {name}".strip(), cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{path} {name}")
    return out


def test_click_defaults_are_the_settings_defaults() -> None:
    """Every option named like a setting defaults to the Settings default (bench has its own figures; the demo
    picks its own database)."""
    checked = 0
    for path, cmd in _commands(main):
        if path.split()[0] in ("bench", "demo"):
            continue
        for param in cmd.params:
            if param.name not in config.FIELDS or param.default is None or getattr(param, "is_flag", False):
                continue
            value = config.coerce(param.name, param.default)
            assert value == getattr(DEFAULTS, param.name), f"{path} --{param.name}: {param.default!r}"
            checked += 1
    assert (
        checked >= 30
    )  # dsn/prefix/group of every database command, run's worker options, sandbox's log level
