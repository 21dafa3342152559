# Dev shells (issue 12, issue 17): entering a shell, with `nix develop` or nix-shell, fills the
# project's target dir from a deps output (nix/hooks/nixcache-shell-hook.sh, `cargo nixcache
# hydrate`), and cargo in the shell builds only the workspace's crates, through the wrapper, with
# the store really read-only (cargo runs without capabilities).
#
# The shell is a plain derivation entered with Nix's own `nix develop` and nix-shell; its `stdenv`
# is a directory whose `setup` does what stdenv's setup does for this hook in nativeBuildInputs
# (nixpkgs' stdenv cannot be fetched here): put the tools on PATH, define runHook, source the hook.
# The two tools differ where it matters: nix-shell sources the setup in your shell, `nix develop`
# sources it in a build (Nix's get-env.sh: cwd /build, HOME=/homeless-shelter) and brings only
# the variables and functions dumped there into your shell. Both then run `shellHook`.
# test_95_devshell_mkshell enters a mkShell of the suite's emulated nixpkgs instead.
#
# NXT_SHELL_HOOK: the hook file under test (default the repo's). Negative control: point it at an
# older hook (`git show REV:nix/hooks/nixcache-shell-hook.sh > /tmp/old-hook.sh`).
NXT_SHELL_HOOK="${NXT_SHELL_HOOK:-$NXT_REPO/nix/hooks/nixcache-shell-hook.sh}"

# nxt_shell_expr NAME DEPS_ATTR [NIX_ATTRS]: write the dev shell's expression to $T/shell-NAME.nix
# and print its path: cargoArtifacts is attribute DEPS_ATTR of chain.nix, NIX_ATTRS (Nix attribute
# bindings, e.g. `cargoVendorDir = t.vendor;`) are added to the derivation. Everything the setup
# needs is in the store, since `nix develop` sources it in the sandbox.
nxt_shell_expr() {
    local name="$1" deps_attr="$2" attrs="${3:-}" sysroot
    sysroot=$(rustc --print sysroot)
    [ -f "$NXT_SHELL_HOOK" ] || nxt_fail "the hook under test, \`$NXT_SHELL_HOOK\`, is missing"
    mkdir -p "$T/shell-stdenv"
    # The toolchain's dir is the host's; `nix develop`'s build has it on PATH too, runs nothing.
    cat >"$T/shell-stdenv/setup" <<SETUP
export PATH="\$nixcacheTools/bin:$sysroot/bin:/usr/bin:/bin"
# stdenv's runHook, as far as shellHook needs it: nix-shell runs shellHook only through runHook.
runHook() { eval "\${!1:-}"; }
source "\$nixcacheShellHookFile"
SETUP
    nxt_expr "shell-$name" <<NIX
let chain = import $NXT_DIR/chain.nix { inherit t; deps = { nixcacheCompress = "none"; }; }; in
derivation {
  name = "dev-shell";
  system = builtins.currentSystem;
  builder = "/bin/bash";
  # nix develop's get-env.sh writes the environment to each of \$outputs.
  outputs = [ "out" ];
  stdenv = builtins.path { path = $T/shell-stdenv; name = "shell-stdenv"; };
  nixcacheTools = builtins.path { path = $T/tools; name = "nixcache-tools"; };
  nixcacheShellHookFile = builtins.path { path = $NXT_SHELL_HOOK; name = "nixcache-shell-hook.sh"; };
  cargoArtifacts = chain.$deps_attr;
  $attrs
}
NIX
}

# nxt_nix ARGS...: `nix` as the tests run it, whatever Nix is first on PATH: the nix-command
# feature on both versions; no flake registry, which `nix develop` would download (and fail to,
# after retries: seconds) only to look up nixpkgs#bashInteractive, whose absence it ignores.
nxt_nix() {
    nix --extra-experimental-features nix-command --option flake-registry '' "$@"
}

