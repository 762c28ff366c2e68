-- Tables owned by wch-bridge (created by `wch-bridge schema install` and on the first `wch-bridge run`).
-- The bridge adds NO index to Action Scheduler's tables: any index there changes PHP's own plans (a PHP runner
-- alone deadlocked against itself with the bridge's former indexes present; docs/guarantees.md).
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
        served_groups text NULL,
        served_hooks text NULL,
        PRIMARY KEY  (worker_id),
        KEY heartbeat_at (heartbeat_at)
        ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

-- The bridge's pick-up queue: due-order copies of the pending actions of the served hooks, fed by a scan of new
-- action_ids on Action Scheduler's primary key (store/claim_queue.py). Only a hint of what may be due: the
-- guarded start UPDATE on Action Scheduler's own row decides.
CREATE TABLE IF NOT EXISTS {prefix}wch_bridge_queue (
        action_id bigint(20) unsigned NOT NULL,
        hook varchar(191) NOT NULL,
        group_id bigint(20) unsigned NOT NULL default '0',
        priority tinyint(10) unsigned NOT NULL default '10',
        attempts int(11) NOT NULL default '0',
        scheduled_date_gmt datetime NOT NULL,
        PRIMARY KEY  (action_id),
        KEY claim_order (priority, attempts, scheduled_date_gmt, action_id),
        KEY scheduled_date_gmt (scheduled_date_gmt)
        ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
