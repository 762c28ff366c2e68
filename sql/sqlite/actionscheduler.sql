-- Action Scheduler tables for the embedded SQLite store: same columns, defaults and indexes as the MySQL
-- DDL in ../mysql/actionscheduler.sql (store schema 8), in SQLite's types.
CREATE TABLE IF NOT EXISTS {prefix}actionscheduler_actions (
        action_id INTEGER PRIMARY KEY AUTOINCREMENT,
        hook VARCHAR(191) NOT NULL,
        status VARCHAR(20) NOT NULL,
        scheduled_date_gmt DATETIME NULL DEFAULT '0000-00-00 00:00:00',
        scheduled_date_local DATETIME NULL DEFAULT '0000-00-00 00:00:00',
        priority INTEGER NOT NULL DEFAULT 10,
        args VARCHAR(191),
        schedule TEXT,
        group_id INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_attempt_gmt DATETIME NULL DEFAULT '0000-00-00 00:00:00',
        last_attempt_local DATETIME NULL DEFAULT '0000-00-00 00:00:00',
        claim_id INTEGER NOT NULL DEFAULT 0,
        extended_args VARCHAR(8000) DEFAULT NULL
        );
CREATE INDEX IF NOT EXISTS {prefix}aa_hook_status_scheduled_date_gmt ON {prefix}actionscheduler_actions (hook, status, scheduled_date_gmt);
CREATE INDEX IF NOT EXISTS {prefix}aa_status_scheduled_date_gmt ON {prefix}actionscheduler_actions (status, scheduled_date_gmt);
CREATE INDEX IF NOT EXISTS {prefix}aa_scheduled_date_gmt ON {prefix}actionscheduler_actions (scheduled_date_gmt);
CREATE INDEX IF NOT EXISTS {prefix}aa_args ON {prefix}actionscheduler_actions (args);
CREATE INDEX IF NOT EXISTS {prefix}aa_group_id ON {prefix}actionscheduler_actions (group_id);
CREATE INDEX IF NOT EXISTS {prefix}aa_last_attempt_gmt ON {prefix}actionscheduler_actions (last_attempt_gmt);
CREATE INDEX IF NOT EXISTS {prefix}aa_claim_id_status_priority_scheduled_date_gmt ON {prefix}actionscheduler_actions (claim_id, status, priority, scheduled_date_gmt);
CREATE INDEX IF NOT EXISTS {prefix}aa_status_last_attempt_gmt ON {prefix}actionscheduler_actions (status, last_attempt_gmt);
CREATE INDEX IF NOT EXISTS {prefix}aa_status_claim_id ON {prefix}actionscheduler_actions (status, claim_id);

CREATE TABLE IF NOT EXISTS {prefix}actionscheduler_claims (
        claim_id INTEGER PRIMARY KEY AUTOINCREMENT,
        date_created_gmt DATETIME NULL DEFAULT '0000-00-00 00:00:00'
        );
CREATE INDEX IF NOT EXISTS {prefix}ac_date_created_gmt ON {prefix}actionscheduler_claims (date_created_gmt);

CREATE TABLE IF NOT EXISTS {prefix}actionscheduler_groups (
        group_id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug VARCHAR(255) NOT NULL
        );
CREATE INDEX IF NOT EXISTS {prefix}ag_slug ON {prefix}actionscheduler_groups (slug);

CREATE TABLE IF NOT EXISTS {prefix}actionscheduler_logs (
        log_id INTEGER PRIMARY KEY AUTOINCREMENT,
        action_id INTEGER NOT NULL,
        message TEXT NOT NULL,
        log_date_gmt DATETIME NULL DEFAULT '0000-00-00 00:00:00',
        log_date_local DATETIME NULL DEFAULT '0000-00-00 00:00:00'
        );
CREATE INDEX IF NOT EXISTS {prefix}al_action_id ON {prefix}actionscheduler_logs (action_id);
CREATE INDEX IF NOT EXISTS {prefix}al_log_date_gmt ON {prefix}actionscheduler_logs (log_date_gmt);