# nxt_in_shell HOW EXPR CMD: enter the shell (HOW: `develop` or `nix-shell`) in $nxt_work (default
# $T/work/ws-basic) and run CMD as a root without capabilities (so the read-only store really is
# read-only); the output goes to $T/shell.out. HOW `print-dev-env` sources what `nix
# print-dev-env` prints (as direnv's `use flake` does) and runs CMD in that same shell, with
# capabilities: for CMDs that call the hook's functions, which no child process inherits. `nix develop` keeps the environment it made in the
# profile $T/develop-env. Without the CARGO_TARGET_DIR tests/nix/run.sh exports to build the
# binaries: the shell's target dir is the checkout's. A `nix develop` whose environment build was
# SIGKILLed at its end (Nix 2.8's EOF race, see nxt_nix_build) is entered again, twice at most.
nxt_in_shell() {
    local how="$1" expr="$2" attempt
    shift 2
    for attempt in 1 2 3; do
        case "$how" in
        develop)
            (cd "${nxt_work:-$T/work/ws-basic}" && unset CARGO_TARGET_DIR &&
                nxt_nix develop -f "$expr" --profile "$T/develop-env" \
                    --command setpriv --inh-caps=-all --bounding-set=-all bash -c "$*") >"$T/shell.out" 2>&1 &&
                return 0
            ;;
        print-dev-env)
            (cd "${nxt_work:-$T/work/ws-basic}" && unset CARGO_TARGET_DIR &&
                nxt_nix print-dev-env -f "$expr" >"$T/dev-env.sh" && bash -c "source '$T/dev-env.sh'; $*") >"$T/shell.out" 2>&1 &&
                return 0
            ;;
        nix-shell)
            (cd "${nxt_work:-$T/work/ws-basic}" && unset CARGO_TARGET_DIR && NIX_BUILD_SHELL=/bin/bash nix-shell "$expr" --run \
                "setpriv --inh-caps=-all --bounding-set=-all bash -c '$*'") >"$T/shell.out" 2>&1 && return 0
            ;;
        *) nxt_fail "nxt_in_shell: HOW is develop or nix-shell, not \`$how\`" ;;
        esac
        grep -q 'failed due to signal 9 (Killed)' "$T/shell.out" || return 1
        nxt_log "$how $expr: the environment's builder was SIGKILLed at its end, attempt $attempt"
    done
    return 1
}

# nxt_shell_ok WHAT HOW EXPR COMMAND...: nxt_in_shell, failing the test (with the shell's last
# lines) if it fails.
nxt_shell_ok() {
    local what="$1"
    shift
    nxt_in_shell "$@" || nxt_fail "$what failed: $(tail -n 20 "$T/shell.out")"
}

# nxt_checkout DIR [KEEP_CARGO_CONFIG]: a user's checkout of ws-basic at DIR (new mtimes, no
# target dir). As in a crane project it has no vendoring config of its own (the shell brings
# cargoVendorDir's), unless KEEP_CARGO_CONFIG is a vendor dir: then its .cargo/config.toml
# replaces crates.io with that dir, as the deps build's did.
nxt_checkout() {
    local dir="$1" vendor="${2:-}"
    mkdir -p "$dir"
    cp -r "$T/src/ws-basic/." "$dir/"
    if [ -n "$vendor" ]; then
        sed -i "s|^directory = .*|directory = \"$vendor\"|" "$dir/.cargo/config.toml"
    else
        rm -rf "$dir/.cargo"
    fi
}

# nxt_assert_filled WORK DEPS UNITS_JSON WHAT [TARGET]: the shell filled WORK's target dir (TARGET,
# default target) from DEPS, and the first build in it (cargo's messages in UNITS_JSON) compiled
# only the workspace members and nc-macro, the one registry crate chain.nix's deps do not build;
# nc-alpha and nc-beta are Fresh.
nxt_assert_filled() {
    local work="$1" deps="$2" json="$3" what="$4" target="${5:-target}"
    assert_contains "$T/shell.out" "Hydrate: filled $target from $deps" "$what: hydration on entry"
    [ -f "$work/$target/.nixcache-hydrated" ] ||
        nxt_fail "$what: the checkout's target dir was not filled (no marker): $(ls -A "$work/$target" 2>&1 | head -n 5 | tr '\n' ' ')"
    assert_eq "$deps" "$(cat "$work/$target/.nixcache-hydrated")" "$what: the marker"
    assert_contains "$json" '"reason":"compiler-artifact"' "$what: cargo's messages"
    assert_eq "" "$(nxt_units "$json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "$what: units of the first build in the shell"
}

