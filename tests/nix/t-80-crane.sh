# The crane adapter against crane's REAL Nix files and setup hooks.
#
# crane's checkout: NXT_CRANE_SRC (tests/nix/lib.sh: $CRANE_SRC, else ../shared/crane). Nothing
# of crane is in this repository. Its lib/default.nix is evaluated with nixpkgs' real lib and
# tests/nix/crane/nixpkgs.nix, an emulation of the nixpkgs `pkgs` pieces crane uses (nixpkgs'
# pkgs/ cannot be fetched here; that file says what each piece follows), so these derivations are
# made by crane's own mkCargoDerivation, buildDepsOnly, buildPackage, cargoClippy, ... and run
# crane's own setup hooks, registered as crane registers them.

# crane's cargoNextest runs this cargo-nextest, built from crates.io once per machine.
NXT_NEXTEST_VERSION=0.9.143

# nxt_need_crane: crane's checkout and nixpkgs' lib, or the test cannot run (nxt_skip).
nxt_need_crane() {
    [ -n "$NXT_CRANE_SRC" ] ||
        nxt_skip "no crane checkout (\$CRANE_SRC, ../shared/crane)"
    [ -n "$NXT_NIXPKGS_LIB" ] ||
        nxt_skip "no nixpkgs lib (\$NIXPKGS_LIB, ../shared/nixpkgs-lib)"
}

# nxt_crane_setup: every crane test's start: skip without crane, a private store, the fixture as
# crane sees it, the binaries under test.
nxt_crane_setup() {
    nxt_need_crane
    NXT_NEXTEST=$("$NXT_REPO/tests/registry-tool.sh" cargo-nextest "$NXT_NEXTEST_VERSION" cargo-nextest) ||
        nxt_fail "cannot build cargo-nextest $NXT_NEXTEST_VERSION from crates.io"
    local nextest_root
    nextest_root=$(dirname "$(dirname "$NXT_NEXTEST")")
    NXT_CRANE_UTILS=$(nxt_crane_utils)
    NXT_EXTRA_SANDBOX_PATHS="$NXT_EXTRA_SANDBOX_PATHS $nextest_root $NXT_CRANE_UTILS"
    nxt_store_init
    nxt_crane_stage
    nxt_tools
}

# nxt_crane_stage: the fixture as crane sees it: ws-basic without its .cargo/config.toml (registry
# dependencies come ONLY through cargoVendorDir and crane's configureCargoVendoredDeps). crane's
# own mkDummySrc makes the dummy sources of buildDepsOnly, except on Nix 2.8, which cannot
# evaluate it (`opening directory '.../Cargo.toml/../.': Not a directory`, its shallowJoinPath):
# there a hand-made dummy stands in (nxt_crane_dummy).
nxt_crane_stage() {
    nxt_stage_src
    rm -rf "$T/src/ws-basic/.cargo"
    nxt_crane_dummy ws-basic
}

# nxt_crane_dummy WS: on Nix 2.8 only, $T/dummy/WS, a hand-made stand-in for crane's mkDummySrc of
# $T/src/WS: Cargo.toml and Cargo.lock kept, every target's source replaced by a stub, and every
# package's build script one outside its sources, as crane's mkDummySrc does (`package.build` = a
# dummy script in the store; crane#117). That last part makes stock crane rebuild the local
# packages on real sources: cargo fingerprints a path package by mtimes, and the store gives the
# dummy's stubs and the real sources the same mtime (1), but a unit whose build script is another
# file (or that had one and now has none) is not Fresh; without it stock crane's chain reused the
# stubs (t-84's cargoDoc: `cannot find cfg_if in cfg_if`, the stubbed [patch] package). It still
# differs from crane's (named `dummy-src`, not like the source; manifests not cleaned), which is
# why the current Nix runs crane's own.
nxt_crane_dummy() {
    [ "$NXT_NIX" = 2.8 ] || return 0
    local dummy="$T/dummy/$1" f manifest rel up
    rm -rf "$dummy"
    mkdir -p "$T/dummy"
    cp -r "$T/src/$1" "$T/dummy/"
    while IFS= read -r f; do
        printf '#![allow(dead_code)]\npub fn main() {}\n' >"$f"
    done < <(find "$dummy" -name '*.rs')
    mkdir -p "$dummy/.nixcache-dummy"
    printf 'fn main() {}\n' >"$dummy/.nixcache-dummy/build.rs"
    while IFS= read -r manifest; do
        grep -q '^\[package\]' "$manifest" || continue
        rel=$(dirname "${manifest#"$dummy"/}")
        up=$(echo "$rel/" | sed -E 's#[^/]+/#../#g')
        sed -i -E '/^build = /d' "$manifest"
        sed -i -E "s#^\[package\]\$#[package]\nbuild = \"${up}.nixcache-dummy/build.rs\"#" "$manifest"
        grep -q "^build = \"${up}.nixcache-dummy/build.rs\"\$" "$manifest" ||
            nxt_fail "could not point $manifest at the dummy build script"
    done < <(find "$dummy" -name Cargo.toml -not -path '*/.nixcache-dummy/*')
}

