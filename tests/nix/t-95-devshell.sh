# Dev shells (issue 12): entering a nix-shell fills the project's target dir from a deps output
# (nix/hooks/nixcache-shell-hook.sh, `cargo nixcache hydrate`), and cargo in the shell builds
# only the workspace's crates, through the wrapper, with the store really read-only (cargo runs
# without capabilities).
#
# The shell is a plain derivation entered with Nix's own nix-shell; its `stdenv` is a directory
# whose `setup` does what stdenv's setup does for this hook in nativeBuildInputs: put the tools
# on PATH and source the hook (nixpkgs' stdenv cannot be fetched here).

# nxt_shell_expr: the dev shell's expression, over deps output attribute DEPS of chain.nix.
nxt_shell_expr() {
    local deps_attr="$1" sysroot
    sysroot=$(rustc --print sysroot)
    mkdir -p "$T/shell-stdenv"
    cat >"$T/shell-stdenv/setup" <<SETUP
export PATH="$T/tools/bin:$sysroot/bin:/usr/bin:/bin"
source "$NXT_REPO/nix/hooks/nixcache-shell-hook.sh"
SETUP
    nxt_expr "shell-$deps_attr" <<NIX
let chain = import $NXT_DIR/chain.nix { inherit t; deps = { nixcacheCompress = "none"; }; }; in
derivation {
  name = "dev-shell";
  system = builtins.currentSystem;
  builder = "/bin/bash";
  stdenv = builtins.path { path = $T/shell-stdenv; name = "shell-stdenv"; };
  cargoArtifacts = chain.$deps_attr;
  cargoVendorDir = t.vendor;
}
NIX
}

# nxt_in_shell EXPR CMD: enter the shell in the work checkout and run CMD as a root without
# capabilities (so the read-only store really is read-only); its output goes to $T/shell.out.
# Without the CARGO_TARGET_DIR tests/nix/run.sh exports to build the binaries: the shell's target
# dir is the checkout's.
nxt_in_shell() {
    local expr="$1"
    shift
    (cd "$T/work/ws-basic" && unset CARGO_TARGET_DIR && NIX_BUILD_SHELL=/bin/bash nix-shell "$expr" --run \
        "setpriv --inh-caps=-all --bounding-set=-all bash -c '$*'") >"$T/shell.out" 2>&1
}

# nxt_shell_ok WHAT EXPR COMMAND...: nxt_in_shell, failing the test (with the shell's last
# lines) if it fails.
nxt_shell_ok() {
    local what="$1"
    shift
    nxt_in_shell "$@" || nxt_fail "$what failed: $(tail -n 20 "$T/shell.out")"
}

test_95_devshell_hydrates_and_builds() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    mkdir -p "$T/work"
    cp -r "$T/src/ws-basic" "$T/work/"
    # As in a crane project: no vendoring config of its own; the shell brings cargoVendorDir's.
    rm -rf "$T/work/ws-basic/.cargo"
    local expr expr2 deps deps2
    expr=$(nxt_shell_expr depsDrv)
    deps=$(nxt_build "$expr" -A cargoArtifacts)

    # First entry: the target dir is filled, cargo builds only the members, through the wrapper.
    nxt_shell_ok "the first shell" "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo1.json; echo "wrapper=$RUSTC_WRAPPER"'
    assert_contains "$T/shell.out" "Hydrate: filled target from $deps" "hydration on entry"
    assert_contains "$T/shell.out" "wrapper=.*nixcache-rustc-wrapper" "the wrapper in the shell"
    assert_eq "" "$(nxt_units "$T/work/cargo1.json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "units of the first build in the shell"
    assert_eq "$deps" "$(cat "$T/work/ws-basic/target/.nixcache-hydrated")" "the marker"

    # Entering again does nothing; an incremental rebuild of a changed member works.
    echo "// edited in the shell" >>"$T/work/ws-basic/applib/src/lib.rs"
    nxt_shell_ok "the second shell" "$expr" 'CARGO_INCREMENTAL=1 cargo build --offline --message-format json-render-diagnostics > ../cargo2.json && target/debug/app'
    assert_contains "$T/shell.out" "is filled from $deps already" "no refill on re-entry"
    assert_contains "$T/shell.out" "^hello from applib 84 42$" "the app built in the shell"
    assert_contains "$T/work/cargo2.json" '"fresh":false' "applib rebuilt incrementally"

    # Entering again from within the shell (a nested nix-shell; `nix develop` again after editing
    # flake.nix) inherits the CARGO_HOME the hook exported: the hook writes that config again from
    # the user's (it once copied the file onto itself and stopped: "are the same file"), and the
    # nested shell's cargo finds everything Fresh.
    cat >"$T/nested.sh" <<NESTED
cd "$T/work/ws-basic" && NIX_BUILD_SHELL=/bin/bash nix-shell "$expr" --run \
    'cargo build --offline --message-format json-render-diagnostics > ../cargo-nested.json'
NESTED
    nxt_shell_ok "the nested shell" "$expr" "bash $T/nested.sh"
    assert_not_contains "$T/shell.out" "same file" "the nested shell's CARGO_HOME"
    assert_eq 2 "$(grep -c "is filled from $deps already" "$T/shell.out")" "both hooks ran to the end"
    assert_contains "$T/work/cargo-nested.json" '"reason":"compiler-artifact"' "cargo's messages in the nested shell"
    assert_eq "" "$(nxt_units "$T/work/cargo-nested.json" | grep -v '^fresh')" "units rebuilt in the nested shell"

    # Another deps output: the target dir was built in since, so it is kept.
    expr2=$(nxt_shell_expr app2Drv)
    nxt_shell_ok "the third shell" "$expr2" 'true'
    deps2=$(nxt_build "$expr2" -A cargoArtifacts)
    assert_contains "$T/shell.out" "kept target: filled from $deps and built in since" "the user's work kept"
    assert_eq "$deps" "$(cat "$T/work/ws-basic/target/.nixcache-hydrated")" "the marker after keeping"

    # After cargo clean, entering fills it from the new output, and the build is Fresh but for
    # what that output lacks.
    nxt_shell_ok "cargo clean in the shell" "$expr2" 'cargo clean --offline -q; true'
    nxt_shell_ok "the shell after cargo clean" "$expr2" 'cargo build --offline --message-format json-render-diagnostics > ../cargo3.json'
    assert_contains "$T/shell.out" "Hydrate: filled target from $deps2" "hydration after cargo clean"
    assert_contains "$T/work/cargo3.json" '"reason":"compiler-artifact"' "cargo's messages"
    assert_eq "" "$(nxt_units "$T/work/cargo3.json" | grep ' nc-' | grep -v '^fresh')" \
        "registry units after refilling from app2"
    nxt_verify_store
}
