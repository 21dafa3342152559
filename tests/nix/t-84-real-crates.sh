# Real crates from crates.io through crane and the adapter (issue 18, "Real crates in the Nix
# suite"). tests/fixtures/ws-real depends on serde + serde_derive (a proc-macro on syn, quote,
# proc-macro2), libc, miniz-sys (bundled C built by the cc crate; `links = "miniz"` metadata), a
# member with its own C build script on top of it, a git-less [patch] of cfg-if by a path package,
# and members asking for different features of serde and libc (tests/fixtures/README.md).
#
# Nothing downloaded is committed: tests/nix/fetch-crates.sh has cargo download the .crate files
# the fixture's Cargo.lock names, once per machine (/var/cache/cargo-nixcache/crates-io-home), and
# the emulated fetchurl serves them at their static.crates.io paths, so crane's own
# vendorCargoDeps (its default cargoVendorDir) vendors them, checked against the lock's real
# checksums, exactly as it does from crates.io.

# nxt_real_setup: nxt_crane_setup, plus $T/src/ws-real (and its dummy on Nix 2.8) and $T/mirror
# holding the lock's crates at their download paths.
nxt_real_setup() {
    nxt_crane_setup
    local crates
    mkdir -p "$T/src"
    (cd "$NXT_FIXTURES" && tar -c --exclude=./ws-real/target ./ws-real) | tar -x -C "$T/src"
    nxt_crane_dummy ws-real
    # Without crates.io (and nothing cached) the test cannot run: skipped, but failed under CI.
    crates=$("$NXT_REPO/tests/nix/fetch-crates.sh" "$NXT_FIXTURES/ws-real") ||
        nxt_skip "could not fetch the crates of ws-real's Cargo.lock (tests/nix/fetch-crates.sh)"
    nxt_real_mirror <<<"$crates"
}

# nxt_real_mirror: lines `NAME VERSION SHA256 FILE` on stdin (fetch-crates.sh's) as $T/mirror,
# each FILE at static.crates.io/crates/NAME/VERSION/download (crane's download URL for crates.io,
# which the emulated fetchurl maps to the mirror). Fails on an empty list.
nxt_real_mirror() {
    local name version _sum file n=0
    while read -r name version _sum file; do
        [ -n "$name" ] || continue
        mkdir -p "$T/mirror/static.crates.io/crates/$name/$version"
        cp "$file" "$T/mirror/static.crates.io/crates/$name/$version/download"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || nxt_fail "no crates to mirror"
    nxt_log "mirror: $n crates from crates.io"
}

# nxt_real_units FILE: one line per unit in cargo's JSON messages, sorted:
# `fresh|dirty registry|local NAME-VERSION TARGET-KIND` (registry: a crates.io package, vendored
# or not; local: a path package: members, the [patch] package).
nxt_real_units() {
    python3 - "$1" <<'PY'
import json, sys
rows = set()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if not line.startswith("{"):
        continue
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact":
        continue
    source, _, rest = m["package_id"].partition("#")
    kind = "registry" if source.startswith("registry+") else "local"
    # `NAME@VERSION`, or `VERSION` alone when the name is the last path segment.
    if "@" in rest:
        name, version = rest.split("@", 1)
    else:
        name, version = source.rstrip("/").split("/")[-1], rest
    rows.add("%s %s %s-%s %s" % ("fresh" if m["fresh"] else "dirty", kind, name, version,
                                 m["target"]["kind"][0]))
print("\n".join(sorted(rows)))
PY
}

# nxt_real_log OUT: the build log of the derivation that produced OUT, without the terminal's
# colours (crane's builds have cargo colour its output).
nxt_real_log() {
    nix-store -l "$1" 2>/dev/null | sed -E 's/\x1b\[[0-9;]*[A-Za-z]|\x1b\([A-Z]//g' ||
        nxt_fail "no build log for $1"
}

# nxt_real_compiled_registry OUT: the registry crates the build of OUT compiled, one a line,
# sorted, from its log: units cargo's JSON messages call not Fresh, and cargo's status lines
# (`Compiling NAME vVERSION`, `Checking`, `Documenting`; a path package's line ends with its path
# in parentheses, a registry package's does not), which every cargo command of every phase
# prints, JSON or not. Empty: nothing from crates.io was compiled.
# Writes the log to $T/real.log and its units (nxt_real_units) to $T/real.units. Call it
# directly, never in $(...): a failure must end the test.
nxt_real_compiled_registry() {
    nxt_real_log "$1" >"$T/real.log"
    [ -s "$T/real.log" ] || nxt_fail "empty build log for $1"
    nxt_real_units "$T/real.log" >"$T/real.units"
    {
        awk '$1 == "dirty" && $2 == "registry" { print $3 }' "$T/real.units"
        sed -E -n 's/^[[:space:]]*(Compiling|Checking|Documenting) ([A-Za-z0-9_-]+) v([^ ]+)[[:space:]]*$/\2-\3/p' \
            "$T/real.log"
    } | sort -u
}

