#!/usr/bin/env bash
# The fixup phase (issue 17, point 4): what nixpkgs' stdenv fixupPhase adds to a deps derivation
# after its install phase, on crane's use-zstd output and on ours, interleaved, each against the
# install step (the output's making) of the same round, on the benchmark corpus.
#
#   bench/fixup.sh [--rounds N] [--warmup N] [--settle S] [--profile P] [--state DIR]
#                  [--corpus DIR] [--out DIR] [--no-build] [--keep]
#
# The deps: the corpus built once as crane's buildDepsOnly builds it (bench/crane-lib.sh's
# build_once, through the nixcache wrapper as the adapter builds a deps derivation), linking
# through the emulated nixpkgs compiler wrapper (tests/nix/crane/cc-wrapper.sh, with
# NIX_LDFLAGS="-rpath OUT/lib" as setup.sh sets it): every ELF file (proc-macros, build scripts,
# test and bin executables) carries the self rpath, as under nixpkgs. Kept in --state, a state of
# its own (the compiler differs from the other benchmarks' deps). OUT is a fixed store path: the
# rpath's length is what a real output's is, and it names no existing directory, as $out/lib.
#
# Each round runs crane and nixcache, in an order rotated from round to round, each in a fresh
# copy of that target dir (untimed) at the same path (WORK/build/source, as /build/source):
#   install   crane's prepareAndInstallCargoArtifactsDir (use-zstd) / our
#             nixcacheInstallArtifacts, into a new output (what the deps derivation's install
#             phase does);
#   fixup     stdenv's fixupPhase on that output with tests/nix/crane/fixup-hooks.sh's hooks, in
#             nixpkgs' order, each hook timed as its own step: chmod (`chmod -R u+w,u-s,g-s`),
#             patchELF, auditTmpdir, notEmulated (this emulation's check), patchShebangs, strip,
#             postFixup (the broken-symlink check and make-symlinks-relative). TMPDIR is the
#             round's build dir (the sandbox's /build), NIX_STORE the benchmark's store,
#             STRIP=strip and RANLIB=ranlib as the compiler wrapper's setup hook exports them.
# Untimed, per round: the output's apparent size and file count before and after the fixup, and
# which files the fixup changed (sha256 of every file, before and after).
#
# Options:
#   --rounds N    measured rounds (default 5)
#   --warmup N    untimed rounds first (default 1)
#   --settle S    before each round, wait up to S seconds (default 30) for a second in which the
#                 CPUs are less than 25 % busy (the machine is shared)
#   --profile P   crane's CARGO_PROFILE (default release, crane's default)
#   --state DIR   the store and the deps build (default /work/tgt/fixup)
#   --corpus DIR  the corpus (/work/shared/bench-corpus.sh DIR; default /work/tgt/corpus)
#   --out DIR     results (default bench-out/fixup in the repo)
#   --no-build    use the release binaries already built
#   --keep        keep the work dir and the rounds' outputs
#
# Environment: CRANE_SRC, CARGO_TARGET_DIR (where our release binaries are built), BENCH_NICE
# (default 10), TMPDIR (the work dir's parent, default /tmp), BENCH_SYNC_STEPS (default 1).
# Results: OUT/summary.md (also printed), OUT/results.json, OUT/samples.tsv, OUT/sizes.tsv,
# OUT/logs/. Needs: cargo, python3 (3.9+), GNU tar, zstd, gcc, patchelf, strip. Method:
# docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rounds=5 warmup=1 settle=30 profile=release state=/work/tgt/fixup corpus=/work/tgt/corpus
out_dir=$repo/bench-out/fixup build=1 keep=0
bench_options="--rounds --warmup --settle --profile --state --corpus --out --no-build --keep"
bench_name=fixup
# shellcheck source=bench/crane-lib.sh
source "$here/crane-lib.sh"
own_option() { REPLY=0; }
bench_parse "$@"
want_count --rounds "$rounds" 1
want_count --warmup "$warmup" 0
want_count --settle "$settle" 0
want_profile "$profile"
for tool in gcc patchelf strip ranlib readelf; do
  command -v "$tool" >/dev/null || die "\`$tool\` is missing"
done

bench_setup "$corpus" "$build"
corpus_store "$state"
hooks_file=$repo/tests/nix/crane/fixup-hooks.sh

# The emulated nixpkgs compiler: cc and c++ through cc-wrapper.sh, first on PATH for the build.
cc_bin=$state/cc-wrapper/bin
mkdir -p "$cc_bin"
for c in cc=gcc c++=g++; do
  printf '#!/bin/bash\nexec /bin/bash %q %q "$@"\n' "$repo/tests/nix/crane/cc-wrapper.sh" \
    "$(command -v "${c#*=}")" >"$cc_bin/${c%%=*}"
  chmod +x "$cc_bin/${c%%=*}"
done
self_out=$(store_path "corpus-$profile-deps-fixup")
d=$state/deps-$profile
# shellcheck disable=SC2030 # the build's environment only
( export PATH=$cc_bin:$PATH NIX_STORE=$store NIX_LDFLAGS="-rpath $self_out/lib"
  build_once "$d" "$source_path" "$vendor" "$profile" "deps, through the nixpkgs cc wrapper" 1 ) ||
  die "the deps build failed (see $d/build.log)"
# is_elf FILE: it starts with "\177ELF" (as setup.sh's isELF reads it).
is_elf() {
  local magic
  LC_ALL=C read -r -n 4 magic <"$1" || true
  [ "$magic" = $'\177ELF' ]
}
# Every ELF file the build linked has the self rpath (else the wrapper was not used); the others
# are objects (*.o a build script compiled into its OUT_DIR), which patchelf refuses.
elf_with_self=0 elf_total=0 elf_linked=0
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  elf_total=$((elf_total + 1))
  rpath=$(patchelf --print-rpath "$f" 2>/dev/null) || continue
  elf_linked=$((elf_linked + 1))
  case $rpath in *"$self_out/lib"*) elf_with_self=$((elf_with_self + 1)) ;; esac
