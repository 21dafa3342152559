# Test 7: the final binary references neither the deps artifacts nor the build's temp dirs.

test_7_binary_references() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps depslog app log
    expr=$(nxt_chain_expr chain)
    deps=$(nxt_build "$expr" -A depsDrv.out)
    depslog=$(nxt_build "$expr" -A depsDrv.log)
    app=$(nxt_build "$expr" -A appDrv.out)
    log=$(nxt_build "$expr" -A appDrv.log)
    assert_exists "$log/bin/app" "the final binary"

    # cargo nixcache's view, then Nix's own view of the output holding the binary.
    cargo-nixcache refs "$log/bin/app" --forbid "$deps" --forbid "$app" >"$T/refs.out" 2>&1 ||
        nxt_fail "the binary references forbidden paths: $(cat "$T/refs.out")"
    nix-store -q --references "$log" >"$T/nix-refs"
    assert_not_contains "$T/nix-refs" "$(basename "$deps")|$(basename "$app")" "Nix's references of the binary's output"
    # Temp dirs: the only build-dir paths in the binary are the sources' (panic locations), and
    # nothing names the wrapper's temp out-dirs.
    strings -a "$log/bin/app" | grep -o '/build/[^ ]*' | grep -v '^/build/source/' >"$T/tmp-paths" || true
    assert_eq "" "$(head -n 5 "$T/tmp-paths")" "build temp dir paths in the binary"
    if grep -aq '\.nixcache-tmp-' "$log/bin/app"; then nxt_fail "the binary names a wrapper temp dir"; fi

    # Negative control: --forbid does fire where the reference exists (app's anchor names deps).
    expect_fail "refs --forbid on app's artifacts output" cargo-nixcache refs "$app" --forbid "$deps"
    assert_contains "$T/expect_fail.out" "nixcache-refs" "the --forbid report names the file"
}
