"""Wiring: the only place that builds concrete collaborators (store, WhatsApp client, worker, report) from
Settings. Everything else receives them, so tests can pass real alternatives without patching."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from wch_bridge import config, hooks, objectcache, wpsettings
from wch_bridge.errors import ConfigError, StoreError, WchBridgeError
from wch_bridge.handlers import Handler, Services, default_registry
from wch_bridge.health import HealthFacts, live_worker_seconds, unowned_text
from wch_bridge.hooks import WHATSAPP_HOOKS
from wch_bridge.metrics import ActionObserver, chain_ticks
from wch_bridge.models import Action
from wch_bridge.owners import OWNED_OPTION
from wch_bridge.report import ReportTicker, build_report_data
from wch_bridge.settings import DEFAULT_API_VERSION, Settings, dsn_secrets, mask_dsn, mask_secrets_in_text
from wch_bridge.store import ActionStore, Engine, make_engine, ownership, paused
from wch_bridge.store import operator_queries as queries
from wch_bridge.store import reports as reporting
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.engine import sqlite_in_memory
from wch_bridge.store.ledger import MessageLedger
from wch_bridge.store.queue import new_rows
from wch_bridge.store.reports.health_facts import read_health_facts
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.store.workers import WorkerRegistry
from wch_bridge.timeutil import Clock
from wch_bridge.whatsapp import ApiGate, WhatsAppClient
from wch_bridge.worker import Worker
from wch_bridge.worker.single import RunOutcome, run_now

log = logging.getLogger("wch_bridge.app")


def open_engine(settings: Settings) -> Engine:
    if sqlite_in_memory(settings.dsn):
        raise ConfigError(f"dsn: {mask_dsn(settings.dsn)} is an in-memory SQLite database, empty when the command "
                          "starts and gone when it ends: give a file, sqlite:///path/to/wch.sqlite")
    return make_engine(settings.dsn, pool_size=max(5, settings.concurrency + 2))


def open_store(settings: Settings, clock: Clock | None = None) -> ActionStore:
    """The store; an unreachable database is one clear StoreError naming where it looked (password masked)."""
    try:
        return ActionStore(open_engine(settings), settings.prefix, clock=clock or Clock(speed=settings.clock_speed))
    except StoreError as exc:
        reason = str(exc).removeprefix("database temporarily unavailable: ").removeprefix("database error: ")
        raise type(exc)(f"cannot reach the database {mask_dsn(settings.dsn)}: "
                        f"{mask_secrets_in_text(reason, settings.dsn)}") from exc
    except WchBridgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a driver failing while connecting (bad charset...): one clear error
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = mask_secrets_in_text(lines[0] if lines else type(exc).__name__, settings.dsn)[:300]
        raise StoreError(f"cannot reach the database {mask_dsn(settings.dsn)}: {reason}") from exc


def ensure_bridge_tables(store: ActionStore) -> None:
    """The bridge's own tables (message ledger, worker heartbeats, pick-up queue) are created on first run. The
    bridge never adds an index to the site's Action Scheduler tables."""
    schema_mod.install(store.engine, store.prefix, parts=("bridge",))
    for added in schema_mod.ensure_columns(store.engine, store.prefix):
        log.info("added the column %s (what each worker serves, read by the must-use plugin)", added)


def plugin_layers(settings: Settings, wp: WordPressData) -> dict[str, dict[str, object]]:
    """The two lowest configuration layers (``wch_bridge.config``): the plugin's ``wch_settings`` (with the access
    token ``api.access_token`` decrypted when AUTH_KEY/AUTH_SALT are known and no token was given) and the
    AUTH_KEY/AUTH_SALT read from ``--wp-config`` (each, like ``wp_salt()``, from the ``auth_key``/``auth_salt``
    options when the constant is missing, the sample placeholder or duplicated)."""
    plugin = wpsettings.plugin_settings(wp.wch_settings())
    auth_key, auth_salt = settings.auth_key, settings.auth_salt
    from_wp_config: dict[str, object] = {}
    if settings.wp_config and not (auth_key and auth_salt):
        try:
            text = Path(settings.wp_config).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(f"wp_config: cannot read {settings.wp_config}: {exc.strerror or exc}") from None
        cfg = wpsettings.parse_wp_config(text)
        # wp_salt('auth'): a constant that is missing, the placeholder or duplicated gives way to the option
        # WordPress generated and stored in wp_options (auth_key / auth_salt)
        key = cfg.auth_key or wp.get_option_raw("auth_key") or None
        salt = cfg.auth_salt or wp.get_option_raw("auth_salt") or None
        from_wp_config = {k: v for k, v in (("auth_key", key), ("auth_salt", salt)) if v}
        auth_key, auth_salt = auth_key or key, auth_salt or salt
        if cfg.table_prefix and cfg.table_prefix != settings.prefix:
            log.warning("wp-config.php sets $table_prefix = %r but the bridge uses prefix %r",
                        cfg.table_prefix, settings.prefix)
    token = None
    if not settings.whatsapp_token and plugin.encrypted_token and auth_key and auth_salt:
        token = wpsettings.decrypt_secret(plugin.encrypted_token, auth_key, auth_salt)
    return {"wch_settings": config.plugin_layer(plugin, token), "wp_config": from_wp_config}


