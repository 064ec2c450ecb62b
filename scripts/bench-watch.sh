#!/usr/bin/env bash
# `berth watch` benchmark: latency from a file write on the host to the
# new content being readable inside the container, and the CPU the
# watcher and the engine use while nothing changes.
#
#   scripts/bench-watch.sh          (as root; see docs/bench.md)
#
# A busybox service with a `sync` rule runs from a private engine root;
# `berth watch` runs in the background. Each edit writes a unique value to
# a watched host file, then polls the file as the container sees it
# (/proc/<pid>/root/…, the container's own mount namespace) until the
# value is there. Edits are spaced so each is its own batch.
#
# Environment: BENCH_EDITS (default 200), BENCH_IDLE_S (default 10),
# BERTH (a berth binary; default: cargo build --release),
# BERTH_BUSYBOX_TAR (a prebuilt fixture; default target/fixtures/…).
# Target: median under 100 ms. Exits 0 whatever the verdict; non-zero only
# if the benchmark could not run. Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

edits="${BENCH_EDITS:-200}"
idle_s="${BENCH_IDLE_S:-10}"

die() {
    echo "error: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, overlayfs, cgroups)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the timing loop"

if [ -n "${BERTH:-}" ]; then
    berth="$BERTH"
else
    echo "== cargo build --release"
    cargo build --release --quiet
    berth="${CARGO_TARGET_DIR:-$repo/target}/release/berth"
fi
tar="${BERTH_BUSYBOX_TAR:-$repo/target/fixtures/busybox-rootfs.tar}"
if [ ! -f "$tar" ]; then
    scripts/fixtures.sh "$(dirname "$tar")"
fi

work="$(mktemp -d /var/tmp/berth-bench-watch.XXXXXX)"
root="$work/root"
watch_pid=""
cleanup() {
    set +e
    trap - EXIT INT TERM
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
    if [ -d "$work/project" ]; then
        (cd "$work/project" && "$berth" --root "$root" down -v -t 1 >/dev/null 2>&1)
        "$berth" --root "$root" engine --stop >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$root" "$work/project/src"
"$berth" --root "$root" image import -c 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
cat >"$work/project/compose.yaml" <<'EOF'
name: benchwatch
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    develop:
      watch:
        - {path: ./src, action: sync, target: /app}
networks:
  default:
    ipam: {config: [{subnet: 10.203.254.0/24}]}
EOF
echo start >"$work/project/src/value"
cd "$work/project"
"$berth" --root "$root" up -d >/dev/null 2>&1
"$berth" --root "$root" watch >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 200); do
    grep -q "Watch enabled" "$work/watch.log" && break
    sleep 0.05
done
grep -q "Watch enabled" "$work/watch.log" || die "berth watch did not start: $(cat "$work/watch.log")"

state="$(ls "$root"/containers/*/state.json | head -n 1)"
pid="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$state")"
# The engine the first verb started: `berth --root ROOT engine …`.
engine_pid="$(pgrep -f -- "--root $root engine" | head -n 1 || true)"

echo "== $edits edits, each timed from write to readable in the container"
python3 - "$work/project/src/value" "/proc/$pid/root/app/value" "$edits" <<'EOF'
import os, statistics, sys, time
host, inside, edits = sys.argv[1], sys.argv[2], int(sys.argv[3])
samples = []
for i in range(edits):
    value = f"edit {i} {time.time_ns()}\n".encode()
    start = time.perf_counter()
    with open(host, "wb") as f:
        f.write(value)
    while True:
        try:
            with open(inside, "rb") as f:
                if f.read() == value:
                    break
        except FileNotFoundError:
            pass
        if time.perf_counter() - start > 5:
            sys.exit(f"edit {i} never arrived")
        time.sleep(0.0005)
    samples.append((time.perf_counter() - start) * 1000)
    # Past the debounce window, so the next edit is a batch of its own.
    time.sleep(0.1)
samples.sort()
median = statistics.median(samples)
p90 = samples[int(len(samples) * 0.9) - 1]
print(f"latency over {edits} edits: median {median:.1f} ms, p90 {p90:.1f} ms, min {samples[0]:.1f} ms, max {samples[-1]:.1f} ms")
print("TARGET MET (median < 100 ms)" if median < 100 else "TARGET NOT MET (median >= 100 ms)")
EOF

echo "== CPU while idle for ${idle_s} s"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
w0="$(ticks "$watch_pid")"
e0=0
[ -n "$engine_pid" ] && e0="$(ticks "$engine_pid")"
sleep "$idle_s"
w1="$(ticks "$watch_pid")"
e1=0
[ -n "$engine_pid" ] && e1="$(ticks "$engine_pid")"
python3 -c "import sys; hz,s=int(sys.argv[1]),float(sys.argv[2]); w=int(sys.argv[3]); e=int(sys.argv[4]); print(f'berth watch: {100*w/hz/s:.2f}% of one CPU; engine: {100*e/hz/s:.2f}%')" \
    "$hz" "$idle_s" "$((w1 - w0))" "$((e1 - e0))"