# nxt_crane_registry: the fixture's registry as crates.io, for crane's own vendoring
# (vendorCargoDeps, crane's default cargoVendorDir, which vendors only locked packages with a
# checksum): each crate as a .crate file in $T/mirror at its static.crates.io download path (what
# the emulated fetchurl fetches from), and $T/registry, a directory source of the same crates
# carrying those checksums, for lock files that record them (nxt_crane_lock). Relocks the staged
# sources and dummy sources against it.
nxt_crane_registry() {
    local dir name version sum
    mkdir -p "$T/registry" "$T/crates"
    for dir in "$T/src/vendor"/*/; do
        name=$(basename "$dir")
        version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | head -n 1)
        [ -n "$version" ] || nxt_fail "no version in $dir/Cargo.toml"
        cp -r "$dir" "$T/crates/$name-$version"
        rm -f "$T/crates/$name-$version/.cargo-checksum.json"
        tar -C "$T/crates" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1 \
            -c "$name-$version" | gzip -n >"$T/crates/$name-$version.crate"
        sum=$(sha256sum "$T/crates/$name-$version.crate" | cut -d' ' -f1)
        mkdir -p "$T/mirror/static.crates.io/crates/$name/$version"
        cp "$T/crates/$name-$version.crate" "$T/mirror/static.crates.io/crates/$name/$version/download"
        cp -r "$T/crates/$name-$version" "$T/registry/$name"
        printf '{"files":{},"package":"%s"}' "$sum" >"$T/registry/$name/.cargo-checksum.json"
    done
    nxt_crane_lock "$T/src/ws-basic" "$T/registry"
    nxt_crane_dummy ws-basic
    grep -q '^checksum = ' "$T/src/ws-basic/Cargo.lock" || nxt_fail "the relocked Cargo.lock has no checksums"
}

# nxt_crane_lock WORKSPACE REGISTRY: WORKSPACE's Cargo.lock made anew against the directory
# source REGISTRY standing in for crates.io.
nxt_crane_lock() {
    (cd "$1" && cargo generate-lockfile --offline -q \
        --config 'source.crates-io.replace-with="v"' --config "source.v.directory=\"$2\"") ||
        nxt_fail "could not make the lock file of $1"
}

# nxt_crane_lean REGISTRY: $T/src/ws-lean, the workspace without nc-macro (a layer 1 for the
# layered tests), locked against REGISTRY, and its dummy on Nix 2.8.
nxt_crane_lean() {
    cp -r "$T/src/ws-basic" "$T/src/ws-lean"
    sed -i '/^nc-macro/d' "$T/src/ws-lean/applib/Cargo.toml"
    nxt_crane_lock "$T/src/ws-lean" "$1"
    ! grep -q nc-macro "$T/src/ws-lean/Cargo.lock" || nxt_fail "layer 1's lock file still has nc-macro"
    nxt_crane_dummy ws-lean
}

# nxt_crane_utils: crane's pkgs/crane-utils (crane-json2toml, which crane's writeTOML and so
# mkDummySrc run), built from crane's checkout with cargo once per machine; its directory, bound
# into the sandbox, is printed.
nxt_crane_utils() {
    local bin rev
    rev=$(nxt_revision "$NXT_CRANE_SRC" | grep -oE '[0-9a-f]{40}' | cut -c1-12)
    [ -n "$rev" ] || rev=unknown
    bin=$("$NXT_REPO/tests/registry-tool.sh" "$NXT_CRANE_SRC/pkgs/crane-utils" "$rev" crane-json2toml) ||
        nxt_fail "cannot build crane's crane-utils from $NXT_CRANE_SRC/pkgs/crane-utils"
    dirname "$(dirname "$bin")"
}

# nxt_crane_expr NAME [CROSS]: a test expression on stdin, with in scope: `pkgs` (the emulated
# nixpkgs, fetching from $T/mirror when nxt_crane_registry made it), `craneLib` (crane's own lib),
# `nixcacheLib` (craneLib through nix/crane.nix, with the binaries under test), `common` (pname,
# version, src, dummySrc, cargoVendorDir), `jsonArgs` (cargo's JSON messages in the build log, for
# nxt_crane_units) and `t` (tests/nix/lib.nix).
nxt_crane_expr() {
    local name="$1" cross="${2:-false}" mirror=null
    if [ -d "$T/mirror" ]; then
        mirror="builtins.path { path = $T/mirror; name = \"crate-mirror\"; }"
    fi
    nxt_expr "$name" <<NIX
let
  pkgs = import $NXT_DIR/crane/nixpkgs.nix { nixpkgsLib = $NXT_NIXPKGS_LIB; cross = $cross;
    nextest = "$NXT_NEXTEST"; craneUtils = "$NXT_CRANE_UTILS"; mirror = $mirror; };
  # crane's own lib over a package set; only its craneUtils package (crane's pkgs/crane-utils,
  # which nixpkgs' rustPlatform would build) is the one nxt_crane_utils built from the same
  # sources. overrideScope reaches the scope itself, not its other splicing stages.
  craneOf = p: (p.callPackage $NXT_CRANE_SRC/lib { }).overrideScope (_: _: { inherit (p) craneUtils; });
  craneLib = craneOf pkgs;
  toolsPkg = builtins.path { path = $T/tools; name = "cargo-nixcache"; };
  nixcacheLib = import $NXT_REPO/nix/crane.nix { cargo-nixcache = toolsPkg; } craneLib;
  # A staged workspace as a source, and its dummy: crane's mkDummySrc (no attribute), or on Nix
  # 2.8 the hand-made one (nxt_crane_dummy).
  sourceOf = ws: builtins.path { path = $T/src + "/\${ws}"; name = "source"; };
  dummyOf = ws: if builtins.pathExists ($T/dummy + "/\${ws}")
    then { dummySrc = builtins.path { path = $T/dummy + "/\${ws}"; name = "dummy-src"; }; }
    else { };
  common = {
    pname = "ws-basic";
    version = "0.1.0";
    src = sourceOf "ws-basic";
    cargoVendorDir = t.vendor;
    # The toolchain is the host's, bound into the sandbox, not a store path: crane's
    # removeReferencesToRustToolchain finds no store hash in it and fails.
    doNotRemoveReferencesToRustToolchain = true;
  } // dummyOf "ws-basic";
  jsonArgs = "--locked --message-format json-render-diagnostics";
in
$(cat)
NIX
}

# nxt_crane_units OUT: nxt_units over the build log of the derivation that produced OUT.
nxt_crane_units() {
    nix-store -l "$1" >"$T/units.log" 2>/dev/null || nxt_fail "no build log for $1"
    nxt_units "$T/units.log"
}

# The units of a build log that are not as expected: registry dependencies Fresh, workspace
# members (app, applib) anything. Prints the offending lines.
nxt_crane_stale_deps() {
    nxt_crane_units "$1" | grep -E ' nc-' | grep -v '^fresh' || true
}

# nxt_crane_deps_pkg_expr NAME: a crane test expression (nxt_crane_expr) of `deps`
# (buildDepsOnly, cargo's JSON messages in its log), `app` (buildPackage inheriting it, its
# build's JSON shown after the build) and `clean` (stock crane's buildPackage, no cargoArtifacts).
nxt_crane_deps_pkg_expr() {
    nxt_crane_expr "$1" <<'NIX'
rec {
  deps = nixcacheLib.buildDepsOnly (common // { cargoExtraArgs = jsonArgs; });
  app = nixcacheLib.buildPackage (common // { cargoArtifacts = deps; postBuild = ''cat "''${cargoBuildLog:-/dev/null}"''; });
  clean = craneLib.buildPackage (common // { cargoArtifacts = null; });
}
NIX
}

# deps (buildDepsOnly, dummy sources, `check --all-targets`, `build`, `test --no-run`, release)
# packed by cargo-nixcache; buildPackage with explicit cargoArtifacts inherits it with every
# registry unit Fresh, and its binary equals a clean crane build's (crane's stock lib, no
# cargoArtifacts). Nothing is written into the store.
test_crane_deps_and_package() {
    nxt_crane_setup
    local expr deps app clean
    expr=$(nxt_crane_deps_pkg_expr deps-pkg)
    deps=$(nxt_build "$expr" -A deps)
    assert_exists "$deps/nixcache.json" "the deps output, packed by cargo-nixcache"
    [ "$(stat -c %s "$deps/target.tar.zst")" -lt 512 ] ||
        nxt_fail "target.tar.zst in a use-nixcache output is more than the stop sign"
    nxt_verify_artifacts "$deps"
    # stdenv's fixup ran over the output, as under nixpkgs (t-82 looks closer): the self rpath
    # the cc wrapper gave every ELF file rustc linked is shrunk away (patchelf writes `[]`).
    nxt_runpaths "$deps/artifacts" >"$T/deps.runpaths"
    assert_contains "$T/deps.runpaths" $'\t\\[\\]$' "fixup's shrunk rpaths in the deps artifacts"
    assert_not_contains "$T/deps.runpaths" $'\t\\[/' "an rpath fixup did not shrink"
    nxt_crane_units "$deps" >"$T/deps.units"
    assert_contains "$T/deps.units" "^dirty nc-alpha lib" "deps built the registry crates"
    # cargo's two names of a build script (a hard link in /build) are one file in the output,
    # though the move into the store, another file system, is a copy and a removal.
    local scripts
    scripts=$(find "$deps/artifacts" -path '*/build/nc-alpha-*' -type f -perm -u+x | wc -l)
    assert_eq 1 "$scripts" "nc-alpha's build script as files in the deps output"
    # The adapter's deps link their executables (dummy bins and tests, inherited unchanged by
    # every consumer): files of the output, not members of the archive.
    [ -n "$(find "$deps/artifacts" -path '*/deps/*' -type f -perm -u+x ! -name '*.so')" ] ||
        nxt_fail "deps/ executables are not linked from the deps output"

    app=$(nxt_build "$expr" -A app)
    assert_eq "hello from applib 84 42" "$("$app/bin/app")" "the app"
    assert_contains "$T/build.log" "nixcache: inheriting $deps" "inherited through cargo-nixcache"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh in buildPackage"
    nxt_crane_units "$app" >"$T/app.units"
    assert_contains "$T/app.units" "^dirty app bin" "the app itself rebuilt from real sources"
    clean=$(nxt_build "$expr" -A clean)
    cmp "$app/bin/app" "$clean/bin/app" || nxt_fail "the inherited build's binary differs from a clean build's"
    nxt_verify_store
}

