# Test 90: the deps -> app -> app2 chain with cargo 1.97 (cargo 0.98 from crates.io, built once
# per machine by tests/cargo-matrix.sh; rustc stays the host's 1.95), in cargo's classic layout
# and in build-dir layout v2 (-Zbuild-dir-new-layout). cargo >= 1.96 leaves .cargo-build-lock
# and .cargo-artifact-lock in the target dir and opens them read-write: had pack linked them
# into the store, app's first cargo call would fail ("failed to open: .../.cargo-build-lock:
# Permission denied"). In v2, fingerprints, a build script's run/ files and its OUT_DIR sit in
# build/<pkg>/<hash>/ and must come back as real files.

NXT_CARGO_NEW="${NIXCACHE_NEW_CARGO:-/var/cache/cargo-nixcache/cargo-0.98.0/bin/cargo}"
# Where that cargo's directory appears inside the sandbox.
NXT_SANDBOX_CARGO_NEW=/nixcache-cargo-new

# nxt_cargo_new_init: a private store whose sandbox sees cargo 1.97 too; false (the test then
# skips, saying so) when that cargo is not built.
nxt_cargo_new_init() {
    if [ ! -x "$NXT_CARGO_NEW" ]; then
        nxt_log "SKIPPED: no cargo 1.97 at $NXT_CARGO_NEW (tests/cargo-matrix.sh build makes it)"
        return 1
    fi
    NXT_EXTRA_SANDBOX_PATHS="$NXT_SANDBOX_CARGO_NEW=$(dirname "$NXT_CARGO_NEW")" nxt_store_init
}

# nxt_cargo_new_chain NAME LAYOUT: the rebuild chain of test 2 (applib also depends on nc-rerun,
# whose build script reruns on every build) with cargo 1.97 first on PATH in every derivation,
# in LAYOUT (classic or v2). deps builds the registry crates; app2 keeps the stale-binary guard.
nxt_cargo_new_chain() {
    local name="$1" layout="$2" common
    common="postUnpack = \"export PATH=$NXT_SANDBOX_CARGO_NEW:\$PATH\";
             postBuild = \"cargo --version > \$log/cargo-version\";"
    if [ "$layout" = v2 ]; then
        common="$common CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT = \"true\";"
    fi
    nxt_chain_expr "$name" "
      deps = { $common cargoBuildCmd = \"cargo build --offline -p nc-beta -p nc-rerun\"; };
      app = { $common };
      app2 = { $common };"
}

# nxt_cargo_new_chain_test LAYOUT: the whole chain, checked.
nxt_cargo_new_chain_test() {
    local layout="$1" expr deps_out deps app app2
    nxt_stage_rerun_src
    nxt_tools
    expr=$(nxt_cargo_new_chain "cargo-new-$layout" "$layout")
    deps_out=$(nxt_build "$expr" -A depsDrv.out)
    deps=$(nxt_build "$expr" -A depsDrv.log)
    assert_contains "$deps/cargo-version" "^cargo 1\.97" "the cargo the deps build ran"
    # app: the registry crates come Fresh (nc-rerun's build script reruns: it watches a missing
    # file, so nc-rerun is rebuilt over its read-only links through the wrapper); the members build.
    app=$(nxt_build "$expr" -A appDrv.log)
    assert_contains "$app/cargo-version" "^cargo 1\.97" "the cargo the app build ran"
    nxt_units "$app/cargo.json" >"$T/units"
    assert_contains "$T/units" "^fresh nc-beta lib" "nc-beta inherited Fresh"
    assert_contains "$T/units" "^dirty nc-rerun lib" "nc-rerun rebuilt after its build script reran"
    assert_contains "$T/units" "^dirty applib lib" "applib built"
    assert_eq "hello from applib 84 42" "$(cat "$app/app.out")" "app's output"
    nxt_assert_links "$app"
    # No lock file is ever stored, cargo's new ones included.
    zstd -dc "$deps_out/symlinks.tar.zst" | tar -t >"$T/members"
    assert_contains "$T/members" '/debug/build/' "the archive's members"
    assert_not_contains "$T/members" 'lock$' "lock files in the archive"

    # app2: inherits app; the guard rebuilds the members under their old file names.
    app2=$(nxt_build "$expr" -A app2Drv.log)
    nxt_units "$app2/cargo.json" >"$T/units"
    assert_eq "" "$(grep -v -E '^fresh nc-|^dirty (app|applib|nc-rerun) ' "$T/units")" \
        "units of the app2 build (registry crates Fresh but nc-rerun, members rebuilt)"
    assert_eq "hello from applib 84 42" "$(cat "$app2/app.out")" "app2's output"
    nxt_assert_links "$app2"
    nxt_verify_artifacts "$(nxt_build "$expr" -A app2Drv.out)"
    assert_contains "$deps_out/nixcache.json" "\"layout\": \"$layout\"" "the layout pack recorded"
    nxt_verify_store
}

test_90_cargo_new_chain_classic() {
    nxt_cargo_new_init || return 0
    nxt_cargo_new_chain_test classic
}

test_90_cargo_new_chain_layout_v2() {
    nxt_cargo_new_init || return 0
    nxt_cargo_new_chain_test v2
}
