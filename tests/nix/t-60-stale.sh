# Test 6: inherited artifacts built from OTHER sources never yield a stale binary.

# nxt_stale_expr NAME APP-ATTRS: deps = a FULL build of sources A ("hello from applib"); app =
# sources B ("NEW GREETING"), both with mtime 1 as everything in the store, inheriting deps.
nxt_stale_expr() {
    local name="$1" attrs="$2"
    rm -rf "$T/srcB"
    cp -a "$T/src" "$T/srcB"
    sed -i 's/hello from applib/NEW GREETING/' "$T/srcB/ws-basic/applib/src/lib.rs"
    nxt_expr "$name" <<NIX
rec {
  depsDrv = t.mkCargo { name = "deps-from-sources-a"; };
  appDrv = t.mkCargo ({
    name = "app-from-sources-b";
    src = builtins.path { path = $T/srcB; name = "source"; filter = p: _: baseNameOf p != "vendor"; };
    cargoArtifacts = depsDrv;
  } // { $attrs });
}
NIX
}

test_6_stale_binary_guard() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps log
    expr=$(nxt_stale_expr stale '')
    deps=$(nxt_build "$expr" -A depsDrv.log)
    assert_eq "hello from applib 84 42" "$(cat "$deps/app.out")" "the binary built from sources A"
    log=$(nxt_build "$expr" -A appDrv.log)
    assert_eq "NEW GREETING 84 42" "$(cat "$log/app.out")" "the binary built from sources B (guard on)"
    assert_contains "$log/cargo.json" '"fresh":false' "cargo rebuilt something"
    nxt_verify_store
}

# Negative control: without the guard, cargo calls the inherited units Fresh and ships A's binary.
test_6_stale_binary_without_guard() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr log
    expr=$(nxt_stale_expr stale-noguard 'dontNixcacheFreshen = "1";')
    log=$(nxt_build "$expr" -A appDrv.log)
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" \
        "without the guard, the stale binary from sources A"
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v '^fresh')" "units without the guard (all Fresh)"
}
