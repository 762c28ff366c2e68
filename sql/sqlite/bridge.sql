-- Tables owned by wch-bridge, SQLite form of ../mysql/bridge.sql.
-- No index on Action Scheduler's tables (see ../mysql/bridge.sql). SQLite index names are per database, hence the prefix.
-- @index {prefix}wch_bridge_messages {prefix}wbm_report (created_at, campaign_id, kind, status, error_code)
-- @index {prefix}wch_bridge_messages {prefix}wbm_error_code (error_code, updated_at)

CREATE TABLE IF NOT EXISTS {prefix}wch_bridge_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key VARCHAR(191) NOT NULL UNIQUE,
        action_id INTEGER NOT NULL DEFAULT 0,
        hook VARCHAR(191) NOT NULL DEFAULT '',
        campaign_id VARCHAR(100) NULL,
        recipient VARCHAR(32) NOT NULL,
        kind VARCHAR(20) NOT NULL,
        payload TEXT NULL,
        status VARCHAR(20) NOT NULL DEFAULT 'pending',
        wa_message_id VARCHAR(128) NULL,
        error_code INTEGER NULL,
        error_text TEXT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at DATETIME NOT NULL,
        updated_at DATETIME NOT NULL,
        sent_at DATETIME NULL
        );
CREATE INDEX IF NOT EXISTS {prefix}wbm_status_updated_at ON {prefix}wch_bridge_messages (status, updated_at);
CREATE INDEX IF NOT EXISTS {prefix}wbm_campaign_id ON {prefix}wch_bridge_messages (campaign_id);
CREATE INDEX IF NOT EXISTS {prefix}wbm_recipient ON {prefix}wch_bridge_messages (recipient);
CREATE INDEX IF NOT EXISTS {prefix}wbm_action_id ON {prefix}wch_bridge_messages (action_id);
CREATE INDEX IF NOT EXISTS {prefix}wbm_created_at ON {prefix}wch_bridge_messages (created_at);

CREATE TABLE IF NOT EXISTS {prefix}wch_bridge_workers (
        worker_id VARCHAR(64) PRIMARY KEY,
        host VARCHAR(255) NOT NULL,
        pid INTEGER NOT NULL,
        version VARCHAR(32) NOT NULL,
        started_at DATETIME NOT NULL,
        heartbeat_at DATETIME NOT NULL,
        stopped_at DATETIME NULL,
        in_hand INTEGER NOT NULL DEFAULT 0,
        in_hand_ids TEXT NULL,
        served_groups TEXT NULL,
        served_hooks TEXT NULL
        );
CREATE INDEX IF NOT EXISTS {prefix}wbw_heartbeat_at ON {prefix}wch_bridge_workers (heartbeat_at);

CREATE TABLE IF NOT EXISTS {prefix}wch_bridge_queue (
        action_id INTEGER PRIMARY KEY,
        hook VARCHAR(191) NOT NULL,
        group_id INTEGER NOT NULL DEFAULT 0,
        priority INTEGER NOT NULL DEFAULT 10,
        attempts INTEGER NOT NULL DEFAULT 0,
        scheduled_date_gmt DATETIME NOT NULL
        );
CREATE INDEX IF NOT EXISTS {prefix}wbq_claim_order ON {prefix}wch_bridge_queue (priority, attempts, scheduled_date_gmt, action_id);
CREATE INDEX IF NOT EXISTS {prefix}wbq_scheduled_date_gmt ON {prefix}wch_bridge_queue (scheduled_date_gmt);
