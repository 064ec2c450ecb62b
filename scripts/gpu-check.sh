#!/usr/bin/env bash
# End-to-end GPU check for a host with an NVIDIA GPU and driver (run as
# root). Builds a tiny image (busybox plus the host's C library, which the
# driver's nvidia-smi links against), then:
#   1. berth container run --rm --gpus all IMG nvidia-smi -L
#   2. the same through compose: a deploy.resources.reservations.devices GPU
#      reservation, `berth up -d`, `berth logs`, `berth down`.
# nvidia-smi and libnvidia-ml come from the driver (injected by berth, not
# in the image). Everything happens under a private --root, removed at exit.
# Usage: scripts/gpu-check.sh        (BERTH=/path/to/berth to pick a binary)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
fail() { echo "gpu-check: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (containers need namespaces, mounts and cgroups)"
if ! ls /dev/nvidia[0-9]* >/dev/null 2>&1 && ! grep -qs 'nvidia.com/gpu' /etc/cdi/* /var/run/cdi/*; then
    fail "no NVIDIA GPU on this host: no /dev/nvidia<N> device node and no nvidia.com/gpu CDI spec in /etc/cdi or /var/run/cdi (is the driver loaded?)"
fi
smi="$(command -v nvidia-smi || true)"
[ -n "$smi" ] || fail "nvidia-smi not found on the host: install the NVIDIA driver's utilities"
echo "host: $("$smi" -L | head -n 4)"

berth="${BERTH:-}"
if [ -z "$berth" ]; then
    (cd "$repo" && cargo build --quiet)
    berth="$repo/target/debug/berth"
fi
[ -x "$berth" ] || fail "berth binary $berth is not executable"

work="$(mktemp -d /var/tmp/berth-gpu-check.XXXXXX)"
root="$work/root"
project=gpucheck
cleanup() {
    "$berth" --root "$root" -f "$work/compose.yaml" -p "$project" down >/dev/null 2>&1 || true
    for id in $("$berth" --root "$root" container ls -a -q 2>/dev/null); do
        "$berth" --root "$root" container rm -f "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The image: busybox (scripts/fixtures.sh) plus the C library nvidia-smi
# needs, copied from the host at the same paths; NVIDIA's own libraries are
# left out, since berth mounts the driver's.
"$here/fixtures.sh" "$work" >/dev/null
mkdir -p "$work/rootfs"
tar -C "$work/rootfs" -xf "$work/busybox-rootfs.tar"
for lib in $(ldd "$smi" | grep -o '/[^ ]*' | grep -v -e libnvidia -e libcuda); do
    mkdir -p "$work/rootfs$(dirname "$lib")"
    cp -L "$lib" "$work/rootfs$lib"
done
tar --numeric-owner -C "$work/rootfs" -cf "$work/gpucheck.tar" .
"$berth" --root "$root" image import "$work/gpucheck.tar" gpucheck:latest >/dev/null

echo "== berth container run --rm --gpus all gpucheck nvidia-smi -L"
if ! seen="$("$berth" --root "$root" container run --rm --gpus all gpucheck nvidia-smi -L 2>&1)"; then
    fail "container run --gpus all failed: $seen"
fi
echo "$seen"
grep -q '^GPU [0-9]' <<<"$seen" || fail "the container did not list a GPU"

echo "== berth up: a service with a GPU reservation"
cat > "$work/compose.yaml" <<'YAML'
services:
  smi:
    image: gpucheck:latest
    command: ["sh", "-c", "nvidia-smi -L; echo NVIDIA_VISIBLE_DEVICES=$$NVIDIA_VISIBLE_DEVICES"]
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: all
              capabilities: [gpu]
YAML
compose() { "$berth" --root "$root" -f "$work/compose.yaml" -p "$project" "$@"; }
compose up -d || fail "berth up with a GPU reservation failed"
logs=""
for _ in $(seq 1 100); do
    logs="$(compose logs 2>&1 || true)"
    grep -q 'NVIDIA_VISIBLE_DEVICES=' <<<"$logs" && break
    sleep 0.2
done
echo "$logs"
compose down || fail "berth down failed"
grep -q 'GPU [0-9]' <<<"$logs" || fail "the compose service did not list a GPU"

echo "gpu-check: OK"
