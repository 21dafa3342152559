#!/usr/bin/env bash
# Runs the Nix integration tests: every `test_*` function in tests/nix/t-*.sh, each in a subshell
# with its own temp dir and private Nix store. Usage: tests/nix/run.sh [NAME-SUBSTRING...]
# Needs: nix-build (Debian's nix-bin), root, the nixbld build users, rustc/cargo on PATH.
# Ends with one line `N passed, M failed`; exits non-zero when anything failed.
set -u -o pipefail

NXT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/nix/lib.sh
source "$NXT_DIR/lib.sh"
for f in "$NXT_DIR"/t-*.sh; do
    # shellcheck disable=SC1090
    source "$f"
done

command -v nix-build >/dev/null || { echo "nix-build not found: apt-get install -y nix-bin" >&2; exit 2; }
getent group nixbld >/dev/null || { echo "no nixbld group: nix-bin's build users are missing" >&2; exit 2; }

# The binaries under test (skipped when NIXCACHE_BIN_DIR points at prebuilt ones).
if [ -z "${NIXCACHE_BIN_DIR:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$NXT_REPO/target}"
    echo "building cargo-nixcache into $CARGO_TARGET_DIR" >&2
    (cd "$NXT_REPO" && cargo build -q --workspace --bins) || { echo "cargo build failed" >&2; exit 2; }
fi

tests=()
for fn in $(declare -F | awk '{print $3}' | grep '^test_'); do
    if [ $# -eq 0 ]; then
        tests+=("$fn")
    else
        for want in "$@"; do
            case "$fn" in *"$want"*) tests+=("$fn"); break ;; esac
        done
    fi
done

passed=0
failed=0
skipped=0
failures=()
suite_start=$SECONDS
for fn in "${tests[@]}"; do
    T=$(mktemp -d /tmp/nixcache-nixtest.XXXXXX)
    start=$SECONDS
    echo "--- $fn" >&2
    # -e: a failed `x=$(nxt_build ...)` (nxt_fail inside the substitution) ends the test too.
    ( set -eu -o pipefail; export T; cd "$T" && "$fn" )
    rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $fn ($((SECONDS - start)) s)" >&2
    elif [ $rc -eq 77 ]; then
        # A test that cannot run here (it says why) exits 77.
        skipped=$((skipped + 1))
        echo "SKIP $fn" >&2
        rc=0
    else
        failed=$((failed + 1))
        failures+=("$fn")
        echo "FAIL $fn ($((SECONDS - start)) s), kept $T" >&2
    fi
    if [ $rc -eq 0 ] && [ -z "${NXT_KEEP:-}" ]; then
        chmod -R u+w "$T" 2>/dev/null
        rm -rf "$T"
    fi
done

echo "suite took $((SECONDS - suite_start)) s" >&2
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}" >&2
[ "$skipped" -eq 0 ] || echo "SKIPPED: $skipped test(s), see the SKIP lines above" >&2
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
