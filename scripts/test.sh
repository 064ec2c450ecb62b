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