# nxt_develop_env_clean WHAT: the environment `nix develop` made (profile $T/develop-env) shows
# that the hook did nothing in the build but register itself: shellHook runs nixcacheShellEntry,
# nixcacheShellHook is among its functions, and none of what entering exports is there.
nxt_develop_env_clean() {
    local what="$1" env="$T/develop-env.json"
    [ -e "$T/develop-env" ] || nxt_fail "$what: nix develop made no profile at $T/develop-env"
    cat "$T/develop-env" >"$env"
    python3 - "$env" "$what" <<'PY' || nxt_fail "$what: the environment nix develop dumped (above)"
import json, sys
env = json.load(open(sys.argv[1]))
vars, funs = env["variables"], env["bashFunctions"]
bad = [v for v in ("RUSTC_WRAPPER", "CARGO_HOME", "NIXCACHE_USER_CARGO_HOME") if v in vars]
hook = vars.get("shellHook", {}).get("value", "")
problems = []
if bad:
    problems.append("set in the build: " + ", ".join(bad))
if "nixcacheShellEntry" not in hook.split("\n"):
    problems.append("shellHook does not run nixcacheShellEntry: %r" % hook)
if "nixcacheShellHook" not in funs:
    problems.append("no nixcacheShellHook among the functions")
if problems:
    print("    %s: %s" % (sys.argv[2], "; ".join(problems)), file=sys.stderr)
    sys.exit(1)
PY
}

test_95_devshell_hydrates_and_builds() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    nxt_checkout "$T/work/ws-basic"
    local expr expr2 deps deps2
    expr=$(nxt_shell_expr deps depsDrv 'cargoVendorDir = t.vendor;')
    deps=$(nxt_build "$expr" -A cargoArtifacts)

    # First entry: the target dir is filled, cargo builds only the members, through the wrapper.
    nxt_shell_ok "the first shell" nix-shell "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo1.json; echo "wrapper=$RUSTC_WRAPPER"'
    nxt_assert_filled "$T/work/ws-basic" "$deps" "$T/work/cargo1.json" "the first nix-shell"
    assert_contains "$T/shell.out" "wrapper=.*nixcache-rustc-wrapper" "the wrapper in the shell"

    # Entering again does nothing; an incremental rebuild of a changed member works.
    echo "// edited in the shell" >>"$T/work/ws-basic/applib/src/lib.rs"
    nxt_shell_ok "the second shell" nix-shell "$expr" 'CARGO_INCREMENTAL=1 cargo build --offline --message-format json-render-diagnostics > ../cargo2.json && target/debug/app'
    assert_contains "$T/shell.out" "is filled from $deps already" "no refill on re-entry"
    assert_contains "$T/shell.out" "^hello from applib 84 42$" "the app built in the shell"
    assert_contains "$T/work/cargo2.json" '"fresh":false' "applib rebuilt incrementally"

    # Entering again from within the shell (a nested nix-shell; `nix develop` again after editing
    # flake.nix) inherits the CARGO_HOME the hook exported: the hook writes that config again from
    # the user's (it once copied the file onto itself and stopped: "are the same file"), and the
    # nested shell's cargo finds everything Fresh.
    cat >"$T/nested.sh" <<NESTED
cd "$T/work/ws-basic" && NIX_BUILD_SHELL=/bin/bash "$(command -v nix-shell)" "$expr" --run \
    'cargo build --offline --message-format json-render-diagnostics > ../cargo-nested.json'
