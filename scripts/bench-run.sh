#!/usr/bin/env bash
# Container-start benchmark: berth next to runc and crun, in one run.
#
#   scripts/bench-run.sh            (as root; see docs/bench.md)
#
# Each timed iteration is a whole container life: create, start, `true`,
# exit, delete. berth runs the busybox image from a private engine root;
# runc and crun run an OCI bundle made from the same busybox rootfs.
# Also reported: where berth's time goes (create/start/wait/rm measured
# separately) and the resident memory of berth's per-container monitor.
#
# Environment: BENCH_WARMUP (default 5), BENCH_MIN_RUNS (default 50),
# BENCH_ROUNDS (default 5), BERTH_BUSYBOX_TAR (a prebuilt fixture; default
# target/fixtures/…). The start timing runs in rounds, each timing every
# command in turn, and pools the rounds' runs: this VM's speed drifts by
# 15 % and more within minutes, and one long run per command would give
# whichever ran in a slow minute the blame.
# Exits 0 whatever the verdict; non-zero only if the benchmark itself
# could not run. Everything it creates is removed on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

warmup="${BENCH_WARMUP:-5}"
min_runs="${BENCH_MIN_RUNS:-50}"
rounds="${BENCH_ROUNDS:-5}"
rss_containers=5
shim_rss_mib=13 # containerd-shim-runc-v2, typical VmRSS (reference only)

die() {
    echo "error: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, overlayfs, cgroups)"

# --- tools -------------------------------------------------------------
need runc
need crun
need hyperfine
need jq
need unshare util-linux
need cargo

# --- state, removed on exit ------------------------------------------------
work=""
root=""
berth="${CARGO_TARGET_DIR:-$repo/target}/release/berth"
runc_id="berth-bench-runc-$$"
crun_id="berth-bench-crun-$$"
crun_wrap="umount /sys/fs/cgroup/unified 2>/dev/null;"

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "${hf_pid:-}" ]; then
        # Stop hyperfine, then let the command it was timing finish, so
        # nothing below races a container that is still starting.
        local kids kid i
        kids="$(pgrep -P "$hf_pid")"
        kill -TERM "$hf_pid" 2>/dev/null
        wait "$hf_pid" 2>/dev/null
        for kid in $kids; do
            for i in $(seq 1 100); do
                kill -0 "$kid" 2>/dev/null || break
                sleep 0.1
            done
        done
    fi
    if [ -n "$root" ] && [ -x "$berth" ] && [ -d "$root" ]; then
        local ids
        ids="$("$berth" --root "$root" container ls -aq 2>/dev/null)"
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086 # one id per word
            "$berth" --root "$root" container rm -f $ids >/dev/null 2>&1
        fi
    fi
    runc delete -f "$runc_id" >/dev/null 2>&1
    unshare -m sh -c "$crun_wrap crun delete -f $crun_id" >/dev/null 2>&1
    # With the cgroup2 mount gone, crun mkdirs "$crun_id" (and writes a
    # plain cgroup.procs file) in the host's /sys/fs/cgroup tmpfs, hidden
    # under /sys/fs/cgroup/unified; its delete cannot rmdir it. Remove it.
    unshare -m sh -c "umount /sys/fs/cgroup/unified 2>/dev/null && rm -rf /sys/fs/cgroup/unified/$crun_id" >/dev/null 2>&1
    if unshare -m sh -c "umount /sys/fs/cgroup/unified 2>/dev/null && test -e /sys/fs/cgroup/unified/$crun_id"; then
        echo "warning: /sys/fs/cgroup/unified/$crun_id (under the cgroup2 mount) is left behind" >&2
    fi
    if [ -n "$work" ]; then
        remove_work_dir
    fi
    if runc list -q 2>/dev/null | grep -qx "$runc_id"; then
        echo "warning: runc container $runc_id is left behind" >&2
    fi
    # runc/crun cgroups (removed by `delete`; an interrupted run may leave one).
    local cg
    for cg in $(find /sys/fs/cgroup -maxdepth 3 -type d \( -name "$runc_id" -o -name "$crun_id" \) 2>/dev/null | sort -r); do
        rmdir "$cg" 2>/dev/null || echo "warning: cgroup $cg is left behind" >&2
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work="$(mktemp -d /var/tmp/berth-bench-XXXXXX)"
root="$work/root"
bundle="$work/bundle"

