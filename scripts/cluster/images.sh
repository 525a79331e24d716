#!/usr/bin/env bash
# Builds, with no registry, every image the offline kind cluster runs, into the local Docker
# engine (scripts/cluster/engine.sh starts one):
#   ticketing.local/kind/base:bookworm       Debian bookworm by debootstrap (minbase), imported
#   ticketing.local/python:3.11-bookworm     the base with Debian's Python: the app image's base
#   registry.k8s.io/kube-apiserver, -controller-manager, -scheduler, -proxy :$KUBERNETES_VERSION,
#   registry.k8s.io/etcd:<etcd>-0, registry.k8s.io/coredns/coredns:$COREDNS_VERSION
#                                            the binaries of controlplane.sh and kindnode.sh
#   ticketing.local/kind/pause:1, ticketing.local/kind/local-path-provisioner:<version>
#   ticketing.local/kind/node:$KUBERNETES_VERSION   the node image kind runs (see build_node)
#   ticketing.local/redis, /mariadb, /kafka  the chart's backing servers from Debian packages
# Idempotent: every image carries a label with the digest of its inputs and is rebuilt only
# when they change. Ends by printing, one per line, "<role> <image>" for each image a cluster
# names (node, python, redis, mariadb, kafka): the one place those names are written. Arguments
# name the groups to build (base python node backing; all by default).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/scripts/install/lib.sh"
source "$root/scripts/install/versions.sh"

# Bump when a recipe changes in a way its inputs don't show.
RECIPE=1
DEBIAN_MIRROR="${TICKETING_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LABEL=dev.ticketing.inputs

cache="$TICKETING_CACHE"
bins="$cache/bin"
kindbins="$cache/kind/bin"
work="$cache/build/images"
mkdir -p "$work"

BASE=ticketing.local/kind/base:bookworm
PYTHON_BASE=ticketing.local/python:3.11-bookworm
NODE_BASE=ticketing.local/kind/node-base:bookworm
NODE="ticketing.local/kind/node:$KUBERNETES_VERSION"
PAUSE=ticketing.local/kind/pause:1
PROVISIONER="ticketing.local/kind/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION"
ETCD_IMAGE="registry.k8s.io/etcd:${ETCD_VERSION#v}-0"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/install/kafka-pom.xml")"
REDIS=ticketing.local/redis:bookworm
MARIADB=ticketing.local/mariadb:bookworm
KAFKA="ticketing.local/kafka:$KAFKA_VERSION"

need_command docker "scripts/cluster/engine.sh installs and starts Docker"
docker info >/dev/null 2>&1 || die "no Docker engine answers: start one with ./dev cluster engine-up (or scripts/cluster/engine.sh up)"

