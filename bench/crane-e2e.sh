#!/usr/bin/env bash
# End-to-end inherit benchmark: a "new code" derivation of the corpus (the app crate edited, its
# dependencies inherited), built three ways, interleaved, every figure against cargo's own build
# measured in the same run.
#
#   bench/crane-e2e.sh [--rounds N] [--warmup N] [--settle S] [--profile P] [--fs F]
#                      [--state DIR] [--corpus DIR] [--out DIR] [--no-build] [--keep]
#
#   a. cargo alone: the deps' target dir already in place and writable (copied before timing),
#      then the build;
#   b. crane use-zstd: crane's inheritCargoArtifacts of a use-zstd deps output, the build, then
#      crane's prepareAndInstallCargoArtifactsDir into a new output (its incremental archive);
#   c. cargo-nixcache: `cargo-nixcache unpack`, the stale-binary guard, the rustc wrapper's env,
#      the build, then `cargo-nixcache pack` into a new output.
# The build is crane buildPackage's: `cargoWithProfile build --message-format json-render-diagnostics
# --locked`, with crane's configureCargoCommonVars (CARGO_BUILD_INCREMENTAL=false) and vendored
# sources configured by crane's configureCargoVendoredDepsHook. crane's functions are sourced from
# CRANE_SRC, ours from nix/hooks/. Each build runs in a fresh copy of the sources (copied out of a
# store path with mtime 1, as Nix's unpackPhase does) with one new line in the app's src/main.rs,
# always at the same path (WORK/build/source, as Nix's /build/source). Each step is timed on its
# own: wall time from $EPOCHREALTIME, CPU time of its child processes from `times`. One untimed
# warm-up round, then N rounds, the order of a/b/c rotated each round. Checks: the app binary is
# byte-identical across a/b/c in every round, and every build compiled exactly one unit (the app);
# otherwise the run fails. Before the first disk round: `sync` and 65 s for ext4 to forget the
# inodes deleted while setting up; before every timed step, an untimed `sync` (BENCH_SYNC_STEPS).
#
# Setup, kept in --state: a fake store (STATE/store, nixbase32 names) holding the corpus's
# vendored crates and its sources (mtime 1, read-only), and the deps built once per profile as
# crane's buildDepsOnly does (`check --all-targets`, `build`, `test --no-run`, all `--locked`):
# for crane's output plainly, for ours through the nixcache wrapper, as the crane adapter builds
# a deps derivation that installs our artifacts (so the target holds cargo's rustc probes for the
# wrapper); wiped when rustc or the corpus change. Every run makes both deps outputs again from
# those builds with the binaries being measured, then makes them read-only with mtime 1, as Nix
# does.
#
# Options:
#   --rounds N    measured rounds (default 5)
#   --warmup N    untimed warm-up rounds first (default 1)
#   --settle S    before each round, wait up to S seconds (default 60; 0: no wait) for a second in
#                 which the machine's CPUs are less than 25 % busy: the machine is shared
#   --profile P   crane's CARGO_PROFILE: release (crane's default), dev, or release,dev
#                 (default release)
#   --fs F        where the builds run: disk (a new dir under TMPDIR, default /tmp), tmpfs (under
#                 /dev/shm), or disk,tmpfs (default)
#   --state DIR   the store and the deps builds (default /work/tgt/crane-e2e, ~2 GB per profile)
#   --corpus DIR  the corpus (/work/shared/bench-corpus.sh DIR; default /work/tgt/corpus)
#   --out DIR     results (default bench-out/crane-e2e in the repo)
#   --no-build    use the release binaries already built
#   --keep        keep the build trees and the rounds' outputs instead of removing them at the end
#
# Environment: BENCH_SYNC_STEPS (default 1: `sync` before every timed step, untimed; 0: not),
# CRANE_SRC (crane checkout, default /var/cache/cargo-nixcache/crane),
# CARGO_TARGET_DIR (where our release binaries are built; default the repo's target/),
# BENCH_NICE (niceness of the whole run, default 10), TMPDIR (the disk runs' parent),
# NIXCACHE_FRESHEN (the stale-binary guard: a command line run with `eval` in the source root,
# after unpack, with $cargoArtifacts set; default `nixcacheFreshenSources`, from
# nix/hooks/nixcache-inherit-hook.sh).
#
# Results: OUT/summary.md (also printed), OUT/results.json, OUT/samples.tsv. On disk the build
# trees stay until the end of the run (~1 GB per round in release, 1.5 GB in dev;
# docs/benchmarks.md says why).
# Needs: cargo, python3 (3.9+), GNU tar, zstd, sha256sum, findmnt. Method: docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rounds=5 warmup=1 settle=60 profile=release fss=disk,tmpfs state=/work/tgt/crane-e2e corpus=/work/tgt/corpus
out_dir=$repo/bench-out/crane-e2e build=1 keep=0
bench_options="--rounds --warmup --settle --profile --state --corpus --out --no-build --keep"
bench_name=crane-e2e
# shellcheck source=bench/crane-lib.sh
source "$here/crane-lib.sh"
own_option() {
  REPLY=2
  case $1 in
    --fs) want_value "$@"; fss=$2 ;;
    *) REPLY=0 ;;
  esac
}
bench_parse "$@"
want_count --rounds "$rounds" 1
want_count --warmup "$warmup" 0
want_count --settle "$settle" 0
IFS=, read -ra profile_list <<<"$profile"
IFS=, read -ra fs_list <<<"$fss"
for p in "${profile_list[@]}"; do want_profile "$p"; done
for f in "${fs_list[@]}"; do
  case $f in disk|tmpfs) ;; *) usage_error "--fs: \`$f\` is neither disk nor tmpfs" ;; esac
