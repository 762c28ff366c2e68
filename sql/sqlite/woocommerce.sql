-- SQLite form of ../mysql/woocommerce.sql.
CREATE TABLE IF NOT EXISTS {prefix}woocommerce_order_items (
  order_item_id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_item_name TEXT NOT NULL,
  order_item_type VARCHAR(200) NOT NULL DEFAULT '',
  order_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}woi_order_id ON {prefix}woocommerce_order_items (order_id);

CREATE TABLE IF NOT EXISTS {prefix}woocommerce_order_itemmeta (
  meta_id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_item_id INTEGER NOT NULL,
  meta_key VARCHAR(255) DEFAULT NULL,
  meta_value TEXT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}woim_order_item_id ON {prefix}woocommerce_order_itemmeta (order_item_id);
CREATE INDEX IF NOT EXISTS {prefix}woim_meta_key ON {prefix}woocommerce_order_itemmeta (meta_key);

CREATE TABLE IF NOT EXISTS {prefix}wc_product_meta_lookup (
  product_id INTEGER NOT NULL PRIMARY KEY,
  sku VARCHAR(100) NULL DEFAULT '',
  global_unique_id VARCHAR(100) NULL DEFAULT '',
  virtual INTEGER NULL DEFAULT 0,
  downloadable INTEGER NULL DEFAULT 0,
  min_price DECIMAL(19,4) NULL DEFAULT NULL,
  max_price DECIMAL(19,4) NULL DEFAULT NULL,
  onsale INTEGER NULL DEFAULT 0,
  stock_quantity REAL NULL DEFAULT NULL,
  stock_status VARCHAR(100) NULL DEFAULT 'instock',
  rating_count INTEGER NULL DEFAULT 0,
  average_rating DECIMAL(3,2) NULL DEFAULT 0.00,
  total_sales INTEGER NULL DEFAULT 0,
  tax_status VARCHAR(100) NULL DEFAULT 'taxable',
  tax_class VARCHAR(100) NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS {prefix}wpml_stock_status ON {prefix}wc_product_meta_lookup (stock_status);
CREATE INDEX IF NOT EXISTS {prefix}wpml_min_max_price ON {prefix}wc_product_meta_lookup (min_price, max_price);
CREATE INDEX IF NOT EXISTS {prefix}wpml_sku ON {prefix}wc_product_meta_lookup (sku);

CREATE TABLE IF NOT EXISTS {prefix}wc_orders (
  id INTEGER NOT NULL PRIMARY KEY,
  status VARCHAR(20) NULL,
  currency VARCHAR(10) NULL,
  type VARCHAR(20) NULL,
  tax_amount DECIMAL(26,8) NULL,
  total_amount DECIMAL(26,8) NULL,
  customer_id INTEGER NULL,
  billing_email VARCHAR(320) NULL,
  date_created_gmt DATETIME NULL,
  date_updated_gmt DATETIME NULL,
  parent_order_id INTEGER NULL,
  payment_method VARCHAR(100) NULL,
  payment_method_title TEXT NULL,
  transaction_id VARCHAR(100) NULL,
  ip_address VARCHAR(100) NULL,
  user_agent TEXT NULL,
  customer_note TEXT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wco_status ON {prefix}wc_orders (status);
CREATE INDEX IF NOT EXISTS {prefix}wco_date_created ON {prefix}wc_orders (date_created_gmt);
CREATE INDEX IF NOT EXISTS {prefix}wco_type_status_date ON {prefix}wc_orders (type, status, date_created_gmt);
CREATE INDEX IF NOT EXISTS {prefix}wco_parent_order_id ON {prefix}wc_orders (parent_order_id);

CREATE TABLE IF NOT EXISTS {prefix}wc_order_addresses (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id INTEGER NOT NULL,
  address_type VARCHAR(20) NULL,
  first_name TEXT NULL,
  last_name TEXT NULL,
  company TEXT NULL,
  address_1 TEXT NULL,
  address_2 TEXT NULL,
  city TEXT NULL,
  state TEXT NULL,
  postcode TEXT NULL,
  country TEXT NULL,
  email VARCHAR(320) NULL,
  phone VARCHAR(100) NULL,
  UNIQUE (address_type, order_id)
);
CREATE INDEX IF NOT EXISTS {prefix}wcoa_order_id ON {prefix}wc_order_addresses (order_id);
CREATE INDEX IF NOT EXISTS {prefix}wcoa_phone ON {prefix}wc_order_addresses (phone);

CREATE TABLE IF NOT EXISTS {prefix}wc_order_operational_data (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id INTEGER NULL UNIQUE,
  created_via VARCHAR(100) NULL,
  woocommerce_version VARCHAR(20) NULL,
  prices_include_tax INTEGER NULL,
  coupon_usages_are_counted INTEGER NULL,
  download_permission_granted INTEGER NULL,
  cart_hash VARCHAR(100) NULL,
  new_order_email_sent INTEGER NULL,
  order_key VARCHAR(100) NULL,
  order_stock_reduced INTEGER NULL,
  date_paid_gmt DATETIME NULL,
  date_completed_gmt DATETIME NULL,
  shipping_tax_amount DECIMAL(26,8) NULL,
  shipping_total_amount DECIMAL(26,8) NULL,
  discount_tax_amount DECIMAL(26,8) NULL,
  discount_total_amount DECIMAL(26,8) NULL,
  recorded_sales INTEGER NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcood_order_key ON {prefix}wc_order_operational_data (order_key);

CREATE TABLE IF NOT EXISTS {prefix}wc_orders_meta (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id INTEGER NULL,
  meta_key VARCHAR(255),
  meta_value TEXT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}wcom_order_id_meta_key ON {prefix}wc_orders_meta (order_id, meta_key);
