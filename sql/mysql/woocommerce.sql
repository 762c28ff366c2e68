-- WooCommerce tables the bridge reads, as WooCommerce creates them (WC_Install::get_schema and
-- OrdersTableDataStore::get_database_schema, WooCommerce 9.x/10.x, $max_index_length = 191). Development and tests
-- only (`wch-bridge schema install --with-wordpress`); orders are read from these tables when the option
-- woocommerce_custom_orders_table_enabled is 'yes' (HPOS), else from posts/postmeta.
CREATE TABLE IF NOT EXISTS {prefix}woocommerce_order_items (
  order_item_id bigint(20) unsigned NOT NULL auto_increment,
  order_item_name text NOT NULL,
  order_item_type varchar(200) NOT NULL DEFAULT '',
  order_id bigint(20) unsigned NOT NULL,
  PRIMARY KEY  (order_item_id),
  KEY order_id (order_id)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}woocommerce_order_itemmeta (
  meta_id bigint(20) unsigned NOT NULL auto_increment,
  order_item_id bigint(20) unsigned NOT NULL,
  meta_key varchar(255) default NULL,
  meta_value longtext NULL,
  PRIMARY KEY  (meta_id),
  KEY order_item_id (order_item_id),
  KEY meta_key (meta_key(32))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}wc_product_meta_lookup (
  `product_id` bigint(20) NOT NULL,
  `sku` varchar(100) NULL default '',
  `global_unique_id` varchar(100) NULL default '',
  `virtual` tinyint(1) NULL default 0,
  `downloadable` tinyint(1) NULL default 0,
  `min_price` decimal(19,4) NULL default NULL,
  `max_price` decimal(19,4) NULL default NULL,
  `onsale` tinyint(1) NULL default 0,
  `stock_quantity` double NULL default NULL,
  `stock_status` varchar(100) NULL default 'instock',
  `rating_count` bigint(20) NULL default 0,
  `average_rating` decimal(3,2) NULL default 0.00,
  `total_sales` bigint(20) NULL default 0,
  `tax_status` varchar(100) NULL default 'taxable',
  `tax_class` varchar(100) NULL default '',
  PRIMARY KEY  (`product_id`),
  KEY `virtual` (`virtual`),
  KEY `downloadable` (`downloadable`),
  KEY `stock_status` (`stock_status`),
  KEY `stock_quantity` (`stock_quantity`),
  KEY `onsale` (`onsale`),
  KEY min_max_price (`min_price`, `max_price`),
  KEY sku (sku(50))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}wc_orders (
  id bigint(20) unsigned,
  status varchar(20) null,
  currency varchar(10) null,
  type varchar(20) null,
  tax_amount decimal(26,8) null,
  total_amount decimal(26,8) null,
  customer_id bigint(20) unsigned null,
  billing_email varchar(320) null,
  date_created_gmt datetime null,
  date_updated_gmt datetime null,
  parent_order_id bigint(20) unsigned null,
  payment_method varchar(100) null,
  payment_method_title text null,
  transaction_id varchar(100) null,
  ip_address varchar(100) null,
  user_agent text null,
  customer_note text null,
  PRIMARY KEY (id),
  KEY status (status),
  KEY date_created (date_created_gmt),
  KEY customer_id_billing_email (customer_id, billing_email(171)),
  KEY billing_email (billing_email(191)),
  KEY type_status_date (type, status, date_created_gmt),
  KEY parent_order_id (parent_order_id),
  KEY date_updated (date_updated_gmt)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}wc_order_addresses (
  id bigint(20) unsigned auto_increment primary key,
  order_id bigint(20) unsigned NOT NULL,
  address_type varchar(20) null,
  first_name text null,
  last_name text null,
  company text null,
  address_1 text null,
  address_2 text null,
  city text null,
  state text null,
  postcode text null,
  country text null,
  email varchar(320) null,
  phone varchar(100) null,
  KEY order_id (order_id),
  UNIQUE KEY address_type_order_id (address_type, order_id),
  KEY email (email(191)),
  KEY phone (phone)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}wc_order_operational_data (
  id bigint(20) unsigned auto_increment primary key,
  order_id bigint(20) unsigned NULL,
  created_via varchar(100) NULL,
  woocommerce_version varchar(20) NULL,
  prices_include_tax tinyint(1) NULL,
  coupon_usages_are_counted tinyint(1) NULL,
  download_permission_granted tinyint(1) NULL,
  cart_hash varchar(100) NULL,
  new_order_email_sent tinyint(1) NULL,
  order_key varchar(100) NULL,
  order_stock_reduced tinyint(1) NULL,
  date_paid_gmt datetime NULL,
  date_completed_gmt datetime NULL,
  shipping_tax_amount decimal(26,8) NULL,
  shipping_total_amount decimal(26,8) NULL,
  discount_tax_amount decimal(26,8) NULL,
  discount_total_amount decimal(26,8) NULL,
  recorded_sales tinyint(1) NULL,
  UNIQUE KEY order_id (order_id),
  KEY order_key (order_key)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

CREATE TABLE IF NOT EXISTS {prefix}wc_orders_meta (
  id bigint(20) unsigned auto_increment primary key,
  order_id bigint(20) unsigned null,
  meta_key varchar(255),
  meta_value text null,
  KEY meta_key_value (meta_key(100), meta_value(82)),
  KEY order_id_meta_key_meta_value (order_id, meta_key(100), meta_value(82))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
