# crane's OWN check suite with cargo-nixcache's mode (issue 18, point 1).
#
# crane's CI builds checks/default.nix of its checkout (~100 attributes: compilesFresh*, the
# fixtures, the regression checks). tests/nix/crane/checks.nix evaluates that file, from a copy of
# the checkout the suite pins (NXT_CRANE_SRC) made in $T, over the emulated nixpkgs, twice: with
# crane's lib as it is (`crane`, crane's own modes) and with the same lib through nix/crane.nix
# (`ours`, install mode use-nixcache). The table below names every check it yields and what this
# test does with it; the test fails when crane's list and the table differ, so a check added by a
# newer crane cannot go unnoticed.
#
# compilesFresh.nix, the oracle for what we promise (deps built, then `cargo check/build/test
# --no-run` in a consumer that must compile nothing but the expected crates), is patched in the
# copy (nxt_cc_stage), three targeted changes, each checked to apply:
#   1. its mode list becomes an argument, `compilesFreshModes`, crane's two modes by default; the
#      adapted lib's scope gives it use-zstd, use-symlink and use-nixcache;
#   2. each mode's consumer gets a name of its own (`compiles-fresh-<mode>`), so the test can
#      build and report each mode: crane names all of them alike, and nixpkgs' linkFarm keeps one
#      entry per name, so crane's own check builds only its LAST mode (use-symlink;
#      test_83_crane_checks_compiles_fresh shows it on the unpatched file);
#   3. the mode reaches the deps (`buildDepsOnly (args // { installCargoArtifactsMode })`): crane
#      builds the deps in its default mode whatever the entry, so the mode never mattered (the
#      consumer installs nothing). Each entry now inherits artifacts made in its own mode.
#
# Where the builds run: Nix 2.24 only. Nix 2.8 cannot evaluate crane's mkDummySrc (every
# buildDepsOnly without a dummySrc: nearly every check) from a fresh store (`opening directory
# '.../Cargo.toml/../.': Not a directory`, see t-80-crane.sh); there only the list is checked.
#
# What differs from crane's CI, for every check and both libs (checks.nix): the toolchain is the
# host's (not a store path), so crane's removeReferencesToRustToolchain is off; crates come from a
# local mirror of static.crates.io (nxt_cc_mirror), the registry's own .crate files; and
# linkFarmFromDrvs keeps every entry. The same linkFarm rule as in 2. makes crane's CI build one of
# chainedMultiple's three chains and one of features' five compilesFresh; here all of them build
# (test_83_crane_checks_run lists them).
#
# CI builds the compilesFresh family with both libs and the checks of class `ci` with the adapted
# lib (about 3 minutes on Nix 2.24 on a loaded 2-core machine; seconds on Nix 2.8).
# NXT_CRANE_CHECKS=all builds every runnable check with both libs (about 5 more minutes; the table
# of docs/nix.md comes from such a run).