def resolve_whatsapp(settings: Settings, wp: WordPressData) -> Settings:
    """WhatsApp settings by the precedence of ``wch_bridge.config``: CLI option > ``WCH_BRIDGE_*`` env var >
    config file (all already in ``settings``) > the plugin's ``wch_settings`` > default. Only fields still unset
    (None) take the plugin's value. The token is ``WCH_BRIDGE_WHATSAPP_TOKEN`` (or ``_TOKEN_FILE``), else
    ``api.access_token`` decrypted with AUTH_KEY/AUTH_SALT (env vars, or read from ``--wp-config``)."""
    resolved = config.fill_unset(settings, plugin_layers(settings, wp))
    if resolved.whatsapp_api_version is None:
        resolved = resolved.with_(whatsapp_api_version=DEFAULT_API_VERSION)
    return resolved


def build_whatsapp_client(settings: Settings) -> WhatsAppClient | None:
    """One client (and one ApiGate: messages/second + shared back-off) per worker; None when not configured."""
    if not (settings.whatsapp_token and settings.whatsapp_phone_number_id):
        return None
    return WhatsAppClient(
        base_url=settings.whatsapp_api_base, api_version=settings.whatsapp_api_version or DEFAULT_API_VERSION,
        phone_number_id=settings.whatsapp_phone_number_id, catalog_id=settings.whatsapp_catalog_id,
        token=settings.whatsapp_token, timeout=settings.whatsapp_timeout,
        gate=ApiGate(settings.messages_per_second),
    )


def build_services(settings: Settings, store: ActionStore) -> Services:
    """WordPress data, the message ledger and the WhatsApp client (settings resolved against wch_settings)."""
    wp = WordPressData(store.engine, store.prefix, clock=store.clock, site=store.site)
    ledger = MessageLedger(store.engine, store.prefix, clock=store.clock)
    resolved = resolve_whatsapp(settings, wp)
    return Services(clock=store.clock, site=store.site, settings=resolved, whatsapp=build_whatsapp_client(resolved),
                    wp=wp, ledger=ledger)


def serving_registry(services: Services) -> dict[str, Handler]:
    """Every hook, minus those that call WhatsApp when no client is configured (they stay pending)."""
    registry = default_registry()
    if services.whatsapp is None:
        log.warning("WhatsApp is not configured (access token and phone number id): not serving %s; set "
                    "WCH_BRIDGE_WHATSAPP_TOKEN (or AUTH_KEY/AUTH_SALT / WCH_BRIDGE_WP_CONFIG to decrypt the "
                    "plugin's token) and --whatsapp-phone-number-id or the plugin's settings",
                    ", ".join(sorted(WHATSAPP_HOOKS)))
        registry = {hook: fn for hook, fn in registry.items() if hook not in WHATSAPP_HOOKS}
    return registry


