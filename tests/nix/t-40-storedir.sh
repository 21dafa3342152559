# Test 4: a store outside /nix/store (NIX_STORE_DIR=/tmp/...), as the tmpnix setup does.

test_4_store_outside_nix_store() {
    # A store dir with a different length than /nix/store, so nothing can assume 32+11 bytes.
    nxt_store_init "$T/s/tmpnix-store"
    nxt_stage_src
    nxt_tools
    local expr deps app log
    expr=$(nxt_chain_expr chain)
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    log=$(nxt_build "$expr" -A appDrv.log)
    case "$app" in "$T/s/tmpnix-store/"*) ;; *) nxt_fail "output outside the private store: $app" ;; esac
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app's output"
    nxt_assert_links "$log"

    nxt_archive_links "$app" >"$T/links"
    [ -s "$T/links" ] || nxt_fail "app's archive holds no symlinks"
    assert_not_contains "$T/links" "^(/nix/store/|[^/])" "symlink targets (all in the private store)"
    assert_contains "$T/links" "^$NIX_STORE_DIR/[a-z0-9]{32}-" "symlink targets"
    assert_not_contains "$app/nixcache-refs" "^/nix/store/" "the anchor"
    assert_contains "$app/nixcache-refs" "^$deps\$" "the anchor names deps"
    nxt_verify_artifacts "$app"

    # Negative control: the same artifacts unpacked for the default store dir must be rejected
    # (links outside the store dir), leaving the target dir as it was.
    mkdir -p "$T/tgt"
    expect_fail "unpack with --store-dir /nix/store" \
        cargo-nixcache unpack "$app" --target-dir "$T/tgt" --store-dir /nix/store
    assert_eq "" "$(ls -A "$T/tgt")" "the target dir after a rejected unpack"
    nxt_verify_store
}
