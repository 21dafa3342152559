# The fixup phase on our outputs (issue 17, point 4). nixpkgs' stdenv runs fixupOutputHooks over
# every output after the install phase: `patchelf --shrink-rpath` on every ELF file, audit-tmpdir,
# patchShebangs, strip (bin/, lib/, ...), then the symlink checks; and its compiler wrapper links
# every ELF file with the self rpath `-rpath $out/lib`. tests/nix/crane/fixup-hooks.sh and
# cc-wrapper.sh emulate both (each names the nixpkgs file it follows). Here crane's own lib, through
# the adapter, builds with them: the rpath of every ELF file in our artifacts/ is shrunk, and the
# chain still works (registry units Fresh, a shrunk proc-macro loaded by the consumer, verify,
# audit-tmpdir, the binary equal to stock crane's, a test derivation running shrunk test
# executables).
#
# The emulated stdenv gives every derivation both as nixpkgs' stdenv does (its
# defaultNativeBuildInputs: this package set's cc and the fixup hooks), so every crane test of
# the suite runs them; the tests here look at what they did.

# nxt_runpaths DIR: one line per ELF file below DIR, sorted: its path relative to DIR, a tab, and
# its RUNPATH (or RPATH) as readelf shows it in brackets, `[]` once patchelf has shrunk it to
# nothing; `-` for a file without one.
nxt_runpaths() {
    local f rp
    while IFS= read -r -d '' f; do
        [ "$(head -c 4 "$f")" = $'\177ELF' ] || continue
        rp=$(readelf -d "$f" 2>/dev/null | sed -n 's/.*(R[UN]*PATH).*: \(\[.*\]\)$/\1/p')
        printf '%s\t%s\n' "${f#"$1"/}" "${rp:--}"
    done < <(find "$1" -type f -print0) | sort
}