# nxt_real_none_compiled OUT WHAT: the build of OUT compiled no registry unit, and its log has
# cargo's JSON messages naming Fresh registry units (a log without them would prove nothing).
nxt_real_none_compiled() {
    nxt_real_compiled_registry "$1" >"$T/real.compiled"
    assert_eq "" "$(paste -sd " " "$T/real.compiled")" "registry crates compiled by $2"
    grep -q '^fresh registry ' "$T/real.units" ||
        nxt_fail "$2: no Fresh registry unit in cargo's JSON messages of its log"
}

# nxt_real_subshell CMD...: CMD in a subshell, so that an nxt_fail in it (exit) ends only CMD:
# for expect_fail on an assertion.
nxt_real_subshell() {
    ("$@")
}

# nxt_real_expr NAME: a crane test expression (nxt_crane_expr) over ws-real: `real`, the common
# attributes with crane vendoring the lock's crates itself (no cargoVendorDir), plus `deps` (the
# adapted lib's buildDepsOnly) and `args` (consumer attributes inheriting it), then the stdin.
nxt_real_expr() {
    local name="$1"
    nxt_crane_expr "$name" <<NIX
let
  real = builtins.removeAttrs common [ "cargoVendorDir" "dummySrc" ] // {
    pname = "ws-real";
    src = sourceOf "ws-real";
  } // dummyOf "ws-real";
  deps = nixcacheLib.buildDepsOnly (real // { cargoExtraArgs = jsonArgs; });
  args = real // { cargoArtifacts = deps; cargoExtraArgs = jsonArgs; };
  # buildPackage's build phase writes cargo's JSON to \$cargoBuildLog (it adds the
  # --message-format itself): shown in the log after the build.
  showBuildLog = ''cat "''\${cargoBuildLog:-/dev/null}"'';
in
$(cat)
NIX
}

# nxt_real_executables OUT WHAT: OUT, a consumer of deps that installs its artifacts (the
# adapter's default for it: nixcacheInlineExecutables = "all"), keeps the build script it made
# (cshim's) inside its archive, as a file, and the one it inherited (miniz-sys's, in deps) as a
# link; its artifacts/ holds no executable.
nxt_real_executables() {
    local out="$1" what="$2"
    tar --zstd -tvf "$out/symlinks.tar.zst" >"$T/executables.listing" || nxt_fail "$what: list its archive"
    assert_contains "$T/executables.listing" "^-r?w?x.* target/release/build/cshim-[0-9a-f]{16}/build[-_]script[-_]build" \
        "$what: cshim's build script inside its archive"
    assert_contains "$T/executables.listing" "^l.* target/release/build/miniz-sys-[0-9a-f]{16}/build-script-build -> " \
        "$what: miniz-sys's build script, inherited, a link"
    find "$out/artifacts" -type f -perm /111 ! -name '*.*' >"$T/executables.moved"
    assert_eq "" "$(cat "$T/executables.moved")" "$what: executables in its artifacts/"
}

NXT_REAL_OUTPUT="real-app: real/release crc32=3610a686 shim=3610a686 fd-bits=32 os=linux patched=true"

