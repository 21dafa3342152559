# stdenv as users run it, through crane's real lib (t-80-crane.sh's helpers): what nixpkgs'
# mkDerivation and setup.sh do beyond the plain phases, which the emulated stdenv follows
# (tests/nix/crane/nixpkgs.nix, stdenv-setup.sh) and our hooks must live with.

# __structuredAttrs = true: attributes arrive as bash arrays and associative arrays (.attrs.sh),
# `outputs` among them. A list-valued nixcachePackFlags / nixcacheUnpackFlags reaches the binary
# element by element (read as a plain string, the hooks once passed only its first element:
# `--compress` without its value, and pack refused). The same chain also runs extra phases
# (prePhases, postPhases), which real genericBuild runs around the standard ones.
test_81_crane_structured_attrs_and_extra_phases() {
    nxt_crane_setup
    local expr deps app
    expr=$(nxt_crane_expr structured <<'NIX'
let
  structured = {
    __structuredAttrs = true;
    # What the builder saw: `outputs` is an associative array only with structured attributes.
    preBuild = ''echo "outputs are: $(declare -p outputs | cut -d' ' -f2)"'';
  };
in
rec {
  deps = nixcacheLib.buildDepsOnly (common // structured // {
    nixcachePackFlags = [ "--compress" "none" ];
    prePhases = [ "nixcacheTestPrePhase" ];
    nixcacheTestPrePhase = "echo PRE-PHASE-RAN";
    postPhases = [ "nixcacheTestPostPhase" ];
    nixcacheTestPostPhase = ''echo "POST-PHASE-RAN after $(ls "$out" | tr '\n' ' ')"'';
  });
  app = nixcacheLib.buildPackage (common // structured // { cargoArtifacts = deps; cargoExtraArgs = jsonArgs;
    nixcacheUnpackFlags = [ "--json" ];
    postBuild = ''cat "''${cargoBuildLog:-/dev/null}"''; });
}
NIX
    )
    deps=$(nxt_build "$expr" -A deps)
    assert_contains "$T/build.log" "^outputs are: -A$" "structured attributes in the deps build"
    assert_exists "$deps/symlinks.tar" "the archive packed with nixcachePackFlags' two elements (--compress none)"
    assert_missing "$deps/symlinks.tar.zst" "a zstd archive"
    assert_contains "$T/build.log" "^PRE-PHASE-RAN$" "prePhases"
    assert_contains "$T/build.log" "^POST-PHASE-RAN after .*nixcache.json" "postPhases, after fixup"
    [ "$(grep -n 'PRE-PHASE-RAN' "$T/build.log" | cut -d: -f1)" -lt \
        "$(grep -n 'Running phase: unpackPhase' "$T/build.log" | cut -d: -f1)" ] ||
        nxt_fail "prePhases ran after unpackPhase"
    nxt_verify_artifacts "$deps"

    app=$(nxt_build "$expr" -A app)
    assert_contains "$T/build.log" "^outputs are: -A$" "structured attributes in the app build"
    # --json makes unpack print its report on stdout instead of the summary line.
    assert_contains "$T/build.log" '^\{"' "unpack's JSON report (nixcacheUnpackFlags as a list)"
    assert_eq "hello from applib 84 42" "$("$app/bin/app")" "the app"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh with structured attributes"
}

# nixpkgs' make-derivation.nix turns doCheck (and doInstallCheck) off when the build platform
# cannot execute the host platform's binaries: a cross deps derivation runs no checkPhase, so its
# output holds no test units (crane's buildDepsOnly asks for `cargo test --no-run` there), while
# the native one does. Checked at evaluation; t-80's cross test builds one with crane's defaults.
test_81_crane_cross_turns_checks_off() {
    nxt_crane_setup
    local cross expr checks
    for cross in false true; do
        expr=$(nxt_crane_expr "docheck-$cross" "$cross" <<'NIX'
let deps = nixcacheLib.buildDepsOnly common; in
"doCheck=${if deps.doCheck then "on" else "off"}"
NIX
        )
        checks=$(nix-instantiate --eval "$expr" 2>"$T/eval.err") ||
            nxt_fail "evaluating ($cross): $(tail -n 5 "$T/eval.err")"
        if [ "$cross" = true ]; then
            assert_eq '"doCheck=off"' "$checks" "a cross deps derivation's doCheck"
        else
            assert_eq '"doCheck=on"' "$checks" "a native deps derivation's doCheck"
        fi
    done
}
