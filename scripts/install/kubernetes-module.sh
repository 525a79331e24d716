# Shared by the scripts that build Kubernetes from k8s.io/kubernetes through the Go module
# proxy (controlplane.sh, kindnode.sh): the go.mod edits that make the module importable,
# and the version stamp of its binaries. Needs GO and KUBERNETES_VERSION, and lib.sh sourced.

# Prints one `go mod edit` flag a line: k8s.io/kubernetes replaces its staging modules
# (k8s.io/api, k8s.io/apiserver, ...) with ./staging/... paths, which are ignored outside its
# own build; each is published as v0.<minor>.<patch>, so replace it with that version.
kubernetes_staging_edits() {
  local gomod staging_version module count=0
  gomod="$("$GO" mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || die "could not read k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod from the module cache."
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  while read -r module; do
    echo "-replace=$module=$module@$staging_version"
    count=$((count + 1))
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$gomod")
  ((count > 0)) || die "found no staging replace directives in $gomod; the k8s.io/kubernetes layout changed."
}

# Prints the -ldflags that stamp the release like hack/lib/version.sh does, so /version
# reports it (helm's kubeVersion checks and kubeadm's version checks read it).
kubernetes_ldflags() {
  local major minor pkg ldflags="-s -w"
  major="${KUBERNETES_VERSION#v}"
  major="${major%%.*}"
  minor="${KUBERNETES_VERSION#v*.}"
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION"
    ldflags+=" -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  echo "$ldflags"
}
