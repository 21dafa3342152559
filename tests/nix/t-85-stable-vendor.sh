# The stable vendor path (nix/hooks/nixcache-vendor-hook.sh) with the plain stdenv hooks; the crane
# adapter's test is test_crane_layered_own_vendor_dirs in t-80-crane.sh.

# deps (layer 1: nc-beta and nc-alpha of a lean workspace, without nc-macro, vendored from a dir
# of its own crates) -> app (ws-basic, vendored from the full dir, inheriting deps). The two vendor
# dirs are two store paths, as two locks give. With `nixcacheStableVendorDir = true` (the source
# replacement in the source root's .cargo/config.toml: `nixcacheVendorConfig`) app compiles
# nc-macro and the members, and inherits nc-alpha and nc-beta Fresh. Control: without it, cargo
# sees nc-alpha and nc-beta at another path and compiles them again.
test_stable_vendor_plain_hooks() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    mkdir -p "$T/lean"
    cp -r "$T/src/ws-basic" "$T/src/vendor" "$T/lean/"
    rm -rf "$T/lean/vendor/nc-macro" "$T/lean/vendor/nc-rerun"
    sed -i '/^nc-macro/d' "$T/lean/ws-basic/applib/Cargo.toml"
    (cd "$T/lean/ws-basic" && cargo generate-lockfile --offline -q) || nxt_fail "could not lock the lean workspace"
    ! grep -q nc-macro "$T/lean/ws-basic/Cargo.lock" || nxt_fail "the lean lock file still has nc-macro"
    local expr mode deps app
    expr=$(nxt_expr stable-vendor <<NIX
let
  leanVendor = builtins.path { path = $T/lean/vendor; name = "vendor-lean"; };
  leanSrc = builtins.path { path = $T/lean; name = "source"; filter = p: _: baseNameOf p != "vendor"; };
  layers = stable: rec {
    deps = t.mkCargo { name = "deps"; src = leanSrc; vendor = leanVendor; cargoVendorDir = leanVendor;
      nixcacheStableVendorDir = stable; nixcacheVendorConfig = ".cargo/config.toml";
      cargoBuildCmd = "cargo build --offline -p nc-beta"; };
    app = t.mkCargo { name = "app"; cargoArtifacts = deps; cargoVendorDir = t.vendor;
      nixcacheStableVendorDir = stable; nixcacheVendorConfig = ".cargo/config.toml"; };
  };
in
{ stable = layers true; moved = layers false; }
NIX
    )
    for mode in stable moved; do
        deps=$(nxt_build "$expr" -A "$mode.deps.log")
        app=$(nxt_build "$expr" -A "$mode.app.log")
        assert_contains "$T/build.log" "nixcache: inheriting" "$mode: app inherited deps"
        nxt_units "$app/cargo.json" >"$T/$mode.units"
        assert_contains "$T/$mode.units" "^dirty nc-macro " "$mode: nc-macro compiled in app"
        assert_eq "hello from applib 84 42" "$(cat "$app/app.out")" "$mode: app's output"
        if [ "$mode" = stable ]; then
            assert_contains "$T/build.log" "nixcache: vendored sources at /build/nixcache-vendor .*: 1 source\\(s\\) in \\.cargo/config\\.toml" \
                "stable: app's sources through the link"
        else
            assert_not_contains "$T/build.log" "nixcache: vendored sources" "moved: no link"
        fi
    done
    assert_eq "" "$(grep -E ' nc-(alpha|beta) ' "$T/stable.units" | grep -v '^fresh')" \
        "stable: nc-alpha and nc-beta, inherited from deps built on another vendor dir"
    assert_contains "$T/stable.units" "^fresh nc-alpha lib" "stable: nc-alpha reported"
    # Control: the documented limit without the option.
    assert_contains "$T/moved.units" "^dirty nc-alpha lib" "moved: nc-alpha compiled again"
    assert_contains "$T/moved.units" "^dirty nc-beta lib" "moved: nc-beta compiled again"
}

# The option never does nothing silently: where the cargo config has no `directory` entry under
# cargoVendorDir (here the source replacement names another vendor dir) the build fails, saying so;
# without a cargo config at all too.
test_stable_vendor_refuses_config_without_entry() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    mkdir -p "$T/other/nc-beta"
    cp -r "$T/src/vendor/nc-beta/." "$T/other/nc-beta/"
    local expr
    expr=$(nxt_expr stable-vendor-refused <<NIX
let other = builtins.path { path = $T/other; name = "vendor-other"; }; in
{
  noEntry = t.mkCargo { name = "no-entry"; cargoVendorDir = other; nixcacheStableVendorDir = true;
    nixcacheVendorConfig = ".cargo/config.toml"; };
  noConfig = t.mkCargo { name = "no-config"; cargoVendorDir = other; nixcacheStableVendorDir = true; };
}
NIX
    )
    nxt_build_fails "$expr" -A noEntry.out
    assert_contains "$T/build.log" 'nixcache: nixcacheStableVendorDir: `\.cargo/config\.toml` has no `directory = ".*-vendor-other\.\.\."` entry to redirect' \
        "the refusal of a config without an entry"
    assert_not_contains "$T/build.log" "Compiling" "a build after the refusal"
    nxt_build_fails "$expr" -A noConfig.out
    assert_contains "$T/build.log" 'nixcache: nixcacheStableVendorDir: no cargo config at `.*/cargo-home/config\.toml`' \
        "the refusal without a cargo config"
}