# buildDepsOnly of the adapted lib, then every consumer with nothing but cargoArtifacts:
# buildPackage (its check phase runs `cargo test` too), cargoClippy, cargoTest, cargoDoc,
# cargoNextest. Each compiles 0 registry units (JSON and status lines), rebuilds the local
# packages from their real sources (the patched cfg-if included: the binary says `patched=true`),
# and the binary equals the one stock crane (use-zstd, the unadapted lib) builds from the same
# inputs. Negative controls, each a consumer of the same deps: `-p model` alone (serde and libc
# resolve other features than the workspace's) and `-p cshim` under other RUSTFLAGS compile
# registry units, and the assertion sees them; `-p cshim` alone (the workspace's features) does
# not.
test_real_crates() {
    nxt_real_setup
    local expr deps out kind package stock
    expr=$(nxt_real_expr real <<'NIX'
rec {
  inherit deps;
  vendor = deps.cargoVendorDir;
  package = nixcacheLib.buildPackage (real // { cargoArtifacts = deps; postBuild = showBuildLog; });
  clippy = nixcacheLib.cargoClippy args;
  test = nixcacheLib.cargoTest args;
  doc = nixcacheLib.cargoDoc args;
  nextest = nixcacheLib.cargoNextest (real // { cargoArtifacts = deps;
    cargoNextestExtraArgs = "--cargo-message-format json-render-diagnostics"; });
  # Control: a check that links its build scripts as deps do.
  clippyLinked = nixcacheLib.cargoClippy (args // { nixcacheInlineExecutables = "leaves"; });
  # Stock crane from the same inputs: its deps (use-zstd) and package.
  stockDeps = craneLib.buildDepsOnly real;
  stock = craneLib.buildPackage (real // { cargoArtifacts = stockDeps; });
  stockDoc = craneLib.cargoDoc (real // { cargoArtifacts = stockDeps; cargoExtraArgs = jsonArgs; });
  # Those check units in a deps layer on top of deps (the adapter's layered buildDepsOnly): a
  # plain `cargo check`, without --all-targets. cargoDoc on it compiles no registry unit.
  docDeps = nixcacheLib.buildDepsOnly (real // { cargoArtifacts = deps;
    buildPhaseCargoCommand = "cargoWithProfile check ${jsonArgs}"; });
  docOnLayer = nixcacheLib.cargoDoc (real // { cargoArtifacts = docDeps; cargoExtraArgs = jsonArgs; });
  # Negative controls.
  otherFeatures = nixcacheLib.cargoBuild (args // { cargoExtraArgs = "${jsonArgs} -p model"; });
  sameFeatures = nixcacheLib.cargoBuild (args // { cargoExtraArgs = "${jsonArgs} -p cshim"; });
  otherRustflags = nixcacheLib.cargoBuild (args // { cargoExtraArgs = "${jsonArgs} -p cshim";
    RUSTFLAGS = "--cfg nixcache_control"; });
}
NIX
    )
    # crane vendored the crates itself, from the mirror, with the lock's checksums.
    out=$(nxt_build "$expr" -A vendor)
    assert_exists "$(echo "$out"/*/miniz-sys-0.1.12/miniz.c)" "miniz-sys in crane's vendor dir"
    assert_exists "$(echo "$out"/*/syn-*/Cargo.toml)" "syn in crane's vendor dir"

    deps=$(nxt_build "$expr" -A deps)
    assert_exists "$deps/nixcache.json" "the deps output, packed by cargo-nixcache"
    nxt_verify_artifacts "$deps"
    nxt_real_log "$deps" >"$T/deps.log"
    nxt_real_units "$T/deps.log" >"$T/deps.units"
    for kind in "serde_derive-.* proc-macro" "syn-.* lib" "libc-.* lib" "miniz-sys-.* lib" \
        "miniz-sys-.* custom-build" "cc-.* lib" "serde-.* lib"; do
        assert_contains "$T/deps.units" "^dirty registry $kind\$" "deps compiled $kind"
    done

    package=$(nxt_build "$expr" -A package)
    assert_contains "$T/build.log" "nixcache: inheriting $deps" "buildPackage inherited through cargo-nixcache"
    assert_eq "$NXT_REAL_OUTPUT" "$("$package/bin/real-app")" "the package's binary"
    nxt_real_none_compiled "$package" "buildPackage"
    for kind in "real-app-0.1.0 bin" "cshim-0.1.0 lib" "cfg-if-1.0.99 lib" "model-0.1.0 lib"; do
        assert_contains "$T/real.units" "^dirty local $kind\$" "buildPackage rebuilt $kind from real sources"
    done
    assert_contains "$T/real.units" "^fresh registry serde_derive-.* proc-macro\$" "serde_derive inherited"
    assert_contains "$T/real.log" "test result: ok\\. 2 passed" "buildPackage's check phase ran the app's tests"

    # deps links every build script; each consumer keeps its own inside its archive.
    assert_exists "$(echo "$deps"/artifacts/target/release/build/miniz-sys-*/build-script-build)" \
        "miniz-sys's build script in deps' artifacts"
    for kind in clippy test nextest; do
        out=$(nxt_build "$expr" -A "$kind")
        assert_contains "$T/build.log" "nixcache: inheriting $deps" "$kind inherited through cargo-nixcache"
        nxt_real_none_compiled "$out" "$kind"
        nxt_real_executables "$out" "$kind"
    done
    out=$(nxt_build "$expr" -A clippyLinked)
    expect_fail "control: a check that links its build scripts" nxt_real_subshell nxt_real_executables "$out" "clippyLinked"
    nxt_log "control: the assertion said $(grep -o 'FAIL: .*' "$T/expect_fail.out" | cut -c1-160)"
    assert_contains "$T/real.log" "PASS .*real-app" "nextest ran the app's tests"

    # cargoDoc checks serde and serde_core without app's dev-dependency feature (`rc`), a unit
    # crane's buildDepsOnly never builds: its `cargo check --all-targets` includes the tests, so
    # resolver 2 gives serde `rc` there, and its `cargo build` makes no check units. Stock crane
    # compiles exactly the same on its own deps: crane's, not the adapter's.
    out=$(nxt_build "$expr" -A doc)
    assert_contains "$T/build.log" "nixcache: inheriting $deps" "doc inherited through cargo-nixcache"
    nxt_real_compiled_registry "$out" >"$T/doc.compiled"
    grep -q '^fresh registry ' "$T/real.units" || nxt_fail "doc: no Fresh registry unit in its cargo JSON"
    assert_eq "serde-1.0.229 serde_core-1.0.229" "$(paste -sd " " "$T/doc.compiled")" "registry crates cargoDoc compiled"
    out=$(nxt_build "$expr" -A stockDoc)
    nxt_real_compiled_registry "$out" >"$T/stock-doc.compiled"
    assert_eq "$(cat "$T/doc.compiled")" "$(cat "$T/stock-doc.compiled")" \
        "registry crates compiled by cargoDoc, adapted (left) and stock crane's"
    out=$(nxt_build "$expr" -A docDeps)
    assert_contains "$T/build.log" "nixcache: inheriting $deps" "the doc layer inherited deps"
    nxt_real_compiled_registry "$out" >"$T/doc-layer.compiled"
    assert_eq "$(cat "$T/doc.compiled")" "$(cat "$T/doc-layer.compiled")" "registry crates the doc layer compiled"
    out=$(nxt_build "$expr" -A docOnLayer)
    nxt_real_none_compiled "$out" "cargoDoc on the doc layer"

    # The same binary as stock crane's, from the same inputs.
    stock=$(nxt_build "$expr" -A stock)
    assert_exists "$(nxt_build "$expr" -A stockDeps)/target.tar.zst" "stock crane's deps (use-zstd)"
    cmp "$package/bin/real-app" "$stock/bin/real-app" ||
        nxt_fail "real-app differs from stock crane's ($package, $stock)"

    # Negative controls: the assertion fails when registry units recompile.
    out=$(nxt_build "$expr" -A sameFeatures)
    nxt_real_none_compiled "$out" "\`-p cshim\`"
    out=$(nxt_build "$expr" -A otherFeatures)
    nxt_real_compiled_registry "$out" >"$T/control-features"
    nxt_log "control, \`-p model\` (its own features) compiled: $(paste -sd " " "$T/control-features")"
    assert_contains "$T/control-features" "^libc-" "control: \`-p model\` compiled libc (no std there)"
    assert_contains "$T/control-features" "^serde-" "control: \`-p model\` compiled serde (no alloc there)"
    expect_fail "control: the assertion on \`-p model\`" nxt_real_subshell nxt_real_none_compiled "$out" "\`-p model\`"
    nxt_log "control: the assertion said $(grep -o 'FAIL: .*' "$T/expect_fail.out" | cut -c1-160)"
    out=$(nxt_build "$expr" -A otherRustflags)
    nxt_real_compiled_registry "$out" >"$T/control-rustflags"
    nxt_log "control, \`-p cshim\` with other RUSTFLAGS compiled: $(paste -sd " " "$T/control-rustflags")"
    assert_contains "$T/control-rustflags" "^miniz-sys-" "control: other RUSTFLAGS compiled miniz-sys"
    assert_contains "$T/control-rustflags" "^libc-" "control: other RUSTFLAGS compiled libc"
    expect_fail "control: the assertion on other RUSTFLAGS" nxt_real_subshell nxt_real_none_compiled "$out" "other RUSTFLAGS"
    nxt_log "control: the assertion said $(grep -o 'FAIL: .*' "$T/expect_fail.out" | cut -c1-160)"
    nxt_verify_store
}