# The table: every attribute of crane's checks on x86_64-linux. Columns (` | `-separated):
#   check | class | evidence | why
# class: fresh  a compilesFresh check: each mode's consumer built, ours in three modes, crane's lib
#               in its two;
#        ci     built with the adapted lib (and with crane's under NXT_CRANE_CHECKS=all);
#        all    built with both libs under NXT_CRANE_CHECKS=all only, to keep CI's time (why
#               says why it can wait: it repeats what a ci check builds, or downloads crates);
#        vacuous  builds, but tests nothing here (why says why): not counted as run;
#        no     cannot run here (why says why).
# evidence, for `no`: `eval:REGEX`: instantiating the check fails with a message matching REGEX
# (checks.nix's `absent`, naming what is missing); `git:FIXTURE`: FIXTURE's Cargo.lock has git
# sources, which crane fetches from the network at evaluation (so the check is not evaluated);
# `-`: none checked.
nxt_cc_table() {
    cat <<'TABLE'
behaviorChangesWithFeatures | ci | - | -
bindeps | no | eval:needs rust-bin | a rust-overlay nightly toolchain with the wasm32 and x86_64-unknown-none targets
book | no | eval:needs mdbook | mdbook (crane's documentation, no cargo build)
bzip2Sys | all | - | crates.io downloads (bzip2-sys, cc, libc, pkg-config) and a C build
cargoAuditTests | no | eval:needs (fetchFromGitHub|cargo-audit) | network (rustsec/advisory-db from github.com) and cargo-audit
cargoClippyThenBuild | ci | - | -
cargoDenyTests | no | eval:needs cargo-deny | cargo-deny
cargoFmt | all | - | cargo fmt, no artifacts (cargoFmtThenClippy, in CI, inherits its output)
cargoFmtThenClippy | ci | - | -
cargoLlvmCov | no | eval:needs rust-bin | a rust-overlay toolchain with llvm-tools
cargoLockOverride | no | eval:needs fetchFromGitHub | network (cargo-llvm-cov's source from github.com)
cargoTarpaulin | no | eval:needs cargo-tarpaulin | cargo-tarpaulin
cargoTarpaulinAfterClippy | no | eval:needs cargo-tarpaulin | cargo-tarpaulin
chainedMultiple | ci | - | -
cleanCargoTomlTests | no | eval:needs remarshal | remarshal (Cargo.toml cleaning, no cargo build)
clippy | ci | - | -
compilesFreshOverlappingTargets | fresh | - | -
compilesFreshSimple | fresh | - | -
compilesFreshSimpleBuildPackage | fresh | - | -
compilesFreshWithBuildScript | fresh | - | -
compilesFreshWithBuildScriptCustom | fresh | - | -
compilesFreshWithCustomTargetDir | fresh | - | -
compilesFreshWorkspace | fresh | - | -
crane-utils | no | eval:needs rustPlatform | nixpkgs' rustPlatform (the suite builds crane-utils with cargo instead)
craneUtilsChecks | all | - | 25 crates from crates.io (3 downloaded once per machine); clippy --deny warnings on crane-utils
cratePatching | no | git:simple-git-workspace-inheritance | network (git dependencies on github.com)
customCargoTargetDirectory | ci | - | -
customDummy | ci | - | -
customDummyWithMkDummySrcNoPname | all | - | a dummy source variant (customDummy is in CI)
depsOnlyCargoDoc | ci | - | -
depsOnlySourceName | no | eval:needs (clangStdenv|llvmPackages|cmake) | clang, libclang and cmake (and 61 crates)
depsOnlyVariousTargets | ci | - | -
devShell | all | - | a dev shell of simple (t-95 tests our dev shells)
docs | ci | - | -
docsFresh | fresh | - | -
dummyNoWarnings | ci | - | -
features | ci | - | -
fileset | all | - | source selection (lib.fileset) over simple: its builds are simple's
filesetBuildScript | all | - | source selection (lib.fileset) over with-build-script
filesetIgnoredInvalidCargotoml | all | - | source selection (lib.fileset), no artifact handling of its own
filesetWorkspace | all | - | source selection (lib.fileset) over workspace
filesetWorkspaceInheritance | all | - | source selection (lib.fileset) over workspace-inheritance
filesetWorkspaceRoot | all | - | source selection (lib.fileset) over workspace-root
gitOverlappingRepo | no | git:git-overlapping | network (git dependencies on github.com)
illegalBin | all | - | a bin target named like a reserved name; builds like simple
illegalReferences | no | eval:needs (rust-bin|myLibFenix) | a rust-overlay toolchain and fenix
installCargoArtifactsMissing | ci | - | -
manyLibs | all | - | built by manyLibsInstalledAsExpected (in CI)
manyLibsInstalledAsExpected | ci | - | -
mkDummySrcCustom | all | - | a dummy source variant (extraDummyScript)
mkDummySrcTests | no | eval:needs remarshal | remarshal (mkDummySrc output compared, no cargo build)
multiBinSmoke | all | - | a dummy source variant (mkDummySrc), builds like simple
multiOutputDerivation | ci | - | -
nextest | no | eval:needs rust-bin | a rust-overlay toolchain with llvm-tools (t-80 runs crane's cargoNextest instead)
noStd | no | eval:needs rust-bin | a rust-overlay toolchain with the thumbv6m and x86_64-unknown-none targets
nonJsonCargoBuildLog | ci | - | -
procMacro | ci | - | -
procMacroCrateType | all | - | a variant of procMacro (in CI)
procMacroCrossCompile | ci | - | -
runCargoDocTests | ci | - | -
runCargoTests | ci | - | -
simple | ci | - | -
simple-nonflake | no | eval:needs rustPlatform | nixpkgs' rustPlatform (crane's own default.nix, not adapted, builds crane-utils with it)
simpleAltStdenv | all | - | gccStdenv, which is the stdenv here; builds like simple
simpleCustomProfile | ci | - | -
simpleGit | no | git:simple-git | network (git dependencies on github.com)
simpleGitWithHashes | no | git:simple-git | network (git dependencies on github.com)
simpleGitWorkspaceInheritance | no | git:simple-git-workspace-inheritance | network (git dependencies on github.com)
simpleIgnoredInvalidCargotoml | all | - | source filtering, no artifact handling of its own
simpleNoDeps | all | - | no dependencies (nothing to inherit)
simpleNoProfile | ci | - | -
simpleOnlyTests | all | - | a variant of simple (runCargoDocTests, in CI, uses its fixture)
simpleWithCmake | no | eval:needs cmake | cmake
simpleWithLockOverride | all | - | a lock file given apart from the source; builds like simple
smokeAltRegistry | no | eval:needs openssl | network (an alternative sparse registry) and OpenSSL
smokeManuallyVendored | all | - | a vendor dir in the source; builds like simple
smokeOverlappingTargets | all | - | runs the binaries of an overlapping-targets build (compilesFreshOverlappingTargets covers its deps)
smokeSimple | ci | - | -
smokeSimpleGit | no | git:simple-git | network (git dependencies on github.com)
smokeSimpleGitWorkspaceInheritance | no | git:simple-git-workspace-inheritance | network (git dependencies on github.com)
smokeWorkspace | all | - | runs the binaries of workspace (in CI)
smokeWorkspaceRoot | all | - | runs the binaries of workspaceRoot
trunk | vacuous | - | its body is empty without nixpkgs' buildWasmBindgenCli (nothing is built)
uefi | no | eval:needs rust-bin | a rust-overlay toolchain with the x86_64-unknown-uefi target
vendorCargoDepsCombinations | all | - | vendoring only, no cargo build
vendorGitSubset | no | git:git-overlapping | network (git dependencies on github.com)
vendorIsCrossAgnostic | no | git:simple-git | network (git dependencies) and a wasm32 cross nixpkgs
vendorMultipleCargoDeps | no | git:simple-git | network (git dependencies on github.com)
vendorMultipleCargoDepsAndBuild | no | git:simple-git | network (git dependencies on github.com)
vendorMultipleCargoDepsReqwestAndStd | no | - | ~750 crates.io packages of two lock files without their workspaces (vendoring only)
windows | no | eval:needs myLibWindows | a mingw cross nixpkgs
withBuildScript | ci | - | -
withBuildScriptCustom | all | - | a variant of withBuildScript (compilesFreshWithBuildScriptCustom covers its deps)
workspace | ci | - | -
workspaceGit | no | git:workspace-git | network (git dependencies on github.com)
workspaceHack | all | - | a workspace layout variant (workspace is in CI)
workspaceInheritance | all | - | a workspace layout variant (workspace is in CI)
workspaceRoot | all | - | a workspace layout variant (workspace is in CI)
workspaceRootNotAtSourceRoot | all | - | a workspace layout variant (workspace is in CI)
workspaceRootSpecificBin | all | - | a workspace layout variant (workspace is in CI)
zstdNoChange | ci | - | -
TABLE
}

# Attributes of checks/default.nix that are no derivation on x86_64-linux, which crane's own
# `onlyDrvs` drops (so crane's CI never builds them either), and why; besides, the scope's own
# callPackage, newScope, overrideScope and packages.
nxt_cc_not_checks() {
    cat <<'TABLE'
cleanCargoSourceWorksWithNonPaths | a cleaned source (cleanCargoSource of ripgrep's src), not a derivation
codesign | `lib.optionalAttrs aarch64Darwin ...`: empty on x86_64-linux
compilesFresh | the function the compilesFresh checks call
smoke | the function the smoke checks call
TABLE
}
NXT_CC_SCOPE_ATTRS="callPackage newScope overrideScope packages"

# Known failures: CHECK[.MODE] | LIB | why. Each is expected to FAIL (and the test fails if it
# passes, so the table is corrected); everything else that is built must pass.
nxt_cc_known_failures() {
    cat <<'TABLE'
compilesFreshWithCustomTargetDir.use-symlink | crane | crane's use-symlink install moves target/foo to $out/foo, its inherit looks for $out/target (a crane bug, seen once the mode reaches the deps): every dependency compiles again
compilesFreshWithCustomTargetDir.use-symlink | ours | the same crane bug (the adapter runs crane's own use-symlink install and inherit)
TABLE
}

# The fixtures (under crane's checks/) whose crates.io packages the built checks vendor, and those
# of the checks only NXT_CRANE_CHECKS=all builds.
NXT_CC_CRATE_FIXTURES="simple overlapping-targets with-build-script with-build-script-custom workspace features/features"
NXT_CC_CRATE_FIXTURES_ALL="bzip2-sys ../pkgs/crane-utils"

# nxt_cc_field N: field N (1-based) of each table line on stdin, trimmed.
nxt_cc_field() {
    awk -F' [|] ' -v n="$1" '{ print $n }'
}

# nxt_cc_class CLASS: the checks of the table in CLASS, one per line.
nxt_cc_class() {
    nxt_cc_table | awk -F' [|] ' -v c="$1" '$2 == c { print $1 }'
}

# nxt_cc_setup: t-80's setup (a private store, the binaries under test, nextest and crane-utils),
# the patched copy of crane (nxt_cc_stage) and $T/checks.nix (nxt_cc_expr).
nxt_cc_setup() {
    nxt_crane_setup
    nxt_cc_stage
    nxt_cc_expr
}

# nxt_cc_stage: $T/crane, a writable copy of the crane checkout, with compilesFresh.nix patched
# (the header comment says how and why). Each replacement must match exactly once.
nxt_cc_stage() {
    rm -rf "$T/crane"
    cp -r "$NXT_CRANE_SRC" "$T/crane"
    chmod -R u+w "$T/crane"
    python3 - "$T/crane/checks/compilesFresh.nix" <<'PY' || nxt_fail "cannot patch crane's compilesFresh.nix (has crane changed it?)"
import sys
path = sys.argv[1]
text = open(path).read()
patches = [
    # 1. the mode list, an argument (crane's two modes by default)
    ("  jq,\n}:\n",
     "  jq,\n  compilesFreshModes ? [\n    \"use-zstd\"\n    \"use-symlink\"\n  ],\n}:\n"),
    # 3. the mode reaches the deps
    ("        cargoArtifacts = buildDepsOnly args;\n",
     "        cargoArtifacts = buildDepsOnly (args // { inherit installCargoArtifactsMode; });\n"),
    # 2. one linkFarm entry per mode
    ("  map drvArgs [\n    \"use-zstd\"\n    \"use-symlink\"\n  ]\n",
     "  map (mode: drvArgs mode // { name = \"compiles-fresh-${mode}\"; }) compilesFreshModes\n"),
]
for old, new in patches:
    if text.count(old) != 1:
        sys.exit("compilesFresh.nix: %d matches of %r" % (text.count(old), old))
    text = text.replace(old, new)
open(path, "w").write(text)
PY
}

# nxt_cc_expr: $T/checks.nix, tests/nix/crane/checks.nix over $T/crane, the emulated nixpkgs
# fetching from $T/mirror (when nxt_cc_mirror made it), the binaries under test.
nxt_cc_expr() {
    local mirror=null
    [ -d "$T/mirror" ] && mirror="builtins.path { path = $T/mirror; name = \"crate-mirror\"; }"
    cat >"$T/checks.nix" <<NIX
import $NXT_DIR/crane/checks.nix {
  crane = $T/crane;
  nixpkgsArgs = { nixpkgsLib = $NXT_NIXPKGS_LIB; nextest = "$NXT_NEXTEST";
    craneUtils = "$NXT_CRANE_UTILS"; mirror = $mirror; };
  tools = builtins.path { path = $T/tools; name = "cargo-nixcache"; };
  repo = $NXT_REPO;
}
NIX
}

# nxt_cc_mirror FIXTURE...: $T/mirror holds every crates.io package the Cargo.lock of each FIXTURE
# (a directory under crane's checks/) names, as the .crate file crates.io serves, at its
# static.crates.io download path (what the emulated fetchurl serves crane's vendorCargoDeps):
# tests/nix/fetch-crates.sh (cargo downloads them once per machine, checked against the lock) and
# t-84's nxt_real_mirror. Without crates.io and nothing cached the test cannot run (nxt_skip).
# Rewrites $T/checks.nix to use the mirror.
nxt_cc_mirror() {
    local fixture crates
    for fixture in "$@"; do
        [ -f "$T/crane/checks/$fixture/Cargo.lock" ] || nxt_fail "no Cargo.lock in crane's checks/$fixture"
        crates=$("$NXT_REPO/tests/nix/fetch-crates.sh" "$T/crane/checks/$fixture") ||
            nxt_skip "could not fetch the crates of crane's checks/$fixture/Cargo.lock (tests/nix/fetch-crates.sh)"
        nxt_real_mirror <<<"$crates"
    done
    nxt_cc_expr
}

# nxt_cc_names LIB: the attribute names crane's checks yield with LIB (`ours` or `crane`).
nxt_cc_names() {
    nix-instantiate --eval --json -E "builtins.attrNames (import $T/checks.nix).$1" 2>"$T/names.err" |
        python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))' ||
        nxt_fail "evaluating crane's checks with the $1 lib: $(tail -n 5 "$T/names.err")"
}

# nxt_cc_build_all LABEL=ATTR...: build every ATTR of $T/checks.nix in one nix-build
# (nxt_nix_build: --keep-going; two jobs, as most of a check is start-up, not compiling), then
# write one line `LABEL pass|fail` per ATTR to $T/results (pass: its output is valid), and each
# LABEL's log to $T/logs/LABEL.log: its own build log, after those of the failed builds it
# depends on.
nxt_cc_build_all() {
    local arg label drv out i=0 start=$SECONDS
    # Attribute names nix-build takes at the top (it skips names that are not identifiers, e.g.
    # with a `/`): b0, b1, ...; $T/batch.labels maps them back.
    : >"$T/batch.labels"
    {
        echo "let c = import $T/checks.nix; in {"
        for arg in "$@"; do
            echo "  b$i = c.${arg#*=};"
            echo "b$i ${arg%%=*}" >>"$T/batch.labels"
            i=$((i + 1))
        done
        echo "}"
    } >"$T/batch.nix"
    nix-instantiate --eval --read-write-mode --strict --json -E \
        "builtins.mapAttrs (_: d: \"\${d.drvPath} \${d.outPath}\") (import $T/batch.nix)" \
        >"$T/batch.json" 2>"$T/eval.err" || nxt_fail "evaluating the checks to build: $(tail -n 5 "$T/eval.err")"
    nxt_nix_build "$T/batch.nix" -j 2 || true
    { grep -oE "builder for '[^']+' failed" "$T/build.log" || true; } | cut -d"'" -f2 | sort -u >"$T/failed.drvs"
    : >"$T/results"
    python3 -c 'import json, sys
paths = json.load(open(sys.argv[1]))
for line in open(sys.argv[2]):
    attr, label = line.split()
    print(label, paths[attr])' "$T/batch.json" "$T/batch.labels" >"$T/batch.paths"
    while read -r label drv out; do
        mkdir -p "$(dirname "$T/logs/$label")"
        {
            { nix-store -q --requisites "$drv" | grep -Fxf "$T/failed.drvs" | grep -Fxv "$drv" || true; } |
                while read -r dep; do echo "=== failed dependency $dep"; nix-store -l "$dep" 2>/dev/null || true; done
            echo "=== $drv"
            nix-store -l "$drv" 2>/dev/null || echo "(no build log: not built, or a dependency failed)"
        } >"$T/logs/$label.log"
        if nix-store --check-validity "$out" 2>/dev/null; then
            echo "$label pass" >>"$T/results"
        else
            echo "$label fail" >>"$T/results"
        fi
    done <"$T/batch.paths"
    nxt_log "built $# checks in $((SECONDS - start)) s"
}

# nxt_cc_closure_log LABEL: the build logs of every derivation LABEL's build depended on (its
# closure), concatenated (a check that is a linkFarm logs nothing itself).
nxt_cc_closure_log() {
    local drv dep
    drv=$(awk -v l="$1" '$1 == l { print $2 }' "$T/batch.paths")
    [ -n "$drv" ] || nxt_fail "no build labelled $1"
    nix-store -q --requisites "$drv" | while read -r dep; do
        case "$dep" in *.drv) nix-store -l "$dep" 2>/dev/null || true ;; esac
    done
}

# nxt_cc_expected LABEL LIB: `fail` when LABEL (CHECK or CHECK.MODE) with LIB is a known failure,
# else `pass`.
nxt_cc_expected() {
    if nxt_cc_known_failures | awk -F' [|] ' -v c="$1" -v l="$2" '$1 == c && $2 == l { found = 1 } END { exit !found }'; then
        echo fail
    else
        echo pass
    fi
}

# nxt_cc_verdict: compare $T/results (lines `LIB/LABEL pass|fail`) with the expectations;
# print one line per build, and fail naming every unexpected result (with the tail of its log).
nxt_cc_verdict() {
    local label result lib check expected bad=()
    while read -r label result; do
        lib=${label%%/*}
        check=${label#*/}
        expected=$(nxt_cc_expected "$check" "$lib")
        if [ "$result" = "$expected" ]; then
            printf '    %-60s %-5s %s\n' "$label" "$result" "$([ "$result" = fail ] && echo "(known failure)")" >&2
        else
            printf '    %-60s %-5s UNEXPECTED (expected %s)\n' "$label" "$result" "$expected" >&2
            bad+=("$label")
        fi
    done <"$T/results"
    if [ ${#bad[@]} -gt 0 ]; then
        for label in "${bad[@]}"; do
            echo "    --- $label ($T/logs/$label.log):" >&2
            tail -n 30 "$T/logs/$label.log" | sed 's/^/      | /' >&2
        done
        nxt_fail "crane checks with an unexpected result: ${bad[*]}"
    fi
}

# Every attribute crane's checks/default.nix yields, with crane's lib and with ours, is in the
# table, and the table names nothing else; the table is printed. On Nix 2.24, each reason a check
# cannot run is shown: evaluating it fails naming what is missing, or its fixture has git sources.
test_83_crane_checks_listed() {
    nxt_cc_setup
    local lib check class evidence _why fixture by_eval=0 by_git=0 unchecked=0
    nxt_cc_table | nxt_cc_field 1 | sort >"$T/table.names"
    for lib in ours crane; do
        nxt_cc_names "$lib" | sort >"$T/$lib.names"
        diff "$T/table.names" "$T/$lib.names" >"$T/names.diff" ||
            nxt_fail "crane's checks with the $lib lib differ from the table (< table only, > crane only): $(tr '\n' ' ' <"$T/names.diff")"
    done
    # Every other attribute is accounted for: checks/default.nix without its onlyDrvs filter.
    sed 's|^  onlyDrvs = lib.filterAttrs (_: lib.isDerivation);$|  onlyDrvs = x: x;|' \
        "$T/crane/checks/default.nix" >"$T/crane/checks/default-unfiltered.nix"
    ! cmp -s "$T/crane/checks/default.nix" "$T/crane/checks/default-unfiltered.nix" ||
        nxt_fail "crane's checks/default.nix has no \`onlyDrvs = lib.filterAttrs (_: lib.isDerivation);\` line"
    nix-instantiate --eval --json -E "builtins.attrNames ((import $T/checks.nix).oursOf $T/crane/checks/default-unfiltered.nix)" \
        2>"$T/eval.err" | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))' | sort >"$T/unfiltered.names" ||
        nxt_fail "evaluating crane's checks without onlyDrvs: $(tail -n 3 "$T/eval.err")"
    # shellcheck disable=SC2086 # a word list
    { nxt_cc_not_checks | nxt_cc_field 1; printf '%s\n' $NXT_CC_SCOPE_ATTRS; } | sort >"$T/not-checks.names"
    comm -23 "$T/unfiltered.names" "$T/table.names" >"$T/dropped.names"
    diff "$T/not-checks.names" "$T/dropped.names" >"$T/names.diff" ||
        nxt_fail "attributes of crane's checks that are no derivation differ from nxt_cc_not_checks (< listed only, > crane only): $(tr '\n' ' ' <"$T/names.diff")"
    echo "    crane's checks at $(nxt_revision "$NXT_CRANE_SRC"): $(wc -l <"$T/table.names") checks" >&2
    nxt_cc_not_checks | awk -F' [|] ' '{ printf "    %-38s -        not a check here: %s\n", $1, $2 }' >&2
    nxt_cc_table | awk -F' [|] ' '{ printf "    %-38s %-8s %s\n", $1, $2, ($4 == "-" ? "" : $4) }' >&2
    for class in fresh ci all vacuous no; do
        echo "    $class: $(nxt_cc_class "$class" | wc -l)" >&2
    done

    if [ "$NXT_NIX" = 2.8 ]; then
        echo "    (the reasons are shown on Nix 2.24: Nix 2.8 stops at crane's mkDummySrc first)" >&2
        return 0
    fi
    while IFS=$'\t' read -r check class evidence _why; do
        [ "$class" = no ] || continue
        case "$evidence" in
        eval:*)
            if nix-instantiate "$T/checks.nix" -A "ours.$check" >/dev/null 2>"$T/eval.err"; then
                nxt_fail "$check: evaluates with the adapted lib, but the table says it cannot (${evidence#eval:})"
            fi
            grep -Eq -- "${evidence#eval:}" "$T/eval.err" ||
                nxt_fail "$check: its evaluation fails otherwise than the table says (${evidence#eval:}): $(grep -m1 'error:' "$T/eval.err")"
            by_eval=$((by_eval + 1))
            ;;
        git:*)
            fixture="$T/crane/checks/${evidence#git:}/Cargo.lock"
            grep -q '^source = "git+https://' "$fixture" ||
                nxt_fail "$check: $fixture has no git source, but the table says it needs the network"
            by_git=$((by_git + 1))
            ;;
        -) unchecked=$((unchecked + 1)) ;;
        *) nxt_fail "$check: unknown evidence \`$evidence\` in the table" ;;
        esac
    done < <(nxt_cc_table | awk -F' [|] ' -v OFS='\t' '{ print $1, $2, $3, $4 }')
    echo "    why a check cannot run, shown: $by_eval by its evaluation's error, $by_git by git sources in its fixture, $unchecked not checked" >&2
    # The vacuous check builds nothing of crane's: its build command only touches $out.
    nix-instantiate --eval -E "(import $T/checks.nix).ours.trunk.drvAttrs.buildCommand" >"$T/trunk.cmd" 2>"$T/eval.err" ||
        nxt_fail "evaluating trunk's build command: $(tail -n 3 "$T/eval.err")"
    assert_not_contains "$T/trunk.cmd" "test -f|wasm" "trunk's build command (the table calls it vacuous)"
    assert_eq "$(nxt_cc_class no | wc -l)" "$((by_eval + by_git + unchecked))" "checks of class no, each looked at"
}

