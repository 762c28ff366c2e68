"""Install the DDL in ``sql/`` (development and tests) and inspect a live database (``wch-bridge schema check``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Engine

from wch_bridge.health import missing_groups_to_warn
from wch_bridge.hooks import PLUGIN_GROUPS
from wch_bridge.resources import sql_dir
from wch_bridge.store.engine import DbInfo, ddl, translate_errors, validate_prefix

#: AS parts created by ``schema install``; ``with_wordpress`` adds the WordPress/WooCommerce tables and the
#: plugin's, as its installer creates them at one of its schema generations (docs/plugin-contracts.md, "Tables").
CORE_PARTS = ("actionscheduler", "bridge")
WORDPRESS_PARTS = ("wordpress", "woocommerce")
PLUGIN_SCHEMAS = {"head": "wch_plugin", "f46ecdf": "wch_plugin_f46ecdf"}

#: Index names of ``{prefix}actionscheduler_actions`` at store schema 8 (reference section 1.4).
AS_SCHEMA8_INDEXES = {
    "hook_status_scheduled_date_gmt": ["hook", "status", "scheduled_date_gmt"],
    "status_scheduled_date_gmt": ["status", "scheduled_date_gmt"],
    "scheduled_date_gmt": ["scheduled_date_gmt"],
    "args": ["args"],
    "group_id": ["group_id"],
    "last_attempt_gmt": ["last_attempt_gmt"],
    "claim_id_status_priority_scheduled_date_gmt": ["claim_id", "status", "priority", "scheduled_date_gmt"],
    "status_last_attempt_gmt": ["status", "last_attempt_gmt"],
    "status_claim_id": ["status", "claim_id"],
}

#: Indexes earlier versions of the bridge added to ``{prefix}actionscheduler_actions``. They change PHP's own plans
#: (a PHP runner alone deadlocked against itself with them present; reference section 11.3): the bridge adds none
#: now, ``schema check`` reports any left behind and ``schema drop-indexes`` removes them.
LEFTOVER_INDEXES = ("wch_bridge_claim_order", "wch_bridge_report_queue", "wch_bridge_report_finished")


def _leftover_names(prefix: str, dialect: str) -> tuple[str, ...]:
    if dialect == "sqlite":  # SQLite index names are per database: the former report indexes carried the prefix
        return ("wch_bridge_claim_order", f"{prefix}wbr_report_queue", f"{prefix}wbr_report_finished")
    return LEFTOVER_INDEXES


@translate_errors
def actions_table(prefix: str) -> str:
    """The name of Action Scheduler's actions table under ``prefix``."""
    return f"{validate_prefix(prefix)}actionscheduler_actions"


def leftover_indexes(engine: Engine, prefix: str) -> list[str]:
    """The former bridge indexes still present on the actions table."""
    table = actions_table(prefix)
    insp = inspect(engine)
    if table not in insp.get_table_names():
        return []
    have = {ix["name"] for ix in insp.get_indexes(table)}
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    return [n for n in _leftover_names(prefix, dialect) if n in have]


@translate_errors
def drop_leftover_indexes(engine: Engine, prefix: str) -> list[str]:
    """Drop the former bridge indexes from the actions table; returns the names dropped."""
    table = actions_table(prefix)
    dropped = []
    for name in leftover_indexes(engine, prefix):
        stmt = f"DROP INDEX {name}" if engine.dialect.name == "sqlite" else f"ALTER TABLE {table} DROP INDEX {name}"
        ddl(engine, stmt)  # names from the fixed list above, table from the validated prefix
        dropped.append(name)
    return dropped


