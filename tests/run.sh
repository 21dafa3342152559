#!/usr/bin/env bash
# Runs every test: the Rust suites (unit tests and real cargo builds of the fixtures), the same
# core, wrapper and harden suites again with a second cargo (1.97) in both build-dir layouts
# (tests/cargo-matrix.sh; it builds that cargo once per machine, 15-25 min, then reuses it;
# NIXCACHE_SKIP_CARGO_MATRIX=1 skips it), and the Nix suite (real Nix, private stores, sandboxed
# build users; on Debian's Nix 2.8 and on the current Nix in ../shared/nix-2.24). As root it
# installs what is missing from Debian's archive first (nix-bin, zstd, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v nix-build >/dev/null || missing+=(nix-bin)
command -v zstd >/dev/null || missing+=(zstd)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v rsync >/dev/null || missing+=(rsync)   # crane's inheritCargoArtifacts (t-80-crane.sh)
command -v jq >/dev/null || missing+=(jq)         # crane's installFromCargoBuildLog
command -v patchelf >/dev/null || missing+=(patchelf)   # stdenv's fixup (tests/nix/crane)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)      # the remote builder (t-97-remote.sh)
# What ../shared/nix-2.24 (the current Nix the Nix suite also runs on) links against beyond nix-bin.
for lib in libgit2-1.5 libcurl4; do
    dpkg -s "$lib" >/dev/null 2>&1 || missing+=("$lib")
done
tests/apt-install.sh tests/run.sh ${missing[@]+"${missing[@]}"}

# Integration tests call both binaries; build them first so neither can be stale.
cargo build --workspace --bins
cargo test --workspace
if [ -z "${NIXCACHE_SKIP_CARGO_MATRIX:-}" ]; then
    tests/cargo-matrix.sh
fi
NIXCACHE_BIN_DIR="$(pwd)/target/debug" tests/nix/run.sh
