# Harness for the Nix tests: a private Nix store per test, builds of plain `derivation`s, asserts.
#
# Sourced by tests/nix/run.sh. Every test runs in its own temporary directory ($T) with its own
# store ($T/store), state, log and config dir, so nothing depends on /nix/store existing, and
# `nix-store --gc` in one test cannot touch another. Builds run SANDBOXED AS BUILD USERS
# (nixbld*): root without a sandbox can write through symlinks into the store and would hide
# exactly the failures these tests are about.

NXT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NXT_REPO=$(cd "$NXT_DIR/../.." && pwd)
NXT_FIXTURES="$NXT_REPO/tests/fixtures"
# Where the toolchain appears inside the sandbox (see nxt_store_init).
NXT_SANDBOX_RUST=/nixcache-rust
# More `inside=outside` sandbox paths a test needs (e.g. a second cargo), set before
# nxt_store_init.
NXT_EXTRA_SANDBOX_PATHS="${NXT_EXTRA_SANDBOX_PATHS:-}"

# --- messages and assertions -------------------------------------------------------------------

nxt_log() { echo "    $*" >&2; }

# nxt_fail MESSAGE...: fail the current test (tests run in a subshell, so `exit` ends just the test).
nxt_fail() {
    echo "    FAIL: $*" >&2
    exit 1
}

assert_eq() { # assert_eq EXPECTED ACTUAL WHAT
    [ "$1" = "$2" ] || nxt_fail "$3: expected \`$1\`, got \`$2\`"
}

assert_ne() { # assert_ne UNEXPECTED ACTUAL WHAT
    [ "$1" != "$2" ] || nxt_fail "$3: expected anything but \`$1\`"
}

assert_contains() { # assert_contains FILE PATTERN WHAT  (grep -E)
    grep -Eq -- "$2" "$1" || nxt_fail "$3: \`$1\` does not match /$2/"
}

assert_not_contains() { # assert_not_contains FILE PATTERN WHAT
    if grep -Eq -- "$2" "$1"; then
        nxt_fail "$3: \`$1\` matches /$2/: $(grep -Em3 -- "$2" "$1" | cut -c1-200)"
    fi
}

assert_exists() { # assert_exists PATH WHAT
    [ -e "$1" ] || nxt_fail "$2: \`$1\` does not exist"
}

assert_missing() { # assert_missing PATH WHAT
    [ ! -e "$1" ] || nxt_fail "$2: \`$1\` still exists; what keeps it: $(nix-store -q --roots "$1" 2>&1 | tr '\n' ' ')"
}

# expect_fail WHAT CMD...: CMD must exit non-zero (negative controls).
expect_fail() {
    local what="$1"
    shift
    if "$@" >"$T/expect_fail.out" 2>&1; then
        nxt_fail "$what: \`$*\` succeeded, expected a failure"
    fi
}

# --- inputs from outside the repository -------------------------------------------------------

# ../shared/ beside the checkout holds, read-only, what the suite needs from upstream (its
# README.md): crane's checkout and nixpkgs' lib. Each may be pointed elsewhere by a variable.
NXT_SHARED="$NXT_REPO/../shared"

# nxt_first_with FILE DIR...: the first DIR (empty ones ignored) that holds FILE, printed as an
# absolute path; nothing (and status 1) if none does.
nxt_first_with() {
    local file="$1" dir
    shift
    for dir in "$@"; do
        if [ -n "$dir" ] && [ -e "$dir/$file" ]; then
            (cd "$dir" && pwd)
            return 0
        fi
    done
    return 1
}

# crane: $CRANE_SRC, else ../shared/crane (the commit the suite pins), else the per-machine cache
# an earlier version of this suite used.
NXT_CRANE_SRC=$(nxt_first_with lib/setupHooks/inheritCargoArtifactsHook.sh "${CRANE_SRC:-}" \
    "$NXT_SHARED/crane" /var/cache/cargo-nixcache/crane) || NXT_CRANE_SRC=""
# nixpkgs' real lib/: $NIXPKGS_LIB (a directory holding lib/), else ../shared/nixpkgs-lib.
NXT_NIXPKGS_LIB=$(nxt_first_with lib/default.nix "${NIXPKGS_LIB:-}" "$NXT_SHARED/nixpkgs-lib") ||
    NXT_NIXPKGS_LIB=""