_INDEX_DIRECTIVE = re.compile(r"^--\s*@index\s+(\S+)\s+(\S+)\s+\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class IndexSpec:
    table: str
    name: str
    columns: tuple[str, ...]

    def ddl(self, dialect: str) -> str:
        cols = ", ".join(self.columns)
        if dialect == "sqlite":
            return f"CREATE INDEX IF NOT EXISTS {self.name} ON {self.table} ({cols})"
        return f"ALTER TABLE {self.table} ADD INDEX {self.name} ({cols})"


def _read_part(dialect: str, part: str, prefix: str) -> tuple[list[str], list[IndexSpec]]:
    path: Path = sql_dir() / dialect / f"{part}.sql"
    raw = path.read_text(encoding="utf-8").replace("{prefix}", validate_prefix(prefix))
    indexes: list[IndexSpec] = []
    body: list[str] = []
    for line in raw.splitlines():
        m = _INDEX_DIRECTIVE.match(line.strip())
        if m:
            indexes.append(IndexSpec(m.group(1), m.group(2), tuple(c.strip() for c in m.group(3).split(","))))
            continue
        if line.strip().startswith("--"):
            continue
        body.append(line)
    statements = [s.strip() for s in "\n".join(body).split(";\n") if s.strip()]
    return [s.rstrip(";").strip() for s in statements], indexes


def recommended_indexes(prefix: str, dialect: str = "mysql") -> list[IndexSpec]:
    """Indexes the bridge relies on beyond AS's own (declared with ``-- @index`` in sql/*/bridge.sql)."""
    return _read_part(dialect, "bridge", prefix)[1]


@translate_errors
def install(engine: Engine, prefix: str, *, with_wordpress: bool = False,
            parts: tuple[str, ...] | None = None, plugin_schema: str = "head") -> list[str]:
    """Create the tables (IF NOT EXISTS) and the indexes of the bridge's own tables. Returns the table names.
    ``plugin_schema`` picks the plugin's generation with ``with_wordpress``: ``head`` (DB_VERSION 2.6.0) or
    ``f46ecdf`` (1.2.0)."""
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    if plugin_schema not in PLUGIN_SCHEMAS:
        raise ValueError(f"plugin schema must be one of {', '.join(PLUGIN_SCHEMAS)}, got {plugin_schema!r}")
    chosen = parts or (CORE_PARTS + ((*WORDPRESS_PARTS, PLUGIN_SCHEMAS[plugin_schema]) if with_wordpress else ()))
    for part in chosen:
        if not (sql_dir() / dialect / f"{part}.sql").exists():
            continue
        statements, indexes = _read_part(dialect, part, prefix)
        for stmt in statements:
            ddl(engine, stmt)
        ensure_indexes(engine, indexes)
        if part == "bridge":
            exact_ledger_keys(engine, prefix)
    return sorted(t for t in inspect(engine).get_table_names() if t.startswith(prefix))


#: Columns added to the bridge's own tables after their first release: (table suffix, column, DDL type).
ADDED_COLUMNS = (
    ("wch_bridge_workers", "served_groups", "text NULL"),
    ("wch_bridge_workers", "served_hooks", "text NULL"),
)


@translate_errors
def ensure_columns(engine: Engine, prefix: str) -> list[str]:
    """Add the columns of :data:`ADDED_COLUMNS` missing from an existing bridge table (created by an older
    version); returns ``table.column`` of those added. Only the bridge's own tables are altered."""
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    added = []
    for suffix, column, col_type in ADDED_COLUMNS:
        table = f"{prefix}{suffix}"
        if table not in tables or column in {c["name"] for c in insp.get_columns(table)}:
            continue
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {col_type}"))
        added.append(f"{table}.{column}")
    return added


@translate_errors
def install_queue_table(engine: Engine, prefix: str) -> None:
    """Create the bridge's pick-up queue table if it is missing (a worker started on tables made by an older
    version, or by hand, still runs)."""
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    statements, _ = _read_part(dialect, "bridge", prefix)
    for stmt in statements:
        if f"{prefix}wch_bridge_queue" in stmt:
            ddl(engine, stmt)


#: Ledger columns compared byte for byte: ``idempotency_key`` (UNIQUE) and ``campaign_id`` (campaign totals).
EXACT_COLUMNS = {"idempotency_key": "varchar(191) NOT NULL", "campaign_id": "varchar(100) NULL"}
#: Binary collations without PAD SPACE first ('a' and 'a ' differ); utf8mb4_bin (PAD SPACE) only as a last resort.
EXACT_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")


@translate_errors
def exact_ledger_keys(engine: Engine, prefix: str) -> list[str]:
    """MySQL/MariaDB: give the ledger's key and campaign columns a binary collation, so ``Promo``/``promo``,
    ``Café``/``Cafe`` and ``a``/``a `` are different keys and campaigns (the site's default ``*_ci`` collation
    made them one). Runs on every start; alters only a column that is not exact yet (tables made by earlier
    versions). SQLite compares bytes already. Returns the columns altered."""
    if engine.dialect.name == "sqlite":
        return []
    table = f"{prefix}wch_bridge_messages"
    with engine.connect() as conn:
        have = {str(c) for (c,) in conn.execute(text(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN :names"
        ).bindparams(bindparam("names", expanding=True)), {"names": list(EXACT_COLLATIONS)})}
        current = {str(n): c for n, c in conn.execute(text(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :t AND COLUMN_NAME IN :cols"
        ).bindparams(bindparam("cols", expanding=True)), {"t": table, "cols": list(EXACT_COLUMNS)})}
    target = next((c for c in EXACT_COLLATIONS if c in have), None)
    todo = [col for col in EXACT_COLUMNS if col in current and current[col] != target]
    if target is None or not todo:
        return []
    validate_prefix(prefix)
    mods = ", ".join(f"MODIFY {col} {EXACT_COLUMNS[col].split(' ', 1)[0]} CHARACTER SET utf8mb4 COLLATE {target} "
                     f"{EXACT_COLUMNS[col].split(' ', 1)[1]}" for col in todo)
    ddl(engine, f"ALTER TABLE {table} {mods}")  # names: validated prefix and constants
    return todo


@translate_errors
def ensure_indexes(engine: Engine, indexes: list[IndexSpec]) -> list[IndexSpec]:
    """Create the missing ones among ``indexes``; return what was created."""
    created = []
    insp = inspect(engine)
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    for spec in indexes:
        if spec.table not in insp.get_table_names():
            continue
        have = {ix["name"] for ix in insp.get_indexes(spec.table)}
        if spec.name in have:
            continue
        ddl(engine, spec.ddl(dialect))
        created.append(spec)
    return created


@translate_errors
def drop_prefix(engine: Engine, prefix: str) -> list[str]:
    """Drop every table whose name starts with ``prefix`` (tests and the benchmark's scratch prefix only)."""
    validate_prefix(prefix)
    dropped = []
    for name in inspect(engine).get_table_names():
        if name.startswith(prefix):
            ddl(engine, f"DROP TABLE IF EXISTS {name}")  # name comes from the catalog and the prefix
            dropped.append(name)
    return dropped


@dataclass
class CheckReport:
    """What ``schema check`` found, what the bridge will do, and whether it can run."""

    found: list[tuple[str, str]] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_indexes: list[IndexSpec] = field(default_factory=list)
    leftover_indexes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "found": dict(self.found),
            "plan": self.plan,
            "problems": self.problems,
            "warnings": self.warnings,
            "missing_indexes": [
                {"table": i.table, "name": i.name, "columns": list(i.columns), "sql": i.ddl("mysql")}
                for i in self.missing_indexes
            ],
            "leftover_indexes": self.leftover_indexes,
        }


