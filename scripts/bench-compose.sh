#!/usr/bin/env bash
# Compose benchmark: `up -d` and `down` of generated 10- and 50-service
# stacks, berth next to docker compose (when a Docker engine is installed),
# in one run; plus `up -d` of an unchanged, running 50-service stack and the
# engine's resident memory with 50 running containers.
#
#   scripts/bench-compose.sh          (as root; see docs/bench.md)
#
# The stacks: busybox services in chains and fan-out (`depends_on`), one
# network, one named volume, one published port. "up" ends when every
# container runs (`up -d` returns then); "down" when all is removed.
#
# Environment: BENCH_RUNS (default 5), BERTH_BUSYBOX_TAR (a prebuilt
# fixture; default target/fixtures/…). Everything it creates is removed on
# exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
runs="${BENCH_RUNS:-5}"

die() {
    echo "error: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, overlayfs, cgroups)"

echo "== building berth (release)"
cargo build --release --quiet
berth="$repo/target/release/berth"

work="$(mktemp -d /var/tmp/berth-bench-compose.XXXXXX)"
root="$work/root"
cleanup() {
    for d in "$work"/stack-*; do
        [ -d "$d" ] && (cd "$d" && "$berth" --root "$root" down -v -t 0 >/dev/null 2>&1 || true)
    done
    "$berth" --root "$root" engine --stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

tar="${BERTH_BUSYBOX_TAR:-$repo/target/fixtures/busybox-rootfs.tar}"
[ -f "$tar" ] || scripts/fixtures.sh "$(dirname "$tar")"
"$berth" --root "$root" image import "$tar" busybox:latest -c 'CMD ["sh"]' >/dev/null

# generate N SUBNET_OCTET: a stack of N services; service i depends on
# i-1 in chains of five, and the first of each chain on s1 (fan-out).
generate() {
    local n="$1" octet="$2" dir="$work/stack-$1"
    mkdir -p "$dir"
    {
        echo "name: bench$n"
        echo "services:"
        for i in $(seq 1 "$n"); do
            echo "  s$i:"
            echo "    image: busybox:latest"
            echo "    command: [\"sleep\", \"3600\"]"
            echo "    stop_signal: SIGKILL"
            if [ "$i" -gt 1 ]; then
                if [ $(((i - 1) % 5)) -eq 0 ]; then
                    echo "    depends_on: [s1]"
                else
                    echo "    depends_on: [s$((i - 1))]"
                fi
            fi
            if [ "$i" -eq 1 ]; then
                echo "    ports: [\"$((18900 + n)):80\"]"
                echo "    volumes: [data:/data]"
            fi
        done
        echo "networks:"
        echo "  default:"
        echo "    ipam: {config: [{subnet: 10.206.$octet.0/24}]}"
        echo "volumes:"
        echo "  data: {}"
    } >"$dir/compose.yaml"
    echo "$dir"
}

now_ms() { date +%s%3N; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# time_berth DIR: prints "up_ms down_ms" medians over $runs runs.
time_berth() {
    local dir="$1" ups=() downs=() t
    cd "$dir"
    "$berth" --root "$root" up -d >/dev/null 2>&1 # warm-up (starts the engine)
    "$berth" --root "$root" down -v >/dev/null 2>&1
    for _ in $(seq 1 "$runs"); do
        t=$(now_ms)
        "$berth" --root "$root" up -d >/dev/null 2>&1 || die "berth up failed in $dir"
        ups+=($(($(now_ms) - t)))
        t=$(now_ms)
        "$berth" --root "$root" down -v -t 0 >/dev/null 2>&1 || die "berth down failed in $dir"
        downs+=($(($(now_ms) - t)))
    done
    cd "$repo"
    echo "$(printf '%s\n' "${ups[@]}" | median) $(printf '%s\n' "${downs[@]}" | median)"
}

# time_docker DIR: the same with docker compose, or "n/a n/a".
time_docker() {
    local dir="$1" compose ups=() downs=() t
    if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif docker info >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1; then
        compose=(docker-compose)
    else
        echo "n/a n/a"
        return
    fi
    cd "$dir"
    for _ in $(seq 1 "$runs"); do
        t=$(now_ms)
        "${compose[@]}" up -d >/dev/null 2>&1 || die "docker compose up failed in $dir"
        ups+=($(($(now_ms) - t)))
        t=$(now_ms)
        "${compose[@]}" down -v -t 0 >/dev/null 2>&1 || die "docker compose down failed"
        downs+=($(($(now_ms) - t)))
    done
    cd "$repo"
    echo "$(printf '%s\n' "${ups[@]}" | median) $(printf '%s\n' "${downs[@]}" | median)"
}

printf '\n%-12s %12s %12s %14s %14s\n' "stack" "berth up" "berth down" "compose up" "compose down"
for n in 10 50; do
    dir=$(generate "$n" "$((n / 10))")
    read -r bu bd < <(time_berth "$dir")
    read -r du dd < <(time_docker "$dir")
    printf '%-12s %10s ms %10s ms %12s ms %12s ms\n' "$n services" "$bu" "$bd" "$du" "$dd"
done

# Converged: `up -d` of the unchanged, running 50-service stack.
dir="$work/stack-50"
cd "$dir"
"$berth" --root "$root" up -d >/dev/null 2>&1 || die "berth up failed in $dir"
running=$("$berth" --root "$root" ps -q | wc -l)
[ "$running" -eq 50 ] || die "expected 50 running containers, found $running"
noops=()
for _ in $(seq 1 $((runs * 4))); do
    t=$(now_ms)
    "$berth" --root "$root" up -d >/dev/null 2>&1 || die "berth up of the unchanged stack failed"
    noops+=($(($(now_ms) - t)))
done
echo
echo "unchanged 50-service up -d: median $(printf '%s\n' "${noops[@]}" | median) ms (target < 50 ms)"

# Memory: the engine and the monitors with 50 containers running.
engine_pid=$(pgrep -f -- "--root $root engine" | head -1)
engine_rss=$(awk '/VmRSS/ {print $2}' "/proc/$engine_pid/status")
monitors=$(pgrep -f -- "--root $root __monitor")
monitor_rss=$(for p in $monitors; do awk '/VmRSS/ {print $2}' "/proc/$p/status"; done | median)
# Pss divides each shared page (the monitor's and libc's code, the same
# physical pages in every monitor) among the processes mapping it: the sum
# over the monitors is what they cost together, and that divided by their
# number is the cost of one container's monitor. Private is what one
# monitor alone holds (its heap, stack, relocated data).
monitor_pss=$(for p in $monitors; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup"; done | awk '{s+=$1; n++} END {if (n) printf "%d %d", s, s/n}')
monitor_private=$(for p in $monitors; do awk '/^Private_(Clean|Dirty):/ {s+=$2} END {print s}' "/proc/$p/smaps_rollup"; done | median)
echo "engine RSS with 50 running containers: $((engine_rss / 1024)) MiB (target < 30 MiB)"
echo "monitor RSS, median per container: ${monitor_rss} KiB (counts the code all monitors share)"
echo "monitors' Pss: ${monitor_pss% *} KiB together, ${monitor_pss#* } KiB per container (target <= 1024 KiB); private median ${monitor_private} KiB"
"$berth" --root "$root" down -v -t 0 >/dev/null 2>&1
cd "$repo"
