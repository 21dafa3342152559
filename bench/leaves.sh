#!/usr/bin/env bash
# Leaf executables inside the archive or linked (issue 21, "pay only for what can be linked"):
# what `pack --inline-executables leaves` (the default) saves in the output against `none`, and
# what it costs unpack, interleaved, every unpack figure against cargo's own build of the
# project's local units in the same round.
#
#   bench/leaves.sh [--project P] [--rounds N] [--warmup N] [--settle S] [--profile P]
#                   [--state DIR] [--corpus DIR] [--ripgrep DIR] [--out DIR] [--no-build] [--keep]
#
# A project is built once as crane's buildDepsOnly builds it (bench/crane-lib.sh's build_once,
# through the nixcache wrapper: `check --all-targets`, `build`, `test --no-run`) from its real
# sources, so its target dir holds what an output that installs artifacts after cargoTest or
# buildPackage holds: the dependencies' libraries and build scripts, and the local packages'
# bins and test executables. Kept in --state.
#   corpus   the 186-crate corpus (/work/shared/bench-corpus.sh DIR): one bin and its (empty)
#            unit-test executable;
#   ripgrep  ripgrep 14.1.1 from crates.io with its vendored dependencies (fetched once into
#            --ripgrep, default /work/tgt/ripgrep: ripgrep.crate, vendor/), `[profile.release]
#            debug = 1` as it ships: the rg bin, its unit tests and its integration tests.
# Each round runs three variants in an order rotated from round to round, each in a fresh
# (untimed) copy of that target dir at the same path (WORK/build/source):
#   inline  nixcacheInstallArtifacts (pack) into a new output, nixcachePackFlags empty; then,
#           into an empty target dir, `cargo-nixcache unpack` of that output (made read-only
#           with mtime 1 first, as Nix registers it), three times (the round's figure is the
#           fastest: this machine's disk has metadata calls of 0.2-0.9 ms that vary 2x from one
#           run to the next, docs/benchmarks.md);
#   link    the same with nixcachePackFlags="--inline-executables none";
#   cargo   the baseline: the local packages' units removed (`cargo clean -p`), then the same
#           three cargo commands, which compile them again (what a derivation that builds them
#           pays; dependencies stay Fresh).
# Untimed, per round: each output's apparent size (du -sb), the bytes in artifacts/ and the
# archive's size; `cargo-nixcache verify` of each output.
#
# Options:
#   --project P   corpus, ripgrep, or corpus,ripgrep (default)
#   --rounds N    measured rounds (default 3)
#   --warmup N    untimed rounds first (default 1)
#   --settle S    before each round, wait up to S seconds (default 30) for a second in which the
#                 CPUs are less than 25 % busy (the machine is shared)
#   --profile P   crane's CARGO_PROFILE (default release, crane's default)
#   --state DIR   the store and the builds (default /work/tgt/leaves)
#   --corpus DIR  the corpus (default /work/tgt/corpus)
#   --ripgrep DIR ripgrep's crate and vendored dependencies (default /work/tgt/ripgrep)
#   --out DIR     results (default bench-out/leaves in the repo)
#   --no-build    use the release binaries already built
#   --keep        keep the work dir and the rounds' outputs
#
# Environment: CRANE_SRC, CARGO_TARGET_DIR (where our release binaries are built), BENCH_NICE
# (default 10), TMPDIR (the work dir's parent, default /tmp), BENCH_SYNC_STEPS (default 1).
# Results: OUT/summary.md (also printed), OUT/results.json, OUT/samples.tsv, OUT/sizes.tsv,
# OUT/logs/. Needs: cargo, python3 (3.9+), GNU tar, zstd; for ripgrep once, crates.io.
# Method and figures: docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rounds=3 warmup=1 settle=30 unpacks=3 profile=release state=/work/tgt/leaves corpus=/work/tgt/corpus
ripgrep=/work/tgt/ripgrep projects=corpus,ripgrep out_dir=$repo/bench-out/leaves build=1 keep=0
bench_options="--rounds --warmup --settle --profile --state --corpus --out --no-build --keep"
bench_name=leaves
# shellcheck source=bench/crane-lib.sh
source "$here/crane-lib.sh"
own_option() {
  REPLY=0
  case $1 in
    --project) want_value "$@"; projects=$2; REPLY=2 ;;
    --ripgrep) want_value "$@"; ripgrep=$2; REPLY=2 ;;
  esac
}
bench_parse "$@"
ripgrep=$(realpath -m -- "$ripgrep")
want_count --rounds "$rounds" 1
want_count --warmup "$warmup" 0
want_count --settle "$settle" 0
want_profile "$profile"
IFS=, read -ra project_list <<<"$projects"
for p in "${project_list[@]}"; do
  case $p in corpus|ripgrep) ;; *) usage_error "--project: \`$p\` is neither corpus nor ripgrep" ;; esac
done

bench_setup "$corpus" "$build"
corpus_store "$state"

