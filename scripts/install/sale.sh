#!/usr/bin/env bash
# Installs what a sale on this machine needs (`./dev demo`, `python -m loadtest run`): the Redis
# and MariaDB servers, Kafka's jars and the Python packages. Not Chromium nor the Kubernetes
# control plane (a Go build of several minutes): only the tests use them.
set -euo pipefail
HERE="$(dirname "$0")"
bash "$HERE/debian.sh" redis-server mariadb-server mariadb-client
bash "$HERE/kafka.sh"
bash "$HERE/python.sh"
