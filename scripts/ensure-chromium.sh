#!/usr/bin/env bash
# Makes sure Chromium is installed: `make test` checks /docs (Swagger UI) in a
# real headless browser. As root with apt-get (Debian/Ubuntu, CI): installs
# Debian's `chromium` package, saying so. Otherwise: fails with the command
# to run. (Playwright's own browser download does not work offline; Debian's
# package does.)
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing: installing Debian's chromium package (apt-get)..."
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  command -v chromium >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
chromium is not installed, and this script installs it only as root with apt-get.
Install it, then run this again:
  Debian/Ubuntu: sudo apt-get install -y chromium
(or point CHROMIUM=/path/to/chromium at a Chromium or Chrome you have).
MSG
exit 1