# ripgrep's crate and its vendored dependencies, once (crates.io).
rg_version=14.1.1
if [[ " ${project_list[*]} " == *" ripgrep "* ]] && [ ! -f "$ripgrep/vendor.done" ]; then
  log "ripgrep $rg_version: downloading the crate and vendoring its dependencies into $ripgrep (once)"
  mkdir -p "$ripgrep"
  [ -f "$ripgrep/ripgrep.crate" ] ||
    curl -fsSL -o "$ripgrep/ripgrep.crate" "https://static.crates.io/crates/ripgrep/ripgrep-$rg_version.crate"
  rm -rf "$ripgrep/ripgrep-$rg_version" "$ripgrep/vendor"
  tar -xzf "$ripgrep/ripgrep.crate" -C "$ripgrep"
  (cd "$ripgrep/ripgrep-$rg_version" && CARGO_HOME=$ripgrep/cargo-home cargo vendor --locked -q "$ripgrep/vendor") \
    >"$ripgrep/vendor.log" 2>&1 || die "vendoring ripgrep failed, see $ripgrep/vendor.log"
  touch "$ripgrep/vendor.done"
fi

# project_setup P: sets src (the source store path), vend (the vendored crates'), locals (the
# local packages, for `cargo clean -p`) and d (the build, made once).
project_setup() {
  case $1 in
    corpus)
      src=$source_path vend=$vendor locals=(corpus-app) ;;
    ripgrep)
      src=$(store_path "ripgrep-$rg_version-source") vend=$(store_path "ripgrep-$rg_version-vendor")
      store_add "$src" "$ripgrep/ripgrep-$rg_version/."
      store_add "$vend" "$ripgrep/vendor/."
      locals=(ripgrep) ;;
  esac
  d=$state/$1-$profile
  build_once "$d" "$src" "$vend" "$profile" "$1" 1
}

run_start leaves
printf 'project\tround\tvariant\tstep\twall_us\tcpu_us\n' >"$results"
sizes=$out_dir/sizes.tsv
printf 'project\tround\tvariant\toutput_bytes\tartifacts_bytes\tartifacts_files\tarchive_bytes\n' >"$sizes"

# cargo_local: the local packages' units removed, then built again by buildDepsOnly's commands.
cargo_local() {
  local p
  for p in "${locals[@]}"; do cargoWithProfile clean -p "$p" || return 1; done
  crane_deps_only "$logs."
}

run_variant() {
  local top=$w/build logs=$out_dir/logs/$project-$round-$variant outp dest=$w/unpacked
  mkdir -p "$top"
  unpack_source "$top" "$src"
  cp -a "$d/target-plain" "$top/source/target"
  sync -f "$top"
  step_key="$project	$round	$variant"
  if [ "$variant" = cargo ]; then
    ( cd "$top/source" && crane_env "$top" "$profile" "$vend" && step build cargo_local ) \
      >"$logs.log" 2>&1 || die "round $round: $project's cargo build failed; see $logs.log"
  else
    # The same store path every round: the same build packs to the same bytes (checked).
    outp=$(store_path "leaves-$project-$variant")
    remove_tree "$outp"
    round_outputs+=("$outp")
    local flags=
    [ "$variant" = inline ] || flags="--inline-executables none"
    ( cd "$top/source"
      crane_env "$top" "$profile" "$vend" || exit 1
      nixcachePackFlags=$flags step pack nixcacheInstallArtifacts "$outp" target
    ) >"$logs.log" 2>&1 || die "round $round: $project's $variant pack failed; see $logs.log"
    canonicalize "$outp"
    cargo-nixcache verify "$outp" >>"$logs.log" 2>&1 || die "round $round: $variant's output does not verify"
    local art=0 files=0
    if [ -d "$outp/artifacts" ]; then
      art=$(du -sb "$outp/artifacts" | cut -f1)
      files=$(find "$outp/artifacts" -type f | wc -l)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$project" "$round" "$variant" "$(du -sb "$outp" | cut -f1)" \
      "$art" "$files" "$(stat -c %s "$outp/symlinks.tar.zst")" >>"$sizes"
    local i
    for ((i = 1; i <= unpacks; i++)); do
      remove_tree "$dest"
      ( step "unpack$i" cargo-nixcache unpack "$outp" --target-dir "$dest/target" ) >>"$logs.log" 2>&1 ||
        die "round $round: $variant's unpack failed; see $logs.log"
    done
    remove_tree "$dest"
  fi
  remove_tree "$top"
}

variants=(inline link cargo)
for project in "${project_list[@]}"; do
  project_setup "$project"
  for ((r = 0; r < warmup + rounds; r++)); do
    if [ "$r" -lt "$warmup" ]; then round=w$((r + 1)); else round=$((r - warmup + 1)); fi
    run_round "$r"
  done
done

{
  run_meta_head "$w"
  for project in "${project_list[@]}"; do
    d=$state/$project-$profile
    printf '%s_build_ms\t%s\n' "$project" "$(cat "$d/build-ms")"
    printf '%s_target_bytes\t%s\n' "$project" "$(du -sb "$d/target-plain" | cut -f1)"
  done
} >"$out_dir/meta.tsv"
python3 "$here/leaves.py" report --out "$out_dir" --work "$w"
