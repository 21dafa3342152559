# `cargo nixcache explain` inside real Nix builds (issue 12): a derivation that inherits app's
# output and builds the same sources reports every unit Fresh; one whose applib source differs
# names applib's changed file, and app only as following it; registry units never appear.

# nxt_explain_expr NAME [APP2-SRC]: chain.nix with app2 building through `explain`.
nxt_explain_expr() {
    local name="$1" src_attr=""
    if [ -n "${2:-}" ]; then
        src_attr="src = builtins.path { path = $2; name = \"source\"; };"
    fi
    nxt_chain_expr "$name" "app2 = {
        buildPhase = \"cargo-nixcache explain -- build --offline > \$log/explain.out 2> \$log/explain.err\";
        $src_attr
      };"
}

test_96_explain_in_nix_builds() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    mkdir -p "$T/src-changed"
    cp -r "$T/src/ws-basic" "$T/src-changed/"
    echo "// changed" >>"$T/src-changed/ws-basic/applib/src/lib.rs"
    local same changed
    same=$(nxt_build "$(nxt_explain_expr explain-same)" -A app2Drv.log)
    assert_contains "$same/explain.out" "^All [0-9]+ units Fresh: nothing was rebuilt" \
        "explain on an inherited build of the same sources"

    changed=$(nxt_build "$(nxt_explain_expr explain-changed "$T/src-changed")" -A app2Drv.log)
    assert_contains "$changed/explain.out" "^applib lib:applib +file changed +.applib/src/lib.rs" \
        "explain names applib's changed source"
    assert_contains "$changed/explain.out" "^app bin:app +dependency rebuilt" "app follows applib"
    assert_not_contains "$changed/explain.out" "^nc-" "registry units in explain's rows"
}
