-- SQLite form of ../mysql/wch_carts_m0006.sql (the M00-06 status ENUM as a CHECK constraint).
CREATE TABLE IF NOT EXISTS {prefix}wch_carts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_phone VARCHAR(20) NOT NULL UNIQUE,
  items TEXT NULL,
  total DECIMAL(10,2) NOT NULL DEFAULT 0.00,
  coupon_code VARCHAR(50) NULL,
  shipping_address TEXT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active','completed','abandoned')),
  reminder_sent_at DATETIME NULL,
  expires_at DATETIME NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wc_status ON {prefix}wch_carts (status);
CREATE INDEX IF NOT EXISTS {prefix}wc_updated_at ON {prefix}wch_carts (updated_at);
CREATE INDEX IF NOT EXISTS {prefix}wc_expires_at ON {prefix}wch_carts (expires_at);
