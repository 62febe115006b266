#!/bin/sh
# The framework's and the node's entrypoint (docs/containers.md). Secrets given as files
# (TARSUS_DB_FILE, TARSUS_JOIN_TOKEN_FILE: compose or Kubernetes secrets) are read into the
# environment, where `tarsus install` takes TARSUS_DB, TARSUS_JOIN_TOKEN, TARSUS_HOST,
# TARSUS_LOCATOR, ... from; then the role is installed (idempotently: the volumes keep what
# an earlier start made) and run in this process.
set -eu
role="${1:-}"
[ $# -gt 0 ] && shift
for var in TARSUS_DB TARSUS_JOIN_TOKEN; do
    eval "file=\${${var}_FILE:-}"
    if [ -n "$file" ]; then
        [ -r "$file" ] || { echo "tarsus-entrypoint: ${var}_FILE=$file cannot be read" >&2; exit 2; }
        value=$(cat "$file")
        export "$var=$value"
    fi
done
case "$role" in
    framework) set -- --wheels /opt/tarsus/wheels "$@" ;;
    node) ;;
    *) echo "tarsus-entrypoint: the role is framework or node, not '$role'" >&2; exit 2 ;;
esac
exec python3 -m tarsus install "$role" --foreground "$@"
