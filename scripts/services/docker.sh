#!/usr/bin/env bash
# Docker engine and the project images the CWL packages name (mlmkit:<version>, mlmkit:<version>-training).
# Idempotent; root on Debian 12. No container registry is reachable here, so the base image is made with
# debootstrap from the Debian mirror in the apt sources and carries this machine's CA bundle (pip's
# downloads pass a TLS-inspecting proxy). Users build on python:3.11-slim instead (see docs/how-to/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIG_DIR=/etc/mlmkit-docker
LOG=/var/log/mlmkit-dockerd.log
BASE_IMAGE=mlmkit-base:bookworm
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/mlmkit/__init__.py)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

step() { echo "[docker.sh $(date +%T)] $*"; }

install_packages() {
  command -v dockerd >/dev/null && command -v debootstrap >/dev/null && return
  step "installing docker.io and debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
}

start_engine() {
  docker info >/dev/null 2>&1 && { step "engine already running"; return; }
  step "starting dockerd"
  mkdir -p "$CONFIG_DIR"
  cat >"$CONFIG_DIR/daemon.json" <<'JSON'
{
  "storage-driver": "vfs",
  "iptables": false,
  "bridge": "none",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "default-ulimits": {
    "nofile": {"Name": "nofile", "Soft": 1024, "Hard": 1024},
    "nproc": {"Name": "nproc", "Soft": 1000, "Hard": 1000}
  }
}
JSON
  setsid nohup dockerd --config-file "$CONFIG_DIR/daemon.json" >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  echo "dockerd did not start; last lines of $LOG:" >&2
  tail -20 "$LOG" >&2
  exit 1
}

debian_mirror() {
  # The first deb822 URIs line or one-line "deb" entry of the apt sources.
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && { step "$BASE_IMAGE present"; return; }
  local rootfs
  rootfs=$(mktemp -d /var/tmp/mlmkit-rootfs.XXXXXX)
  step "debootstrap bookworm from $(debian_mirror)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$(debian_mirror)" >/dev/null
  chmod 755 "$rootfs"  # mktemp made it 0700; it becomes the image's /
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  step "importing $BASE_IMAGE"
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

build_image() {  # target tag; the layer cache makes an unchanged rebuild take seconds
  step "building $2 (target $1)"
  docker build -q --network host --target "$1" -t "$2" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg PIP_CERT="$CA_BUNDLE" \
    ${TORCH_WHEEL_STAGED:+--build-arg TORCH_INDEX_URL=} \
    ${PIP_INDEX_URL:+--build-arg PIP_INDEX_URL="$PIP_INDEX_URL"} \
    . >/dev/null
}

build_stages() {
  # Every stage whose last layer no image builds FROM gets a tag: untagged, it would be a dangling
  # image that the prune below deletes, and the next build would redo it (and every layer after it).
  local stage
  for stage in "$@"; do
    build_image "$stage" "mlmkit-stage:$VERSION-$stage"
  done
}

stage_torch_wheel() {
  # A CPU torch wheel on this machine goes into the build context and no index is asked for torch;
  # without one the image takes torch from the PyTorch CPU index (the Dockerfile's default).
  find /opt/wheels -maxdepth 1 -name 'torch-*+cpu-cp311-*.whl' -exec cp -u {} docker/wheels/ \; 2>/dev/null || true
  if ls docker/wheels/torch-*.whl >/dev/null 2>&1; then TORCH_WHEEL_STAGED=1; fi
}

install_packages
start_engine
build_base
stage_torch_wheel  # before the first build: the build context is the same for every target
build_stages requirements wheel
build_image inference "mlmkit:$VERSION"
build_image training "mlmkit:$VERSION-training"
# With the vfs driver every superseded image is a full copy of its tree: remove those, keep the tagged stages.
docker image prune -f >/dev/null
step "ready: $(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep '^mlmkit' | tr '\n' ' ')"
