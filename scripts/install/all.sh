#!/usr/bin/env bash
# Installs everything the platform and its tests need; every step is idempotent and cached.
set -euo pipefail
HERE="$(dirname "$0")"
bash "$HERE/debian.sh"
bash "$HERE/kafka.sh"
bash "$HERE/python.sh"
if [ -f "$HERE/controlplane.sh" ]; then bash "$HERE/controlplane.sh"; fi
# The kind cluster's engine and node binaries (tests/cluster, ./dev cluster up).
bash "$HERE/../cluster/engine.sh" install