done < <(find "$d/target-plain" -type f -print0)
if [ "$elf_linked" = 0 ] || [ "$elf_with_self" != "$elf_linked" ]; then
  die "$elf_with_self of $elf_linked linked ELF files in $d/target-plain have the self rpath: not built through cc-wrapper.sh?"
fi
log "deps: $elf_total ELF files, $elf_linked of them linked, each with the self rpath $self_out/lib"

run_start fixup
sizes=$out_dir/sizes.tsv
printf 'round\tvariant\twhen\tbytes\tfiles\telf_files\tchanged_files\tchanged_bytes\n' >"$sizes"

# size_row WHEN DIR [CHANGED_FILES CHANGED_BYTES]: a row of sizes.tsv for DIR.
size_row() {
  local bytes files elves=0 f
  bytes=$(du -sb "$2" | cut -f1)
  files=$(find "$2" -type f | wc -l)
  while IFS= read -r -d '' f; do
    ! is_elf "$f" || elves=$((elves + 1))
  done < <(find "$2" -type f -print0)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$variant" "$1" "$bytes" "$files" "$elves" \
    "${3:-}" "${4:-}" >>"$sizes"
}
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum); }

# The fixup phase's steps, as stdenv-setup.sh's fixupPhase runs them with fixup-hooks.sh sourced.
fixup_chmod() { chmod -R u+w,u-s,g-s "$outp"; }
fixup_hook() { prefix=$outp eval "$1"; }
fixup_post() {
  local h
  for h in "${postFixupHooks[@]}"; do eval "$h"; done
}

# run_variant: one deps output made and fixed up as $variant; $round set.
run_variant() {
  local top=$w/build logs=$out_dir/logs/$round-$variant outp
  outp=$(store_path "fixup-$run_id-$round-$variant")
  round_outputs+=("$outp")
  mkdir -p "$top"
  unpack_source "$top"
  cp -a "$d/target-plain" "$top/source/target"
  sync -f "$top"
  step_key="$round	$variant"
  ( cd "$top/source"
    crane_env "$top" "$profile" || exit 1
    case $variant in
      crane) step install prepareAndInstallCargoArtifactsDir "$outp" target use-zstd "" ;;
      nixcache) step install nixcacheInstallArtifacts "$outp" target ;;
    esac
  ) >"$logs.install.log" 2>&1 || die "round $round: $variant's install failed; see $logs.install.log"
  size_row before "$outp"
  sums "$outp" >"$logs.before.sums"
  # The fixup phase, in a shell that has what a derivation's setup gives the hooks.
  ( cd "$top/source"
    set +u
    # shellcheck disable=SC2031 # this subshell's own
    export TMPDIR=$top NIX_BUILD_TOP=$top NIX_STORE=$store NIX_BUILD_CORES=$cores STRIP=strip RANLIB=ranlib
    # shellcheck disable=SC2034 # read by the hooks
    initialPath="/usr /" outputs=out out=$outp
    fixupOutputHooks=() postFixupHooks=()
    # shellcheck disable=SC1090
    source "$hooks_file"
    [ "${#fixupOutputHooks[@]}" = 5 ] || { echo "fixup-hooks.sh registers ${#fixupOutputHooks[@]} fixupOutput hooks, not 5" >&2; exit 1; }
    local names=(patchELF auditTmpdir notEmulated patchShebangs strip) i
    step chmod fixup_chmod
    for i in "${!names[@]}"; do
      step "${names[i]}" fixup_hook "${fixupOutputHooks[i]}"
    done
    step postFixup fixup_post
  ) >"$logs.fixup.log" 2>&1 || die "round $round: $variant's fixup failed; see $logs.fixup.log"
  sums "$outp" >"$logs.after.sums"
  local changed changed_bytes=0 f
  changed=$(diff "$logs.before.sums" "$logs.after.sums" | grep -c '^>' || true)
  while IFS= read -r f; do
    changed_bytes=$((changed_bytes + $(stat -c %s "$outp/$f")))
  done < <(diff "$logs.before.sums" "$logs.after.sums" | sed -n 's/^> [0-9a-f]*  \.\///p')
  size_row after "$outp" "$changed" "$changed_bytes"
  canonicalize "$outp"
  mkdir -p "$w/trash"
  mv "$top" "$w/trash/$round-$variant"
}

variants=(crane nixcache)
log "sync, then 65 s for ext4 to forget the inodes just deleted (docs/benchmarks.md)"
sync -f "$w"
sleep 65
for ((r = 0; r < warmup + rounds; r++)); do
  if [ "$r" -lt "$warmup" ]; then round=w$((r + 1)); else round=$((r - warmup + 1)); fi
  run_round "$r"
done

{
  run_meta_head "$w"
  printf 'deps_build_ms\t%s\n' "$(cat "$d/build-ms")"
  printf 'deps_target_bytes\t%s\n' "$(du -sb "$d/target-plain" | cut -f1)"
  printf 'deps_target_files\t%s\n' "$(find "$d/target-plain" -type f | wc -l)"
  printf 'deps_elf_files\t%s\n' "$elf_total"
  printf 'deps_elf_linked\t%s\n' "$elf_linked"
  printf 'patchelf\t%s\n' "$(patchelf --version)"
  printf 'self_rpath\t%s/lib\n' "$self_out"
} >"$out_dir/meta.tsv"
python3 "$here/fixup.py" report --out "$out_dir" --work "$w"
