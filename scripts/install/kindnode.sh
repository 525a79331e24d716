#!/usr/bin/env bash
# Builds, from source through the Go module proxy, everything a kind node needs that Debian
# does not package, into "${TICKETING_CACHE:-$HOME/.cache/ticketing}/kind/bin":
#   kind                      the kind command line
#   kubelet kubeadm kube-controller-manager kube-scheduler kube-proxy
#                             the rest of Kubernetes (controlplane.sh builds kube-apiserver,
#                             kubectl and etcd from the same module graph)
#   coredns                   the cluster DNS kubeadm deploys
#   local-path-provisioner    the default StorageClass's provisioner
#   pause, bounded-runc       this project's own (cluster/cmd): the pod sandbox process and
#                             the runc wrapper for sandboxes without CAP_SYS_RESOURCE
# No registry is reachable here, so every image of the node is built from these binaries
# (scripts/cluster/images.sh). Idempotent: each binary has a stamp of its version and recipe.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kubernetes-module.sh"
source "$(dirname "$0")/versions.sh"

# Bump when the build recipe changes in a way the versions don't show.
RECIPE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
own_sources="$(cd "$here/../../cluster" && pwd)"
cache="$TICKETING_CACHE"
bin="$cache/kind/bin"
build="$cache/build/kindnode"

own_digest="$(cd "$own_sources" && cat go.mod cmd/*/main.go | sha256sum | cut -c1-16)"
KUBERNETES_COMMANDS=(kubelet kubeadm kube-controller-manager kube-scheduler kube-proxy)

stamp_of() { echo "$1 $2 recipe=$RECIPE"; }
is_current() {
  [[ -x "$bin/$1" && -f "$bin/$1.stamp" && "$(cat "$bin/$1.stamp")" == "$(stamp_of "$1" "$2")" ]]
}
install_binary() {
  mv -f "$3" "$bin/$1"
  stamp_of "$1" "$2" >"$bin/$1.stamp"
}

all_current() {
  local name
  for name in "${KUBERNETES_COMMANDS[@]}"; do is_current "$name" "$KUBERNETES_VERSION" || return 1; done
  is_current kind "$KIND_VERSION" && is_current coredns "$COREDNS_VERSION" &&
    is_current local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" &&
    is_current pause "$own_digest" && is_current bounded-runc "$own_digest"
}
all_current && exit 0

GO="${GO:-$(command -v go || true)}"
[[ -n "$GO" && -x "$GO" ]] ||
  die "Go is missing: install Go 1.26 or newer and put it on PATH (or set GO=/path/to/go), then run this script again."
mkdir -p "$bin" "$build"
exec 9>"$cache/kindnode.lock"
command -v flock >/dev/null && flock 9
export GOFLAGS=-trimpath CGO_ENABLED=0

# A module of our own that requires k8s.io/kubernetes, so `go build` can name its commands.
build_kubernetes() {
  local started=$SECONDS edits=() ldflags name
  step "building ${KUBERNETES_COMMANDS[*]} $KUBERNETES_VERSION ..."
  rm -rf "${build:?}/kubernetes"
  mkdir -p "$build/kubernetes"
  mapfile -t edits < <(kubernetes_staging_edits)
  ((${#edits[@]} > 0)) || die "could not derive the staging replace directives of k8s.io/kubernetes@$KUBERNETES_VERSION."
  ldflags="$(kubernetes_ldflags)"
  (
    cd "$build/kubernetes"
    cat >go.mod <<MOD
module ticketing.local/kindnode

go 1.24.0

godebug default=go1.24

require k8s.io/kubernetes $KUBERNETES_VERSION
MOD
    "$GO" mod edit "${edits[@]}"
    for name in "${KUBERNETES_COMMANDS[@]}"; do
      "$GO" build -mod=mod -ldflags="$ldflags" -o "$name.bin" "k8s.io/kubernetes/cmd/$name"
    done
  )
  for name in "${KUBERNETES_COMMANDS[@]}"; do
    install_binary "$name" "$KUBERNETES_VERSION" "$build/kubernetes/$name.bin"
  done
  step "Kubernetes node commands built in $((SECONDS - started))s."
}

# `go install module@version` for a module whose go.mod has no replace directives.
go_install() {
  local name="$1" package="$2" version="$3" ldflags="${4:-}" started=$SECONDS
  step "building $name $version ..."
  rm -rf "${build:?}/$name"
  GOBIN="$build/$name" "$GO" install -ldflags="-s -w $ldflags" "$package@$version"
  install_binary "$name" "$version" "$build/$name/$(basename "${package%%/v[0-9]*}")"
  step "$name built in $((SECONDS - started))s."
}

own_commands() {
  local name
  for name in pause bounded-runc; do
    (cd "$own_sources" && "$GO" build -ldflags="-s -w" -o "$build/$name.bin" "./cmd/$name")
    install_binary "$name" "$own_digest" "$build/$name.bin"
  done
}

for name in "${KUBERNETES_COMMANDS[@]}"; do
  is_current "$name" "$KUBERNETES_VERSION" || { build_kubernetes; break; }
done
is_current kind "$KIND_VERSION" || go_install kind sigs.k8s.io/kind "$KIND_VERSION"
is_current coredns "$COREDNS_VERSION" ||
  go_install coredns github.com/coredns/coredns "$COREDNS_VERSION" "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
is_current local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" ||
  go_install local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION"
{ is_current pause "$own_digest" && is_current bounded-runc "$own_digest"; } || own_commands
step "kind and the node's binaries are in $bin"
