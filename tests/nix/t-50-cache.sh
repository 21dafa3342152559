# Test 5: artifacts survive a flat-file binary cache (`nix copy --to file://DIR`).

test_5_binary_cache_roundtrip() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps app log cache="$T/cache-dir"
    # app2 builds app's sources again (guard off): after substitution everything must be Fresh.
    expr=$(nxt_chain_expr chain 'deps = { nixcacheCompress = "zstd"; }; app = { nixcacheCompress = "zstd"; };
                                 app2 = { dontNixcacheFreshen = "1"; };')
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    nix copy --to "file://$cache" "$app" >"$T/copy.log" 2>&1 ||
        nxt_fail "nix copy failed: $(tail -n 3 "$T/copy.log")"
    assert_exists "$cache/$(basename "$deps" | cut -c1-32).narinfo" "the deps output in the cache (app's closure)"

    # A fresh store with the same store dir, substituting from the cache only.
    chmod -R u+w "$T/store" "$T/state"
    rm -rf "$T/store" "$T/state"
    nxt_store_init
    sed -i "s|^substituters =.*|substituters = file://$cache|" "$NIX_CONF_DIR/nix.conf"
    nix-store -r "$app" >"$T/subst.log" 2>&1 || nxt_fail "substituting app failed: $(tail -n 5 "$T/subst.log")"
    assert_exists "$deps" "deps, substituted as part of app's closure"

    # app2 inherits from the substituted app: builds, nothing missing, deps not rebuilt.
    log=$(nxt_build "$expr" -A app2Drv.log)
    assert_not_contains "$T/build.log" "building '.*-(deps|app)\.drv'" "builds after substitution (only app2)"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app2's output"
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v '^fresh')" "units of app2 after substitution"
    nxt_assert_links "$log"
    nxt_verify_store

    # Negative control: a cache missing the deps output cannot provide app at all.
    rm -f "$cache/$(basename "$deps" | cut -c1-32).narinfo"
    chmod -R u+w "$T/store" "$T/state"
    rm -rf "$T/store" "$T/state"
    nxt_store_init
    sed -i "s|^substituters =.*|substituters = file://$cache|" "$NIX_CONF_DIR/nix.conf"
    expect_fail "substituting app without deps in the cache" nix-store -r "$app"
}
