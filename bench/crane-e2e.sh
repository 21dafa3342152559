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
# inodes deleted while setting up.
#
# Setup, kept in --state: a fake store (STATE/store, nixbase32 names) holding the corpus's
# vendored crates and its sources (mtime 1, read-only), and the deps built once per profile as
# crane's buildDepsOnly does (`check --all-targets`, `build`, `test --no-run`, all `--locked`);
# wiped when rustc or the corpus change. Every run makes both deps outputs again from that build
# with the binaries being measured, then makes them read-only with mtime 1, as Nix does.
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
# Environment: CRANE_SRC (crane checkout, default /var/cache/cargo-nixcache/crane),
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
rounds=5 warmup=1 settle=60 profiles=release fss=disk,tmpfs state=/work/tgt/crane-e2e corpus=/work/tgt/corpus
out_dir=$repo/bench-out/crane-e2e build=1 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --settle) settle=$2; shift ;;
    --profile) profiles=$2; shift ;;
    --fs) fss=$2; shift ;;
    --state) state=$2; shift ;;
    --corpus) corpus=$2; shift ;;
    --out) out_dir=$2; shift ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "crane-e2e: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "crane-e2e: $*" >&2; }
die() { echo "crane-e2e: error: $*" >&2; exit 1; }

[[ $rounds =~ ^[1-9][0-9]*$ ]] || { log "--rounds wants a positive number, not \`$rounds\`"; exit 2; }
[[ $warmup =~ ^[0-9]+$ ]] || { log "--warmup wants a number, not \`$warmup\`"; exit 2; }
[[ $settle =~ ^[0-9]+$ ]] || { log "--settle wants a number of seconds, not \`$settle\`"; exit 2; }
IFS=, read -ra profile_list <<<"$profiles"
IFS=, read -ra fs_list <<<"$fss"
for p in "${profile_list[@]}"; do
  [[ $p =~ ^[a-z][a-z0-9_-]*$ ]] || { log "--profile: \`$p\` is not a cargo profile name"; exit 2; }
done
for f in "${fs_list[@]}"; do
  case $f in disk|tmpfs) ;; *) log "--fs: \`$f\` is neither disk nor tmpfs"; exit 2 ;; esac
done

crane=${CRANE_SRC:-/var/cache/cargo-nixcache/crane}
hooks=$crane/lib/setupHooks
[ -f "$hooks/inheritCargoArtifactsHook.sh" ] ||
  die "no crane checkout at $crane ($hooks/inheritCargoArtifactsHook.sh is missing); set CRANE_SRC"
for tool in cargo python3 tar zstd sha256sum findmnt sync; do
  command -v "$tool" >/dev/null || die "\`$tool\` is missing"
done
tar --version | head -1 | grep -q 'GNU tar' || die "tar is not GNU tar (crane's hooks need it)"
app=$corpus/app
if [ ! -f "$app/Cargo.lock" ] || [ ! -d "$app/vendor" ]; then
  die "no corpus at $app (Cargo.lock and vendor/ wanted): run /work/shared/bench-corpus.sh $corpus"
fi

target_dir=${CARGO_TARGET_DIR:-$repo/target}
if [ "$build" = 1 ]; then
  log "building release binaries into $target_dir"
  (cd "$repo" && CARGO_TARGET_DIR=$target_dir nice -n 10 cargo build --release --workspace --bins -q)
fi
bin_dir=$target_dir/release
for b in cargo-nixcache nixcache-rustc-wrapper; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing (drop --no-build)"
done
export PATH=$bin_dir:$PATH
# Nothing of the caller's environment may leak into the builds.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_BUILD_BUILD_DIR RUSTC_WRAPPER \
  CARGO_BUILD_RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER NIXCACHE_USER_WRAPPER \
  NIXCACHE_WRAPPER_STRATEGY CARGO_HOME CARGO_INCREMENTAL CARGO_BUILD_INCREMENTAL NIX_STORE \
  cargoArtifacts out
renice -n "${BENCH_NICE:-10}" -p $$ >/dev/null
disk_parent=${TMPDIR:-/tmp}
cores=$(nproc)

