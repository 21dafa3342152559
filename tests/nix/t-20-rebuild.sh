# Test 2: the wrapper issue's rebuild scenarios inside real, sandboxed Nix builds (build users:
# the inherited artifacts really are read-only). Each must fail without the wrapper.

# nxt_stage_rerun_src: ws-basic with applib also depending on nc-rerun, whose build script
# watches a missing file: it reruns on every build and rewrites its OUT_DIR.
nxt_stage_rerun_src() {
    nxt_stage_src
    sed -i 's/^nc-macro = .*/&\nnc-rerun = "0.1.0"/' "$T/src/ws-basic/applib/Cargo.toml"
    (cd "$T/src/ws-basic" && cargo generate-lockfile --offline -q) ||
        nxt_fail "could not lock the nc-rerun variant"
    assert_contains "$T/src/ws-basic/Cargo.lock" 'name = "nc-rerun"' "the variant's lock file"
}

# deps -> app -> app2. In app2: nc-rerun's build script reruns (scenarios 1 and 3 of the wrapper
# issue), and the guard's fresh mtimes make applib rebuild under its unchanged filename hash
# (scenario 2); their old outputs are read-only symlinks into the store.
nxt_rebuild_chain() {
    local name="$1" app2attrs="$2"
    nxt_chain_expr "$name" "deps = { cargoBuildCmd = \"cargo build --offline -p nc-beta -p nc-rerun\"; }; app2 = { $app2attrs };"
}

test_2_rebuild_over_inherited_artifacts() {
    nxt_store_init
    nxt_stage_rerun_src
    nxt_tools
    local expr log
    expr=$(nxt_rebuild_chain rebuild '')
    log=$(nxt_build "$expr" -A app2Drv.log)
    assert_contains "$T/build.log" "nixcache: rustc wrapper set up" "the inherit hook's wrapper setup"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app2's output"
    # What was rebuilt over read-only links: applib (touched) and nc-rerun (its script reran).
    nxt_units "$log/cargo.json" >"$T/units"
    assert_contains "$T/units" "^dirty applib lib" "applib rebuilt"
    assert_contains "$T/units" "^dirty nc-rerun lib" "nc-rerun rebuilt after its build script reran"
    assert_contains "$T/units" "^fresh nc-beta lib" "nc-beta stays Fresh"
    nxt_verify_store
}

# Negative control: the same chain without the wrapper fails on the read-only outputs.
test_2_rebuild_without_wrapper_fails() {
    nxt_store_init
    nxt_stage_rerun_src
    nxt_tools
    local expr
    expr=$(nxt_chain_expr rebuild-nowrap "deps = { cargoBuildCmd = \"cargo build --offline -p nc-beta -p nc-rerun\"; };
                                          app = { dontNixcacheWrapper = \"1\"; };")
    nxt_build "$expr" -A depsDrv.out >/dev/null
    # app already reruns nc-rerun's build script, so nc-rerun's lib is rebuilt over its link.
    nxt_build_fails "$expr" -A appDrv.log
    assert_contains "$T/build.log" "Permission denied|not writeable|Read-only file system" \
        "the failure without the wrapper"
    nxt_verify_store
}

# `--target <host triple>`: target/<triple>/ plus host units (build scripts, proc macros) in
# target/debug/, inherited and rebuilt over.
test_2_rebuild_with_explicit_target() {
    nxt_store_init
    nxt_stage_rerun_src
    nxt_tools
    local triple expr log
    triple=$(rustc -vV | sed -n 's/^host: //p')
    expr=$(nxt_chain_expr target-triple "
      deps = { cargoBuildCmd = \"cargo build --offline --target $triple -p nc-beta -p nc-rerun\"; };
      app = { cargoBuildCmd = \"cargo build --offline --target $triple\"; installPhase = \"target/$triple/debug/app > \$log/app.out\"; };
      app2 = { cargoBuildCmd = \"cargo build --offline --target $triple\"; installPhase = \"target/$triple/debug/app > \$log/app.out\"; };")
    log=$(nxt_build "$expr" -A app2Drv.log)
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app2's output (--target $triple)"
    assert_contains "$log/cargo.json" "/target/$triple/debug/" "artifacts under target/$triple"
    nxt_units "$log/cargo.json" >"$T/units"
    assert_contains "$T/units" "^fresh nc-macro proc-macro" "the host proc macro stays Fresh"
    assert_contains "$T/units" "^dirty applib lib" "applib rebuilt"
    nxt_verify_store
}