done

bench_setup "$corpus" "$build"
disk_parent=${TMPDIR:-/tmp}
corpus_store "$state"

# ---- the rounds ---------------------------------------------------------------------------------
run_id=$(date +%Y%m%d-%H%M%S)-$$
declare -A work_dir=()
round_outputs=()
cleanup() {
  [ "$keep" = 1 ] && { log "kept: ${work_dir[*]} and ${round_outputs[*]}"; return; }
  for o in "${round_outputs[@]}"; do remove_tree "$o"; done
  for w in "${work_dir[@]}"; do remove_tree "$w"; done
  # Written-back inode tables shorten ext4's memory of these deletions from 360 s to 60 s, for
  # whoever creates files on this disk next (docs/benchmarks.md).
  sync -f "$state"
}
trap cleanup EXIT
for f in "${fs_list[@]}"; do
  if [ "$f" = disk ]; then
    work_dir[$f]=$(mktemp -d "$disk_parent/crane-e2e.XXXXXX")
    # Each build tree in a block group of its own (bench/bench.py's Loc says why).
    chattr +T "${work_dir[$f]}" 2>/dev/null || log "chattr +T failed: disk trees share block groups"
  else
    work_dir[$f]=$(mktemp -d /dev/shm/crane-e2e.XXXXXX)
  fi
  fstype=$(findmnt -n -o FSTYPE -T "${work_dir[$f]}" | head -1)
  if { [ "$f" = tmpfs ] && [ "$fstype" != tmpfs ]; } || { [ "$f" = disk ] && [ "$fstype" = tmpfs ]; }; then
    log "warning: the $f runs are on $fstype (${work_dir[$f]})"
  fi
done
results=$out_dir/samples.tsv
checks=$out_dir/checks.tsv
meta=$out_dir/meta.tsv
mkdir -p "$out_dir"
printf 'fs\tprofile\tround\tvariant\tstep\twall_us\tcpu_us\n' >"$results"
printf 'fs\tprofile\tround\tvariant\tbinary_sha256\tcompiled_units\n' >"$checks"
rounds_tsv=$out_dir/rounds.tsv
printf 'fs\tprofile\tround\tbusy_pct\twaited_s\n' >"$rounds_tsv"
times_file=${work_dir[${fs_list[0]}]}/times

cargo_build() {
  cargoWithProfile build --message-format json-render-diagnostics --locked \
    >"$TMPDIR/cargoBuildLog.json" 2>"$TMPDIR/cargo-build.stderr"
}
freshen() { eval "${NIXCACHE_FRESHEN:-nixcacheFreshenSources}"; }
record_binary() {
  local bin sum units
  bin=target/$(profile_dir "$profile")/corpus-app
  sum=$(sha256sum "$bin" | cut -d' ' -f1)
  units=$(grep -c '^ *Compiling ' "$TMPDIR/cargo-build.stderr" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$fs" "$profile" "$round" "$variant" "$sum" "$units" >>"$checks"
}

# run_variant: one build of $variant in a fresh tree; $fs, $profile, $round set.
run_variant() {
  local w=${work_dir[$fs]} d=$state/deps-$profile
  local top=$w/build src=$w/build/source outp=
  if [ "$variant" != cargo ]; then
    outp=$(store_path "e2e-$run_id-$fs-$profile-$round-$variant")
    round_outputs+=("$outp")
  fi
  mkdir "$top"
  unpack_source "$top"
  # The new code: one line more in the app crate, kept in the binary (#[used]), so that each
  # round's binary differs from the last one and the identity check means something.
  echo "#[used] static NIXCACHE_BENCH_EDIT: [u8; ${#round}] = *b\"$round\";" >>"$src/src/main.rs"
  [ "$variant" != cargo ] || cp -a "$d/target-plain" "$src/target"
  sync -f "$top"
  step_key="$fs	$profile	$round	$variant"
  ( cd "$src"
    crane_env "$top" "$profile" || exit 1
    case $variant in
      cargo)
        step build cargo_build
        record_binary ;;
      crane)
        step inherit inheritCargoArtifacts "$crane_deps" target
        step build cargo_build
        record_binary
        step install prepareAndInstallCargoArtifactsDir "$outp" target use-zstd "$crane_deps" ;;
      nixcache)
        cargoArtifacts=$ours_deps
        # shellcheck disable=SC2086 # nixcacheUnpackFlags: a list of words, as in the hook
        step unpack cargo-nixcache unpack "$cargoArtifacts" --target-dir target ${nixcacheUnpackFlags:-}
        step freshen freshen
        step env nixcacheSetupWrapper
        step build cargo_build
        record_binary
        step pack nixcacheInstallArtifacts "$outp" target ;;
    esac ) >"$w/$profile-$round-$variant.log" 2>&1 ||
    die "$fs $profile round $round: $variant failed; see $w/$profile-$round-$variant.log and $top"
  cp "$top/tmp/cargo-build.stderr" "$w/$profile-$round-$variant.cargo.stderr"
  if [ "$fs" = tmpfs ]; then
    remove_tree "$top"
  else
    # Removing now would slow the next tree's inode allocation (docs/benchmarks.md): later.
    mkdir -p "$w/trash"
    mv "$top" "$w/trash/$profile-$round-$variant"
  fi
}

