# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): hyperfine runs, their
# statistics, the load warning, and installing tools. The caller defines
# `die` (and, for `hf`, `warmup` and `min_runs`, killing "$hf_pid" in its
# EXIT trap).

# hf JSON ARGS…: hyperfine without a shell, quiet progress. It runs in the
# background and is waited for, because bash runs no trap while a
# foreground child runs (and hyperfine survives Ctrl-C).
# shellcheck disable=SC2154 # warmup and min_runs are the caller's
hf() {
    local json="$1"
    shift
    hyperfine -N --style basic --warmup "$warmup" --min-runs "$min_runs" --export-json "$json" "$@" >"$json.log" 2>&1 &
    hf_pid=$!
    if ! wait "$hf_pid"; then
        hf_pid=""
        cat "$json.log" >&2
        die "hyperfine failed"
    fi
    hf_pid=""
}

# hf_stat JSON NAME FIELD [SCALE]: a command's median or stddev, in
# seconds times SCALE (1000 for milliseconds).
hf_stat() {
    jq -r --arg n "$2" --arg f "$3" --argjson s "${4:-1}" '.results[] | select(.command == $n) | .[$f] * $s' "$1"
}

# warn_if_loaded: other work on the host skews everything; say so rather
# than hide it.
warn_if_loaded() {
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
        echo "warning: load average $load on $(nproc) CPUs; the numbers will be noisy" >&2
    fi
}

# need COMMAND [PACKAGE]: installs PACKAGE (default: COMMAND) with apt when
# COMMAND is missing (`apt-get update` once, before the first install).
apt_updated=0
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || die "$1 is missing and apt-get is not available"
    if [ "$apt_updated" -eq 0 ]; then
        echo "== apt-get update"
        apt-get update >/dev/null
        apt_updated=1
    fi
    echo "== installing ${2:-$1}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${2:-$1}" >/dev/null
    command -v "$1" >/dev/null 2>&1 || die "installing ${2:-$1} did not provide $1"
}

# build_release_and_fixture: refuses paths the scripts cannot quote, builds
# berth (release) and sets $tarball to the busybox rootfs fixture
# (BERTH_BUSYBOX_TAR, or built under target/fixtures). Needs $work, $berth
# and $repo.
build_release_and_fixture() {
    case "$work$berth" in
        *[[:space:]\'\"\\]*) die "paths with spaces or quotes are not supported: $work $berth" ;;
    esac
    echo "== cargo build --release"
    cargo build --release --quiet
    [ -x "$berth" ] || die "$berth was not built"

    tarball="${BERTH_BUSYBOX_TAR:-$repo/target/fixtures/busybox-rootfs.tar}"
    if [ ! -f "$tarball" ]; then
        echo "== building the busybox fixture"
        scripts/fixtures.sh "$(dirname "$tarball")" >/dev/null
    fi
}

# remove_work_dir: for the EXIT traps, after berth's own cleanup: kills
# monitors of the private root under $work that outlived it, unmounts what
# is left under $work, and deletes it.
remove_work_dir() {
    # Monitors that outlived `rm -f` (they should not): end them by pid.
    local pid cmdline
    for pid in $(pgrep -f -- "__monitor" 2>/dev/null); do
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        case "$cmdline" in *"$work"*) kill -KILL "$pid" 2>/dev/null ;; esac
    done
    # Mounts under the work directory, deepest first.
    local mnt
    awk -v w="$work" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r mnt; do umount -l "$mnt"; done
    rm -rf "$work"
    if grep -qF "$work" /proc/self/mountinfo; then
        echo "warning: mounts under $work are left behind" >&2
    fi
}