# The digest of a build's inputs: the recipe, the named files (or directories) and strings.
digest() {
  {
    echo "recipe=$RECIPE"
    local item
    for item in "$@"; do
      if [[ -d "$item" ]]; then
        (cd "$item" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
      elif [[ -f "$item" ]]; then
        sha256sum <"$item"
      else
        echo "$item"
      fi
    done
  } | sha256sum | cut -c1-16
}

current() {
  [[ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null)" == "$2" ]]
}

image_id() { docker image inspect -f '{{.Id}}' "$1"; }

build_base() {
  local inputs
  inputs="$(digest "bookworm minbase $DEBIAN_MIRROR")"
  current "$BASE" "$inputs" && return
  local started=$SECONDS rootfs="$work/rootfs-bookworm"
  step "building $BASE with debootstrap from $DEBIAN_MIRROR ..."
  need_command debootstrap "apt-get install debootstrap (scripts/cluster/engine.sh install does)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $work/debootstrap.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change "LABEL $LABEL=$inputs" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
  step "$BASE built in $((SECONDS - started))s."
}

# docker build of a directory, with the base image's id among the inputs.
build_dir() {
  local image="$1" dir="$2" base="$3"
  shift 3
  local inputs
  inputs="$(digest "$dir" "$(image_id "$base")" "$@")"
  current "$image" "$inputs" && return
  local started=$SECONDS
  step "building $image ..."
  local log="$work/${image//[\/:]/_}.build.log"
  docker build --build-arg "BASE_IMAGE=$base" --label "$LABEL=$inputs" -t "$image" "$dir" >"$log" 2>&1 ||
    die "building $image failed; see $log"
  step "$image built in $((SECONDS - started))s."
}

# An image of one binary on the base, at /usr/local/bin/<name>.
binary_image() {
  local image="$1" binary="$2" packages="${3:-}" entrypoint="${4:-}"
  local name dir
  name="$(basename "$binary")"
  dir="$work/${image//[\/:]/_}"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$binary" "$dir/$name"
  {
    echo 'ARG BASE_IMAGE'
    echo 'FROM ${BASE_IMAGE}'
    if [[ -n "$packages" ]]; then
      echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages && rm -rf /var/lib/apt/lists/*"
    fi
    echo "COPY $name /usr/local/bin/$name"
    [[ -z "$entrypoint" ]] || echo "ENTRYPOINT [\"/usr/local/bin/$name\"]"
  } >"$dir/Dockerfile"
  build_dir "$image" "$dir" "$BASE"
}

build_python_base() {
  local dir="$work/python-base"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/Dockerfile" <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
DOCKERFILE
  build_dir "$PYTHON_BASE" "$dir" "$BASE"
}

build_node_images() {
  local name
  for name in kube-apiserver; do
    binary_image "registry.k8s.io/$name:$KUBERNETES_VERSION" "$bins/$name"
  done
  for name in kube-controller-manager kube-scheduler; do
    binary_image "registry.k8s.io/$name:$KUBERNETES_VERSION" "$kindbins/$name"
  done
  binary_image "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" "$kindbins/kube-proxy" "iptables conntrack ipset"
  binary_image "$ETCD_IMAGE" "$bins/etcd"
  binary_image "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$kindbins/coredns" "" entrypoint
  binary_image "$PROVISIONER" "$kindbins/local-path-provisioner"
  local dir="$work/pause"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$kindbins/pause" "$dir/pause"
  printf 'ARG BASE_IMAGE\nFROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$dir/Dockerfile"
  build_dir "$PAUSE" "$dir" "$BASE"
}

node_images() {
  echo "registry.k8s.io/kube-apiserver:$KUBERNETES_VERSION"
  echo "registry.k8s.io/kube-controller-manager:$KUBERNETES_VERSION"
  echo "registry.k8s.io/kube-scheduler:$KUBERNETES_VERSION"
  echo "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION"
  echo "$ETCD_IMAGE"
  echo "registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
  echo "$PAUSE"
  echo "$PROVISIONER"
  echo "$BASE"
}

# The node image, made the way `kind build node-image` makes one: a container of the node's
# base gets kubeadm, kubelet and kubectl, /kind/version and the CNI and storage manifests kind
# applies, and every image the node runs imported into its containerd (kind's kubelet
# configuration turns image garbage collection off, so they stay); the container is then
# committed.
build_node() {
  local dir="$root/cluster/node" ids=() image
  local context="$work/node-base"
  rm -rf "$context" && cp -r "$dir" "$context"
  cp "$kindbins/bounded-runc" "$context/bounded-runc"
  build_dir "$NODE_BASE" "$context" "$BASE"
  while read -r image; do ids+=("$(image_id "$image")"); done < <(node_images)
  local inputs
  inputs="$(digest "$(image_id "$NODE_BASE")" "${ids[@]}" "$kindbins/kubeadm" "$kindbins/kubelet" "$bins/kubectl" \
    "$dir/default-cni.yaml" "$dir/default-storage.yaml" "$KUBERNETES_VERSION")"
  current "$NODE" "$inputs" && return
  local started=$SECONDS container
  step "building $NODE ..."
  container="ticketing-node-build-$$"
  docker rm -f "$container" >/dev/null 2>&1 || true
  docker run -d --name "$container" --entrypoint sleep "$NODE_BASE" infinity >/dev/null
  trap 'docker rm -f "$container" >/dev/null 2>&1 || true' RETURN
  local binary
  for binary in "$kindbins/kubeadm" "$kindbins/kubelet" "$bins/kubectl"; do
    docker cp "$binary" "$container:/usr/bin/$(basename "$binary")"
  done
  docker exec "$container" mkdir -p /kind/manifests
  docker exec -i "$container" sh -c 'cat >/kind/version' <<<"$KUBERNETES_VERSION"
  docker cp "$dir/default-cni.yaml" "$container:/kind/manifests/default-cni.yaml"
  sed "s/LOCAL_PATH_PROVISIONER_VERSION/$LOCAL_PATH_PROVISIONER_VERSION/" "$dir/default-storage.yaml" |
    docker exec -i "$container" sh -c 'cat >/kind/manifests/default-storage.yaml'
  docker exec "$container" sh -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
  docker exec "$container" sh -c 'for i in $(seq 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /tmp/containerd.log; exit 1'
  mapfile -t images < <(node_images)
  docker save "${images[@]}" | docker exec -i "$container" \
    ctr --namespace=k8s.io images import --no-unpack - >/dev/null
  # The build container's first process (sleep) reaps nobody: the stopped containerd stays a
  # zombie, so wait for no live one.
  docker exec "$container" sh -c 'pkill -x containerd; while ps -C containerd -o stat= | grep -qv "^Z"; do sleep 0.2; done'
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    --change "LABEL $LABEL=$inputs" "$container" "$NODE" >/dev/null
  step "$NODE built in $((SECONDS - started))s."
}

build_backing() {
  build_dir "$REDIS" "$root/cluster/images/redis" "$BASE"
  build_dir "$MARIADB" "$root/cluster/images/mariadb" "$BASE"
  local context="$work/kafka"
  rm -rf "$context" && cp -r "$root/cluster/images/kafka" "$context"
  [[ -f "$cache/kafka-$KAFKA_VERSION/libs/.complete" ]] || bash "$root/scripts/install/kafka.sh"
  cp -r "$cache/kafka-$KAFKA_VERSION/libs" "$context/libs"
  rm -f "$context/libs/.complete"
  build_dir "$KAFKA" "$context" "$BASE"
}

# With arguments, only the named groups (base python node backing), in the order given.
groups=("$@")
((${#groups[@]} > 0)) || groups=(base python node backing)
for group in "${groups[@]}"; do
  case "$group" in
    base) build_base ;;
    python) build_base && build_python_base ;;
    node) build_base && build_node_images && build_node ;;
    backing) build_base && build_backing ;;
    *) die "unknown image group $group: base, python, node or backing" ;;
  esac
done
printf '%s %s\n' node "$NODE" python "$PYTHON_BASE" redis "$REDIS" mariadb "$MARIADB" kafka "$KAFKA"
