#!/usr/bin/env bash
# Installs the Debian packages the local platform runs: Redis and MariaDB servers, the Chromium
# the browser test of the web page drives headless, and the node that runs the k6 scripts' own
# JavaScript in tests/loadtest. With package names as arguments, only those (sale.sh: the
# servers alone).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PACKAGES=(redis-server mariadb-server mariadb-client chromium nodejs)
[ $# -gt 0 ] && PACKAGES=("$@")
if [ -n "${TICKETING_EXTRA_DEBIAN_PACKAGES:-}" ]; then
    read -r -a extra <<<"$TICKETING_EXTRA_DEBIAN_PACKAGES"
    PACKAGES+=("${extra[@]}")
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

need_command apt-get "this script needs a Debian-based machine with apt-get"
[ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root: run as root or install them with sudo apt-get install ${missing[*]}"
step "installing Debian packages: ${missing[*]}"
apt-get update -qq >/dev/null || die "apt-get update failed: the Debian package mirror is unreachable; check the network to it"
# The packages' own init scripts would start system-wide servers; the platform runs its own on loopback.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed; run it by hand to see why"