# nxt_revision DIR: what DIR is a checkout of (its REVISION file, else git's HEAD).
nxt_revision() {
    if [ -f "$1/REVISION" ]; then
        head -n 1 "$1/REVISION"
    else
        git -C "$1" log -1 --format='%H %cs' 2>/dev/null || echo "(unknown revision)"
    fi
}

# nxt_skip WHY: the test cannot run for want of an input. Outside CI it is skipped (exit 77);
# under CI (CI=true) it fails: CI must have every input, or a green run would prove nothing.
nxt_skip() {
    if [ -n "${CI:-}" ]; then
        nxt_fail "cannot run under CI: $*"
    fi
    echo "    SKIP: $*" >&2
    exit 77
}

# --- which Nix ---------------------------------------------------------------------------------

# The suite runs on two Nix versions, as the Rust suites run on two cargos: Debian's nix-bin (2.8,
# 2022) and a current Nix (2.24, ../shared/nix-2.24, what users of 2.18+ and Lix run). run.sh picks
# one per pass and exports NXT_NIX (`2.8` or `2.24`) with that Nix's bin dir first on PATH; a test
# reads NXT_NIX only where the two versions really differ (nxt_need_nix).
NXT_NIX="${NXT_NIX:-2.8}"

# nxt_sandbox_paths_line: the nix.conf line that makes the host's /usr and /bin visible in the
# sandbox. On this merged-/usr Debian /bin, /lib and /lib64 are symlinks: 2.8 follows them in
# `extra-sandbox-paths`; 2.24 cannot copy the default `/bin/sh` entry into the chroot ("cannot
# copy: Invalid argument"), so it gets `sandbox-paths` (which replaces that default) with the
# links spelt as inside=outside pairs (../shared/nix-2.24/README.md).
nxt_sandbox_paths_line() {
    case "$NXT_NIX" in
    2.8) echo "extra-sandbox-paths = /bin /usr /lib /lib64 /etc/alternatives" ;;
    *) echo "sandbox-paths = /usr /bin=/usr/bin /lib=/usr/lib /lib64=/usr/lib64 /etc/alternatives" ;;
    esac
}

# nxt_need_nix VERSION WHY: end the test as not applicable (exit 78, counted apart from skips) on
# a Nix older than VERSION, saying WHY. Only for what the older Nix cannot do at all: the newer
# pass runs it.
nxt_need_nix() {
    local want="$1" why="$2"
    if [ "$(printf '%s\n%s\n' "$want" "$NXT_NIX" | sort -V | head -n 1)" != "$want" ]; then
        echo "    N/A on Nix $NXT_NIX (needs $want): $why" >&2
        exit 78
    fi
}

# --- the private store -------------------------------------------------------------------------

# nxt_user_pool STATE_DIR: the store whose state dir is STATE_DIR takes its build users from the
# one pool of build-user locks for every private store on this machine: Nix kills all processes
# of the build user it picks, and with a pool per store two suites running at once pick the same
# user (nixbld1) and kill each other's builders ("signal 9").
nxt_user_pool() {
    mkdir -p /tmp/nixcache-userpool
    [ -e "$1/userpool" ] || ln -s /tmp/nixcache-userpool "$1/userpool"
}

# nxt_store_conf SYSROOT: the nix.conf lines of every private store of the suite: root builds in
# the sandbox as the nixbld users (SYSROOT, the host's Rust, bound in), nothing substituted, one
# job at a time.
nxt_store_conf() {
    cat <<CONF
build-users-group = nixbld
sandbox = true
sandbox-fallback = false
$(nxt_sandbox_paths_line) $NXT_SANDBOX_RUST=$1 $NXT_EXTRA_SANDBOX_PATHS
substituters =
require-sigs = false
max-jobs = 1
cores = ${NXT_CORES:-2}
CONF
}

# nxt_store_init [STOREDIR]: create a store, state, log and config dir under $T and export the
# variables that make every nix command use them. STOREDIR defaults to $T/store.
nxt_store_init() {
    local store="${1:-$T/store}"
    local sysroot
    sysroot=$(rustc --print sysroot) || nxt_fail "rustc not found on PATH"
    mkdir -p "$store" "$T/state" "$T/log" "$T/etc" "$T/cache"
    nxt_user_pool "$T/state"
    # Build users must be able to reach the store dir (mkdir under a 0700 dir would not do).
    chmod 755 "$T"
    cat >"$T/etc/nix.conf" <<CONF
# Written by tests/nix/lib.sh for Nix $NXT_NIX. Root, no daemon, private store.
$(nxt_store_conf "$sysroot")
keep-outputs = false
keep-derivations = false
experimental-features = nix-command flakes
# No registry download (offline): nix develop would retry it on every entry.
flake-registry =
CONF
    export NIX_STORE_DIR="$store" NIX_STATE_DIR="$T/state" NIX_LOG_DIR="$T/log"
    export NIX_CONF_DIR="$T/etc" XDG_CACHE_HOME="$T/cache"
    unset NIX_CONFIG NIX_REMOTE NIX_PATH NIX_USER_CONF_FILES
}

