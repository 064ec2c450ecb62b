#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests.
# Installs what it needs itself, so a fresh machine passes.
set -euo pipefail
cd "$(dirname "$0")/.."

# The compose corpus and schemas the tests read live beside the checkout.
corpus="${BERTH_CORPUS:-$(pwd)/../shared/corpus}"
if [ ! -d "$corpus/awesome-compose" ]; then
    echo "error: compose corpus not found at $corpus (set BERTH_CORPUS)" >&2
    exit 1
fi
export BERTH_CORPUS="$corpus"

# Debian packages the tests use, installed idempotently: busybox-static
# (fixture image), nftables (NAT), iproute2 (ip), bsdutils (script, for tty
# tests), util-linux. The registry tests install theirs through
# scripts/registry-fixtures.sh.
missing=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || missing+=(busybox-static)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is required (https://rustup.rs)" >&2
    exit 1
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== example stacks resolve"
for stack in examples/*/compose.yaml; do
    cargo run --quiet -- -f "$stack" config -q
    echo "ok $stack"
done