# crane's hooks and ours, as a derivation gets them (crane's cargo() logs every call with set -x).
# The registrations at the bottom of each file do nothing that matters here. Like stdenv, this
# code is not written for `set -u`.
set +u
for h in cargoHelperFunctionsHook configureCargoCommonVarsHook configureCargoVendoredDepsHook \
  inheritCargoArtifactsHook installCargoArtifactsHook; do
  # shellcheck disable=SC1090
  source "$hooks/$h.sh" >/dev/null
done
# shellcheck disable=SC2034 # read by the hooks: define the functions, register nothing
dontNixcacheInherit=1 dontNixcacheInstall=1
# shellcheck disable=SC1091
source "$repo/nix/hooks/nixcache-inherit-hook.sh"
# shellcheck disable=SC1091
source "$repo/nix/hooks/nixcache-install-hook.sh"
set -u

store=$state/store
export NIX_STORE_DIR=$store
mkdir -p "$store"
store_path() { python3 "$here/crane_e2e.py" store-path "$store" "$1"; }

# What Nix does to a path it registers: every mtime 1, nothing writable.
canonicalize() {
  find "$1" -exec touch -h -d @1 {} +
  chmod -R a-w "$1"
}
remove_tree() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    chmod -R u+w "$1" 2>/dev/null || true
    rm -rf "$1"
  fi
}
# Nix's unpackPhase: `cp -pr` of the source store path, then `chmod -R u+w`.
unpack_source() {
  cp -pr -- "$source_path" "$1/source"
  chmod -R u+w -- "$1/source"
}
# The build environment every variant shares, in the source root, in a subshell: what Nix and
# crane's configure hooks set. crane's code is not `set -u` clean (nor is stdenv's shell).
crane_env() {
  set +u
  export NIX_BUILD_CORES=$cores TMPDIR=$1/tmp CARGO_PROFILE=$2 CARGO_NET_OFFLINE=true
  mkdir -p "$TMPDIR"
  configureCargoCommonVars
  configureCargoVendoredDepsHook "$vendor"
}
profile_dir() { case $1 in release) echo release ;; dev|test) echo debug ;; *) echo "$1" ;; esac; }