# nxt_nix_build FILE [nix-build args...]: nix-build, output paths to $T/build.out, log to
# $T/build.log. Nix 2.8 takes EOF on a builder's log pipe as the end of the build and SIGKILLs
# the builder "to be sure"; on a loaded machine that kill can land before the builder (or Nix's
# sandbox helper) has exited, and a build that succeeded fails "due to signal 9 (Killed)".
# Reproduced here with a builder that is just `mkdir $out && cp`: 22 of 80 builds under CPU and
# disk load, 0 of 40 without (a builder that closes its output early fails every time); Nix 2.24
# too, under load (10 of 60 trivial builders, t-84). Such a build is retried; every attempt keeps
# what it built and builds all it can (--keep-going), so each one gets further: crane's vendoring
# alone is ~27 tiny builders. Ten attempts at most; a builder killed for a real reason (OOM) is
# killed again, every time.
nxt_nix_build() {
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        nix-build --no-out-link --keep-going "$@" >"$T/build.out" 2>"$T/build.log" && return 0
        grep -q 'failed due to signal 9 (Killed)' "$T/build.log" || return 1
        nxt_log "nix-build $*: builder SIGKILLed at its end (Nix's EOF race), attempt $attempt"
    done
    return 1
}

# nxt_build FILE [nix-build args...]: build, print the output paths (one per line). The build log
# goes to $T/build.log; on failure its tail is shown and the test fails.
nxt_build() {
    local file="$1"
    shift
    if ! nxt_nix_build "$file" "$@"; then
        tail -n 40 "$T/build.log" | sed 's/^/      | /' >&2
        nxt_fail "nix-build $file $* failed (full log: $T/build.log)"
    fi
    cat "$T/build.out"
}

# nxt_build_fails FILE [args...]: the build must fail; its log stays in $T/build.log.
nxt_build_fails() {
    local file="$1"
    shift
    if nxt_nix_build "$file" "$@"; then
        nxt_fail "nix-build $file $* succeeded, expected it to fail"
    fi
}

# nxt_verify_artifacts OUT: `cargo nixcache verify OUT` passes (every link resolves, all anchored).
nxt_verify_artifacts() {
    cargo-nixcache verify "$1" >"$T/verify.out" 2>&1 ||
        nxt_fail "cargo nixcache verify $1: $(cat "$T/verify.out")"
}

# nxt_verify_store: the store's contents still match their hashes (nothing wrote into it).
nxt_verify_store() {
    nix-store --verify --check-contents >"$T/verify.log" 2>&1 ||
        nxt_fail "nix-store --verify --check-contents failed: $(tail -n 5 "$T/verify.log")"
    assert_not_contains "$T/verify.log" "modified|corrupt|invalid" "store verification"
}

# --- inputs ------------------------------------------------------------------------------------

