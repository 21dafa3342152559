# Harness self-tests: the sandbox really runs cargo offline, and really cannot write the store.

# A plain derivation runs the real `cargo build --offline` of the fixture (deps vendored into
# their own store path) inside the sandbox, as a build user, with the host toolchain on PATH.
test_harness_sandbox_cargo_build() {
    nxt_store_init
    nxt_stage_src
    local expr out log
    expr=$(nxt_expr plain <<'NIX'
t.mkCargo {
  name = "plain-build";
  setupHooks = [ ];
  buildPhase = ''
    echo "$(id -un) $(id -u)" > $TMPDIR/user
    cargo build --offline --message-format json-render-diagnostics > $TMPDIR/cargo.json
  '';
  installPhase = ''
    cp $TMPDIR/cargo.json $TMPDIR/user $log/
    target/debug/app > $log/app.out
    echo "$NIX_STORE" > $log/nix-store
    cat target/debug/deps/nc_alpha-*.d > $log/alpha.d
  '';
}
NIX
    )
    log=$(nxt_build "$expr" -A log)
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "the built app's output"
    assert_contains "$log/user" '^nixbld [1-9][0-9]*$' "the builder's user (a sandboxed build user, not root)"
    assert_eq "$NIX_STORE_DIR" "$(cat "$log/nix-store")" "NIX_STORE inside the build"
    assert_contains "$log/alpha.d" "^$NIX_STORE_DIR/[a-z0-9]{32}-vendor/nc-alpha/src/lib.rs" \
        "the vendored sources come from their store path"
    assert_eq "6" "$(nxt_units "$log/cargo.json" | grep -c '^dirty')" "units built"
    nxt_verify_store
}

# Negative control for the whole suite: a builder that tries to write into an input store path
# (what root without a sandbox can do) must fail, and the store must stay verified.
test_harness_builder_cannot_write_store() {
    nxt_store_init
    nxt_stage_src
    local expr
    expr=$(nxt_expr write <<'NIX'
t.mkCargo {
  name = "write-into-store";
  setupHooks = [ ];
  buildPhase = ''
    echo "// tampered" >> "$src/ws-basic/Cargo.toml"
  '';
}
NIX
    )
    nxt_build_fails "$expr" -A out
    assert_contains "$T/build.log" "Permission denied|Read-only file system" "the write attempt's error"
    nxt_verify_store
}
