-- SQLite form of ../mysql/wordpress.sql.
CREATE TABLE IF NOT EXISTS {prefix}options (
  option_id INTEGER PRIMARY KEY AUTOINCREMENT,
  option_name VARCHAR(191) NOT NULL DEFAULT '' UNIQUE,
  option_value TEXT NOT NULL,
  autoload VARCHAR(20) NOT NULL DEFAULT 'yes'
);
CREATE INDEX IF NOT EXISTS {prefix}o_autoload ON {prefix}options (autoload);
