-- SQLite form of ../mysql/wch_plugin.sql (status ENUM as a CHECK constraint).
CREATE TABLE IF NOT EXISTS {prefix}wch_carts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_phone VARCHAR(20) NOT NULL UNIQUE,
  items TEXT NULL,
  total DECIMAL(10,2) NOT NULL DEFAULT 0.00,
  coupon_code VARCHAR(50) NULL,
  shipping_address TEXT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active','abandoned','converted','expired')),
  reminder_sent_at DATETIME NULL,
  reminder_1_sent_at DATETIME NULL,
  reminder_2_sent_at DATETIME NULL,
  reminder_3_sent_at DATETIME NULL,
  abandoned_at DATETIME NULL,
  recovery_coupon_code VARCHAR(50) NULL,
  recovered INTEGER NOT NULL DEFAULT 0,
  recovered_order_id INTEGER NULL,
  recovered_revenue DECIMAL(10,2) NULL,
  recovered_at DATETIME NULL,
  expires_at DATETIME NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wc_status ON {prefix}wch_carts (status);
CREATE INDEX IF NOT EXISTS {prefix}wc_updated_at ON {prefix}wch_carts (updated_at);
CREATE INDEX IF NOT EXISTS {prefix}wc_expires_at ON {prefix}wch_carts (expires_at);
CREATE INDEX IF NOT EXISTS {prefix}wc_recovered ON {prefix}wch_carts (recovered);
CREATE TABLE IF NOT EXISTS {prefix}wch_customer_profiles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  phone VARCHAR(20) NOT NULL UNIQUE,
  wc_customer_id INTEGER NULL,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(100) NULL,
  last_known_address TEXT NULL,
  saved_addresses TEXT NULL,
  preferences TEXT NULL,
  tags TEXT NULL,
  total_orders INTEGER NOT NULL DEFAULT 0,
  total_spent DECIMAL(10,2) NOT NULL DEFAULT 0.00,
  opt_in_marketing INTEGER NOT NULL DEFAULT 0,
  notification_opt_out INTEGER NOT NULL DEFAULT 0,
  last_interaction_at DATETIME NULL,
  marketing_opted_at DATETIME NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcp_wc_customer_id ON {prefix}wch_customer_profiles (wc_customer_id);
CREATE TABLE IF NOT EXISTS {prefix}wch_conversations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_phone VARCHAR(20) NOT NULL,
  wa_conversation_id VARCHAR(100) NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','active','idle','escalated','closed')),
  state VARCHAR(50) NULL,
  assigned_agent_id INTEGER NULL,
  context TEXT NULL,
  message_count INTEGER NOT NULL DEFAULT 0,
  unread_count INTEGER NOT NULL DEFAULT 0,
  last_message_at DATETIME NULL DEFAULT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcc_customer_phone ON {prefix}wch_conversations (customer_phone);
CREATE TABLE IF NOT EXISTS {prefix}wch_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id INTEGER NOT NULL,
  direction VARCHAR(10) NOT NULL CHECK (direction IN ('inbound','outbound')),
  type VARCHAR(20) NOT NULL CHECK (type IN ('text','interactive','image','document','template','audio','video','location','reaction','button')),
  wa_message_id VARCHAR(100) NOT NULL UNIQUE,
  content TEXT NULL,
  raw_payload TEXT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','delivered','read','failed')),
  retry_count INTEGER NOT NULL DEFAULT 0,
  error_message TEXT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  sent_at DATETIME NULL,
  delivered_at DATETIME NULL,
  read_at DATETIME NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcm_conversation_id ON {prefix}wch_messages (conversation_id);
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
