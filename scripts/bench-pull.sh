#!/usr/bin/env bash
# Pull benchmark: berth next to docker pull, skopeo and curl, in one run.
#
#   scripts/bench-pull.sh            (as root; see docs/bench-pull.md)
#
# Builds a 5-layer image of random (incompressible) data, ~150 MB, pushes
# it with skopeo to a docker-registry this script starts on a free
# 127.0.0.1 port, and times, side by side with hyperfine:
#   - berth image pull into a fresh engine root each run, until the image
#     is unpacked and registered (ready to run);
#   - docker pull (only where a Docker engine answers `docker info`);
#   - skopeo copy to an OCI directory (download only, no unpack);
#   - curl of the largest blob to /dev/null (raw loopback).
# Target: berth >= 2x docker pull, and >= 0.8x skopeo's download-only
# speed although berth also unpacks.
#
# Environment: BENCH_WARMUP (default 1), BENCH_MIN_RUNS (default 10),
# BENCH_LAYER_MB (default 30), BENCH_LAYERS (default 5),
# BENCH_COMPRESSION (gzip, the default, at level 1; or none),
# BENCH_BERTH_BASELINE (another berth binary, timed beside this one).
# Exits 0 whatever the verdict; non-zero only if the benchmark itself
# could not run. Everything it creates is removed on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

warmup="${BENCH_WARMUP:-1}"
min_runs="${BENCH_MIN_RUNS:-10}"
layer_mb="${BENCH_LAYER_MB:-30}"
layers="${BENCH_LAYERS:-5}"
compression="${BENCH_COMPRESSION:-gzip}"
baseline="${BENCH_BERTH_BASELINE:-}"

die() {
    echo "error: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (berth unpacks layers with their owners)"
case "$compression" in gzip | none) ;; *) die "BENCH_COMPRESSION must be gzip or none" ;; esac
[ -z "$baseline" ] || [ -x "$baseline" ] || die "BENCH_BERTH_BASELINE=$baseline is not an executable"

# --- tools -------------------------------------------------------------
scripts/registry-fixtures.sh # docker-registry, skopeo
need hyperfine
need jq
need curl
need sha256sum coreutils
need cargo

docker_ok=0
if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    docker_ok=1
fi

# --- state, removed on exit ------------------------------------------------
work=""
registry_pid=""
hf_pid=""
image=""
berth="${CARGO_TARGET_DIR:-$repo/target}/release/berth"

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$hf_pid" ]; then
        kill -TERM "$hf_pid" 2>/dev/null
        wait "$hf_pid" 2>/dev/null
    fi
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null
        wait "$registry_pid" 2>/dev/null
    fi
    if [ "$docker_ok" -eq 1 ] && [ -n "$image" ]; then
        docker rmi -f "$image" >/dev/null 2>&1
    fi
    if [ -n "$work" ]; then
        rm -rf "$work"
        [ -e "$work" ] && echo "warning: $work is left behind" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work="$(mktemp -d /var/tmp/berth-bench-pull-XXXXXX)"
