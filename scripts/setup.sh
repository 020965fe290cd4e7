#!/usr/bin/env bash
# Installs the Debian packages FlashSale needs, if they are missing: the system SQLite
# (libsqlite3-dev), the daemon's allocator (libjemalloc-dev) and nc for the ops port
# (netcat-openbsd). Safe to run again.
set -euo pipefail

packages=(libsqlite3-dev libjemalloc-dev netcat-openbsd)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  echo "setup: add /opt/swift/usr/bin to PATH" >&2
fi
