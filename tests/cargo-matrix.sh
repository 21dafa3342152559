#!/usr/bin/env bash
# The second cargo of the test matrix: reruns the core, wrapper, harden and explain suites (and the harness smoke
# test, which proves the settings take effect) with cargo 0.98 (= cargo 1.97), once in cargo's
# classic build-dir layout and once in layout v2 (-Zbuild-dir-new-layout). rustc stays the
# toolchain's (1.95): a cargo built from crates.io brings no compiler of its own. That cargo
# reports a "dev" channel, so it accepts -Z flags with a stable rustc.
#
# cargo 0.98 is built from crates.io once per machine, into a cache dir later runs reuse
# ($NIXCACHE_CARGO_CACHE, default /var/cache/cargo-nixcache): the first run costs 15-25 min on
# 2 cores (and needs pkg-config and OpenSSL's headers, installed here as root); afterwards the
# whole matrix takes 2-3 min.
#
# Usage: tests/cargo-matrix.sh [build]    `build` only makes sure the cargo exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=0.98.0
cache="${NIXCACHE_CARGO_CACHE:-/var/cache/cargo-nixcache}"
root="$cache/cargo-$version"
cargo_new="$root/bin/cargo"

build_cargo() {
    local missing=()
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
    tests/apt-install.sh "tests/cargo-matrix.sh (building cargo $version)" ${missing[@]+"${missing[@]}"}
    echo "tests/cargo-matrix.sh: building cargo $version into $root (once per machine, 15-25 min)" >&2
    # Into a scratch root first: an interrupted build leaves no half-installed cache behind.
    rm -rf "$root.partial"
    cargo install cargo --version "$version" --locked --root "$root.partial" --quiet
    rm -rf "$root"
    mv "$root.partial" "$root"
}

mkdir -p "$cache"
# One build per machine even when two runs start at once.
exec 9>"$cache/cargo-$version.lock"
flock 9
[ -x "$cargo_new" ] || build_cargo
flock -u 9
"$cargo_new" --version >&2
[ "${1:-}" = build ] && exit 0

# The suites run cargo-nixcache's binaries; build them with the toolchain's cargo first.
cargo build --workspace --bins
for layout in classic v2; do
    echo "tests/cargo-matrix.sh: core, wrapper, harden and explain suites, $("$cargo_new" --version), layout $layout" >&2
    NIXCACHE_TEST_CARGO="$cargo_new" NIXCACHE_TEST_LAYOUT="$layout" \
        cargo test --test harness_smoke --test core --test wrapper --test harden --test explain
done
