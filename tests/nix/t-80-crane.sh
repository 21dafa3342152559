# The crane adapter: its Nix logic (against a fake crane lib) and its hooks (in real builds, with
# stand-ins for crane's hook scripts that keep crane's names, parameters and registration).

test_crane_adapter_eval() {
    nxt_store_init
    local ok
    ok=$(nix-instantiate --eval --strict -E "(import $NXT_DIR/crane-adapter.nix { }).failed" 2>"$T/eval.err") ||
        nxt_fail "evaluating the adapter failed: $(tail -n 5 "$T/eval.err")"
    assert_eq "[ ]" "$ok" "failed adapter checks"
    # Negative control: a lib returned unchanged fails the checks.
    ok=$(nix-instantiate --eval --strict -E \
        "(import $NXT_DIR/crane-adapter.nix { adapter = _: lib: lib; }).ok" 2>"$T/eval.err") ||
        nxt_fail "evaluating the negative control failed: $(tail -n 5 "$T/eval.err")"
    assert_eq "false" "$ok" "checks of an adapter that changes nothing"
}

# nxt_crane_expr NAME NIX-BODY: `t` plus `craneHooks` = the adapted hooks (nix/hooks/crane-*.sh
# with makeSetupHook's substitutions done by replaceStrings) over the crane stand-ins.
nxt_crane_expr() {
    local name="$1"
    nxt_expr "$name" <<NIX
let
  fake = "\${$NXT_DIR/fake-crane}";
  subst = file: from: to: builtins.toFile (baseNameOf file)
    (builtins.replaceStrings from to (builtins.readFile file));
  craneHooks = [
    (subst $NXT_REPO/nix/hooks/crane-inherit-hook.sh [ "@craneInheritHook@" "@nixcacheInheritHook@" ]
      [ "\${fake}/inheritCargoArtifactsHook.sh" "\${t.hooks}/nixcache-inherit-hook.sh" ])
    (subst $NXT_REPO/nix/hooks/crane-install-hook.sh [ "@craneInstallHook@" "@nixcacheInstallHook@" ]
      [ "\${fake}/installCargoArtifactsHook.sh" "\${t.hooks}/nixcache-install-hook.sh" ])
    "\${fake}/removeReferencesToVendoredSourcesHook.sh"
  ];
  crane = args: t.mkCargo ({ setupHooks = craneHooks; } // args);
  # crane's buildPackage installs the binary into \$out/bin.
  installBin = ''
    mkdir -p \$out/bin
    cp target/debug/app \$out/bin/app
    \$out/bin/app > \$log/app.out
  '';
in
$(cat)
NIX
}

# Derivations that do not opt in run crane's functions, and nothing of ours.
test_crane_hooks_other_modes_untouched() {
    nxt_store_init
    nxt_stage_src
    # no cargo-nixcache on PATH: nothing of ours may run
    local expr log
    expr=$(nxt_crane_expr crane-zstd <<'NIX'
rec {
  deps = crane { name = "deps"; doInstallCargoArtifacts = "1"; installCargoArtifactsMode = "use-zstd";
                 cargoBuildCmd = "cargo build --offline -p nc-beta"; };
  app = crane { name = "app"; cargoArtifacts = deps; doInstallCargoArtifacts = "1";
                installCargoArtifactsMode = "use-zstd"; cargoVendorDir = t.vendor; };
}
NIX
    )
    log=$(nxt_build "$expr" -A app.log)
    assert_contains "$log/crane-calls" "^crane-inherit " "crane's inherit ran"
    assert_contains "$log/crane-calls" "^crane-install use-zstd" "crane's install ran"
    assert_not_contains "$T/build.log" "^nixcache:" "our hooks' log lines"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app's output"
}

# installCargoArtifactsMode = "use-nixcache": inherits crane's target.tar.zst through
# cargo-nixcache, packs after crane's reference rewriting, and a further build inherits that.
test_crane_hooks_use_nixcache() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr app applog app2log
    expr=$(nxt_crane_expr crane-nixcache <<'NIX'
rec {
  deps = crane { name = "deps"; doInstallCargoArtifacts = "1"; installCargoArtifactsMode = "use-zstd";
                 cargoBuildCmd = "cargo build --offline -p nc-beta"; };
  app = crane { name = "app"; cargoArtifacts = deps; doInstallCargoArtifacts = "1";
                installCargoArtifactsMode = "use-nixcache"; installPhase = installBin;
                cargoVendorDir = t.vendor; };
  app2 = crane { name = "app2"; cargoArtifacts = app; installCargoArtifactsMode = "use-nixcache";
                 dontNixcacheFreshen = "1"; };
}
NIX
    )
    app=$(nxt_build "$expr" -A app.out)
    applog=$(nxt_build "$expr" -A app.log)
    assert_not_contains "$applog/crane-calls" "^crane-inherit |^crane-install " "crane's own functions in use-nixcache mode"
    assert_contains "$applog/crane-calls" "^crane-remove-references" "crane's reference removal ran"
    assert_exists "$app/nixcache.json" "the packed output"
    assert_exists "$app/bin/app" "the installed binary"
    # Packing ran after the rewrite: the anchor still names real paths, and verify passes.
    assert_not_contains "$app/nixcache-refs" "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee" "the anchor"
    nix-store -l "$app" >"$T/app-build.log"
    awk '/stripping references/ {s=NR} /nixcache: packing/ {p=NR} END {exit !(s && p && s < p)}' \
        "$T/app-build.log" || nxt_fail "packing did not run after crane's reference removal"
    nxt_verify_artifacts "$app"
    assert_eq "" "$(nxt_units "$applog/cargo.json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "units inheriting crane's target.tar.zst through cargo-nixcache"

    app2log=$(nxt_build "$expr" -A app2.log)
    assert_eq "" "$(nxt_units "$app2log/cargo.json" | grep -v '^fresh')" "units of app2"
    nxt_verify_store
}

# A derivation that does not opt in but inherits a cargo-nixcache output runs crane's own hook,
# which must stop loudly ("looks invalid": there is no target/ or target.tar.zst), never build
# from a partial tree. Control: the same derivation opted in builds.
test_crane_hooks_not_opted_in_fails_loudly() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr
    expr=$(nxt_crane_expr crane-optout <<'NIX'
rec {
  deps = crane { name = "deps"; doInstallCargoArtifacts = "1"; installCargoArtifactsMode = "use-nixcache";
                 cargoBuildCmd = "cargo build --offline -p nc-beta"; };
  optedOut = crane { name = "opted-out"; cargoArtifacts = deps; };
  optedIn = crane { name = "opted-in"; cargoArtifacts = deps; installCargoArtifactsMode = "use-nixcache"; };
}
NIX
    )
    nxt_build "$expr" -A deps >/dev/null
    nxt_build_fails "$expr" -A optedOut.log
    assert_contains "$T/build.log" "looks invalid" "crane's own refusal"
    assert_not_contains "$T/build.log" "Compiling" "a build from a partial tree"
    nxt_build "$expr" -A optedIn.log >/dev/null
}
