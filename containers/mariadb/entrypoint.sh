#!/bin/sh
# MariaDB's entrypoint (containers/mariadb/Containerfile): on an empty data directory, create
# the system tables, then let root log in from the network with MARIADB_ROOT_PASSWORD; then
# run the server in the foreground.
set -eu
if [ -n "${MARIADB_ROOT_PASSWORD_FILE:-}" ]; then
    MARIADB_ROOT_PASSWORD=$(cat "$MARIADB_ROOT_PASSWORD_FILE")
fi
DATA=/var/lib/mysql
if [ ! -d "$DATA/mysql" ]; then
    pw="${MARIADB_ROOT_PASSWORD:-}"
    [ -n "$pw" ] || { echo "tarsus-mariadb: set MARIADB_ROOT_PASSWORD (or _FILE)" >&2; exit 2; }
    case "$pw" in
        *\'*|*\\*) echo "tarsus-mariadb: the root password may not hold ' or \\" >&2; exit 2 ;;
    esac
    mariadb-install-db --user=mysql --datadir="$DATA" --skip-test-db >/dev/null
    # set up over the socket only (the OS user mysql is MariaDB's mysql@localhost), then stop
    mariadbd --datadir="$DATA" --skip-networking &
    pid=$!
    i=0
    until mariadb-admin --silent ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 300 ] || { echo "tarsus-mariadb: the server did not start" >&2; exit 1; }
        sleep 0.2
    done
    mariadb <<SQL
CREATE USER 'root'@'%' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
    kill "$pid"
    wait "$pid" || true
fi
exec mariadbd --datadir="$DATA" --bind-address=0.0.0.0 --skip-name-resolve