# The compilesFresh family (compilesFresh* and docsFresh): each mode's consumer built on its own,
# with the adapted lib in use-zstd, use-symlink and use-nixcache, with crane's lib in its two
# modes; every one passes but the known failures. First, what crane's UNpatched compilesFresh.nix
# builds: its linkFarm references one consumer, the last mode's (nixpkgs' linkFarm keeps one entry
# per name), which is why the copy names each entry by its mode.
test_83_crane_checks_compiles_fresh() {
    nxt_need_nix 2.24 "crane's mkDummySrc (nearly every check's buildDepsOnly) cannot be evaluated by Nix 2.8"
    nxt_cc_setup
    # shellcheck disable=SC2086 # a word list
    nxt_cc_mirror $NXT_CC_CRATE_FIXTURES
    local drv consumers check lib mode modes builds
    cat >"$T/upstream.nix" <<NIX
let c = import $T/checks.nix; in
(c.craneLib.callPackage $NXT_CRANE_SRC/checks/compilesFresh.nix {
  linkFarmFromDrvs = c.nixpkgsLinkFarmFromDrvs;
}) "simple" c.craneLib.cargoBuild { src = $T/crane/checks/simple; }
NIX
    drv=$(nix-instantiate "$T/upstream.nix" 2>"$T/eval.err") ||
        nxt_fail "instantiating crane's own compilesFresh: $(tail -n 3 "$T/eval.err")"
    consumers=$(nix-store -q --references "$drv" | grep -c -- '-simple-build-0\.1\.0\.drv$' || true)
    assert_eq 1 "$consumers" "consumers built by crane's unpatched compilesFresh (two modes listed)"
    nxt_log "crane's unpatched compilesFresh builds $consumers consumer of its 2 modes"

    builds=()
    for check in $(nxt_cc_class fresh); do
        for lib in ours crane; do
            modes="use-zstd use-symlink"
            [ "$lib" = ours ] && modes="$modes use-nixcache"
            for mode in $modes; do
                builds+=("$lib/$check.$mode=$lib.$check.entries.compiles-fresh-$mode")
            done
        done
    done
    nxt_cc_build_all "${builds[@]}"
    nxt_cc_verdict
    # What a pass means here: the consumers compiled only the expected crates (crane's own
    # assertion) and inherited through the mode under test.
    assert_contains "$T/logs/ours/compilesFreshSimple.use-nixcache.log" "nixcache: inheriting" \
        "compilesFreshSimple's use-nixcache consumer inherited through cargo-nixcache"
    assert_contains "$T/logs/ours/compilesFreshSimple.use-zstd.log" "decompressing cargo artifacts" \
        "compilesFreshSimple's use-zstd consumer inherited crane's zstd artifacts (through the adapter)"
    assert_contains "$T/logs/ours/compilesFreshSimple.use-symlink.log" "copying cargo artifacts" \
        "compilesFreshSimple's use-symlink consumer inherited crane's symlink artifacts (through the adapter)"
    nxt_verify_store
}

