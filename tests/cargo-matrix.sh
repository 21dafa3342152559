#!/usr/bin/env bash
# The second cargo of the test matrix: reruns the core, wrapper, harden and explain suites (and the harness smoke
# test, which proves the settings take effect) with cargo 0.98 (= cargo 1.97), once in cargo's
# classic build-dir layout and once in layout v2 (-Zbuild-dir-new-layout). rustc stays the
# toolchain's (1.95): a cargo built from crates.io brings no compiler of its own. That cargo
# reports a "dev" channel, so it accepts -Z flags with a stable rustc.
#
# cargo 0.98 is built from crates.io once per machine by tests/registry-tool.sh, into a cache
# dir later runs reuse ($NIXCACHE_CARGO_CACHE, default /var/cache/cargo-nixcache): the first
# run costs 15-25 min on 2 cores; afterwards the whole matrix takes 2-3 min.
#
# Usage: tests/cargo-matrix.sh [build]    `build` only makes sure the cargo exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo_new=$(tests/registry-tool.sh cargo 0.98.0 cargo)
"$cargo_new" --version >&2
[ "${1:-}" = build ] && exit 0

# The suites run cargo-nixcache's binaries; build them with the toolchain's cargo first.
cargo build --workspace --bins
for layout in classic v2; do
    echo "tests/cargo-matrix.sh: core, wrapper, harden and explain suites, $("$cargo_new" --version), layout $layout" >&2
    NIXCACHE_TEST_CARGO="$cargo_new" NIXCACHE_TEST_LAYOUT="$layout" \
        cargo test --test harness_smoke --test core --test wrapper --test harden --test explain
done