# --- build and image -----------------------------------------------------
build_release_and_fixture

B=("$berth" --root "$root")
bs="$berth --root $root" # the same, as a string for hyperfine
echo "== importing busybox into $root"
"${B[@]}" image import -c 'CMD ["sh"]' "$tarball" busybox:latest >/dev/null

echo "== preparing the OCI bundle for runc/crun"
mkdir -p "$bundle/rootfs"
tar -C "$bundle/rootfs" -xf "$tarball"
(cd "$bundle" && runc spec)
jq '.process.args = ["true"] | .process.terminal = false | .root.readonly = false' \
    "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

# --- commands ------------------------------------------------------------
# `runc run`/`crun run` without --keep delete the container when it exits,
# so one id per runtime gives a full create+start+exit+delete per run; the
# --prepare step only clears a leftover from a failed run.
cmd_berth="$bs container run --rm busybox true"
cmd_runc="runc run --bundle $bundle $runc_id"
# crun refuses hybrid cgroups ("drop all controllers from cgroupv2"); in a
# private mount namespace without the cgroup2 mount it sees plain v1.
cmd_crun="unshare -m sh -c '$crun_wrap crun run --bundle $bundle $crun_id'"
cmd_wrap="unshare -m sh -c '$crun_wrap true'"
prep_none="true"
prep_runc="sh -c 'runc delete -f $runc_id >/dev/null 2>&1; true'"
prep_crun="unshare -m sh -c '$crun_wrap crun delete -f $crun_id >/dev/null 2>&1; true'"

echo "== sanity: each command once"
for c in "$cmd_berth" "$cmd_runc" "$cmd_crun" "$cmd_wrap"; do
    if ! out="$(sh -c "$c" 2>&1)"; then
        die "command failed: $c
$out"
    fi
done

# hyperfine runs in the background and the script `wait`s for it: bash
# defers a trap until a foreground child exits, and hyperfine survives
# Ctrl-C, so a foreground hyperfine would make the script ignore it.
hf_pid=""
median_ms() { hf_stat "$1" "$2" median 1000; } # median_ms JSON NAME

load_start="$(cut -d' ' -f1 /proc/loadavg)"
warn_if_loaded
echo "== timing ($rounds rounds, warmup $warmup, at least $min_runs runs each in all)"
start_jsons=()
all_runs="$min_runs"
min_runs=$(((all_runs + rounds - 1) / rounds))
for round in $(seq 1 "$rounds"); do
    start_jsons+=("$work/start-$round.json")
    hf "$work/start-$round.json" \
        -n berth -p "$prep_none" "$cmd_berth" \
        -n runc -p "$prep_runc" "$cmd_runc" \
        -n crun+wrapper -p "$prep_crun" "$cmd_crun" \
        -n wrapper -p "$prep_none" "$cmd_wrap"
done
min_runs="$all_runs"
# pooled NAME median|stddev: over every round's runs, in milliseconds.
pooled() {
    jq -s -r --arg n "$1" --arg f "$2" '
        [.[].results[] | select(.command == $n) | .times[]] | sort
        | if $f == "median" then
              (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end)
          else
              (add / length) as $m | (map((. - $m) * (. - $m)) | add / length | sqrt)
          end * 1000' "${start_jsons[@]}"
}

m_berth="$(pooled berth median)"
m_runc="$(pooled runc median)"
m_crunw="$(pooled crun+wrapper median)"
m_wrap="$(pooled wrapper median)"
m_crun="$(awk -v a="$m_crunw" -v b="$m_wrap" 'BEGIN { print a - b }')"

echo "== where berth's time goes"
name=bench-phase
rm_phase="$bs container rm -f $name >/dev/null 2>&1"
create_phase="$bs container create --name $name busybox true >/dev/null"
start_phase="$bs container start $name >/dev/null"
wait_phase="$bs container wait $name >/dev/null"
phase_json="$work/phases.json"
hf "$phase_json" \
    -n create -p "sh -c '$rm_phase; true'" "$bs container create --name $name busybox true" \
    -n start -p "sh -c '$rm_phase; $create_phase'" "$bs container start $name" \
    -n wait -p "sh -c '$rm_phase; $create_phase && $start_phase'" "$bs container wait $name" \
    -n rm -p "sh -c '$rm_phase; $create_phase && $start_phase && $wait_phase'" "$bs container rm $name"