# Negative control: compilesFresh fails when a dependency recompiles. crane's compilesFresh
# function, the consumer given other RUSTFLAGS than its deps were built with (cargo then compiles
# byteorder again): every mode's consumer fails with crane's own message.
test_83_crane_checks_negative_control() {
    nxt_need_nix 2.24 "crane's mkDummySrc (nearly every check's buildDepsOnly) cannot be evaluated by Nix 2.8"
    nxt_cc_setup
    nxt_cc_mirror simple
    local mode
    cat >"$T/negative.nix" <<NIX
let c = import $T/checks.nix; in
(c.compilesFreshOf c.oursLib) "simple"
  (args: c.oursLib.cargoBuild (args // { RUSTFLAGS = "--cfg nixcache_negative_control"; }))
  { src = $T/crane/checks/simple; }
NIX
    for mode in use-zstd use-symlink use-nixcache; do
        nxt_build_fails "$T/negative.nix" -A "entries.compiles-fresh-$mode"
        assert_contains "$T/build.log" '^expected "simple"$' "$mode: crane's freshness assertion"
        assert_contains "$T/build.log" '^but got +"byteorder$' "$mode: byteorder compiled again"
        echo "    negative control, $mode: $(grep -A2 '^for command' "$T/build.log" | tr '\n' ' ')" >&2
    done
}

# Every check of class `ci`, built with the adapted lib; under NXT_CRANE_CHECKS=all, those of
# class `all` too, and every one also with crane's lib (the table's crane column: crane and the
# emulation are pinned, so CI spends its time on ours). Every one passes but the known failures.
test_83_crane_checks_run() {
    nxt_need_nix 2.24 "crane's mkDummySrc (nearly every check's buildDepsOnly) cannot be evaluated by Nix 2.8"
    nxt_cc_setup
    local checks check lib libs=ours builds fixtures="$NXT_CC_CRATE_FIXTURES"
    checks=$(nxt_cc_class ci)
    if [ "${NXT_CRANE_CHECKS:-}" = all ]; then
        libs="ours crane"
        checks="$checks $(nxt_cc_class all)"
        fixtures="$fixtures $NXT_CC_CRATE_FIXTURES_ALL"
    else
        nxt_log "CI's set, with the adapted lib only; NXT_CRANE_CHECKS=all builds these too, and all with crane's lib: $(nxt_cc_class all | tr '\n' ' ')"
    fi
    # shellcheck disable=SC2086 # a word list
    nxt_cc_mirror $fixtures
    builds=()
    for check in $checks; do
        for lib in $libs; do
            builds+=("$lib/$check=$lib.$check")
        done
    done
    # What crane's own CI does not build of these (nixpkgs' linkFarm keeps one entry per name;
    # checks.nix keeps them all).
    nix-instantiate --eval --strict --json -E "let c = import $T/checks.nix; in
        builtins.mapAttrs (_: v: v.nixcacheSameNamed or [ ]) c.ours" >"$T/same-named.json" 2>"$T/eval.err" ||
        nxt_fail "listing same-named link farm entries: $(tail -n 3 "$T/eval.err")"
    # shellcheck disable=SC2086 # a word list
    python3 - "$T/same-named.json" $checks <<'PY' >&2
import json, sys
same = json.load(open(sys.argv[1]))
for check in sys.argv[2:]:
    if same.get(check):
        print("    built here, not by crane's CI (a linkFarm entry named like a later one): %s: %s"
              % (check, ", ".join(same[check])))
PY
    nxt_cc_build_all "${builds[@]}"
    nxt_cc_verdict
    # The adapted lib's builds went through cargo-nixcache (a pass of `ours` is not crane's).
    assert_contains "$T/logs/ours/runCargoTests.log" "nixcache: inheriting" "runCargoTests inherited through cargo-nixcache"
    nxt_cc_closure_log ours/chainedMultiple >"$T/chained.log"
    assert_contains "$T/chained.log" "nixcache: inheriting" "chainedMultiple's default mode, through cargo-nixcache"
    assert_contains "$T/chained.log" "decompressing cargo artifacts" "chainedMultiple's use-zstd chain, through the adapter"
    nxt_verify_store
}
