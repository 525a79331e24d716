#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by the operator and chart
# tests (etcd, kube-apiserver, kubectl, helm) from source through the Go module
# proxy, the way controller-runtime's envtest runs one, into
# "${TICKETING_CACHE:-$HOME/.cache/ticketing}/bin".
#
# Idempotent: each binary has a stamp holding its pinned version and the hash
# of its recipe, so a second run builds nothing. See docs/control-plane.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kubernetes-module.sh"
source "$(dirname "$0")/versions.sh"

# Bump when the build recipe changes in a way the versions don't show.
RECIPE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wrappers="$here/controlplane"
cache="$TICKETING_CACHE"
bin="$cache/bin"
build="$cache/build/controlplane"

# The stamp names everything that decides the binary's content: the pinned
# version, the recipe revision, and the wrapper module's sources.
stamp_for() {
  local name="$1" version="$2" sources="${3:-}"
  local digest=""
  if [[ -n "$sources" ]]; then
    digest="$(cat "$sources"/go.mod "$sources"/main.go | sha256sum | cut -c1-16)"
  fi
  echo "$name $version recipe=$RECIPE $digest"
}

is_current() {
  local name="$1" stamp="$2"
  [[ -x "$bin/$name" && -f "$bin/$name.stamp" && "$(cat "$bin/$name.stamp")" == "$stamp" ]]
}

etcd_stamp="$(stamp_for etcd "$ETCD_VERSION" "$wrappers/etcd")"
apiserver_stamp="$(stamp_for kube-apiserver "$KUBERNETES_VERSION" "$wrappers/kube-apiserver")"
kubectl_stamp="$(stamp_for kubectl "$KUBERNETES_VERSION" "$wrappers/kube-apiserver")"
helm_stamp="$(stamp_for helm "$HELM_VERSION")"

kubernetes_current() {
  is_current kube-apiserver "$apiserver_stamp" && is_current kubectl "$kubectl_stamp"
}

if is_current etcd "$etcd_stamp" && kubernetes_current && is_current helm "$helm_stamp"; then
  exit 0
fi

GO="${GO:-$(command -v go || true)}"
if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then
  GO=/usr/local/go/bin/go
fi
[[ -n "$GO" && -x "$GO" ]] ||
  die "Go is missing: install Go 1.26 or newer and put it on PATH (or set GO=/path/to/go), then run this script again."
go_minor="$("$GO" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
if [[ -n "$go_minor" ]] && ((go_minor < 26)) && [[ "$("$GO" env GOTOOLCHAIN)" == local ]]; then
  die "$GO is $("$GO" env GOVERSION) but etcd $ETCD_VERSION needs Go 1.26 or newer: install it, or unset GOTOOLCHAIN=local so Go fetches it."
fi

mkdir -p "$bin" "$build"
# Two test sessions may start at once; the second waits for the first's build.
exec 9>"$cache/controlplane.lock"
if command -v flock >/dev/null; then
  flock 9
fi

export GOFLAGS=-trimpath
export CGO_ENABLED=0

# One cheap question to the proxy before minutes of building, so an
# unreachable proxy fails with a sentence instead of a wall of go errors.
if ! probe="$(timeout 60 "$GO" list -m -json "k8s.io/kubernetes@$KUBERNETES_VERSION" 2>&1)"; then
  die "the Go module proxy ($("$GO" env GOPROXY)) is unreachable or lacks k8s.io/kubernetes@$KUBERNETES_VERSION: check the network or set GOPROXY to a reachable proxy. ($(echo "$probe" | tail -n1))"
fi

# Builds a wrapper module copied into the cache, so its go.sum and any
# generated go.mod lines never touch the checkout.
prepare_wrapper() {
  local name="$1"
  rm -rf "${build:?}/$name"
  mkdir -p "$build/$name"
  cp "$wrappers/$name/go.mod" "$wrappers/$name/main.go" "$build/$name/"
}

install_binary() {
  local name="$1" stamp="$2" built="$3"
  mv -f "$built" "$bin/$name"
  echo "$stamp" >"$bin/$name.stamp"
}

build_etcd() {
  local started=$SECONDS
  step "building etcd $ETCD_VERSION ..."
  prepare_wrapper etcd
  (
    cd "$build/etcd"
    "$GO" mod tidy
    "$GO" build -ldflags="-s -w" -o "$build/etcd/etcd.bin" .
  )
  install_binary etcd "$etcd_stamp" "$build/etcd/etcd.bin"
  step "etcd built in $((SECONDS - started))s."
}

build_kube_apiserver() {
  local started=$SECONDS
  step "building kube-apiserver and kubectl $KUBERNETES_VERSION ..."
  prepare_wrapper kube-apiserver
  local edits=() ldflags
  mapfile -t edits < <(kubernetes_staging_edits)
  ((${#edits[@]} > 0)) || die "could not derive the staging replace directives of k8s.io/kubernetes@$KUBERNETES_VERSION."
  step "replacing ${#edits[@]} staging modules with their published versions."
  ldflags="$(kubernetes_ldflags)"
  (
    cd "$build/kube-apiserver"
    "$GO" mod edit "${edits[@]}"
    "$GO" mod tidy
    "$GO" build -ldflags="$ldflags" -o "$build/kube-apiserver/kube-apiserver.bin" .
    # kubectl from the same module graph, so its version matches the server's;
    # -mod=mod records the go.sum lines its extra packages need.
    "$GO" build -mod=mod -ldflags="$ldflags" -o "$build/kube-apiserver/kubectl.bin" \
      k8s.io/kubernetes/cmd/kubectl
  )
  install_binary kube-apiserver "$apiserver_stamp" "$build/kube-apiserver/kube-apiserver.bin"
  install_binary kubectl "$kubectl_stamp" "$build/kube-apiserver/kubectl.bin"
  step "kube-apiserver and kubectl built in $((SECONDS - started))s."
}

build_helm() {
  local started=$SECONDS
  step "building helm $HELM_VERSION ..."
  local gobin="$build/helm-bin"
  rm -rf "$gobin"
  # Helm's Makefile stamps its own version and the Kubernetes version it
  # assumes when no cluster is asked (helm template, helm lint).
  local ldflags="-s -w"
  ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=34"
  GOBIN="$gobin" "$GO" install -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_binary helm "$helm_stamp" "$gobin/helm"
  step "helm built in $((SECONDS - started))s."
}

is_current etcd "$etcd_stamp" || build_etcd
kubernetes_current || build_kube_apiserver
is_current helm "$helm_stamp" || build_helm

# First lines only, without `| head`: under pipefail, a binary still writing when
# head exits dies of SIGPIPE and fails the whole install.
first_line() {
  local output
  output="$("$@")"
  echo "${output%%$'\n'*}" >&2
}
first_line "$bin/etcd" --version
first_line "$bin/kube-apiserver" --version
first_line "$bin/kubectl" version --client
first_line "$bin/helm" version --short
step "etcd, kube-apiserver, kubectl and helm are in $bin"