NESTED
    nxt_shell_ok "the nested shell" nix-shell "$expr" "bash $T/nested.sh"
    assert_not_contains "$T/shell.out" "same file" "the nested shell's CARGO_HOME"
    assert_eq 2 "$(grep -c "is filled from $deps already" "$T/shell.out")" "both hooks ran to the end"
    assert_contains "$T/work/cargo-nested.json" '"reason":"compiler-artifact"' "cargo's messages in the nested shell"
    assert_eq "" "$(nxt_units "$T/work/cargo-nested.json" | grep -v '^fresh')" "units rebuilt in the nested shell"

    # Another deps output: the target dir was built in since, so it is kept.
    expr2=$(nxt_shell_expr app2 app2Drv 'cargoVendorDir = t.vendor;')
    nxt_shell_ok "the third shell" nix-shell "$expr2" 'true'
    deps2=$(nxt_build "$expr2" -A cargoArtifacts)
    assert_contains "$T/shell.out" "kept target: filled from $deps and built in since" "the user's work kept"
    assert_eq "$deps" "$(cat "$T/work/ws-basic/target/.nixcache-hydrated")" "the marker after keeping"

    # After cargo clean, entering fills it from the new output, and the build is Fresh but for
    # what that output lacks.
    nxt_shell_ok "cargo clean in the shell" nix-shell "$expr2" 'cargo clean --offline -q; true'
    nxt_shell_ok "the shell after cargo clean" nix-shell "$expr2" 'cargo build --offline --message-format json-render-diagnostics > ../cargo3.json'
    assert_contains "$T/shell.out" "Hydrate: filled target from $deps2" "hydration after cargo clean"
    assert_contains "$T/work/cargo3.json" '"reason":"compiler-artifact"' "cargo's messages"
    assert_eq "" "$(nxt_units "$T/work/cargo3.json" | grep ' nc-' | grep -v '^fresh')" \
        "registry units after refilling from app2"
    nxt_verify_store
}

# issue 17: `nix develop` sources the hook in its environment build, not in your shell. The hook
# must do its work from shellHook, in the checkout: before, the target dir stayed empty, and with
# cargoVendorDir the environment build failed (`mkdir: cannot create directory
# '/homeless-shelter'`). With a shellHook of the shell's own, which still runs, and first.
test_95_devshell_nix_develop() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    nxt_checkout "$T/work/ws-basic"
    local expr deps work="$T/work/ws-basic"
    expr=$(nxt_shell_expr develop depsDrv \
        'cargoVendorDir = t.vendor; shellHook = "echo user-shellHook-ran; export NXT_USER_HOOK=ran";')
    deps=$(nxt_build "$expr" -A cargoArtifacts)

    nxt_shell_ok "the first nix develop" develop "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo1.json; echo "wrapper=$RUSTC_WRAPPER user=$NXT_USER_HOOK home=$CARGO_HOME"'
    nxt_assert_filled "$work" "$deps" "$T/work/cargo1.json" "the first nix develop"
    assert_contains "$T/shell.out" "wrapper=.*nixcache-rustc-wrapper user=ran home=$T/cache/cargo-nixcache/cargo-home-" \
        "the wrapper, the user's shellHook and the vendoring CARGO_HOME in the shell"
    local user_line ours_line
    user_line=$(grep -n -m1 '^user-shellHook-ran$' "$T/shell.out" | cut -d: -f1)
    ours_line=$(grep -n -m1 'Hydrate: filled target' "$T/shell.out" | cut -d: -f1)
    [ -n "$user_line" ] || nxt_fail "the shell's own shellHook did not run: $(cat "$T/shell.out")"
    [ "$user_line" -lt "$ours_line" ] || nxt_fail "the shell's own shellHook ran after ours: $(cat "$T/shell.out")"
    nxt_develop_env_clean "the first nix develop"

    # Entering again does nothing, and the build is all Fresh.
    nxt_shell_ok "nix develop again" develop "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo2.json && target/debug/app'
    assert_contains "$T/shell.out" "is filled from $deps already" "no refill on re-entry"
    assert_contains "$T/shell.out" "^hello from applib 84 42$" "the app built in the shell"
    assert_eq "" "$(nxt_units "$T/work/cargo2.json" | grep -v '^fresh')" "units rebuilt on re-entry"

    # nix develop from within the shell: our CARGO_HOME is inherited, the user's is kept.
    cat >"$T/nested.sh" <<NESTED
