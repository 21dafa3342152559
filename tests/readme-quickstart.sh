#!/usr/bin/env bash
# Runs README.md's quick start as a newcomer would: its commands, as written and in order, in a
# fresh clone of this checkout's HEAD (its own target dir; none of the caller's cargo variables).
# The clone must stay clean: the quick start writes nothing but target/.
#
# A quick-start command that .ci/run runs itself (the same line, verbatim: the test suite,
# `tests/run.sh`) is not run here, so CI runs the whole suite once. It is checked to be that
# line, and executable in the clone; .ci/run's checkout is itself a fresh clone on a fresh
# machine. `--all` runs it here too.
#
# Usage: tests/readme-quickstart.sh [--all]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

log() { echo "readme-quickstart: $*" >&2; }
fail() {
    log "$*"
    exit 1
}

all=0
case "${1:-}" in
    --all) all=1 ;;
    "") ;;
    *)
        echo "usage: tests/readme-quickstart.sh [--all]" >&2
        exit 2
        ;;
esac

# The lines of the first ```sh block under "## Quick start", without comments.
mapfile -t commands < <(awk '
    /^## Quick start/ { section = 1; next }
    section && /^## / { exit }
    section && /^```sh$/ { block = 1; next }
    block && /^```$/ { exit }
    block { sub(/[ \t]+#.*$/, ""); sub(/^[ \t]+/, ""); if ($0 != "") print }
' README.md)
[ "${#commands[@]}" -gt 0 ] || fail "found no commands in the quick start of README.md"

command -v git >/dev/null || fail "git is not installed"
head=$(git rev-parse HEAD) || fail "\`$repo\` is not a git checkout"
[ -z "$(git status --porcelain)" ] ||
    log "note: uncommitted changes are not in the clone, which has HEAD ($head)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/readme-quickstart.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
clone=$tmp/cargo-nixcache
# Fetching HEAD itself also works when it is on no branch (a detached CI checkout).
git init -q "$clone"
git -C "$clone" fetch -q "$repo" HEAD
git -C "$clone" checkout -q --detach FETCH_HEAD
[ "$(git -C "$clone" rev-parse HEAD)" = "$head" ] || fail "the clone is not at $head"

# A new user's shell: nothing that sends cargo's output elsewhere or wraps rustc.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_BUILD_BUILD_DIR RUSTC_WRAPPER \
    CARGO_BUILD_RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER NIXCACHE_BIN_DIR

for cmd in "${commands[@]}"; do
    if [ "$all" = 0 ] && grep -qxF -- "$cmd" "$clone/.ci/run"; then
        program=${cmd%% *}
        if [[ $program == */* ]] && [ ! -x "$clone/$program" ]; then
            fail "\`$cmd\`: \`$program\` is not executable in a fresh clone"
        fi
        log "\`$cmd\`: .ci/run runs this line itself; not run twice (--all runs it here)"
        continue
    fi
    log "running \`$cmd\` in a fresh clone ($clone, $(git -C "$clone" log -1 --format='%h %s'))"
    start=$SECONDS
    (cd "$clone" && bash -euo pipefail -c "$cmd") || fail "\`$cmd\` failed in a fresh clone"
    log "\`$cmd\` passed in $((SECONDS - start)) s"
    dirty=$(git -C "$clone" status --porcelain)
    [ -z "$dirty" ] || fail "\`$cmd\` left the clone changed (only target/ may appear):"$'\n'"$dirty"
done
log "ok: the quick start of README.md works in a fresh clone"
