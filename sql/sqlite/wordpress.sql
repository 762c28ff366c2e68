-- SQLite form of ../mysql/wordpress.sql (index names carry the prefix: SQLite index names are per database).
CREATE TABLE IF NOT EXISTS {prefix}options (
  option_id INTEGER PRIMARY KEY AUTOINCREMENT,
  option_name VARCHAR(191) NOT NULL DEFAULT '' UNIQUE,
  option_value TEXT NOT NULL,
  autoload VARCHAR(20) NOT NULL DEFAULT 'yes'
);
CREATE INDEX IF NOT EXISTS {prefix}o_autoload ON {prefix}options (autoload);

CREATE TABLE IF NOT EXISTS {prefix}posts (
  ID INTEGER PRIMARY KEY AUTOINCREMENT,
  post_author INTEGER NOT NULL DEFAULT 0,
  post_date DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
  post_date_gmt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
  post_content TEXT NOT NULL DEFAULT '',
  post_title TEXT NOT NULL DEFAULT '',
  post_excerpt TEXT NOT NULL DEFAULT '',
  post_status VARCHAR(20) NOT NULL DEFAULT 'publish',
  comment_status VARCHAR(20) NOT NULL DEFAULT 'open',
  ping_status VARCHAR(20) NOT NULL DEFAULT 'open',
  post_password VARCHAR(255) NOT NULL DEFAULT '',
  post_name VARCHAR(200) NOT NULL DEFAULT '',
  to_ping TEXT NOT NULL DEFAULT '',
  pinged TEXT NOT NULL DEFAULT '',
  post_modified DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
  post_modified_gmt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
  post_content_filtered TEXT NOT NULL DEFAULT '',
  post_parent INTEGER NOT NULL DEFAULT 0,
  guid VARCHAR(255) NOT NULL DEFAULT '',
  menu_order INTEGER NOT NULL DEFAULT 0,
  post_type VARCHAR(20) NOT NULL DEFAULT 'post',
  post_mime_type VARCHAR(100) NOT NULL DEFAULT '',
  comment_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {prefix}p_post_name ON {prefix}posts (post_name);
CREATE INDEX IF NOT EXISTS {prefix}p_type_status_date ON {prefix}posts (post_type, post_status, post_date, ID);
CREATE INDEX IF NOT EXISTS {prefix}p_post_parent ON {prefix}posts (post_parent);
CREATE INDEX IF NOT EXISTS {prefix}p_post_author ON {prefix}posts (post_author);

CREATE TABLE IF NOT EXISTS {prefix}postmeta (
  meta_id INTEGER PRIMARY KEY AUTOINCREMENT,
  post_id INTEGER NOT NULL DEFAULT 0,
  meta_key VARCHAR(255) DEFAULT NULL,
  meta_value TEXT
);
CREATE INDEX IF NOT EXISTS {prefix}pm_post_id ON {prefix}postmeta (post_id);
CREATE INDEX IF NOT EXISTS {prefix}pm_meta_key ON {prefix}postmeta (meta_key);

CREATE TABLE IF NOT EXISTS {prefix}terms (
  term_id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(200) NOT NULL DEFAULT '',
  slug VARCHAR(200) NOT NULL DEFAULT '',
  term_group INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {prefix}t_slug ON {prefix}terms (slug);
CREATE INDEX IF NOT EXISTS {prefix}t_name ON {prefix}terms (name);

CREATE TABLE IF NOT EXISTS {prefix}term_taxonomy (
  term_taxonomy_id INTEGER PRIMARY KEY AUTOINCREMENT,
  term_id INTEGER NOT NULL DEFAULT 0,
  taxonomy VARCHAR(32) NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  parent INTEGER NOT NULL DEFAULT 0,
  count INTEGER NOT NULL DEFAULT 0,
  UNIQUE (term_id, taxonomy)
);
CREATE INDEX IF NOT EXISTS {prefix}tt_taxonomy ON {prefix}term_taxonomy (taxonomy);

CREATE TABLE IF NOT EXISTS {prefix}term_relationships (
  object_id INTEGER NOT NULL DEFAULT 0,
  term_taxonomy_id INTEGER NOT NULL DEFAULT 0,
  term_order INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (object_id, term_taxonomy_id)
);
CREATE INDEX IF NOT EXISTS {prefix}tr_term_taxonomy_id ON {prefix}term_relationships (term_taxonomy_id);
