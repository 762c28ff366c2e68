#!/bin/sh
# What the official mysql/mariadb images do with MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_USER and MYSQL_PASSWORD,
# reduced to what a test needs: a temporary server without networking applies them, then the real one starts on
# port 3306. Each start logs "ready for connections", which testcontainers waits for (twice). Arguments go to the
# real mariadbd.
set -eu
sock=/run/mysqld/init.sock
mariadbd --user=mysql --skip-networking --socket="$sock" &
pid=$!
i=0
until mariadb-admin --socket="$sock" -uroot ping >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 120 ] || ! kill -0 "$pid" 2>/dev/null; then echo "the temporary server did not start" >&2; exit 1; fi
  sleep 0.5
done
str() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"; }
ident() { printf '`%s`' "$(printf '%s' "$1" | sed 's/`/``/g')"; }
{
  echo "CREATE USER 'root'@'%' IDENTIFIED BY $(str "${MYSQL_ROOT_PASSWORD:-}");"
  echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
  if [ -n "${MYSQL_DATABASE:-}" ]; then
    echo "CREATE DATABASE IF NOT EXISTS $(ident "$MYSQL_DATABASE");"
  fi
  if [ -n "${MYSQL_USER:-}" ] && [ "$MYSQL_USER" != root ]; then
    echo "CREATE USER $(str "$MYSQL_USER")@'%' IDENTIFIED BY $(str "${MYSQL_PASSWORD:-}");"
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "GRANT ALL ON $(ident "$MYSQL_DATABASE").* TO $(str "$MYSQL_USER")@'%';"
    fi
  fi
} | mariadb --socket="$sock" -uroot
mariadb-admin --socket="$sock" -uroot shutdown
wait "$pid" || true
exec mariadbd --user=mysql --bind-address=0.0.0.0 --port=3306 "$@"