# ---- the store and the deps builds (kept) -------------------------------------------------------
stamp=$( { rustc -vV; command cargo -V; cat "$app/Cargo.toml" "$app/Cargo.lock" "$app/src/main.rs"; } | sha256sum | cut -c1-16)
if [ "$(cat "$state/stamp" 2>/dev/null)" != "$stamp" ]; then
  log "new state in $state (stamp $stamp: rustc and corpus)"
  for p in "$state"/deps-* "$store"/*; do remove_tree "$p"; done
fi
vendor=$(store_path corpus-vendor-cargo-deps)
source_path=$(store_path corpus-source)
if [ ! -d "$vendor" ]; then
  log "store: vendored crates -> $vendor"
  cp -r "$app/vendor" "$vendor.tmp" && mv "$vendor.tmp" "$vendor"
  canonicalize "$vendor"
fi
if [ ! -d "$source_path" ]; then
  mkdir "$source_path.tmp"
  cp -r "$app/Cargo.toml" "$app/Cargo.lock" "$app/src" "$source_path.tmp/"
  mv "$source_path.tmp" "$source_path"
  canonicalize "$source_path"
fi
echo "$stamp" >"$state/stamp"

deps_build() {
  local p=$1 d=$state/deps-$1
  [ -f "$d/done" ] && return 0
  remove_tree "$d"
  mkdir -p "$d/build"
  unpack_source "$d/build"
  log "deps ($p): building as crane's buildDepsOnly does (log: $d/build.log)"
  local t0=$EPOCHREALTIME
  ( cd "$d/build/source" && crane_env "$d/build" "$p" &&
    cargoWithProfile check --locked --all-targets &&
    cargoWithProfile build --locked &&
    cargoWithProfile test --locked --no-run ) >"$d/build.log" 2>&1 || die "deps build failed, see $d/build.log"
  local t1=$EPOCHREALTIME
  echo $(( (${t1/./} - ${t0/./}) / 1000 )) >"$d/build-ms"
  cp -a "$d/build/source/target" "$d/target-plain"
  touch "$d/done"
}

# deps_paths PROFILE: sets crane_deps and ours_deps, the two deps outputs' store paths.
deps_paths() {
  crane_deps=$(store_path "corpus-$1-deps-crane")
  ours_deps=$(store_path "corpus-$1-deps-nixcache")
}
# Both deps outputs, made again by this run's binaries and crane's hook, from the deps build.
deps_outputs() {
  local p=$1 d=$state/deps-$1
  deps_paths "$p"
  remove_tree "$crane_deps"
  remove_tree "$ours_deps"
  remove_tree "$d/build/source/target"
  cp -a "$d/target-plain" "$d/build/source/target"
  ( cd "$d/build/source" && crane_env "$d/build" "$p" &&
    prepareAndInstallCargoArtifactsDir "$crane_deps" target use-zstd "" &&
    nixcacheInstallArtifacts "$ours_deps" target ) >"$d/outputs.log" 2>&1 || die "making the deps outputs failed, see $d/outputs.log"
  canonicalize "$crane_deps"
  canonicalize "$ours_deps"
}

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

# CPU time (user+sys, µs) of this shell's waited-for children, into REPLY; `times` is a builtin
# and the redirection forks nothing.
child_cpu_us() {
  times >"$times_file"
  local _ u s
  { read -r _ _; read -r u s; } <"$times_file"
  REPLY=0
  for x in "$u" "$s"; do
    local m=${x%%m*} sec=${x#*m}
    sec=${sec%s}
    REPLY=$(( REPLY + (10#$m * 60 + 10#${sec%.*}) * 1000000 + 10#${sec#*.} * 1000 ))
  done
}
# step NAME COMMAND...: runs COMMAND in this shell and appends its wall and CPU time.
step() {
  local name=$1 c0 t0 t1
  shift
  child_cpu_us; c0=$REPLY
  t0=$EPOCHREALTIME
  "$@" || { echo "crane-e2e: step $name (\`$*\`) failed" >&2; return 1; }
  t1=$EPOCHREALTIME
  child_cpu_us
  printf '%s\t%s\t%s\t%s\t%s\t%d\t%d\n' "$fs" "$profile" "$round" "$variant" "$name" \
    $(( ${t1/./} - ${t0/./} )) $(( REPLY - c0 )) >>"$results"
}
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
  ( cd "$src"
    crane_env "$top" "$profile"
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

# How busy all CPUs were over the next second (everyone's processes; we run none meanwhile), in
# percent, into REPLY: /proc/stat's cpu line is user nice system idle iowait irq softirq steal.
busy_pct() {
  local -a a b
  read -ra a </proc/stat
  sleep 1
  read -ra b </proc/stat
  local i total=0
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  REPLY=$(( 100 - 100 * (b[4] + b[5] - a[4] - a[5]) / (total > 0 ? total : 1) ))
}
# settle: wait (up to --settle seconds) for a quiet second; records how busy it was.
settle() {
  local waited=0
  while busy_pct; [ "$REPLY" -ge 25 ] && [ "$waited" -lt "$settle" ]; do
    waited=$((waited + 1))
  done
  [ "$REPLY" -lt 25 ] || log "the machine is still ${REPLY} % busy after ${waited} s: going on"
  printf '%s\t%s\t%s\t%s\t%s\n' "$fs" "$profile" "$round" "$REPLY" "$waited" >>"$rounds_tsv"
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
  printf 'crane_src\t%s\ncrane_commit\t%s\n' "$crane" "$(git -C "$crane" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  printf 'nixcache_version\t%s\n' "$(cargo-nixcache --version)"
  printf 'freshen\t%s\n' "${NIXCACHE_FRESHEN:-nixcacheFreshenSources}"
  printf 'freshen_body\t%s\n' "$(declare -f nixcacheFreshenSources | tail -n +3 | head -n -1 | tr -s ' \n' ' ')"
  printf 'nice\t%s\ncores\t%s\n' "$(nice)" "$cores"
  for f in "${fs_list[@]}"; do
    printf 'fs_%s\t%s %s\n' "$f" "${work_dir[$f]}" "$(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "${work_dir[$f]}" | head -1)"
  done
  printf 'store\t%s\n' "$store"
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
