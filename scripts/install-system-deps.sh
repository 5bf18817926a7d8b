#!/usr/bin/env bash
# Install the Debian packages listed in scripts/system-packages.txt, when we can.
# As root with apt, missing packages are installed; otherwise we say what is missing and
# the tests that need them skip with that name (under CI=true they fail instead).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mapfile -t wanted < <(grep -v '^\s*#' "$here/system-packages.txt" | awk 'NF {print $1}')
[ "${#wanted[@]}" -eq 0 ] && exit 0
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: missing system packages (tests needing them will skip): ${missing[*]}" >&2
fi
