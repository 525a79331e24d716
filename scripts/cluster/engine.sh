#!/usr/bin/env bash
# The container engine the offline kind cluster runs on: Debian's docker.io, started and
# stopped by this project (never as a system service).
#   engine.sh install   Debian's docker.io and debootstrap, and the runc wrapper (kindnode.sh)
#   engine.sh up        start dockerd unless an engine already answers (then it is left alone)
#   engine.sh down      stop the dockerd that `up` started
#   engine.sh status    say which engine answers
# Sandbox workaround: where this process's capability bounding set lacks CAP_SYS_RESOURCE (some
# CI sandboxes), runc cannot start a privileged container ("unable to apply caps"), and kind's
# nodes are privileged. There dockerd's default runtime is cluster/cmd/bounded-runc, which
# drops from a container's spec the capabilities the sandbox cannot grant. A laptop or a CI
# machine with the full set runs plain runc.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/scripts/install/lib.sh"

state="$TICKETING_CACHE/engine"
pidfile="$state/dockerd.pid"
mkdir -p "$state"

answers() { docker info >/dev/null 2>&1; }

# CAP_SYS_RESOURCE is capability 24.
lacks_sys_resource() {
  local mask
  mask="$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)"
  (((0x$mask >> 24 & 1) == 0))
}

install() {
  TICKETING_EXTRA_DEBIAN_PACKAGES="docker.io debootstrap iptables ${TICKETING_EXTRA_DEBIAN_PACKAGES:-}" \
    bash "$root/scripts/install/debian.sh"
  bash "$root/scripts/install/kindnode.sh"
}

up() {
  if answers; then
    step "a Docker engine already answers; using it."
    return
  fi
  need_command dockerd "run scripts/cluster/engine.sh install (Debian's docker.io)"
  local config="$state/daemon.json"
  if lacks_sys_resource; then
    step "this sandbox's capability bounding set lacks CAP_SYS_RESOURCE: runc runs through bounded-runc."
    printf '{"runtimes": {"bounded-runc": {"path": "%s"}}, "default-runtime": "bounded-runc"}\n' \
      "$TICKETING_CACHE/kind/bin/bounded-runc" >"$config"
  else
    echo '{}' >"$config"
  fi
  step "starting dockerd (log: $state/dockerd.log)"
  setsid dockerd --config-file "$config" --pidfile "$pidfile" >"$state/dockerd.log" 2>&1 </dev/null &
  local _
  for _ in $(seq 120); do
    answers && return
    sleep 0.5
  done
  die "dockerd did not answer within 60 s; see $state/dockerd.log"
}

down() {
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill "$pid" 2>/dev/null; then
    step "stopping dockerd ($pid)"
    local _
    for _ in $(seq 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  rm -f "$pidfile"
}

status() {
  if answers; then
    if [[ -f "$pidfile" ]]; then echo "dockerd started by this project (pid $(cat "$pidfile"))"; else echo "a Docker engine of this machine's own"; fi
  else
    echo "no Docker engine answers"
    return 1
  fi
}

case "${1:-}" in
  install | up | down | status) "$1" ;;
  *) die "usage: scripts/cluster/engine.sh install|up|down|status" ;;
esac