cd "$work" && "$(command -v nix)" --extra-experimental-features nix-command --option flake-registry '' \
    develop -f "$expr" --command cargo build --offline --message-format json-render-diagnostics > ../cargo-nested.json
NESTED
    nxt_shell_ok "nix develop within nix develop" develop "$expr" "bash $T/nested.sh"
    assert_not_contains "$T/shell.out" "same file" "the nested shell's CARGO_HOME"
    assert_eq 2 "$(grep -c "is filled from $deps already" "$T/shell.out")" "both hooks ran to the end"
    assert_eq "" "$(nxt_units "$T/work/cargo-nested.json" | grep -v '^fresh')" "units rebuilt in the nested shell"

    # nix-shell in the same checkout finds it filled: both tools leave the same state.
    nxt_shell_ok "nix-shell after nix develop" nix-shell "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo3.json'
    assert_contains "$T/shell.out" "is filled from $deps already" "nix-shell after nix develop"
    assert_eq "" "$(nxt_units "$T/work/cargo3.json" | grep -v '^fresh')" "units rebuilt in nix-shell"

    # dontNixcacheShell=1 in the environment entered from: nothing on entry, but the functions are
    # there to call (in the shell itself: print-dev-env).
    nxt_checkout "$T/work-opt-out/ws-basic"
    nxt_work="$T/work-opt-out/ws-basic"
    (
        export dontNixcacheShell=1
        nxt_shell_ok "print-dev-env, opted out" print-dev-env "$expr" \
            'echo "wrapper=${RUSTC_WRAPPER:-none} target=$(ls -d target 2>/dev/null || echo none)"; nixcacheShellHook'
    )
    assert_contains "$T/shell.out" "^wrapper=none target=none$" "nothing on entry with dontNixcacheShell=1"
    assert_contains "$T/shell.out" "Hydrate: filled target from $deps" "nixcacheShellHook called by hand"
    assert_eq "$deps" "$(cat "$nxt_work/target/.nixcache-hydrated")" "the marker after nixcacheShellHook"

    # ... and as the shell's attribute: not even registered.
    local expr_off
    nxt_checkout "$T/work-opt-out2/ws-basic"
    nxt_work="$T/work-opt-out2/ws-basic"
    expr_off=$(nxt_shell_expr off depsDrv 'cargoVendorDir = t.vendor; dontNixcacheShell = "1";')
    nxt_shell_ok "nix develop, dontNixcacheShell attribute" develop "$expr_off" \
        'echo "wrapper=${RUSTC_WRAPPER:-none} target=$(ls -d target 2>/dev/null || echo none)"'
    assert_contains "$T/shell.out" "^wrapper=none target=none$" "nothing on entry with the dontNixcacheShell attribute"
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["variables"].get("shellHook", {}).get("value", ""))' \
        "$T/develop-env" >"$T/shellHook.off"
    assert_not_contains "$T/shellHook.off" "nixcacheShellEntry" "shellHook with the dontNixcacheShell attribute"
    nxt_verify_store
}

# Without cargoVendorDir the shell keeps the user's CARGO_HOME; a checkout whose own cargo config
# names the deps build's vendor dir still gets registry units Fresh. Both ways of entering. The
# shell's own shellHook sets CARGO_TARGET_DIR: the hook runs after it, and fills that dir.
test_95_devshell_without_vendor_dir() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps vendor how home="${CARGO_HOME:-unset}"
    expr=$(nxt_shell_expr novendor depsDrv 'shellHook = "export CARGO_TARGET_DIR=tgt";')
    deps=$(nxt_build "$expr" -A cargoArtifacts)
    vendor=$(nix-instantiate --eval --expr "\"\${builtins.path { path = $T/src/vendor; name = \"vendor\"; }}\"" | tr -d '"') ||
        nxt_fail "could not add the vendor dir to the store"
    for how in develop nix-shell; do
        nxt_work="$T/work-$how/ws-basic"
        nxt_checkout "$nxt_work" "$vendor"
        nxt_shell_ok "the first $how" "$how" "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo1.json; echo "wrapper=$RUSTC_WRAPPER home=${CARGO_HOME:-unset}"'
        nxt_assert_filled "$nxt_work" "$deps" "$T/work-$how/cargo1.json" "the first $how" tgt
        assert_missing "$nxt_work/target" "$how: a target dir beside the user's CARGO_TARGET_DIR"
        assert_contains "$T/shell.out" "wrapper=.*nixcache-rustc-wrapper home=$home\$" "$how: the wrapper, the user's CARGO_HOME"
        assert_not_contains "$T/shell.out" "crates.io replaced" "$how: no vendoring without cargoVendorDir"
    done
    nxt_verify_store
}

