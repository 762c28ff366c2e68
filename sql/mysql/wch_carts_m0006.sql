-- {prefix}wch_carts as the plugin created it at M00-06 (aa8a616, DB_VERSION 1.0.0): status ENUM('active',
-- 'completed','abandoned') has no 'expired', so the cart cleanup deletes idle carts as the plugin did
-- (../shared/reference/wch-plugin.md section 3.2). Tests of that older-schema path only:
-- schema.install(engine, prefix, parts=("wch_carts_m0006",)) instead of the "wch_plugin" part.
CREATE TABLE IF NOT EXISTS {prefix}wch_carts (
  id BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
  customer_phone VARCHAR(20) NOT NULL,
  items JSON NULL,
  total DECIMAL(10,2) NOT NULL DEFAULT 0.00,
  coupon_code VARCHAR(50) NULL,
  shipping_address JSON NULL,
  status ENUM('active','completed','abandoned') NOT NULL DEFAULT 'active',
  reminder_sent_at DATETIME NULL,
  expires_at DATETIME NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  PRIMARY KEY  (id),
  UNIQUE KEY customer_phone (customer_phone),
  KEY status (status),
  KEY updated_at (updated_at),
  KEY expires_at (expires_at)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
