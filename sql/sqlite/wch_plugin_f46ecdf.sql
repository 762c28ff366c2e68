-- SQLite form of ../mysql/wch_plugin_f46ecdf.sql (ENUMs as CHECK constraints).
CREATE TABLE IF NOT EXISTS {prefix}wch_conversations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_phone VARCHAR(20) NOT NULL,
  wa_conversation_id VARCHAR(100) NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','active','closed')),
  assigned_agent_id INTEGER NULL,
  context TEXT NULL,
  last_message_at DATETIME NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcc_customer_phone ON {prefix}wch_conversations (customer_phone);
CREATE TABLE IF NOT EXISTS {prefix}wch_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id INTEGER NOT NULL,
  direction VARCHAR(10) NOT NULL CHECK (direction IN ('inbound','outbound')),
  message_type VARCHAR(20) NOT NULL CHECK (message_type IN ('text','interactive','image','document','template')),
  wa_message_id VARCHAR(100) NOT NULL UNIQUE,
  content TEXT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'sent' CHECK (status IN ('sent','delivered','read','failed')),
  created_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcm_conversation_id ON {prefix}wch_messages (conversation_id);
CREATE TABLE IF NOT EXISTS {prefix}wch_carts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_phone VARCHAR(20) NOT NULL UNIQUE,
  items TEXT NULL,
  total DECIMAL(10,2) NOT NULL DEFAULT 0.00,
  coupon_code VARCHAR(50) NULL,
  shipping_address TEXT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active','completed','abandoned')),
  reminder_sent_at DATETIME NULL,
  reminder_1_sent_at DATETIME NULL,
  reminder_2_sent_at DATETIME NULL,
  reminder_3_sent_at DATETIME NULL,
  recovery_coupon_code VARCHAR(50) NULL,
  recovered INTEGER NOT NULL DEFAULT 0,
  recovered_order_id INTEGER NULL,
  recovered_revenue DECIMAL(10,2) NULL,
  expires_at DATETIME NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wc_status ON {prefix}wch_carts (status);
CREATE INDEX IF NOT EXISTS {prefix}wc_updated_at ON {prefix}wch_carts (updated_at);
CREATE TABLE IF NOT EXISTS {prefix}wch_customer_profiles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  phone VARCHAR(20) NOT NULL UNIQUE,
  wc_customer_id INTEGER NULL,
  name VARCHAR(100) NOT NULL,
  saved_addresses TEXT NULL,
  preferences TEXT NULL,
  opt_in_marketing INTEGER NOT NULL DEFAULT 0,
  notification_opt_out INTEGER NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE TABLE IF NOT EXISTS {prefix}wch_notification_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id INTEGER NOT NULL,
  notification_type VARCHAR(50) NOT NULL,
  customer_phone VARCHAR(20) NOT NULL,
  template_name VARCHAR(100) NULL,
  wa_message_id VARCHAR(100) NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','sent','delivered','read','failed')),
  retry_count INTEGER NOT NULL DEFAULT 0,
  sent_at DATETIME NULL,
  delivered_at DATETIME NULL,
  read_at DATETIME NULL,
  error_message TEXT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcn_order_id ON {prefix}wch_notification_log (order_id);
