-- Tables owned by wch-bridge (created by `wch-bridge schema install` and on the first `wch-bridge run`).
-- Recommended index for the bridge's pick-up query: the full claim order of Action Scheduler, so the due
-- scan reads in index order (no filesort). `wch-bridge schema check` reports it; `schema install` adds it.
-- @index {prefix}actionscheduler_actions wch_bridge_claim_order (claim_id, status, priority, attempts, scheduled_date_gmt, action_id)
-- Indexes the status report (`wch-bridge report`, docs/report.md) relies on to stay fast on millions of rows:
-- hooks x statuses, past-due by hook and the pickup-lag sample read this one only (covering):
-- @index {prefix}actionscheduler_actions wch_bridge_report_queue (status, group_id, hook, scheduled_date_gmt)
-- throughput per interval, failures in the window and the latest failures (covering range on the window):
-- @index {prefix}actionscheduler_actions wch_bridge_report_finished (status, last_attempt_gmt, group_id, hook)
-- the ledger's window aggregates (messages by kind/status, campaigns, error codes) and the auth-pause check:
-- @index {prefix}wch_bridge_messages wch_bridge_msg_report (created_at, campaign_id, kind, status, error_code)
-- @index {prefix}wch_bridge_messages wch_bridge_msg_error_code (error_code, updated_at)

CREATE TABLE IF NOT EXISTS {prefix}wch_bridge_messages (
        id bigint(20) unsigned NOT NULL auto_increment,
        idempotency_key varchar(191) NOT NULL,
        action_id bigint(20) unsigned NOT NULL default '0',
        hook varchar(191) NOT NULL default '',
        campaign_id varchar(100) NULL,
        recipient varchar(32) NOT NULL,
        kind varchar(20) NOT NULL,
        payload longtext NULL,
        status varchar(20) NOT NULL default 'pending',
        wa_message_id varchar(128) NULL,
        error_code int(11) NULL,
        error_text text NULL,
        attempts int(11) NOT NULL default '0',
        created_at datetime NOT NULL,
        updated_at datetime NOT NULL,
        sent_at datetime NULL,
        PRIMARY KEY  (id),
        UNIQUE KEY idempotency_key (idempotency_key),
        KEY status_updated_at (status, updated_at),
        KEY campaign_id (campaign_id),
        KEY recipient (recipient),
        KEY action_id (action_id),
        KEY created_at (created_at)
        ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}wch_bridge_workers (
        worker_id varchar(64) NOT NULL,
        host varchar(255) NOT NULL,
        pid int(11) NOT NULL,
        version varchar(32) NOT NULL,
        started_at datetime NOT NULL,
        heartbeat_at datetime NOT NULL,
        stopped_at datetime NULL,
        in_hand int(11) NOT NULL default '0',
        in_hand_ids text NULL,
        PRIMARY KEY  (worker_id),
        KEY heartbeat_at (heartbeat_at)
        ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
