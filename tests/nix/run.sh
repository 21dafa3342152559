#!/usr/bin/env bash
# Runs the Nix integration tests: every `test_*` function in tests/nix/t-*.sh, each in a subshell
# with its own temp dir and private Nix store, once per Nix version (NXT_NIX_VERSIONS, default
# "2.8 2.24": Debian's nix-bin and the current Nix in ../shared/nix-2.24).
#
# Usage: tests/nix/run.sh [FILTER...]. A FILTER is a test file (`t-80`, `t-80-crane.sh`,
# `tests/nix/t-80-crane.sh`: all of its tests) or a substring of a test function's name.
# Needs: root, Debian's nix-bin (nix-build, the nixbld build users), rustc/cargo on PATH, and for
# the 2.24 pass ../shared/nix-2.24 ($NIXCACHE_NIX_NEW). Under CI (CI=true) a missing Nix, crane
# checkout or nixpkgs lib is a failure, never a skip.
# Ends with one line `N passed, M failed, K skipped`; exits non-zero when anything failed.
set -u -o pipefail

NXT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/nix/lib.sh
source "$NXT_DIR/lib.sh"
# Which test functions each file declares, for file filters.
declare -A nxt_file_of=()
for f in "$NXT_DIR"/t-*.sh; do
    before=$(declare -F | awk '{print $3}' | grep '^test_' | sort)
    # shellcheck disable=SC1090
    source "$f"
    for fn in $(comm -13 <(echo "$before") <(declare -F | awk '{print $3}' | grep '^test_' | sort)); do
        nxt_file_of[$fn]=$(basename "$f" .sh)
    done
done

command -v nix-build >/dev/null || { echo "nix-build not found: apt-get install -y nix-bin" >&2; exit 2; }
getent group nixbld >/dev/null || { echo "no nixbld group: nix-bin's build users are missing" >&2; exit 2; }

# The binaries under test (skipped when NIXCACHE_BIN_DIR points at prebuilt ones).
if [ -z "${NIXCACHE_BIN_DIR:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$NXT_REPO/target}"
    echo "building cargo-nixcache into $CARGO_TARGET_DIR" >&2
    (cd "$NXT_REPO" && cargo build -q --workspace --bins) || { echo "cargo build failed" >&2; exit 2; }
fi

# What the suite runs against, said once (CI logs show which crane the crane tests ran).
echo "crane: ${NXT_CRANE_SRC:-MISSING} ($( [ -n "$NXT_CRANE_SRC" ] && nxt_revision "$NXT_CRANE_SRC"))" >&2
echo "nixpkgs lib: ${NXT_NIXPKGS_LIB:-MISSING} ($( [ -n "$NXT_NIXPKGS_LIB" ] && nxt_revision "$NXT_NIXPKGS_LIB"))" >&2

# nxt_selected FN: FN is asked for by the command line (no filter: every test).
nxt_selected() {
    local fn="$1" want file="${nxt_file_of[$1]:-}"
    [ ${#filters[@]} -eq 0 ] && return 0
    for want in "${filters[@]}"; do
        want=$(basename "$want" .sh)
        case "$fn" in *"$want"*) return 0 ;; esac
        case "$file" in "$want" | "$want"-*) return 0 ;; esac
    done
    return 1
}
filters=("$@")
tests=()
for fn in $(declare -F | awk '{print $3}' | grep '^test_'); do
    if nxt_selected "$fn"; then tests+=("$fn"); fi
done
if [ ${#tests[@]} -eq 0 ]; then
    echo "no test matches: $*" >&2
    exit 2
fi

# nxt_nix_bin VERSION: a bin dir whose nix-build, nix-store, ... are that Nix, printed. 2.8 is
# Debian's, on PATH; 2.24 is one binary that dispatches on its name, so it gets a dir of links.
nxt_run_dir=$(mktemp -d /tmp/nixcache-nixrun.XXXXXX)
trap 'rm -rf "$nxt_run_dir"' EXIT
nxt_nix_bin() {
    local version="$1" src name
    case "$version" in
    2.8) dirname "$(PATH="$base_path" command -v nix-build)" ;;
    2.24)
        src="${NIXCACHE_NIX_NEW:-$NXT_REPO/../shared/nix-2.24}/bin/nix"
        [ -x "$src" ] || { echo "Nix 2.24 not found at $src (../shared/nix-2.24; NIXCACHE_NIX_NEW)" >&2; return 1; }
        src=$(cd "$(dirname "$src")" && pwd)/nix
        mkdir -p "$nxt_run_dir/nix-2.24/bin"
        for name in nix nix-build nix-store nix-instantiate nix-shell nix-daemon nix-env nix-hash \
            nix-copy-closure nix-collect-garbage nix-prefetch-url; do
            ln -sfn "$src" "$nxt_run_dir/nix-2.24/bin/$name"
        done
        echo "$nxt_run_dir/nix-2.24/bin"
        ;;
    *) echo "unknown Nix version \`$version\` in NXT_NIX_VERSIONS (2.8, 2.24)" >&2; return 1 ;;
    esac
}

passed=0
failed=0
skipped=0
not_applicable=0
failures=()
suite_start=$SECONDS
base_path="$PATH"
for version in ${NXT_NIX_VERSIONS:-2.8 2.24}; do
    if ! bin=$(nxt_nix_bin "$version"); then
        if [ -n "${CI:-}" ]; then
            failed=$((failed + 1))
            failures+=("nix-$version")
        else
            skipped=$((skipped + ${#tests[@]}))
            echo "SKIP every test on Nix $version" >&2
        fi
        continue
    fi
    export NXT_NIX="$version" PATH="$bin:$base_path"
    echo "=== Nix $version: $(nix-build --version | head -n 1)" >&2
    for fn in "${tests[@]}"; do
        T=$(mktemp -d /tmp/nixcache-nixtest.XXXXXX)
        start=$SECONDS
        echo "--- $fn (Nix $version)" >&2
        # -e: a failed `x=$(nxt_build ...)` (nxt_fail inside the substitution) ends the test too.
        ( set -eu -o pipefail; export T; cd "$T" && "$fn" )
        rc=$?
        case $rc in
        0)
            passed=$((passed + 1))
            echo "ok   $fn@$version ($((SECONDS - start)) s)" >&2
            ;;
        77)
            # A test that cannot run here (it says why) exits 77; under CI that is a failure
            # (nxt_skip decides).
            skipped=$((skipped + 1))
            echo "SKIP $fn@$version" >&2
            rc=0
            ;;
        78)
            # Not applicable on this Nix version (nxt_need_nix said why): the other pass runs it.
            not_applicable=$((not_applicable + 1))
            echo "n/a  $fn@$version" >&2
            rc=0
            ;;
        *)
            failed=$((failed + 1))
            failures+=("$fn@$version")
            echo "FAIL $fn@$version ($((SECONDS - start)) s), kept $T" >&2
            ;;
        esac
        if [ $rc -eq 0 ] && [ -z "${NXT_KEEP:-}" ]; then
            chmod -R u+w "$T" 2>/dev/null
            rm -rf "$T"
        fi
    done
done
PATH="$base_path"

echo "suite took $((SECONDS - suite_start)) s" >&2
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}" >&2
[ "$skipped" -eq 0 ] || echo "SKIPPED: $skipped test(s), see the SKIP lines above" >&2
[ "$not_applicable" -eq 0 ] || echo "not applicable on one Nix version (run on the other): $not_applicable" >&2
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
