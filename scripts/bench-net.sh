#!/usr/bin/env bash
# Network benchmark (issue 4): per-container network setup time, and TCP
# throughput through a published port next to a direct connection to the
# container's address, in one run.
#
#   scripts/bench-net.sh            (as root; see docs/bench-net.md)
#
# Setup time: BENCH_CONTAINERS detached containers are started one after
# the other on one bridge network with BERTH_TIMINGS set, so berth itself
# reports how long each network step took (the address record at create;
# the claim and the veth/address/route plumbing in the monitor at start).
# Throughput: an iperf3 server in a container (the host's binary and
# libraries bind-mounted read-only into the busybox image) with its port
# published on 127.0.0.1; iperf3 on the host measures, alternately,
# 127.0.0.1:PORT (through berth's forwarder) and the container's address
# (straight over the bridge), in both directions.
#
# Environment: BENCH_CONTAINERS (default 30), BENCH_SECONDS (per iperf3
# test, default 5), BENCH_ROUNDS (alternations, default 3),
# BERTH_BUSYBOX_TAR (a prebuilt fixture; default target/fixtures/…).
# Exits 0 whatever the verdicts; non-zero only if the benchmark itself
# could not run. Everything it creates is removed on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

containers="${BENCH_CONTAINERS:-30}"
seconds="${BENCH_SECONDS:-5}"
rounds="${BENCH_ROUNDS:-3}"
setup_target_ms=5
throughput_target_gbs=1

die() {
    echo "error: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, veths, bridges)"

# --- tools -------------------------------------------------------------
need iperf3
need jq
need ip iproute2
need cargo

# --- state, removed on exit ------------------------------------------------
work=""
root=""
network=""
berth="${CARGO_TARGET_DIR:-$repo/target}/release/berth"

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "${client_pid:-}" ]; then
        kill -TERM "$client_pid" 2>/dev/null
        wait "$client_pid" 2>/dev/null
    fi
    if [ -n "$root" ] && [ -x "$berth" ] && [ -d "$root" ]; then
        local ids
        ids="$("$berth" --root "$root" container ls -aq 2>/dev/null)"
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086 # one id per word
            "$berth" --root "$root" container rm -f $ids >/dev/null 2>&1
        fi
        if [ -n "$network" ]; then
            "$berth" --root "$root" network rm "$network" >/dev/null 2>&1
        fi
    fi
    if [ -n "$work" ]; then
        remove_work_dir
    fi
    if [ -n "${subnet_prefix:-}" ] && ip -4 route show | grep -q "^$subnet_prefix"; then
        echo "warning: a route to ${subnet_prefix}0/24 is left behind (bridge not removed)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work="$(mktemp -d /var/tmp/berth-bench-net-XXXXXX)"
root="$work/root"
timings="$work/timings"

# --- build and image -----------------------------------------------------
build_release_and_fixture

B=("$berth" --root "$root")
echo "== importing busybox into $root"
"${B[@]}" image import -c 'CMD ["sh"]' "$tarball" busybox:latest >/dev/null

# A 10.210.N.0/24 subnet that no route on the host uses yet.
subnet_prefix=""
for n in $(seq 200 250); do
    if ! ip -4 route show | grep -q "^10\.210\.$n\."; then
        subnet_prefix="10.210.$n."
        break
    fi
done
[ -n "$subnet_prefix" ] || die "no free 10.210.200-250.0/24 subnet on this host"
network="bench-net-$$"
"${B[@]}" network create --subnet "${subnet_prefix}0/24" "$network" >/dev/null

# Other work on the host skews everything; say so rather than hide it.
load_start="$(cut -d' ' -f1 /proc/loadavg)"
warn_if_loaded

# --- 1. network setup per container -------------------------------------
echo "== network setup: $containers containers on $network (${subnet_prefix}0/24)"
: >"$timings"
for i in $(seq 1 "$containers"); do
    BERTH_TIMINGS="$timings" "${B[@]}" container run -d --name "bench-setup-$i" --network "$network" \
        busybox sleep 1000 >/dev/null
done
ids="$("${B[@]}" container ls -aq)"
# shellcheck disable=SC2086 # one id per word
"${B[@]}" container rm -f $ids >/dev/null

# Per container: the sum of its steps, and each step on its own.
stats() { # stats < values (µs, one a line) → "median p90 min max" in ms
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = int(NR * 0.9 + 0.999); if (p > NR) p = NR
        printf "%.3f %.3f %.3f %.3f\n", m / 1000, v[p] / 1000, v[1] / 1000, v[NR] / 1000 }'
}
setup_counted="$(awk '$1 == "attach" { n++ } END { print n + 0 }' "$timings")"
[ "$setup_counted" -eq "$containers" ] ||
    die "expected $containers attach timings in $timings, found $setup_counted (BERTH_TIMINGS not honoured?)"
setup_total="$(awk '{ t[$2] += $3 } END { for (c in t) print t[c] }' "$timings" | stats)"
setup_steps=""
for step in address claim attach; do
    setup_steps+="$(printf '  %-34s %s' "$step" "$(awk -v s="$step" '$1 == s { print $3 }' "$timings" | stats)")"$'\n'
done

