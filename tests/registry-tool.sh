#!/usr/bin/env bash
# A tool built from crates.io once per machine, into a cache dir later runs (and CI, which runs
# on the same machine in a fresh environment) reuse: prints the path of its binary.
#
# Usage: tests/registry-tool.sh CRATE VERSION BINARY
#   e.g. tests/registry-tool.sh cargo 0.98.0 cargo        (cargo 1.97, tests/cargo-matrix.sh)
#        tests/registry-tool.sh cargo-nextest 0.9.143 cargo-nextest   (crane's cargoNextest)
#        tests/registry-tool.sh ../shared/crane/pkgs/crane-utils 2c71e19 crane-json2toml
#
# `cargo install CRATE --version VERSION --locked` into $NIXCACHE_CARGO_CACHE/CRATE-VERSION
# (default /var/cache/cargo-nixcache). A CRATE with a `/` is a package directory (its lock file
# pins what crates.io gives), installed with `--path`; VERSION then names the cache entry (e.g.
# the commit the directory comes from), and the build happens outside it (it may be read-only). Built into a scratch root first, so an interrupted build
# leaves no half-installed tool behind; one build per machine even when two runs start at once.
# cargo 0.98 needs pkg-config and OpenSSL's headers, installed here as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
crate=$1 version=$2 binary=$3
cache="${NIXCACHE_CARGO_CACHE:-/var/cache/cargo-nixcache}"
case "$crate" in
*/*)
    [ -f "$crate/Cargo.toml" ] || { echo "tests/registry-tool.sh: no package at $crate" >&2; exit 2; }
    name=$(basename "$crate")
    install_what=(--path "$crate")
    ;;
*)
    name=$crate
    install_what=("$crate" --version "$version")
    ;;
esac
root="$cache/$name-$version"
bin="$root/bin/$binary"

mkdir -p "$cache"
exec 9>"$cache/$name-$version.lock"
flock 9
if [ ! -x "$bin" ]; then
    missing=()
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
    tests/apt-install.sh "tests/registry-tool.sh (building $crate $version)" ${missing[@]+"${missing[@]}"}
    echo "tests/registry-tool.sh: building $name $version from crates.io into $root (once per machine, 1-25 min)" >&2
    rm -rf "$root.partial" "$root.target"
    CARGO_TARGET_DIR="$root.target" cargo install "${install_what[@]}" --locked --root "$root.partial" --quiet
    rm -rf "$root.target"
    rm -rf "$root"
    mv "$root.partial" "$root"
fi
echo "$bin"
