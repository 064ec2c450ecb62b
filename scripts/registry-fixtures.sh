#!/usr/bin/env bash
# Installs what tests/registry.rs needs to run a real registry on loopback:
# Debian's docker-registry (the CNCF distribution registry), skopeo (to push
# fixture images) and apache2-utils (htpasswd, for bcrypt entries).
# Idempotent: does nothing when the tools are already there.
set -euo pipefail

need=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
[ ${#need[@]} -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
# Only refresh the lists when a package is unknown to them.
if ! apt-cache show "${need[@]}" >/dev/null 2>&1; then
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