# buildPackage without cargoArtifacts: crane builds its deps with
# `installPhase = "prepareAndInstallCargoArtifactsDir"` (no install hooks run). Those must be
# packed, and the package inherits them.
test_crane_package_implicit_deps() {
    nxt_crane_setup
    local expr deps app
    expr=$(nxt_crane_expr implicit <<'NIX'
rec {
  app = nixcacheLib.buildPackage (common // { postBuild = ''cat "''${cargoBuildLog:-/dev/null}"''; });
  deps = app.cargoArtifacts;
}
NIX
    )
    deps=$(nxt_build "$expr" -A deps)
    assert_exists "$deps/nixcache.json" "buildPackage's implicit deps, packed"
    nxt_verify_artifacts "$deps"
    app=$(nxt_build "$expr" -A app)
    assert_eq "hello from applib 84 42" "$("$app/bin/app")" "the app"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh"
}

# Every crane consumer of a deps output, with nothing added but cargoArtifacts: cargoClippy,
# cargoTest, cargoDoc, cargoDocTest, cargoNextest. Each builds and inherits every registry unit
# Fresh.
test_crane_consumers() {
    nxt_crane_setup
    local expr out kind
    expr=$(nxt_crane_expr consumers <<'NIX'
rec {
  deps = nixcacheLib.buildDepsOnly common;
  args = common // { cargoArtifacts = deps; cargoExtraArgs = jsonArgs; };
  clippy = nixcacheLib.cargoClippy args;
  test = nixcacheLib.cargoTest args;
  doc = nixcacheLib.cargoDoc args;
  doctest = nixcacheLib.cargoDocTest args;
  nextest = nixcacheLib.cargoNextest (common // { cargoArtifacts = deps;
    cargoNextestExtraArgs = "--cargo-message-format json-render-diagnostics"; });
}
NIX
    )
    nxt_build "$expr" -A deps >/dev/null
    for kind in clippy test doc doctest nextest; do
        out=$(nxt_build "$expr" -A "$kind")
        assert_contains "$T/build.log" "nixcache: inheriting" "$kind inherited through cargo-nixcache"
        nxt_crane_units "$out" >"$T/$kind.units"
        [ -s "$T/$kind.units" ] || nxt_fail "$kind: no cargo JSON in its build log"
        assert_eq "" "$(nxt_crane_stale_deps "$out")" "registry units not Fresh in $kind"
    done
    assert_contains "$T/units.log" "test result: ok|PASS" "nextest ran the tests"
    nxt_verify_store
}

