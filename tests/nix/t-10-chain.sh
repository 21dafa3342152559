# Test 1: deps -> app -> app2, every inherited unit Fresh, links one hop.

# nxt_chain_expr NAME [NIX-ATTRS]: an expression for tests/nix/chain.nix with the given arguments
# (e.g. `app2 = { dontNixcacheFreshen = "1"; };`).
nxt_chain_expr() {
    local name="$1" attrs="${2:-}"
    nxt_expr "$name" <<NIX
import $NXT_DIR/chain.nix { inherit t; $attrs }
NIX
}

# nxt_assert_links LOG: the inheriting build saw only one-hop, resolving symlinks, and some.
nxt_assert_links() {
    local log="$1"
    assert_eq "" "$(cat "$log/links-bad")" "symlinks in the inherited target dir"
    [ "$(cat "$log/links-count")" -gt 0 ] || nxt_fail "no symlinks after inheriting: nothing was linked"
}

test_1_chain_inherits_fresh() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps app app2
    # app2 builds the same sources as app: with the guard off, cargo must call everything Fresh.
    expr=$(nxt_chain_expr chain 'app2 = { dontNixcacheFreshen = "1"; };')
    deps=$(nxt_build "$expr" -A depsDrv.log)
    app=$(nxt_build "$expr" -A appDrv.log)
    app2=$(nxt_build "$expr" -A app2Drv.log)

    # Control: without anything inherited, every unit is built (the parser sees `dirty`).
    assert_eq "" "$(nxt_units "$deps/cargo.json" | grep -v '^dirty')" "units of the deps build"
    [ -n "$(nxt_units "$deps/cargo.json")" ] || nxt_fail "the deps build reported no units"

    # app: what deps built comes Fresh; the members and nc-macro (not in deps) are built.
    assert_eq "" "$(nxt_units "$app/cargo.json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "units of the app build (inherited units Fresh)"
    assert_eq "3" "$(nxt_units "$app/cargo.json" | grep -c '^fresh')" "Fresh units of the app build"
    assert_eq "hello from applib 84 42" "$(cat "$app/app.out")" "app's output"
    nxt_assert_links "$app"

    # app2: two hops down the chain, every unit Fresh, links still one hop.
    assert_eq "" "$(nxt_units "$app2/cargo.json" | grep -v '^fresh')" "units of the app2 build"
    assert_eq "6" "$(nxt_units "$app2/cargo.json" | wc -l)" "units reported by the app2 build"
    assert_eq "hello from applib 84 42" "$(cat "$app2/app.out")" "app2's output"
    nxt_assert_links "$app2"

    local out
    out=$(nxt_build "$expr" -A app2Drv.out)
    assert_exists "$out/nixcache.json" "app2's packed output"
    nxt_verify_artifacts "$out"
    nxt_verify_store
}

# With the stale-binary guard on (the default), an inheriting build rebuilds the workspace members
# and nothing else, and rebuilding them over read-only inherited artifacts works.
# With the guard on, app2 (the same sources as app, whose pack recorded their digests) keeps
# every unit Fresh: freshen touches only packages whose sources differ (t-60-stale.sh changes one).
test_1_chain_guard_keeps_unchanged_members() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr app2
    expr=$(nxt_chain_expr chain)
    app2=$(nxt_build "$expr" -A app2Drv.log)
    assert_contains "$T/build.log" "kept" "freshen's report of unchanged members"
    assert_eq "" "$(nxt_units "$app2/cargo.json" | grep -v -E '^fresh ')" \
        "units of the app2 build (same sources: everything Fresh)"
    assert_eq "hello from applib 84 42" "$(cat "$app2/app.out")" "app2's output"
    nxt_verify_store
}
