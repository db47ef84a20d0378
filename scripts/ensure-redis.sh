#!/usr/bin/env bash
# Makes sure redis-server (and redis-cli) are installed: the service's default
# starts a private redis-server, and every test starts its own.
# As root with apt-get (Debian/Ubuntu, CI): installs the `redis-server` package,
# saying so. Otherwise: fails with the command to run.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing: installing Debian's redis-server package (apt-get)..."
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
  command -v redis-server >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
redis-server is not installed, and this script installs it only as root with apt-get.
Install it, then run this again:
  Debian/Ubuntu: sudo apt-get install -y redis-server
  macOS:         brew install redis
(or point the service at an existing Redis with REDIS_URL=redis://host:6379).
MSG
exit 1
