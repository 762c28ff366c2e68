-- WordPress core tables the bridge reads (wp-admin/includes/schema.php, WordPress 6.x). Development and tests only
-- (`wch-bridge schema install --with-wordpress`).
CREATE TABLE IF NOT EXISTS {prefix}options (
  option_id bigint(20) unsigned NOT NULL auto_increment,
  option_name varchar(191) NOT NULL default '',
  option_value longtext NOT NULL,
  autoload varchar(20) NOT NULL default 'yes',
  PRIMARY KEY  (option_id),
  UNIQUE KEY option_name (option_name),
  KEY autoload (autoload)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