case "$work$berth$baseline" in
    *[[:space:]\'\"\\]*) die "paths with spaces or quotes are not supported: $work $berth" ;;
esac

# --- build ----------------------------------------------------------------
echo "== cargo build --release"
cargo build --release --quiet
[ -x "$berth" ] || die "$berth was not built"

# --- the image: an OCI layout of random layers -----------------------------
echo "== building a $layers-layer image of ${layer_mb} MB random layers ($compression)"
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
blob() { # blob FILE -> moves FILE into the layout, prints "digest size"
    local hex size
    hex="$(sha256sum "$1" | cut -d' ' -f1)"
    size="$(stat -c %s "$1")"
    mv "$1" "$layout/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}
diff_ids=""
layer_descs=""
total=0
largest=""
largest_size=0
for i in $(seq 1 "$layers"); do
    dir="$work/layer$i"
    mkdir -p "$dir/data"
    head -c "$((layer_mb * 1024 * 1024))" /dev/urandom >"$dir/data/random-$i"
    tar --numeric-owner --owner=0 --group=0 --mtime=@1700000000 -C "$dir" -cf "$dir.tar" data
    diff_id="sha256:$(sha256sum "$dir.tar" | cut -d' ' -f1)"
    if [ "$compression" = gzip ]; then
        gzip -1 -n -c "$dir.tar" >"$dir.blob"
        rm "$dir.tar"
        media="application/vnd.oci.image.layer.v1.tar+gzip"
    else
        mv "$dir.tar" "$dir.blob"
        media="application/vnd.oci.image.layer.v1.tar"
    fi
    rm -rf "$dir"
    read -r digest size < <(blob "$dir.blob")
    total=$((total + size))
    if [ "$size" -gt "$largest_size" ]; then
        largest="$digest"
        largest_size="$size"
    fi
    diff_ids+="${diff_ids:+,}\"$diff_id\""
    layer_descs+="${layer_descs:+,}{\"mediaType\":\"$media\",\"digest\":\"$digest\",\"size\":$size}"
done
arch="$(uname -m)"
case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$arch" "$diff_ids" >"$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$config_digest" "$config_size" "$layer_descs" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s}]}' \
    "$manifest_digest" "$manifest_size" >"$layout/index.json"

# --- the registry ---------------------------------------------------------
port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port="$candidate"
        break
    fi
done
[ -n "$port" ] || die "no free port on 127.0.0.1"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
echo "== starting docker-registry on 127.0.0.1:$port"
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    kill -0 "$registry_pid" 2>/dev/null || die "docker-registry exited: $(cat "$work/registry.log")"
    sleep 0.1
done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || die "docker-registry did not answer"
image="127.0.0.1:$port/bench/pull:v1"
echo "== pushing $image with skopeo"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$layout" "docker://$image"
rm -rf "$layout"

# --- commands ---------------------------------------------------------------
broot="$work/berth-root"
oci_dir="$work/skopeo-oci"
cmd_berth="$berth --root $broot image pull -q $image"
prep_berth="rm -rf $broot"
cmd_skopeo="skopeo copy --quiet --preserve-digests --src-tls-verify=false docker://$image oci:$oci_dir:v1"
prep_skopeo="rm -rf $oci_dir"
cmd_curl="curl -fsS -o /dev/null http://127.0.0.1:$port/v2/bench/pull/blobs/$largest"
cmd_docker="docker pull -q $image"
broot_base="$work/baseline-root"
cmd_baseline="$baseline --root $broot_base image pull -q $image"
prep_baseline="rm -rf $broot_base"
prep_docker="sh -c 'docker rmi -f $image >/dev/null 2>&1; true'"

echo "== sanity: each command once"
sanity=("$prep_berth" "$cmd_berth" "$prep_skopeo" "$cmd_skopeo" "$cmd_curl")
[ -z "$baseline" ] || sanity+=("$prep_baseline" "$cmd_baseline")
for c in "${sanity[@]}"; do
    if ! out="$(sh -c "$c" 2>&1)"; then
        die "command failed: $c
$out"
    fi
done
# Ready to run: registered, and every layer's files are in place.
"$berth" --root "$broot" image inspect "$image" >/dev/null || die "berth did not register $image"
files="$(find "$broot/images/snapshots" -type f -name 'random-*' | wc -l)"
[ "$files" -eq "$layers" ] || die "berth unpacked $files of $layers layer files"
if [ "$docker_ok" -eq 1 ]; then
    sh -c "$prep_docker"
    sh -c "$cmd_docker" >/dev/null || die "docker pull failed"
fi

median_s() { hf_stat "$1" "$2" median; } # median_s JSON NAME
stddev_s() { hf_stat "$1" "$2" stddev; }

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
warn_if_loaded
echo "== timing (warmup $warmup, at least $min_runs runs each)"
json="$work/pull.json"
set -- -n berth -p "$prep_berth" "$cmd_berth" \
    -n skopeo -p "$prep_skopeo" "$cmd_skopeo" \
    -n curl -p true "$cmd_curl"
if [ "$docker_ok" -eq 1 ]; then
    set -- "$@" -n docker -p "$prep_docker" "$cmd_docker"
fi
if [ -n "$baseline" ]; then
    set -- "$@" -n baseline -p "$prep_baseline" "$cmd_baseline"
fi
hf "$json" "$@"

# --- report ---------------------------------------------------------------
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
speed() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
row() { # row LABEL NAME BYTES
    local m sd
    m="$(median_s "$json" "$2")"
    sd="$(stddev_s "$json" "$2")"
    printf '  %-44s %7.3f s ± %5.3f  %6s MB/s\n' "$1" "$m" "$sd" "$(speed "$3" "$m")"
}
echo
echo "berth pull benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "host: $(uname -r), $(nproc) CPUs, load average $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo "tools: $(docker-registry --version 2>/dev/null | head -1 || echo docker-registry); $(skopeo --version); $(curl --version | head -1 | cut -d' ' -f1-2); $(hyperfine --version)"
echo "berth: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo "(not a git checkout)")"
[ -z "$baseline" ] || echo "baseline: $baseline"
echo "image: $layers layers of ${layer_mb} MiB random data ($compression), $(mb "$total") MB of blobs; largest blob $(mb "$largest_size") MB"
echo
echo "median wall time, ± stddev, and throughput over the image's blobs"
row "berth image pull (download + unpack)" berth "$total"
if [ -n "$baseline" ]; then
    row "baseline berth (download + unpack)" baseline "$total"
fi
if [ "$docker_ok" -eq 1 ]; then
    row "docker pull (download + unpack)" docker "$total"
else
    printf '  %-44s %s\n' "docker pull" "skipped: no Docker engine here (docker info fails)"
fi
row "skopeo copy to oci: (download only)" skopeo "$total"
row "curl of the largest blob (raw loopback)" curl "$largest_size"
echo

t_berth="$(median_s "$json" berth)"
t_skopeo="$(median_s "$json" skopeo)"
vs_skopeo="$(awk -v b="$t_berth" -v s="$t_skopeo" 'BEGIN { printf "%.2f", s / b }')"
met=1
echo "berth vs skopeo: ${vs_skopeo}x skopeo's speed (target >= 0.8x)"
awk -v r="$vs_skopeo" 'BEGIN { exit !(r >= 0.8) }' || met=0
if [ "$docker_ok" -eq 1 ]; then
    t_docker="$(median_s "$json" docker)"
    vs_docker="$(awk -v b="$t_berth" -v d="$t_docker" 'BEGIN { printf "%.2f", d / b }')"
    echo "berth vs docker: ${vs_docker}x docker pull's speed (target >= 2x)"
    awk -v r="$vs_docker" 'BEGIN { exit !(r >= 2) }' || met=0
else
    echo "berth vs docker: not measured (no Docker engine); only the skopeo target is checked"
fi
summary="berth pulls at ${vs_skopeo}x the download-only speed of skopeo"
if [ "$docker_ok" -eq 1 ]; then
    summary="$summary and ${vs_docker}x that of docker pull"
fi
if [ "$met" -eq 1 ]; then
    echo "TARGET MET: $summary"
else
    echo "TARGET NOT MET: $summary"
fi