# The plain emulated stdenv with the defaults, no crane: what each hook does, on one small C
# program and a script. With fixup the program's self rpath is shrunk away (`[]`), the script's
# interpreter comes from initialPath, an absolute link inside the output turns relative, bin/ is
# stripped. Controls: dontPatchELF keeps `$out/lib` (so the wrapper put it there); an rpath under
# the build dir with dontPatchELF fails audit-tmpdir, naming the file; without dontPatchELF
# patchelf drops it first (nixpkgs' order) and the build passes; a link to a missing store path
# fails the broken-symlink check; `dontFixup` changes nothing.
test_fixup_hooks_emulated() {
    nxt_crane_setup
    local expr out kept
    expr=$(nxt_crane_expr hooks <<'NIX'
let
  mk = name: extra: pkgs.stdenv.mkDerivation ({
    inherit name;
    dontUnpack = true;
    installPhase = ''
      mkdir -p $out/bin $out/share
      echo 'int main(void) { return 0; }' > main.c
      cc -g -o $out/bin/prog main.c ''${tmpRpath:+-Wl,-rpath,$TMPDIR/lib}
      printf '#!/bin/sh\necho script\n' > $out/bin/script
      chmod +x $out/bin/script
      ln -s $out/bin/prog $out/share/prog-link
      runHook postInstall
    '';
  } // extra);
in
{
  fixed = mk "fixed" { };
  kept = mk "kept" { dontPatchELF = true; };
  tmpRpath = mk "tmp-rpath" { dontPatchELF = true; tmpRpath = true; };
  tmpRpathShrunk = mk "tmp-rpath-shrunk" { tmpRpath = true; };
  brokenLink = mk "broken-link" { postInstall = "ln -s $NIX_STORE/0000000000000000000000000000000v-gone $out/share/gone"; };
  noFixup = mk "no-fixup" { dontFixup = true; };
}
NIX
    )
    out=$(nxt_build "$expr" -A fixed)
    assert_contains "$T/build.log" "^shrinking $out/bin/prog$" "patchelf's hook"
    assert_contains "$T/build.log" "^checking for references to /build/ in $out\.\.\.$" "audit-tmpdir"
    assert_contains "$T/build.log" "^stripping \(with command strip and flags -S -p\) in $out/bin$" "strip"
    assert_eq "$(printf 'bin/prog\t[]')" "$(nxt_runpaths "$out")" "the program's rpath, shrunk"
    ! readelf -S "$out/bin/prog" | grep -q '\.debug_' || nxt_fail "bin/prog still has debug sections"
    assert_eq "#!/usr/bin/sh" "$(head -n 1 "$out/bin/script")" "the script's interpreter"
    assert_eq "../bin/prog" "$(readlink "$out/share/prog-link")" "the link inside the output"

    kept=$(nxt_build "$expr" -A kept)
    assert_eq "$(printf 'bin/prog\t[%s/lib]' "$kept")" "$(nxt_runpaths "$kept")" \
        "the self rpath the compiler wrapper gave (dontPatchELF)"
    nxt_build_fails "$expr" -A tmpRpath
    assert_contains "$T/build.log" "RPATH of binary /.*/bin/prog contains a forbidden reference to /build/" \
        "audit-tmpdir on an rpath under the build dir"
    out=$(nxt_build "$expr" -A tmpRpathShrunk)
    assert_eq "$(printf 'bin/prog\t[]')" "$(nxt_runpaths "$out")" "an rpath under the build dir, shrunk before the audit"
    nxt_build_fails "$expr" -A brokenLink
    assert_contains "$T/build.log" "points to a missing target" "the broken-symlink check"
    out=$(nxt_build "$expr" -A noFixup)
    assert_eq "$(printf 'bin/prog\t[%s/lib]' "$out")" "$(nxt_runpaths "$out")" "dontFixup"
    assert_eq "#!/bin/sh" "$(head -n 1 "$out/bin/script")" "dontFixup: the script as written"
}

# deps (buildDepsOnly) -> buildPackage, both fixed up. Every ELF file of the deps' artifacts/ (the
# proc-macro nc-macro, nc-alpha's build script, the test executables) was linked with the self
# rpath and shrunk (`[]`: only patchelf writes an empty RUNPATH); verify passes; audit-tmpdir ran on
# every output and found nothing. The package inherits every registry unit Fresh, compiles applib
# with the shrunk nc-macro loaded into rustc, and its stripped binary equals stock crane's (crane's
# own lib, fixed up, without cargoArtifacts): the shrink removes the self rpath that names each
# output. Nothing is written into the store.
test_fixup_crane_deps_and_package() {
    nxt_crane_setup
    local expr deps app clean
    expr=$(nxt_crane_deps_pkg_expr fixup-deps-pkg)
    deps=$(nxt_build "$expr" -A deps)
    assert_exists "$deps/nixcache.json" "the deps output, packed by cargo-nixcache"
    assert_contains "$T/build.log" "^shrinking RPATHs of ELF executables and libraries in $deps$" "patchelf's hook on deps"
    assert_contains "$T/build.log" "^checking for references to /build/ in $deps\.\.\.$" "audit-tmpdir on deps"
    nxt_runpaths "$deps" >"$T/deps.runpaths"
    assert_contains "$T/deps.runpaths" "^artifacts/target/release/deps/libnc_macro-[0-9a-f]{16}\.so	" "the proc-macro in the artifacts"
    assert_contains "$T/deps.runpaths" "^artifacts/target/release/build/nc-alpha-[0-9a-f]{16}/build[-_]script[-_]build" \
        "nc-alpha's build script in the artifacts"
    assert_eq "" "$(grep -v '	\[\]$' "$T/deps.runpaths")" "ELF files of deps whose rpath was not shrunk"
    nxt_verify_artifacts "$deps"

    app=$(nxt_build "$expr" -A app)
    assert_contains "$T/build.log" "nixcache: inheriting $deps" "inherited through cargo-nixcache"
    assert_eq "hello from applib 84 42" "$("$app/bin/app")" "the app"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh on fixed-up deps"
    nxt_crane_units "$app" >"$T/app.units"
    assert_contains "$T/app.units" "^fresh nc-macro proc-macro" "nc-macro inherited"
    assert_contains "$T/app.units" "^dirty applib lib" "applib compiled, with the shrunk nc-macro loaded"
    assert_contains "$T/build.log" "^stripping \(with command strip and flags -S -p\) in $app/bin$" "strip on the package"
    assert_contains "$T/build.log" "^checking for references to /build/ in $app\.\.\.$" "audit-tmpdir on the package"
    assert_eq "$(printf 'bin/app\t[]')" "$(nxt_runpaths "$app")" "the package's binary, shrunk"

    clean=$(nxt_build "$expr" -A clean)
    cmp "$app/bin/app" "$clean/bin/app" || nxt_fail "the inherited build's binary differs from stock crane's"
    nxt_verify_store
}

# deps -> build (buildPackage, doInstallCargoArtifacts: bin/ stripped beside our artifacts/) ->
# test (cargoTest), all fixed up: build's artifacts are shrunk and verify; build's test
# executables are inside its archive (leaf executables: fixup never sees them); the test
# derivation inherits EVERY unit Fresh and runs them.
test_fixup_crane_chain() {
    nxt_crane_setup
    local expr build test
    expr=$(nxt_crane_expr fixup-chain <<'NIX'
rec {
  deps = nixcacheLib.buildDepsOnly common;
  build = nixcacheLib.buildPackage (common // { cargoArtifacts = deps; doInstallCargoArtifacts = true; });
  test = nixcacheLib.cargoTest (common // { cargoArtifacts = build; cargoExtraArgs = jsonArgs; });
}
NIX
    )
    build=$(nxt_build "$expr" -A build)
    assert_exists "$build/nixcache.json" "build's artifacts"
    assert_contains "$T/build.log" "^stripping \(with command strip and flags -S -p\) in $build/bin$" "strip on build's bin/"
    nxt_runpaths "$build" >"$T/build.runpaths"
    assert_not_contains "$T/build.runpaths" "^artifacts/target/release/deps/app-[0-9a-f]{16}	" "a test executable in build's artifacts"
    tar --zstd -tvf "$build/symlinks.tar.zst" >"$T/build.listing"
    assert_contains "$T/build.listing" "^-r?w?x.* target/release/deps/app-[0-9a-f]{16}$" "a test executable inside build's archive"
    assert_eq "" "$(grep -v '	\[\]$' "$T/build.runpaths")" "ELF files of build whose rpath was not shrunk"
    nxt_verify_artifacts "$build"
    test=$(nxt_build "$expr" -A test)
    nxt_crane_units "$test" >"$T/test.units"
    [ -s "$T/test.units" ] || nxt_fail "no cargo JSON in the test derivation's log"
    assert_eq "" "$(grep -v '^fresh' "$T/test.units")" "units of the test derivation (same sources)"
    assert_contains "$T/units.log" "test result: .{0,12}ok.{0,12}\. [1-9][0-9]* passed" "the shrunk test executables ran"
    nxt_verify_store
}
