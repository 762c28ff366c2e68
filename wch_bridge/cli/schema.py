"""``wch-bridge schema install|check|drop-indexes``."""

from __future__ import annotations

import click

from wch_bridge import operations
from wch_bridge.cli.common import EXIT_ENV, echo_json, fail, main, split_csv
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.settings import mask_dsn


@main.group("schema")
def schema_group() -> None:
    """Create the tables for development/tests, or inspect a live database."""


@schema_group.command("install")
@pass_cli_context
@click.option("--with-wordpress", is_flag=True,
              help="Also create the WordPress/WooCommerce tables and the plugin's own tables (development only).")
@click.option("--plugin-schema", type=click.Choice(sorted(operations.PLUGIN_SCHEMAS)), default="head",
              show_default=True,
              help="With --with-wordpress: the plugin's tables as its installer creates them at the head (DB_VERSION "
                   "2.6.0) or at its first full version f46ecdf (1.2.0).")
@click.option("--yes", is_flag=True, help="Allow installing into a database that already holds a WordPress site.")
def schema_install(cli: CliContext, with_wordpress: bool, plugin_schema: str, yes: bool) -> None:
    """Create the Action Scheduler and bridge tables under PREFIX (IF NOT EXISTS); with --with-wordpress also the
    WordPress, WooCommerce and plugin tables."""
    settings = cli.settings
    engine = cli.engine()
    if not yes and operations.looks_live(engine, settings.prefix):
        fail(
            f"{mask_dsn(settings.dsn)} with prefix {settings.prefix!r} already holds a WordPress site or queued "
            "actions; schema install is for development databases. Re-run with --yes if you really mean it.",
            EXIT_ENV,
        )
    tables = operations.install_schema(engine, settings.prefix, with_wordpress=with_wordpress, plugin_schema=plugin_schema)
    click.echo(f"tables under {settings.prefix!r} in {mask_dsn(settings.dsn)}: {len(tables)}")
    for t in tables:
        click.echo(f"  {t}")


@schema_group.command("check")
@pass_cli_context
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def schema_check(cli: CliContext, as_json: bool) -> None:
    """Inspect a live database: server, SKIP LOCKED, AS schema version, priority column, indexes, the group row."""
    settings = cli.settings
    engine = cli.engine()
    rep = operations.check_schema(engine, settings.prefix, tuple(split_csv(cli.groups_option)))
    cache = operations.check_object_cache(engine, settings.prefix, settings.wp_config)
    if as_json:
        echo_json({"database": mask_dsn(settings.dsn), **rep.as_dict(), "object_cache": cache and cache.as_dict()})
    else:
        click.echo(f"database: {mask_dsn(settings.dsn)}")
        click.echo("found:")
        for k, v in rep.found:
            click.echo(f"  {k}: {v}")
        click.echo("the bridge will:")
        for p in rep.plan:
            click.echo(f"  - {p}")
        for w in rep.warnings:
            click.echo(f"warning: {w}")
        if cache is not None:
            click.echo(f"{'warning' if cache.level == 'warning' else 'found'}: {cache.message}")
        for spec in rep.missing_indexes:
            click.echo(f"recommended: {spec.ddl(engine.dialect.name if engine.dialect.name == 'sqlite' else 'mysql')};")
        for name in rep.leftover_indexes:
            click.echo(f"leftover: index {name} (remove with `wch-bridge schema drop-indexes`)")
        for p in rep.problems:
            click.echo(f"problem: {p}", err=True)
        click.echo("ok: the bridge can run" if rep.ok else "not ok: the bridge cannot run here")
    if not rep.ok:
        raise SystemExit(EXIT_ENV)


@schema_group.command("drop-indexes")
@pass_cli_context
@click.option("--yes", is_flag=True, help="Do it without asking.")
def schema_drop_indexes(cli: CliContext, yes: bool) -> None:
    """Drop the indexes an earlier wch-bridge added to Action Scheduler's actions table (they change PHP's plans)."""
    settings = cli.settings
    engine = cli.engine()
    names = operations.leftover_indexes(engine, settings.prefix)
    if not names:
        click.echo(f"no wch-bridge index on {settings.prefix}actionscheduler_actions: nothing to do")
        return
    if not yes:
        click.confirm(f"drop {', '.join(names)} from {settings.prefix}actionscheduler_actions "
                      "(ALTER TABLE on a live table: pick a quiet hour)?", abort=True)
    for name in operations.drop_leftover_indexes(engine, settings.prefix):
        click.echo(f"dropped index {name} from {settings.prefix}actionscheduler_actions")
