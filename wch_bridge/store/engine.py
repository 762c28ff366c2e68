"""Engine creation and session set-up like WordPress: utf8mb4, WordPress's relaxed sql_mode, UTC.

Also the dialect facts the store switches on (SKIP LOCKED support) and the error mapping that turns lost
connections, deadlocks (1213) and lock-wait timeouts (1205) into ``TransientStoreError``."""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from wch_bridge.errors import ConfigError, LockBusyError, SchemaError, StoreError, TransientStoreError
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.settings import UNREADABLE_DSN, mask_dsn

log = logging.getLogger("wch_bridge.store")

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]+$")

#: WordPress removes these from the session sql_mode (wpdb::set_sql_mode, $incompatible_modes).
WP_INCOMPATIBLE_MODES = frozenset(
    {"NO_ZERO_DATE", "ONLY_FULL_GROUP_BY", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "TRADITIONAL", "ANSI"}
)

#: ``innodb_lock_wait_timeout`` of the bridge's sessions: MariaDB fails a statement at once with 0; MySQL's minimum
#: is 1 second.
NO_WAIT_MARIADB = 0
NO_WAIT_MYSQL = 1
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
#: How long ``retry_transient`` keeps trying a statement that met a busy row lock.
BUSY_RETRY_S = 3.0

#: MySQL error numbers that mean "try again": deadlock, lock wait timeout, gone away, lost connection, ...
TRANSIENT_MYSQL_ERRORS = frozenset({1213, 1205, 2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031, 1040})


def validate_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ConfigError(f"invalid table prefix {prefix!r}: use letters, digits and underscores only (e.g. wp_)")
    return prefix


def _wp_sql_mode(current: str) -> str:
    modes = [m for m in current.split(",") if m and m.upper() not in WP_INCOMPATIBLE_MODES]
    return ",".join(modes)