"${B[@]}" container rm -f "$name" >/dev/null 2>&1 || true

echo "== monitor memory ($rss_containers detached 'sleep 1000' containers)"
for i in $(seq 1 "$rss_containers"); do
    "${B[@]}" container run -d --name "bench-rss-$i" busybox sleep 1000 >/dev/null
done
# A monitor drops its start pages at the container's first quiet moment
# (50 ms without events): measure the steady state, not the start.
sleep 0.5
rss_total=0
pss_total=0
monitors=0
rss_lines=""
for pid in $(pgrep -f -- "__monitor"); do
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || continue
    case "$cmdline" in *"$root"*) ;; *) continue ;; esac
    rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
    pss="$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")"
    rss_total=$((rss_total + rss))
    pss_total=$((pss_total + pss))
    monitors=$((monitors + 1))
    rss_lines+="$(printf '  monitor pid %-8s VmRSS %6s KiB   Pss %6s KiB' "$pid" "$rss" "$pss")"$'\n'
done
for i in $(seq 1 "$rss_containers"); do
    "${B[@]}" container rm -f "bench-rss-$i" >/dev/null
done
[ "$monitors" -eq "$rss_containers" ] ||
    echo "warning: found $monitors monitor processes for $rss_containers containers" >&2

# --- report --------------------------------------------------------------
fmt() { awk -v v="$1" 'BEGIN { printf "%8.2f", v }'; }
echo
echo "berth container-start benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "host: $(uname -r), $(nproc) CPUs, load average $load_start at start, $(cut -d' ' -f1 /proc/loadavg) at end"
echo "tools: $(runc --version | head -1); $(crun --version | head -1); $(hyperfine --version)"
echo "berth: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo "(not a git checkout)")"
echo
echo "start+exit+delete of 'true' (median ms, ± stddev, $rounds rounds pooled)"
printf '  %-28s %s ± %s\n' "berth run --rm" "$(fmt "$m_berth")" "$(fmt "$(pooled berth stddev)")"
printf '  %-28s %s ± %s\n' "runc run" "$(fmt "$m_runc")" "$(fmt "$(pooled runc stddev)")"
printf '  %-28s %s ± %s\n' "crun run (in wrapper)" "$(fmt "$m_crunw")" "$(fmt "$(pooled crun+wrapper stddev)")"
printf '  %-28s %s ± %s\n' "wrapper alone" "$(fmt "$m_wrap")" "$(fmt "$(pooled wrapper stddev)")"
printf '  %-28s %s\n' "crun (wrapper subtracted)" "$(fmt "$m_crun")"
echo
echo "berth phases (median ms)"
sum=0
for p in create start wait rm; do
    m="$(median_ms "$phase_json" "$p")"
    sum="$(awk -v a="$sum" -v b="$m" 'BEGIN { print a + b }')"
    printf '  %-28s %s\n' "container $p" "$(fmt "$m")"
done
printf '  %-28s %s   (vs %s for run --rm)\n' "sum" "$(fmt "$sum")" "$(fmt "$m_berth")"
echo
echo "monitor memory, $monitors monitors"
printf '%s' "$rss_lines"
if [ "$monitors" -gt 0 ]; then
    avg_rss=$((rss_total / monitors))
    avg_pss=$((pss_total / monitors))
    rss_verdict="$([ "$avg_rss" -le 1024 ] && echo met || echo NOT met)"
    printf '  average VmRSS %s KiB (%.2f MiB), Pss %s KiB; target 1 MiB: %s; containerd shim ~%s MiB\n' \
        "$avg_rss" "$(awk -v k="$avg_rss" 'BEGIN { print k / 1024 }')" "$avg_pss" "$rss_verdict" "$shim_rss_mib"
fi
echo
if awk -v a="$m_berth" -v b="$m_crun" 'BEGIN { exit !(a < b) }'; then
    echo "TARGET MET: berth median $(fmt "$m_berth") ms < crun $(fmt "$m_crun") ms"
else
    echo "TARGET NOT MET: berth median $(fmt "$m_berth") ms >= crun $(fmt "$m_crun") ms ($(awk -v a="$m_berth" -v b="$m_crun" 'BEGIN { printf "%.1fx", a / b }'))"
fi