# nxt_stage_src [DEST]: copy the ws-basic fixture (without any target/) and its vendor dir to
# DEST (default $T/src), as ws-basic/ and vendor/.
nxt_stage_src() {
    local dest="${1:-$T/src}"
    mkdir -p "$dest"
    [ -d "$NXT_FIXTURES/ws-basic" ] || nxt_fail "fixture \`$NXT_FIXTURES/ws-basic\` is missing"
    (cd "$NXT_FIXTURES" && tar -c --exclude=./ws-basic/target --exclude=./vendor/*/target \
        ./ws-basic ./vendor) | tar -x -C "$dest"
}

# The binaries under test: $NIXCACHE_BIN_DIR, else what run.sh builds into $CARGO_TARGET_DIR.
NXT_BIN_DIR="${NIXCACHE_BIN_DIR:-${CARGO_TARGET_DIR:-$NXT_REPO/target}/debug}"
PATH="$NXT_BIN_DIR:$PATH"

# nxt_tools: the cargo-nixcache binaries, staged into $T/tools/bin for use as a derivation input.
nxt_tools() {
    local bindir="$NXT_BIN_DIR"
    [ -x "$bindir/cargo-nixcache" ] || nxt_fail "\`$bindir/cargo-nixcache\` missing (run.sh builds it)"
    mkdir -p "$T/tools/bin"
    cp "$bindir/cargo-nixcache" "$T/tools/bin/"
    if [ -x "$bindir/nixcache-rustc-wrapper" ]; then
        cp "$bindir/nixcache-rustc-wrapper" "$T/tools/bin/"
    fi
}

# nxt_expr NAME <<'NIX' ... NIX: write a test expression to $T/NAME.nix, with `t` bound to
# tests/nix/lib.nix over this test's sources, vendor dir and tools.
nxt_expr() {
    local name="$1"
    {
        echo "let t = import $NXT_DIR/lib.nix {"
        [ -d "$T/tools" ] && echo "  tools = $T/tools;"
        [ -d "$T/src/ws-basic" ] && echo "  src = builtins.path { path = $T/src; name = \"source\"; filter = p: _: baseNameOf p != \"vendor\"; };"
        [ -d "$T/src/vendor" ] && echo "  vendor = builtins.path { path = $T/src/vendor; name = \"vendor\"; };"
        echo "  repo = $NXT_REPO;"
        echo "}; in"
        cat
    } >"$T/$name.nix"
    echo "$T/$name.nix"
}

# --- cargo output ------------------------------------------------------------------------------

# nxt_units FILE: one line per compiled unit in cargo's JSON messages, sorted:
# `fresh|dirty PACKAGE TARGET-KIND`.
nxt_units() {
    python3 - "$1" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact":
        pkg = m["package_id"].split("#")[-1].split("@")[0].split("/")[-1]
        name = m["manifest_path"].split("/")[-2]
        rows.append("%s %s %s" % ("fresh" if m["fresh"] else "dirty", name, m["target"]["kind"][0]))
print("\n".join(sorted(rows)))
PY
}

# --- a binary cache over HTTP ------------------------------------------------------------------

# nxt_http_serve DIR: serve DIR over HTTP on 127.0.0.1 only (python3's http.server, on a port the
# kernel picks: port 0, read back from the server's banner, so two tests never race for a port).
# Sets NXT_HTTP_URL and NXT_HTTP_LOG (the access log, one `"GET /PATH HTTP/1.1" STATUS` line per
# request). The server stops itself after $NXT_HTTP_SECONDS (default 900) whatever happens, and
# an EXIT trap stops it when the test ends, fails or is interrupted: call nxt_http_stop to stop it
# earlier. Uses the test's EXIT trap.
nxt_http_serve() {
    local dir="$1" port="" i
    [ -d "$dir" ] || nxt_fail "nothing to serve: \`$dir\` is not a directory"
    NXT_HTTP_LOG="$T/http-access.log"
    : >"$T/http.out"
    timeout "${NXT_HTTP_SECONDS:-900}" python3 -u -m http.server 0 --bind 127.0.0.1 \
        --directory "$dir" >"$T/http.out" 2>"$NXT_HTTP_LOG" &
    NXT_HTTP_PID=$!
    trap nxt_http_stop EXIT
    # Bounded wait (10 s) for the banner, printed once the socket listens.
    for i in $(seq 100); do
        port=$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9][0-9]*\) .*/\1/p' "$T/http.out")
        [ -n "$port" ] && break
        kill -0 "$NXT_HTTP_PID" 2>/dev/null ||
            nxt_fail "the HTTP server exited before listening: $(cat "$T/http.out" "$NXT_HTTP_LOG")"
        sleep 0.1
    done
    [ -n "$port" ] || nxt_fail "the HTTP server did not listen within 10 s: $(cat "$T/http.out" "$NXT_HTTP_LOG")"
    NXT_HTTP_URL="http://127.0.0.1:$port"
    # Loopback only, whatever proxy the environment names.
    export no_proxy="127.0.0.1${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1${NO_PROXY:+,$NO_PROXY}"
    nxt_log "serving \`$dir\` at $NXT_HTTP_URL (pid $NXT_HTTP_PID)"
}

# nxt_http_stop: stop the server nxt_http_serve started (if any) and wait for it.
nxt_http_stop() {
    if [ -n "${NXT_HTTP_PID:-}" ]; then
        kill "$NXT_HTTP_PID" 2>/dev/null || true
        wait "$NXT_HTTP_PID" 2>/dev/null || true
        NXT_HTTP_PID=
    fi
}