def ensure_recurring(store: ActionStore, settings: Settings, spec: hooks.HookSpec | None = None,
                     wp: WordPressData | None = None) -> int:
    """As the plugin does on ``init``: schedule a recurring hook of ``wch_bridge.hooks`` (the hourly cart cleanup;
    args ``[]``, group ``wch``) when no pending or running instance exists in the served groups, and only where the
    plugin is installed (its ``wch_carts`` table exists: elsewhere each run would only warn). Returns the new id,
    or 0."""
    spec = spec or hooks.RECURRING[0]
    interval = spec.recurrence_seconds or 0
    if settings.hooks is not None and spec.name not in settings.hooks:
        return 0
    wp = wp or WordPressData(store.engine, store.prefix, clock=store.clock)
    if not wp.carts_table_exists():
        log.info("%swch_carts not found: the plugin is not installed under this prefix, so the recurring %s is "
                 "not scheduled", store.prefix, spec.name)
        return 0
    group_ids = list(store.group_ids(settings.groups, create=True).values())
    if store.has_pending_like(spec.name, group_ids):
        return 0
    now = store.now()
    group = "wch" if "wch" in settings.groups else settings.groups[0]
    row = new_rows.recurring_row(spec.name, now, interval, group=group)
    new_id = store.insert_action(row, unique=True, now=now)
    if new_id:
        log.info("scheduled the recurring %s (every %d s, group %s) as action #%d",
                 spec.name, interval, group, new_id)
    return new_id


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Strings that must never appear in output: token, salts, the DSN's passwords (user-info and query string)."""
    out = [s for s in (settings.whatsapp_token, settings.auth_key, settings.auth_salt) if s]
    return tuple(out) + dsn_secrets(settings.dsn)


def report_data(settings: Settings, store: ActionStore, window: str = "24h") -> dict[str, Any]:
    """The report's data (``wch_bridge.report``): aggregate queries (``store.reports``), then health + masking."""
    now = store.now()
    scope = reporting.open_scope(store.engine, store.t, settings.groups, now, window, store.site)
    sections = reporting.collect(scope, live_seconds=live_worker_seconds(settings))
    sections["paused_hooks"] = sorted(paused.paused_hooks(store))  # `hooks pause`: in the JSON, not drawn yet
    return build_report_data(sections, health_facts(settings, store, now), window=window, now=now, dsn=settings.dsn,
                             prefix=settings.prefix, groups=settings.groups)


def health_facts(settings: Settings, store: ActionStore, now: datetime | None = None) -> HealthFacts:
    """The facts the health verdict is judged from (``wch_bridge.health``); a database error is itself a fact
    (``unreadable``: critical), so the report still renders."""
    now = now or store.now()
    try:
        return read_health_facts(store, settings.groups, now, live_worker_seconds(settings),
                                 objectcache.site_drop_in(settings.wp_config))
    except WchBridgeError as exc:
        return HealthFacts(now=now, live_seconds=live_worker_seconds(settings), unreadable=str(exc).splitlines()[0][:200])


def build_report_ticker(settings: Settings, store: ActionStore) -> ReportTicker | None:
    """``--report-out``: the worker regenerates the HTML report at most every ``--report-every`` seconds."""
    if not settings.report_out:
        return None
    return ReportTicker(lambda: report_data(settings, store), settings.report_out, settings.report_every)


def build_worker(
    settings: Settings,
    store: ActionStore | None = None,
    *,
    registry: dict[str, Handler] | None = None,
    services: Services | None = None,
) -> Worker:
    store = store or open_store(settings)
    ensure_bridge_tables(store)
    services = services or build_services(settings, store)
    registry = registry if registry is not None else serving_registry(services)
    check_narrowed_hooks(settings, registry)
    for spec in hooks.RECURRING:
        if spec.name in registry:
            ensure_recurring(store, settings, spec, services.wp)
    secrets = secrets_of(settings)
    if isinstance(services.settings, Settings):
        secrets += tuple(x for x in secrets_of(services.settings) if x not in secrets)
    observer = ActionObserver(clock_speed=store.clock.speed)  # per-action log line + metrics (wch_bridge.metrics)
    worker = Worker(store, registry, settings, services,
                    secrets=secrets, on_result=observer.on_result,
                    on_tick=chain_ticks(observer.on_tick, build_report_ticker(settings, store)),
                    rerunnable=hooks.RERUNNABLE_HOOKS,
                    heartbeats=WorkerRegistry(store.engine, store.t),
                    send_gate=getattr(services.whatsapp, "gate", None))
    worker.observer = observer  # type: ignore[attr-defined]
    worker.outcomes.log_failures = False  # the observer's line is the one line of a failure
    publish_ownership(store, settings.groups, worker.hooks, live_worker_seconds(settings))
    return worker


def check_narrowed_hooks(settings: Settings, registry: dict[str, Handler]) -> None:
    """``--hooks`` naming a hook the bridge has no handler for (a typo, or a hook only PHP runs) fails at start:
    the worker would otherwise claim it for PHP and leave it to nobody."""
    unknown = [h for h in settings.hooks or () if h not in registry and h not in hooks.BY_NAME]
    if unknown:
        raise ConfigError(f"hooks: no handler for {', '.join(unknown)}; the bridge runs "
                          f"{', '.join(hooks.NAMES)} (see `wch-bridge hooks list`)")


