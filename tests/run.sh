#!/usr/bin/env bash
# Runs every test: the Rust suites (unit tests and real cargo builds of the fixtures) and the
# Nix suite (real Nix, private stores, sandboxed build users). As root it installs what is
# missing from Debian's archive first (nix-bin, zstd).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v nix-build >/dev/null || missing+=(nix-bin)
command -v zstd >/dev/null || missing+=(zstd)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v rsync >/dev/null || missing+=(rsync)   # crane's inheritCargoArtifacts (t-80-crane.sh)
command -v jq >/dev/null || missing+=(jq)         # crane's installFromCargoBuildLog
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "tests/run.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Integration tests call both binaries; build them first so neither can be stale.
cargo build --workspace --bins
cargo test --workspace
NIXCACHE_BIN_DIR="$(pwd)/target/debug" tests/nix/run.sh