# deps -> build (buildPackage, doInstallCargoArtifacts) -> test (cargoTest on build's output): the
# middle output is packed with the mode inferred from what it inherited, and the test derivation
# inherits it with EVERY unit Fresh (same sources: the guard keeps the workspace's units, whose
# digests build's pack recorded). Control: the same test on sources where applib differs by a
# comment rebuilds applib (a changed source is never masked).
test_crane_chain() {
    nxt_crane_setup
    cp -r "$T/src/ws-basic" "$T/src/ws-changed"
    echo "// changed" >>"$T/src/ws-changed/applib/src/lib.rs"
    local expr build test changed
    expr=$(nxt_crane_expr chain <<NIX
rec {
  deps = nixcacheLib.buildDepsOnly common;
  build = nixcacheLib.buildPackage (common // { cargoArtifacts = deps; doInstallCargoArtifacts = true; });
  test = nixcacheLib.cargoTest (common // { cargoArtifacts = build; cargoExtraArgs = jsonArgs; });
  changed = nixcacheLib.cargoTest (common // { cargoArtifacts = build; cargoExtraArgs = jsonArgs;
    src = builtins.path { path = $T/src/ws-changed; name = "source"; }; });
}
NIX
    )
    build=$(nxt_build "$expr" -A build)
    assert_exists "$build/nixcache.json" "build's artifacts, packed (mode follows the inherited output)"
    assert_exists "$build/bin/app" "build's binary beside them"
    nxt_verify_artifacts "$build"
    # deps built through the wrapper, as build did: cargo's rustc probes (.rustc_info.json) were
    # there for build, which ran no probe and left the file as it found it.
    local d
    for d in deps build; do
        cargo-nixcache unpack "$(nxt_build "$expr" -A $d)" --target-dir "$T/probe-$d" >/dev/null 2>&1 ||
            nxt_fail "unpack $d"
    done
    assert_eq "$(cat "$T/probe-deps/.rustc_info.json")" "$(cat "$T/probe-build/.rustc_info.json")" \
        "cargo's rustc probes, deps -> build (cargo ran rustc -vV again)"
    test=$(nxt_build "$expr" -A test)
    nxt_crane_units "$test" >"$T/test.units"
    [ -s "$T/test.units" ] || nxt_fail "no cargo JSON in the test derivation's log"
    assert_eq "" "$(grep -v '^fresh' "$T/test.units")" "units of the test derivation (same sources)"
    assert_contains "$T/units.log" "test result: .{0,12}ok.{0,12}\. [1-9][0-9]* passed" "the tests ran"
    changed=$(nxt_build "$expr" -A changed)
    nxt_crane_units "$changed" >"$T/changed.units"
    assert_contains "$T/changed.units" "^dirty applib lib" "applib, changed, rebuilt"
    assert_eq "" "$(nxt_crane_stale_deps "$changed")" "registry units not Fresh after a change"
    nxt_verify_store
}

# Mixing with crane's own format. (1) crane's use-zstd deps -> a consumer of the adapted lib:
# crane's inherit restores it, our pack writes the consumer's output, and a further consumer
# inherits that. (2) our deps -> a consumer that asks for use-zstd: refused, clearly. (3) our
# deps -> a consumer of crane's unadapted lib: stopped, clearly.
test_crane_mixing() {
    nxt_crane_setup
    local expr mid
    expr=$(nxt_crane_expr mixing <<'NIX'
rec {
  zstdDeps = craneLib.buildDepsOnly common;
  mid = nixcacheLib.cargoBuild (common // { cargoArtifacts = zstdDeps; cargoExtraArgs = jsonArgs; });
  last = nixcacheLib.cargoTest (common // { cargoArtifacts = mid; cargoExtraArgs = jsonArgs; });
  ourDeps = nixcacheLib.buildDepsOnly common;
  zstdOnOurs = nixcacheLib.cargoBuild (common // { cargoArtifacts = ourDeps;
    installCargoArtifactsMode = "use-zstd"; });
  stockOnOurs = craneLib.cargoBuild (common // { cargoArtifacts = ourDeps; });
}
NIX
    )
    assert_exists "$(nxt_build "$expr" -A zstdDeps)/target.tar.zst" "crane's own deps output"
    mid=$(nxt_build "$expr" -A mid)
    assert_contains "$T/build.log" "decompressing cargo artifacts" "crane's own inherit for its format"
    assert_exists "$mid/nixcache.json" "the consumer's output, packed by cargo-nixcache"
    assert_eq "" "$(nxt_crane_stale_deps "$mid")" "registry units not Fresh on crane's zstd"
    nxt_verify_artifacts "$mid"
    assert_eq "" "$(nxt_crane_stale_deps "$(nxt_build "$expr" -A last)")" "registry units not Fresh after mixing"

    nxt_build_fails "$expr" -A zstdOnOurs
    assert_contains "$T/build.log" 'installCargoArtifactsMode = "use-zstd" cannot build on the cargo-nixcache artifacts' \
        "the refusal of use-zstd on our artifacts"

    # (3) our deps -> a consumer of crane's UNadapted lib: crane's stock hook finds our stop sign
    # (target.tar.zst) and fails, naming the adapter, instead of rsyncing our files into target/.
    nxt_build_fails "$expr" -A stockOnOurs
    assert_contains "$T/build.log" "this-is-a-cargo-nixcache-output.inherit-it-through-the-cargo-nixcache-crane-adapter" \
        "crane's stock inherit on our output"
    assert_not_contains "$T/build.log" "Compiling|Checking" "a build from junk"
}

# doNotLinkInheritedArtifacts (crane's knob for tools that modify artifacts in place): writable
# copies, no links into the store, still Fresh.
test_crane_do_not_link() {
    nxt_crane_setup
    local expr out
    expr=$(nxt_crane_expr nolink <<'NIX'
rec {
  deps = nixcacheLib.buildDepsOnly common;
  copy = nixcacheLib.cargoBuild (common // { cargoArtifacts = deps; cargoExtraArgs = jsonArgs;
    doNotLinkInheritedArtifacts = true;
    preBuild = ''echo "links in target: $(find target -type l | wc -l)"''; });
}
NIX
    )
    out=$(nxt_build "$expr" -A copy)
    assert_contains "$T/build.log" "^links in target: 0$" "no links with doNotLinkInheritedArtifacts"
    assert_eq "" "$(nxt_crane_stale_deps "$out")" "registry units not Fresh in copies"
}

# Cross builds. crane makes its scope with makeScopeWithSplicing'; in a cross build a
# derivation's nativeBuildInputs come from the build->host splice, which overrideScope does not
# override. Checked at evaluation (build x86_64, host aarch64, spliced as nixpkgs splices): a hook
# replaced through overrideScope (the former adapter) is missing from a cross derivation (present
# in a native one: the control), while the adapter's hook, added through mkCargoDerivation, is in
# both. Then, where an aarch64 std and cross gcc exist, a real cross deps -> package build.
test_crane_cross() {
    nxt_crane_setup
    local cross checks expr app
    for cross in false true; do
        expr=$(nxt_crane_expr "splice-$cross" "$cross" <<'NIX'
let
  hookOverride = craneLib.overrideScope (final: prev: {
    inheritCargoArtifactsHook = nixcacheLib.nixcacheCraneHook;
  });
  inputs = lib: map toString (lib.buildDepsOnly common).nativeBuildInputs;
  hook = toString nixcacheLib.nixcacheCraneHook;
in
"adapter=${if builtins.elem hook (inputs nixcacheLib) then "in" else "missing"} override=${if builtins.elem hook (inputs hookOverride) then "in" else "missing"}"
NIX
        )
        checks=$(nix-instantiate --eval "$expr" 2>"$T/eval.err") ||
            nxt_fail "evaluating ($cross): $(tail -n 5 "$T/eval.err")"
        if [ "$cross" = true ]; then
            assert_eq '"adapter=in override=missing"' "$checks" "hooks of a cross derivation"
        else
            assert_eq '"adapter=in override=in"' "$checks" "hooks of a native derivation"
        fi
    done

    if [ ! -d "$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu" ] ||
        [ ! -x /usr/bin/aarch64-linux-gnu-gcc ]; then
        echo "    SKIP (part): no aarch64 std or aarch64-linux-gnu-gcc; the cross build did not run" >&2
        return 0
    fi
    expr=$(nxt_crane_expr cross true <<'NIX'
let
  # crane's mkDummySrc runs on the build platform (pkgsBuildBuild.runCommand); in a cross scope
  # its writeTOML takes craneUtils from the build->build stage, which overrideScope does not
  # reach (crane's own there needs nixpkgs' rustPlatform), so the dummy comes from the same
  # mkDummySrc in the native scope. On Nix 2.8 the hand-made dummy stands in anyway.
  crossCommon = common // (if common ? dummySrc then { } else {
    dummySrc = (craneOf pkgs.buildPackages).mkDummySrc { inherit (common) src; };
  });
in
rec {
  # crane's defaults: doCheck is on, and mkDerivation turns it off (aarch64 cannot run here).
  deps = nixcacheLib.buildDepsOnly crossCommon;
  app = nixcacheLib.buildPackage (crossCommon // { cargoArtifacts = deps;
    postBuild = ''cat "''${cargoBuildLog:-/dev/null}"''; });
}
NIX
    )
    assert_exists "$(nxt_build "$expr" -A deps)/nixcache.json" "the cross deps output, packed"
    assert_not_contains "$T/build.log" "checkPhase|cargo test" "the cross deps build (no check phase)"
    app=$(nxt_build "$expr" -A app)
    assert_contains "$T/build.log" "nixcache: inheriting" "the cross package inherited through cargo-nixcache"
    file "$app/bin/app" | grep -q "ARM aarch64" || nxt_fail "not an aarch64 binary: $(file "$app/bin/app")"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh in the cross build"
}