variants=(cargo crane nixcache)
started=$EPOCHREALTIME
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for profile in "${profile_list[@]}"; do
  deps_build "$profile"
  deps_outputs "$profile"
done
if [ -n "${work_dir[disk]:-}" ]; then
  # Making the deps outputs deleted thousands of inodes (and a previous run, if any, many more):
  # on this ext4 without a journal, creating files next to inodes deleted less than 60 s ago (360 s
  # while their inode table is not written back) costs up to 15x more CPU in the kernel. Seen:
  # unpack 780 ms instead of 55 ms, crane's inherit 2x its CPU, for the first 6 minutes after the
  # previous run's cleanup. So: write everything back, then wait the 60 s out.
  log "disk: sync, then 65 s for ext4 to forget the inodes just deleted (docs/benchmarks.md)"
  sync -f "${work_dir[disk]}"
  sleep 65
fi
for profile in "${profile_list[@]}"; do
  deps_paths "$profile"
  for fs in "${fs_list[@]}"; do
    for ((r = 0; r < warmup + rounds; r++)); do
      if [ "$r" -lt "$warmup" ]; then round=w$((r + 1)); else round=$((r - warmup + 1)); fi
      k=$((r % ${#variants[@]}))
      order=("${variants[@]:k}" "${variants[@]:0:k}")
      settle_key="$fs	$profile	$round"
      settle
      log "$profile, $fs, round $round: ${order[*]} (machine ${REPLY} % busy before)"
      for variant in "${order[@]}"; do run_variant; done
    done
  done
done
elapsed=$(( (${EPOCHREALTIME/./} - ${started/./}) / 1000000 ))

{
  printf 'key\tvalue\n'
  printf 'run_id\t%s\n' "$run_id"
  printf 'elapsed_s\t%s\n' "$elapsed"
  printf 'loadavg_start\t%s\nloadavg_end\t%s\n' "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
  run_meta
  printf 'freshen\t%s\n' "${NIXCACHE_FRESHEN:-nixcacheFreshenSources}"
  printf 'freshen_body\t%s\n' "$(declare -f nixcacheFreshenSources | tail -n +3 | head -n -1 | tr -s ' \n' ' ')"
  for f in "${fs_list[@]}"; do
    printf 'fs_%s\t%s %s\n' "$f" "${work_dir[$f]}" "$(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "${work_dir[$f]}" | head -1)"
  done
  for p in "${profile_list[@]}"; do
    d=$state/deps-$p
    deps_paths "$p"
    printf 'deps_%s_build_ms\t%s\n' "$p" "$(cat "$d/build-ms")"
    printf 'deps_%s_target_bytes\t%s\n' "$p" "$(du -sb "$d/target-plain" | cut -f1)"
    printf 'deps_%s_target_entries\t%s\n' "$p" "$(find "$d/target-plain" | wc -l)"
    printf 'deps_%s_crane_archive_bytes\t%s\n' "$p" "$(stat -c %s "$crane_deps/target.tar.zst")"
    printf 'deps_%s_nixcache_archive_bytes\t%s\n' "$p" "$(du -cb "$ours_deps"/symlinks.tar* | tail -1 | cut -f1)"
  done
} >"$meta"
python3 "$here/crane_e2e.py" report --out "$out_dir" --work "${work_dir[${fs_list[0]}]}"