# The hook as users get it: a makeSetupHook package (as nix/package.nix makes it, cargo-nixcache
# propagated) in a mkShell's packages, with nixpkgs' real lib and the suite's emulation of
# nixpkgs' stdenv, mkShell and makeSetupHook (tests/nix/crane/nixpkgs.nix: the setup runs under
# `set -eu -o pipefail`, the real runHook, mkShell's concatenated shellHook). Both ways of
# entering.
test_95_devshell_mkshell() {
    [ -n "$NXT_NIXPKGS_LIB" ] || nxt_skip "nixpkgs' lib not found (../shared/nixpkgs-lib, NIXPKGS_LIB)"
    nxt_store_init
    nxt_stage_src
    nxt_tools
    # The host's cargo and rustc as a package, for the user's shell (mkShell's PATH is its
    # inputs' bin/ and the stdenv's /usr/bin:/bin).
    local sysroot expr deps how
    sysroot=$(rustc --print sysroot)
    mkdir -p "$T/host-rust/bin"
    ln -s "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$T/host-rust/bin/"
    expr=$(nxt_expr shell-mkshell <<NIX
let
  chain = import $NXT_DIR/chain.nix { inherit t; deps = { nixcacheCompress = "none"; }; };
  pkgs = import $NXT_DIR/crane/nixpkgs.nix { nixpkgsLib = $NXT_NIXPKGS_LIB; nextest = "/unused"; };
  tools = builtins.path { path = $T/tools; name = "nixcache-tools"; };
  hostRust = builtins.path { path = $T/host-rust; name = "host-rust"; };
  shellHookPkg = pkgs.makeSetupHook {
    name = "cargo-nixcache-shell-hook";
    propagatedBuildInputs = [ tools ];
  } $NXT_SHELL_HOOK;
in
pkgs.mkShell {
  packages = [ shellHookPkg hostRust ];
  cargoArtifacts = chain.depsDrv;
  cargoVendorDir = t.vendor;
  shellHook = "echo user-shellHook-ran";
}
NIX
    )
    deps=$(nxt_build "$expr" -A cargoArtifacts)
    for how in develop nix-shell; do
        nxt_work="$T/work-$how/ws-basic"
        nxt_checkout "$nxt_work"
        nxt_shell_ok "mkShell, $how" "$how" "$expr" 'cargo build --offline --message-format json-render-diagnostics > ../cargo1.json; echo "wrapper=$RUSTC_WRAPPER"'
        nxt_assert_filled "$nxt_work" "$deps" "$T/work-$how/cargo1.json" "mkShell, $how"
        assert_contains "$T/shell.out" "wrapper=.*nixcache-rustc-wrapper" "mkShell, $how: the wrapper"
        assert_contains "$T/shell.out" "^user-shellHook-ran$" "mkShell, $how: the shell's own shellHook"
    done
    nxt_develop_env_clean "mkShell, develop"
    nxt_verify_store
}