@translate_errors
def check(engine: Engine, prefix: str, groups: tuple[str, ...] = PLUGIN_GROUPS) -> CheckReport:
    """What ``schema check`` finds, plans and warns about for this prefix and these served groups."""
    validate_prefix(prefix)
    rep = CheckReport()
    info = DbInfo.probe(engine)
    _check_server(rep, info, prefix)
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    actions = f"{prefix}actionscheduler_actions"
    for suffix in ("actionscheduler_actions", "actionscheduler_claims", "actionscheduler_groups", "actionscheduler_logs"):
        if f"{prefix}{suffix}" not in tables:
            rep.problems.append(f"table {prefix}{suffix} is missing (is the prefix right? is WooCommerce active?)")
    as_schema = _check_options(rep, engine, tables, f"{prefix}options")
    if actions in tables:
        _check_actions_table(rep, insp, tables, prefix, info.dialect, as_schema)
        if f"{prefix}actionscheduler_groups" in tables:
            _check_groups(rep, engine, f"{prefix}actionscheduler_groups", groups)
    for suffix in ("wch_bridge_messages", "wch_bridge_workers"):
        if f"{prefix}{suffix}" not in tables:
            rep.plan.append(f"create {prefix}{suffix} on first run")
    if f"{prefix}wch_carts" not in tables:
        rep.warnings.append(f"{prefix}wch_carts not found: cart jobs will fail with a clear message")
    return rep


def _check_server(rep: CheckReport, info: DbInfo, prefix: str) -> None:
    rep.found.append(("server", f"{'MariaDB' if info.is_mariadb else info.dialect} {info.version}"))
    rep.found.append(("prefix", prefix))
    if info.dialect == "mysql":
        rep.found.append(("SKIP LOCKED", "supported" if info.skip_locked else "not supported"))
        rep.plan.append(
            "take due actions from its own pick-up queue, then start them with a guarded UPDATE pinned to the "
            "primary key; lock only the rows it takes or finishes, briefly, and never wait for a lock")
    else:
        rep.plan.append("embedded SQLite: writers serialized with BEGIN IMMEDIATE")
    rep.plan.append("never hold an Action Scheduler claim (PHP's concurrency gate stays free)")