def publish_ownership(store: ActionStore, groups: tuple[str, ...], served: list[str], live_seconds: float) -> None:
    """Write the option ``wch_bridge_owned`` for the must-use plugin (this worker's pairs and the other live
    workers'); a failure is logged, never fatal (the heartbeat row carries the same facts)."""
    try:
        pairs = ownership.publish(store, {(g, h) for g in groups for h in served}, live_seconds)
    except StoreError as exc:
        log.warning("could not publish what this worker owns (option %s): %s", OWNED_OPTION, exc)
        return
    if pairs is not None:
        log.info("published ownership of %d (group, hook) pair(s) for the must-use plugin", len(pairs))
    warn_unowned(store, groups, live_seconds)


def warn_unowned(store: ActionStore, groups: tuple[str, ...], live_seconds: float) -> None:
    """At a worker's start: one warning naming the pending hooks of its groups that no one runs (no handler here,
    PHP kept off them or without a callback), as ``status`` reports them."""
    try:
        stranded = ownership.unowned(store, groups, live_seconds)
    except StoreError:
        return
    if stranded:
        log.warning("%s They stay pending.", unowned_text(stranded))


def start_metrics(worker: Worker) -> object | None:
    """``--metrics-port``: serve /metrics, /healthz and /readyz for ``worker`` (built by :func:`build_worker`)."""
    s = worker.settings
    observer = getattr(worker, "observer", None)
    if s.metrics_port is None or observer is None:
        return None
    from wch_bridge.metrics import serve

    client = getattr(worker.services, "whatsapp", None)
    return serve(worker, observer, host=s.metrics_host, port=s.metrics_port, gate=getattr(client, "gate", None))


#: ``run --once`` exit codes beyond 0 (done), 1 (usage / second signal) and 2 (environment), so cron notices.
EXIT_SENDS_HALTED = 3
EXIT_WORK_LEFT = 4


def once_exit_code(worker: Worker, code: int) -> tuple[int, str | None]:
    """After ``run --once``: 3 when WhatsApp sends were halted (auth error 190 and the like), 4 when due actions of
    hooks the bridge runs were left pending because this worker could not serve them (no WhatsApp settings, or a
    halt); else ``code``. The second item says why, for the last log line."""
    if code:
        return code, None
    gate = getattr(getattr(worker.services, "whatsapp", None), "gate", None)
    if gate is not None and getattr(gate, "halted", False):
        return EXIT_SENDS_HALTED, f"WhatsApp sends halted ({gate.halt_reason or 'auth error'})"
    wanted = set(worker.settings.hooks or default_registry())
    unserved = sorted(h for h in wanted if h not in worker.registry)
    if not unserved:
        return code, None
    try:
        gids = queries.served_group_ids(worker.store, worker.settings.groups)
        left = queries.due_pending_by_hook(worker.store, gids, unserved, worker.store.now())
    except StoreError:
        return code, None
    if not left:
        return code, None
    what = ", ".join(f"{n} {h}" for h, n in sorted(left.items()))
    return EXIT_WORK_LEFT, f"left due work this worker cannot serve: {what}"


def run_action_now(settings: Settings, store: ActionStore, action: Action) -> RunOutcome:
    """``jobs run ID``: one pending action of a served group, now, through the worker's guarded path
    (``worker.single``) with the services and handlers ``run`` would use. ConfigError (nothing changed) when its
    hook has no handler here (unknown to the bridge, or a WhatsApp hook without WhatsApp settings)."""
    services = build_services(settings, store)
    registry = default_registry()
    if services.whatsapp is None:
        registry = {hook: fn for hook, fn in registry.items() if hook not in WHATSAPP_HOOKS}
    if action.hook not in registry:
        why = ("WhatsApp is not configured (access token and phone number id)" if action.hook in WHATSAPP_HOOKS
               else f"the bridge runs {', '.join(hooks.NAMES)}")
        raise ConfigError(f"action #{action.action_id}: no handler for {action.hook}: {why}; nothing was changed")
    secrets = secrets_of(settings)
    if isinstance(services.settings, Settings):
        secrets += tuple(x for x in secrets_of(services.settings) if x not in secrets)
    return run_now(store, registry, services, settings, action, secrets=secrets, rerunnable=hooks.RERUNNABLE_HOOKS)