# crane's own devShell (lib/devShell.nix, over the emulated mkShell) through the adapter:
# `devShell { inputsFrom = [ deps ]; cargoArtifacts = deps; }` is all it takes. The adapter adds
# the shell hook to its packages and takes cargoVendorDir from the deps derivation (crane's
# vendoring of the lock file), so the first build in the shell compiles only the workspace;
# crane's hooks come in through inputsFrom, and the vendoring config is written by crane's own
# configureCargoVendoredDepsHook. Both ways of entering, on crane's dev-profile deps.
test_95_devshell_crane() {
    nxt_crane_setup
    # The host's cargo and rustc for the user's shell: crane's devShell puts the emulated
    # toolchain first, links to the sandbox-only /nixcache-rust, which the shell skips.
    local sysroot expr deps how vendor
    sysroot=$(rustc --print sysroot)
    mkdir -p "$T/host-rust/bin"
    ln -s "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$T/host-rust/bin/"
    expr=$(nxt_crane_expr crane-shell <<NIX
rec {
  deps = nixcacheLib.buildDepsOnly (common // { CARGO_PROFILE = "dev"; });
  vendor = deps.cargoVendorDir;
  shell = nixcacheLib.devShell {
    inputsFrom = [ deps ];
    packages = [ (builtins.path { path = $T/host-rust; name = "host-rust"; }) ];
    cargoArtifacts = deps;
  };
}
NIX
    )
    deps=$(nxt_build "$expr" -A deps)
    vendor=$(nix-instantiate --eval "$expr" -A vendor 2>"$T/eval.err" | tr -d '"') ||
        nxt_fail "the deps' cargoVendorDir: $(tail -n 5 "$T/eval.err")"
    # nxt_in_shell enters the shell expression itself: one that is the shell.
    echo "(import $expr).shell" >"$T/crane-shell-only.nix"
    for how in develop nix-shell; do
        nxt_work="$T/work-$how/ws-basic"
        nxt_checkout "$nxt_work"
        nxt_shell_ok "crane's devShell, $how" "$how" "$T/crane-shell-only.nix" \
            'cargo build --offline --message-format json-render-diagnostics > ../cargo1.json; echo "wrapper=$RUSTC_WRAPPER"'
        assert_contains "$T/shell.out" "crates.io replaced by $vendor" "crane's devShell, $how: cargoVendorDir from the deps"
        assert_contains "$T/shell.out" "Hydrate: filled target from $deps" "crane's devShell, $how: hydration on entry"
        assert_contains "$T/shell.out" "wrapper=.*nixcache-rustc-wrapper" "crane's devShell, $how: the wrapper"
        assert_eq "" "$(nxt_units "$T/work-$how/cargo1.json" | grep ' nc-' | grep -v '^fresh')" \
            "crane's devShell, $how: registry units of the first build"
        assert_contains "$T/work-$how/cargo1.json" '"reason":"compiler-artifact"' "crane's devShell, $how: cargo's messages"
    done
    nxt_verify_store
}

# The CARGO_HOME the shell hook writes for a cargoVendorDir it has no crane hook for: the
# directory goes into config.toml as a TOML string, so a `"` or `\` in its name is escaped (it
# was written raw, and cargo refused the config). cargo itself reads the result. No Nix needed:
# the hook's function, sourced as the shell's setup sources it.
test_95_devshell_vendor_dir_quoted() {
    nxt_stage_src
    nxt_checkout "$T/work/ws-basic"
    local vendor="$T/vendor \"quoted\" \\dir"
    cp -r "$T/src/vendor" "$vendor"
    (
        cd "$T/work/ws-basic"
        # rustup's proxies find their toolchain under the HOME changed below.
        export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
        export HOME="$T/home" XDG_CACHE_HOME="$T/cache"
        unset CARGO_HOME NIXCACHE_USER_CARGO_HOME
        # shellcheck disable=SC1090
        source "$NXT_SHELL_HOOK"
        nixcacheShellVendoring "$vendor"
        cargo metadata --offline --format-version 1 >"$T/metadata.json"
    ) >"$T/shell.out" 2>&1 || nxt_fail "cargo with the shell's CARGO_HOME: $(tail -n 5 "$T/shell.out")"
    python3 - "$T/metadata.json" "$vendor" <<'PY' || nxt_fail "nc-alpha's sources are not from the quoted vendor dir"
import json, sys
meta = json.load(open(sys.argv[1]))
alpha = [p for p in meta["packages"] if p["name"] == "nc-alpha"]
sys.exit(0 if alpha and alpha[0]["manifest_path"].startswith(sys.argv[2] + "/") else 1)
PY
}