def _check_options(rep: CheckReport, engine: Engine, tables: set[str], options: str) -> int:
    """Action Scheduler's store schema version from ``wp_options`` (0: unknown)."""
    if options not in tables:
        rep.found.append(("AS store schema", f"unknown ({options} not found)"))
        rep.warnings.append(f"{options} not found: site time zone taken as UTC, plugin settings unavailable")
        return 0
    with engine.connect() as conn:
        ver = conn.execute(
            text(f"SELECT option_value FROM {options} WHERE option_name = :n"),  # noqa: S608 - validated prefix
            {"n": "schema-ActionScheduler_StoreSchema"},
        ).scalar()
    rep.found.append(("AS store schema", str(ver) if ver else "unknown (option not set)"))
    head = str(ver or "").split(".")[0]
    as_schema = int(head) if head.isdigit() else 0
    if ver and as_schema >= 9:
        rep.warnings.append("store schema 9 (unique_key): unique enqueues should be left to PHP")
    if ver and head.isdigit() and as_schema < 7:
        rep.warnings.append(f"store schema {head}: no priority column; claim order ignores priority")
    return as_schema


def _check_actions_table(rep: CheckReport, insp: Any, tables: set[str], prefix: str, dialect: str,
                         as_schema: int) -> None:
    actions = f"{prefix}actionscheduler_actions"
    cols = {c["name"] for c in insp.get_columns(actions)}
    rep.found.append(("priority column", "present" if "priority" in cols else "missing"))
    if "extended_args" not in cols:
        rep.problems.append(f"{actions} has no extended_args column (AS < 3.1): upgrade Action Scheduler")
    have = {ix["name"]: [c for c in ix["column_names"] if c] for ix in insp.get_indexes(actions)}
    missing_as = [n for n in AS_SCHEMA8_INDEXES if n not in have]
    if dialect == "mysql" and missing_as and as_schema >= 8:
        # only from store schema 8 (AS 3.9.3) does `fix-schema` know these indexes
        rep.warnings.append("AS schema-8 indexes missing: " + ", ".join(missing_as) + " (wp action-scheduler fix-schema)")
    for spec in recommended_indexes(prefix, dialect):
        if spec.table in tables and spec.name not in {ix["name"] for ix in insp.get_indexes(spec.table)}:
            rep.missing_indexes.append(spec)
    if rep.missing_indexes:
        rep.warnings.append(
            "indexes on the bridge's own tables missing (the report scans more rows without them): "
            + "; ".join(spec.ddl(dialect) for spec in rep.missing_indexes)
        )
    rep.leftover_indexes = [n for n in _leftover_names(prefix, dialect) if n in have]
    if rep.leftover_indexes:
        rep.warnings.append(
            f"index(es) {', '.join(rep.leftover_indexes)} on {actions} were added by an earlier wch-bridge; they "
            "change PHP's own query plans (PHP's runners can deadlock against each other): remove them with "
            "`wch-bridge schema drop-indexes`")


def _check_groups(rep: CheckReport, engine: Engine, groups_table: str, groups: tuple[str, ...]) -> None:
    """Each served group's row. Which missing rows are worth a warning is the health verdict's rule
    (:func:`wch_bridge.health.missing_groups_to_warn`); the others are a plan line: the bridge creates them on
    first run."""
    missing: list[str] = []
    with engine.connect() as conn:
        for slug in groups:
            gid = conn.execute(
                text(f"SELECT MIN(group_id) FROM {groups_table} WHERE slug = :s"), {"s": slug}  # noqa: S608
            ).scalar()
            rep.found.append((f"group '{slug}'", f"group_id {gid}" if gid else "missing"))
            if not gid:
                missing.append(slug)
    warn = missing_groups_to_warn(groups, missing)
    for slug in warn:
        rep.warnings.append(
            f"group '{slug}' has no row yet: the bridge creates it on first run; PHP's exclude-groups "
            "filter (docker/mu-plugins/wch-bridge.php) needs it to exist"
        )
    created = [slug for slug in missing if slug not in warn]
    if created:
        rep.plan.append("create the group row(s) " + ", ".join(created) + " on first run")


@translate_errors
def looks_live(engine: Engine, prefix: str) -> bool:
    """A WordPress site (``siteurl`` option) or queued actions under this prefix: not a development database."""
    tables = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        if f"{prefix}options" in tables:
            n = conn.execute(
                text(f"SELECT COUNT(*) FROM {prefix}options WHERE option_name = 'siteurl'")  # noqa: S608
            ).scalar()
            if n:
                return True
        if f"{prefix}actionscheduler_actions" in tables:
            n = conn.execute(text(f"SELECT COUNT(*) FROM {prefix}actionscheduler_actions")).scalar()  # noqa: S608
            if n:
                return True
    return False