# The suite really runs crane's hooks: with one of crane's hook functions replaced by a failing
# one in a copy of the checkout, the build that relies on it fails, naming it.
test_crane_hooks_are_cranes_own() {
    nxt_crane_setup
    local fn file attr expr
    for fn in configureCargoVendoredDepsHook:configureCargoVendoredDepsHook.sh:deps \
        compressAndInstallCargoArtifactsDir:installCargoArtifactsHook.sh:zstdDeps \
        inheritCargoArtifacts:inheritCargoArtifactsHook.sh:onZstd \
        cargoWithProfile:cargoHelperFunctionsHook.sh:deps \
        configureCargoCommonVars:configureCargoCommonVarsHook.sh:deps; do
        IFS=: read -r fn file attr <<<"$fn"
        rm -rf "$T/crane-broken"
        cp -r "$NXT_CRANE_SRC" "$T/crane-broken"
        chmod -R u+w "$T/crane-broken"
        printf '\n%s() { echo "BROKEN-%s" >&2; return 1; }\n' "$fn" "$fn" \
            >>"$T/crane-broken/lib/setupHooks/$file"
        expr=$(NXT_CRANE_SRC="$T/crane-broken" nxt_crane_expr "broken-$fn" <<'NIX'
rec { deps = nixcacheLib.buildDepsOnly common; zstdDeps = craneLib.buildDepsOnly common;
  onZstd = nixcacheLib.cargoBuild (common // { cargoArtifacts = zstdDeps; }); }
NIX
        )
        nxt_build_fails "$expr" -A "$attr"
        assert_contains "$T/build.log" "BROKEN-$fn" "the build through crane's (broken) $fn"
    done
}

# Layered dependencies (crane#201/#850/#924: buildDepsOnly hard-codes `cargoArtifacts = null`):
# layer 1 builds the dependencies of a lock file without nc-macro; layer 2, a buildDepsOnly of
# the full lock file given `cargoArtifacts = layer1`, compiles only nc-macro (everything layer 1
# built is Fresh), its links reach layer 1's artifacts in one hop, and its GC anchor keeps layer 1
# alive. Control: the same layer 2 without cargoArtifacts compiles everything.
test_crane_layered_deps() {
    nxt_crane_setup
    nxt_crane_lean "$T/src/vendor"
    local expr layer1 layer2 alone
    expr=$(nxt_crane_expr layered <<NIX
rec {
  layer1 = nixcacheLib.buildDepsOnly (common // { cargoExtraArgs = jsonArgs; src = sourceOf "ws-lean"; }
    // dummyOf "ws-lean");
  layer2 = nixcacheLib.buildDepsOnly (common // { cargoExtraArgs = jsonArgs; cargoArtifacts = layer1; });
  alone = nixcacheLib.buildDepsOnly (common // { cargoExtraArgs = jsonArgs; pname = "alone"; });
  app = nixcacheLib.buildPackage (common // { cargoArtifacts = layer2; });
}
NIX
    )
    layer1=$(nxt_build "$expr" -A layer1)
    layer2=$(nxt_build "$expr" -A layer2)
    assert_contains "$T/build.log" "nixcache: inheriting $layer1" "layer 2 inherited layer 1"
    nxt_crane_units "$layer2" >"$T/layer2.units"
    assert_eq "" "$(grep ' nc-' "$T/layer2.units" | grep -v -E '^fresh | nc-macro ' | sort -u)" \
        "layer 2's registry units other than nc-macro (layer 1 built them: Fresh)"
    assert_contains "$T/layer2.units" "^dirty nc-macro" "nc-macro compiled in layer 2"
    nxt_verify_artifacts "$layer2"
    grep -qx "$layer1" "$layer2/nixcache-refs" || nxt_fail "layer 2's anchor does not name layer 1"
    nix-store -q --references "$layer2" | grep -qx "$layer1" ||
        nxt_fail "layer 1 is not a reference of layer 2 (GC would not keep it)"
    assert_eq "hello from applib 84 42" "$("$(nxt_build "$expr" -A app)/bin/app")" "the app on layer 2"
    # Control: without the layer below, every registry unit compiles.
    alone=$(nxt_build "$expr" -A alone)
    nxt_crane_units "$alone" >"$T/alone.units"
    assert_contains "$T/alone.units" "^dirty nc-alpha lib" "a single deps derivation compiles nc-alpha"
}

# Layered deps where each layer has its OWN vendor dir, as crane makes it by default: crane's
# vendorCargoDeps of each layer's Cargo.lock (layer 2's adds nc-macro), so the two layers see the
# shared crates nc-alpha and nc-beta under two store paths (crane names a crate's directory
# NAME-VERSION, and so do the unit lines here). With `nixcacheStableVendorDir = true`
# both see them at $NIX_BUILD_TOP/nixcache-vendor (/build/... in the sandbox): layer 2 compiles
# nc-macro and inherits nc-alpha and nc-beta Fresh, and neither layer's output references its
# vendor dir any more. Control, the documented limit without the option: cargo fingerprints a
# registry unit by the absolute path of its sources, so layer 2 compiles nc-alpha and nc-beta
# again, and the layer's output references the vendor dir (its dep-info names it).
test_crane_layered_own_vendor_dirs() {
    nxt_crane_setup
    nxt_crane_registry
    nxt_crane_lean "$T/registry"
    local expr layer1 layer2 vendor1 vendor2 moved1 moved2 app
    expr=$(nxt_crane_expr layered-vendor <<NIX
rec {
  # No cargoVendorDir: crane vendors each layer from its own lock.
  base = builtins.removeAttrs common [ "cargoVendorDir" ] // { cargoExtraArgs = jsonArgs; };
  lean = { src = sourceOf "ws-lean"; } // dummyOf "ws-lean";
  # The option on the adapted lib (every derivation), and on one derivation.
  stableLib = import $NXT_REPO/nix/crane.nix { cargo-nixcache = toolsPkg; stableVendorDir = true; } craneLib;
  layer1 = nixcacheLib.buildDepsOnly (base // lean // { nixcacheStableVendorDir = true; });
  layer2 = stableLib.buildDepsOnly (base // { cargoArtifacts = layer1; });
  app = stableLib.buildPackage (base // { cargoArtifacts = layer2;
    postBuild = ''cat "''\${cargoBuildLog:-/dev/null}"''; });
  vendor1 = layer1.cargoVendorDir;
  vendor2 = layer2.cargoVendorDir;
  # Control: the same layers without the option (on a derivation, it overrides the lib's).
  moved1 = nixcacheLib.buildDepsOnly (base // lean);
  moved2 = stableLib.buildDepsOnly (base // { cargoArtifacts = moved1; nixcacheStableVendorDir = false; });
}
NIX
    )
    vendor1=$(nxt_build "$expr" -A vendor1)
    vendor2=$(nxt_build "$expr" -A vendor2)
    assert_ne "$vendor1" "$vendor2" "the two layers' vendor dirs"
    assert_contains "$vendor2/config.toml" "^directory = \"$vendor2/" "crane's vendor config (layer 2)"

    layer1=$(nxt_build "$expr" -A layer1)
    assert_contains "$T/build.log" "nixcache: vendored sources at /build/nixcache-vendor \\(-> $vendor1\\)" \
        "layer 1 built through the stable path"
    layer2=$(nxt_build "$expr" -A layer2)
    assert_contains "$T/build.log" "nixcache: inheriting $layer1" "layer 2 inherited layer 1"
    assert_contains "$T/build.log" "nixcache: vendored sources at /build/nixcache-vendor \\(-> $vendor2\\)" \
        "layer 2 built through the stable path"
    nxt_crane_units "$layer2" >"$T/layer2.units"
    assert_contains "$T/layer2.units" "^fresh nc-alpha-0.1.0 lib" "nc-alpha, from layer 1"
    assert_contains "$T/layer2.units" "^fresh nc-beta-0.1.0 lib" "nc-beta, from layer 1"
    assert_eq "" "$(grep ' nc-' "$T/layer2.units" | grep -v -E '^fresh | nc-macro-0.1.0 ' | sort -u)" \
        "layer 2's registry units other than nc-macro (layer 1 built them: Fresh)"
    assert_contains "$T/layer2.units" "^dirty nc-macro-0.1.0 proc-macro" "nc-macro compiled in layer 2"
    nxt_verify_artifacts "$layer2"
    nix-store -q --references "$layer2" | grep -qx "$layer1" ||
        nxt_fail "layer 1 is not a reference of layer 2 (GC would not keep it)"
    ! nix-store -q --references "$layer2" | grep -qx "$vendor2" ||
        nxt_fail "layer 2 references its vendor dir, built through the stable path"
    app=$(nxt_build "$expr" -A app)
    assert_eq "hello from applib 84 42" "$("$app/bin/app")" "the app on layer 2"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh in the app on layer 2"

    # Control: without the option every unit layer 2 shares with layer 1 compiles again.
    moved1=$(nxt_build "$expr" -A moved1)
    assert_not_contains "$T/build.log" "nixcache: vendored sources at" "the control's layer 1"
    moved2=$(nxt_build "$expr" -A moved2)
    assert_contains "$T/build.log" "nixcache: inheriting $moved1" "the control's layer 2 inherited its layer 1"
    assert_not_contains "$T/build.log" "nixcache: vendored sources at" "the control's layer 2"
    nxt_crane_units "$moved2" >"$T/moved2.units"
    assert_contains "$T/moved2.units" "^dirty nc-alpha-0.1.0 lib" "nc-alpha at another path: compiled again"
    assert_contains "$T/moved2.units" "^dirty nc-beta-0.1.0 lib" "nc-beta at another path: compiled again"
    nix-store -q --references "$moved2" | grep -qx "$vendor2" ||
        nxt_fail "the control's layer 2 does not reference its vendor dir (its dep-info names it)"
    nxt_verify_store
}

# Reproducible outputs (issue 18): `nix-build --check` builds a derivation again and compares the
# outputs. It passes on a deps output and on one that packs inherited artifacts (buildPackage
# with doInstallCargoArtifacts): inside a Nix build the archive records the store's mtime, not
# the build's, and cargo's rustc probe cache is stored with its keys sorted (cargo writes them in
# hash order). Control: the same deps packed with the build's mtimes (`--mtimes build`) fail the
# check, as every deps output did before.
test_crane_check_reproduces() {
    nxt_crane_setup
    local expr
    expr=$(nxt_crane_expr reproduces <<'NIX'
rec {
  deps = nixcacheLib.buildDepsOnly common;
  build = nixcacheLib.buildPackage (common // { cargoArtifacts = deps; doInstallCargoArtifacts = true; });
  buildMtimes = nixcacheLib.buildDepsOnly (common // { pname = "build-mtimes"; nixcachePackFlags = "--mtimes build"; });
}
NIX
    )
    local attr
    for attr in deps build buildMtimes; do
        nxt_build "$expr" -A "$attr" >/dev/null
    done
    for attr in deps build; do
        nxt_nix_build "$expr" -A "$attr" --check ||
            nxt_fail "nix-build --check of $attr: $(grep -E 'error|differs' "$T/build.log" | tail -n 3)"
    done
    nxt_build_fails "$expr" -A buildMtimes --check
    assert_contains "$T/build.log" "may not be deterministic" "the control, packed with the build's mtimes"
}