class _QuietPoolReset(logging.Filter):
    """Drop SQLAlchemy's ``Exception during reset or similar`` ERROR + traceback when the connection being returned
    to the pool was simply lost (server gone, network cut): the worker already logs the outage once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Exception during reset") or not record.exc_info:
            return True
        exc = record.exc_info[1]
        if isinstance(exc, OSError):
            return False
        args = getattr(exc, "args", ())
        errno = args[0] if args and isinstance(args[0], int) else None
        return not (errno in TRANSIENT_MYSQL_ERRORS or (errno == 0 and type(exc).__name__ == "InterfaceError"))


_QUIET_POOL_RESET = _QuietPoolReset()


def _quiet_pool_reset(engine: Engine) -> None:
    pool_logger = logging.getLogger(f"{type(engine.pool).__module__}.{type(engine.pool).__name__}")
    if _QUIET_POOL_RESET not in pool_logger.filters:
        pool_logger.addFilter(_QUIET_POOL_RESET)


def _row_capable_binlog(cur: Any, where: str) -> None:
    """The server writes its binary log in STATEMENT format: at READ COMMITTED (the bridge's isolation level: its
    reads of Action Scheduler's rows, ``INSERT … SELECT`` included, are consistent reads that lock nothing) the
    server refuses every InnoDB write then (error 1665). Log this session's changes as MIXED, MariaDB's default
    (needs BINLOG ADMIN or SUPER); without that privilege, say what to change instead of failing on every write."""
    try:
        cur.execute("SET SESSION binlog_format = 'MIXED'")
    except Exception as exc:  # noqa: BLE001 - any refusal (1227: access denied) means the same to the operator
        raise ConfigError(
            f"{where}: the server's binlog_format is STATEMENT, under which it refuses the bridge's writes at READ "
            "COMMITTED (the isolation level that keeps the bridge from locking PHP's rows), and the database user "
            f"may not switch its own sessions to MIXED ({str(exc).splitlines()[0][:120]}): set binlog_format=MIXED "
            "(MariaDB's default) or ROW on the server, or grant the user BINLOG ADMIN (MariaDB) or "
            "SESSION_VARIABLES_ADMIN (MySQL)") from None


def _sqlite_url(dsn: str) -> URL | None:
    """The URL of a ``sqlite:`` DSN (None for other databases or an unreadable DSN: make_engine reports that)."""
    try:
        url = make_url(dsn)
    except Exception:  # noqa: BLE001 - make_engine reports an unreadable DSN
        return None
    return url if url.get_backend_name() == "sqlite" else None


def sqlite_file(dsn: str) -> str | None:
    """The file a ``sqlite:///path`` DSN names (None for other databases, ``:memory:`` or an unreadable DSN)."""
    url = _sqlite_url(dsn)
    if url is None or not url.database or url.database == ":memory:":
        return None
    return url.database


def sqlite_in_memory(dsn: str) -> bool:
    """``sqlite://`` or ``sqlite:///:memory:``: a database that is empty when a command opens it and gone when it
    ends (never what an operator means; the tests build stores on it directly)."""
    url = _sqlite_url(dsn)
    return url is not None and url.database in (None, "", ":memory:")


def make_engine(dsn: str, *, pool_size: int = 10) -> Engine:
    """An Engine for a SQLAlchemy URL (``mysql+pymysql://...`` or ``sqlite:///path``) set up like WordPress."""
    try:
        url = make_url(dsn)
    except Exception:  # noqa: BLE001
        shown = "" if mask_dsn(dsn) == UNREADABLE_DSN else f" {mask_dsn(dsn)}"
        raise ConfigError(f"dsn: cannot read the database DSN{shown}: expected "
                          "mysql+pymysql://user:password@host/database or sqlite:///path") from None
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb") and url.get_driver_name() != "pymysql":
        raise ConfigError(f"dsn: {mask_dsn(dsn)} asks for the {url.get_driver_name()!r} driver, which wch-bridge "
                          f"does not ship: write {backend}+pymysql://… instead")
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend in ("mysql", "mariadb"):
        return _mysql_engine(url, pool_size)
    raise ConfigError(f"unsupported database {backend!r} in DSN {mask_dsn(dsn)}: use mysql+pymysql:// or sqlite:///")


def _sqlite_engine(url: URL) -> Engine:
    """SQLite in WAL mode; writers serialize up front (``BEGIN IMMEDIATE``)."""
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # Writers serialize up front: a read-then-guarded-update sequence never sees a stale snapshot.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _mysql_engine(url: URL, pool_size: int) -> Engine:
    """MySQL/MariaDB through PyMySQL at READ COMMITTED, set up like WordPress, never waiting for a row lock."""
    query = dict(url.query)
    query.setdefault("charset", "utf8mb4")
    url = url.set(query=query)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=280,
        pool_size=pool_size,
        max_overflow=pool_size,
        isolation_level="READ COMMITTED",
    )

    @event.listens_for(engine, "connect")
    def _mysql_connect(dbapi_conn: Any, _rec: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SELECT @@SESSION.sql_mode, VERSION(), @@log_bin, @@SESSION.binlog_format")
        row = cur.fetchone()
        cur.execute("SET SESSION sql_mode = %s", (_wp_sql_mode(str(row[0] if row else "")),))
        if row and str(row[2]) == "1" and str(row[3]).upper() == "STATEMENT":
            _row_capable_binlog(cur, database_label(engine))
        # Never wait for a row lock: a statement that meets one fails at once (1205) and the bridge skips that
        # row, so it can never close a wait-for cycle with PHP's statements (store/queue/guarded.py).
        wait = NO_WAIT_MARIADB if "mariadb" in str(row[1] if row else "").lower() else NO_WAIT_MYSQL
        cur.execute(f"SET SESSION innodb_lock_wait_timeout = {wait}")
        cur.execute("SET time_zone = '+00:00'")
        cur.execute("SET NAMES utf8mb4")
        cur.close()

    _quiet_pool_reset(engine)
    return engine


def ddl(engine: Engine, statement: str) -> None:
    """Run one DDL statement, waiting for locks as any client would (DDL is an operator's or a test's act, not the
    worker's: the no-wait rule is for row changes beside PHP's runners)."""
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 50")
        try:
            conn.exec_driver_sql(statement)
            conn.commit()
        finally:
            if engine.dialect.name != "sqlite":
                conn.invalidate()  # not back to the pool: a fresh session gets the bridge's no-wait setting


@dataclass(frozen=True)
class DbInfo:
    dialect: str  # "mysql" or "sqlite"
    version: str
    is_mariadb: bool
    skip_locked: bool
    #: ``innodb_rollback_on_timeout``: a lock-wait timeout rolls back the whole transaction, not the statement.
    rollback_on_timeout: bool = False

    @classmethod
    def probe(cls, engine: Engine) -> DbInfo:
        """Dialect facts; a database that cannot be reached raises StoreError/TransientStoreError."""
        return translate_errors(cls._probe)(engine)

    @classmethod
    def _probe(cls, engine: Engine) -> DbInfo:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                version = conn.exec_driver_sql("select sqlite_version()").scalar_one()
            return cls("sqlite", str(version), False, False)
        with engine.connect() as conn:
            version, rollback = conn.execute(text("SELECT VERSION(), @@innodb_rollback_on_timeout")).one()
        version = str(version)
        return cls("mysql", version, "mariadb" in version.lower(), supports_skip_locked(version), bool(int(rollback)))


def supports_skip_locked(version: str) -> bool:
    """MySQL >= 8.0.1 or MariaDB >= 10.6.0, handling MariaDB's ``5.5.5-`` prefix (AS db_supports_skip_locked)."""
    v = version.lower()
    if v.startswith("5.5.5-"):
        v = v[len("5.5.5-"):]
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        return False
    parts = tuple(int(x) for x in m.groups())
    if "mariadb" in v:
        return parts >= (10, 6, 0)
    return parts >= (8, 0, 1)


def mysql_errno(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", None)
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientStoreError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    errno = mysql_errno(exc)
    if errno in TRANSIENT_MYSQL_ERRORS:
        return True
    if isinstance(exc, OperationalError):
        msg = str(getattr(exc, "orig", exc)).lower()
        return "database is locked" in msg or "lost connection" in msg or "gone away" in msg or "can't connect" in msg
    return False


P = ParamSpec("P")
R = TypeVar("R")


_MISSING_TABLE = re.compile(r"(?:no such table: |Table ')([\w.$]+?)'?(?: doesn't exist|$)")


def database_label(engine: Engine | None) -> str:
    """Where an engine points, for messages: the DSN with every secret masked."""
    if engine is None:
        return "the database"
    return mask_dsn(engine.url.render_as_string(hide_password=True))


def missing_table_message(table: str, engine: Engine | None, prefix: str | None = None) -> str:
    """One message for every "table does not exist": the table, the database (masked) and the prefix."""
    hint = f"is the prefix {prefix!r} right?" if prefix else "is the prefix right?"
    return (f"table {table} does not exist in {database_label(engine)}: {hint} "
            "(wch-bridge schema check; a new development database: wch-bridge schema install)")


def translate_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Map SQLAlchemy errors to StoreError / TransientStoreError (messages without DSN, password or phone)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            # a duplicate-key error quotes the key (ledger keys hold phone numbers): masked like every output
            detail = mask_phones_in_text(str(getattr(exc, "orig", None) or exc).splitlines()[0])[:300]
            if mysql_errno(exc) == ER_LOCK_WAIT_TIMEOUT:
                raise LockBusyError(f"a row was locked by another session: {detail}") from exc
            missing = _MISSING_TABLE.search(detail)
            if missing:
                engine = getattr(args[0], "engine", None) if args else None
                raise SchemaError(missing_table_message(missing.group(1).rsplit(".", 1)[-1], engine)) from exc
            if is_transient(exc):
                raise TransientStoreError(f"database temporarily unavailable: {detail}") from exc
            raise StoreError(f"database error: {detail}") from exc

    return wrapper


def retry_transient(fn: Callable[P, R], *, attempts: int = 5, base_delay: float = 0.05) -> Callable[P, R]:
    """Retry deadlocks, lost connections and the like a few times with back-off (they are not failures of the
    action). A row lock someone held (``LockBusyError``: the bridge never waits for locks) is tried again more
    often and sooner, with jitter, for up to about ``BUSY_RETRY_S``; nothing is held while it waits."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        failures = 0
        busy_until = None
        while True:
            try:
                return fn(*args, **kwargs)
            except LockBusyError:
                now = time.monotonic()
                busy_until = busy_until or now + BUSY_RETRY_S
                if now >= busy_until:
                    raise
                time.sleep(random.uniform(0.005, 0.04))  # noqa: S311 - jitter, not security
            except TransientStoreError:
                failures += 1
                if failures >= attempts:
                    raise
                time.sleep(base_delay * (2 ** (failures - 1)))

    return wrapper