# --- 2. throughput --------------------------------------------------------
direct_ip="${subnet_prefix}10"
echo "== throughput: iperf3 server in a container at $direct_ip, published on 127.0.0.1"
libs=(-v /usr/bin/iperf3:/usr/bin/iperf3:ro -v /usr/lib:/usr/lib:ro)
# Debian's /lib and /lib64 are links into /usr; the container's rootfs has
# neither, and the loader's path (/lib64/ld-linux-x86-64.so.2 → ../lib/…)
# must resolve inside it.
[ -L /lib ] && libs+=(-v "$(readlink -f /lib):/lib:ro") || libs+=(-v /lib:/lib:ro)
[ -e /lib64 ] && libs+=(-v "$(readlink -f /lib64):/lib64:ro")
"${B[@]}" container run -d --name bench-iperf --network "$network" --ip "$direct_ip" \
    -p 127.0.0.1::5201 "${libs[@]}" busybox /usr/bin/iperf3 -s >/dev/null
host_port="$("${B[@]}" container inspect bench-iperf |
    jq -r '.[0].NetworkSettings.Ports["5201/tcp"][0].HostPort')"
case "$host_port" in '' | null) die "bench-iperf: no published port in inspect" ;; esac
monitor_pid="$(pgrep -f -- "__monitor" | while read -r pid; do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$root" && echo "$pid"
done | head -1)"

ready=0
for _ in $(seq 1 100); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$direct_ip/5201" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[ "$ready" -eq 1 ] || die "the iperf3 server in the container does not answer: $("${B[@]}" container logs bench-iperf 2>&1 | tail -3)"

cpu_ticks() { # utime+stime of PID, in clock ticks
    [ -n "$1" ] || { echo 0; return; }
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
client_pid=""
gbs="" # the result of the last `measure`
measure() { # measure HOST PORT [iperf3 args…]: GB/s received (10^9 bytes) → $gbs
    local host="$1" port="$2" json="$work/iperf.json"
    shift 2
    # In the background so that a trap runs at once on Ctrl-C (bash defers
    # it while a foreground child runs).
    iperf3 -c "$host" -p "$port" -t "$seconds" -J "$@" >"$json" 2>&1 &
    client_pid=$!
    if ! wait "$client_pid"; then
        client_pid=""
        cat "$json" >&2
        die "iperf3 -c $host -p $port $* failed"
    fi
    client_pid=""
    gbs="$(jq -r '.end.sum_received.bits_per_second / 8 / 1e9' "$json")"
}
declare -A results=()
ticks_fwd=0
secs_fwd=0
for r in $(seq 1 "$rounds"); do
    for dir in up down; do
        flag=()
        [ "$dir" = down ] && flag=(-R)
        t0="$(cpu_ticks "$monitor_pid")"
        measure 127.0.0.1 "$host_port" "${flag[@]}"
        ticks_fwd=$((ticks_fwd + $(cpu_ticks "$monitor_pid") - t0))
        secs_fwd=$((secs_fwd + seconds))
        results[fwd-$dir]+="$gbs "
        fwd="$gbs"
        measure "$direct_ip" 5201 "${flag[@]}"
        results[direct-$dir]+="$gbs "
        printf '   round %s %-4s forwarder %5.2f GB/s, direct %5.2f GB/s\n' "$r" "$dir" "$fwd" "$gbs"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fwd_up="$(echo "${results[fwd-up]}" | median)"
fwd_down="$(echo "${results[fwd-down]}" | median)"
direct_up="$(echo "${results[direct-up]}" | median)"
direct_down="$(echo "${results[direct-down]}" | median)"
monitor_cpu="$(awk -v t="$ticks_fwd" -v s="$secs_fwd" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (s > 0) printf "%.0f", 100 * t / hz / s; else print "?" }')"

# --- report --------------------------------------------------------------
echo
echo "berth network benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "host: $(uname -r), $(nproc) CPUs, load average $load_start at start, $(cut -d' ' -f1 /proc/loadavg) at end"
echo "tools: $(iperf3 --version | head -1)"
echo "berth: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo "(not a git checkout)")"
echo
echo "network setup per container, $containers containers (ms: median p90 min max)"
printf '  %-34s %s\n' "total (address + claim + attach)" "$setup_total"
printf '%s' "$setup_steps"
echo
echo "TCP throughput, iperf3, $seconds s x $rounds rounds per cell (median GB/s, 10^9 bytes/s)"
printf '  %-34s %8s %8s\n' "" "up" "down"
printf '  %-34s %8s %8s\n' "127.0.0.1:$host_port (berth forwarder)" "$fwd_up" "$fwd_down"
printf '  %-34s %8s %8s\n' "$direct_ip:5201 (direct)" "$direct_up" "$direct_down"
echo "  (up: host → container; down: -R, container → host)"
echo "  forwarder (container monitor) CPU while forwarding: ${monitor_cpu}% of one CPU"
echo
setup_median="$(echo "$setup_total" | cut -d' ' -f1)"
if awk -v m="$setup_median" -v t="$setup_target_ms" 'BEGIN { exit !(m < t) }'; then
    echo "TARGET MET: network setup median $setup_median ms < $setup_target_ms ms"
else
    echo "TARGET NOT MET: network setup median $setup_median ms >= $setup_target_ms ms"
fi
fwd_min="$(awk -v a="$fwd_up" -v b="$fwd_down" 'BEGIN { print (a < b) ? a : b }')"
if awk -v m="$fwd_min" -v t="$throughput_target_gbs" 'BEGIN { exit !(m >= t) }'; then
    echo "TARGET MET: published-port throughput $fwd_up / $fwd_down GB/s (up/down) >= $throughput_target_gbs GB/s"
else
    echo "TARGET NOT MET: published-port throughput $fwd_up / $fwd_down GB/s (up/down) < $throughput_target_gbs GB/s"
fi
