# shellcheck shell=bash
# What the crane-style benchmarks share: bench/crane-e2e.sh, bench/layered.sh, bench/devshell.sh.
# Sourced by them before their options are parsed; they set `bench_name` (the log prefix), `here`
# (bench/) and `repo` first.
#
# - bench_parse ARGS: the command line (the options they all take, and their own_option);
#   want_count, want_profile: checks.
# - bench_setup CORPUS BUILD: checks the tools, crane's checkout and the corpus; builds our release
#   binaries (BUILD=1) and puts them first on PATH; clears the caller's cargo environment; renices
#   the run (BENCH_NICE, default 10); sources crane's hooks and ours, as a derivation gets them.
# - corpus_store STATE: a directory laid out like a Nix store (STATE/store, nixbase32 names)
#   holding the corpus's vendored crates ($vendor) and sources ($source_path), mtime 1 and
#   read-only; STATE is wiped when rustc or the corpus change.
# - deps_build PROFILE: the corpus's deps built once per profile as crane's buildDepsOnly builds
#   them (build_once), kept in STATE/deps-PROFILE (target-plain, build-ms); deps_outputs PROFILE
#   makes crane's use-zstd output ($crane_deps) and ours ($ours_deps) again from it, with this
#   run's binaries.
# - step NAME CMD...: runs CMD in this shell and appends "$step_key, NAME, wall µs, CPU µs" to
#   $results (CPU: user+sys of the waited-for children, from `times`, so no timer forks); when CMD
#   fails it exits (call it in a subshell).
# - settle: waits up to $settle seconds for a second in which the CPUs are < 25 % busy (the
#   machine is shared) and appends "$settle_key, busy %, waited s" to $rounds_tsv.

log() { echo "$bench_name: $*" >&2; }
die() { echo "$bench_name: error: $*" >&2; exit 1; }
usage_error() { echo "$bench_name: $* (see --help)" >&2; exit 2; }

# bench_parse ARGS...: the command line. The script's own options go to its `own_option ARG
# [VALUE]`, which sets REPLY to the number of words it used (0: not one of its own); then
# --rounds, --warmup, --settle, --profile, --state, --corpus, --out (each with a value),
# --no-build, --keep, those of them in $bench_options; -h/--help prints the script's header.
bench_parse() {
  while [ $# -gt 0 ]; do
    own_option "$@"
    [ "$REPLY" -gt 0 ] || bench_option "$@"
    [ "$REPLY" -gt 0 ] || usage_error "unknown argument \`$1\`"
    shift "$REPLY"
  done
  # The builds run in other directories.
  state=$(realpath -m -- "$state") corpus=$(realpath -m -- "$corpus") out_dir=$(realpath -m -- "$out_dir")
}
want_value() { [ $# -ge 2 ] || usage_error "$1 wants a value"; }
bench_option() {
  REPLY=2
  case " $bench_options -h --help " in *" $1 "*) ;; *) REPLY=0; return ;; esac
  case $1 in
    --rounds|--warmup|--settle|--profile|--state|--corpus|--out) want_value "$@" ;;
  esac
  case $1 in
    --rounds) rounds=$2 ;;
    --warmup) warmup=$2 ;;
    --settle) settle=$2 ;;
    --profile) profile=$2 ;;
    --state) state=$2 ;;
    --corpus) corpus=$2 ;;
    --out) out_dir=$2 ;;
    --no-build) build=0; REPLY=1 ;;
    --keep) keep=1; REPLY=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  esac
}
# want_count OPTION VALUE MIN: VALUE is a whole number, at least MIN (0 or 1).
want_count() {
  [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] || usage_error "$1 wants a number >= $3, not \`$2\`"
}
want_profile() {
  [[ $1 =~ ^[a-z][a-z0-9_-]*$ ]] || usage_error "--profile: \`$1\` is not a cargo profile name"
}

bench_setup() {
  local corpus=$1 build=$2 tool b
  crane=${CRANE_SRC:-$here/../../shared/crane}
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

  local target_dir=${CARGO_TARGET_DIR:-$repo/target}
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
    cargoArtifacts cargoVendorDir out IN_NIX_SHELL nixcacheStableVendorDir nixcacheVendorConfig \
    NIX_BUILD_TOP
  renice -n "${BENCH_NICE:-10}" -p $$ >/dev/null
  cores=$(nproc)

  # crane's hooks and ours, as a derivation gets them (crane's cargo() logs every call with
  # set -x). The registrations at the bottom of each file do nothing that matters here; ours are
  # switched off. Like stdenv, this code is not written for `set -u`.
  set +u
  for b in cargoHelperFunctionsHook configureCargoCommonVarsHook configureCargoVendoredDepsHook \
    inheritCargoArtifactsHook installCargoArtifactsHook; do
    # shellcheck disable=SC1090
    source "$hooks/$b.sh" >/dev/null
  done
  # shellcheck disable=SC2034 # read by the hooks: define the functions, register nothing
  dontNixcacheInherit=1 dontNixcacheInstall=1
  # shellcheck disable=SC1091
  source "$repo/nix/hooks/nixcache-inherit-hook.sh"
  # shellcheck disable=SC1091
  source "$repo/nix/hooks/nixcache-install-hook.sh"
  # shellcheck disable=SC1091 # sourcing only defines its functions and registers on shellHook
  source "$repo/nix/hooks/nixcache-shell-hook.sh"
  # shellcheck disable=SC1091 # without nixcacheStableVendorDir it only defines its function
  source "$repo/nix/hooks/nixcache-vendor-hook.sh"
  set -u
}

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
# unpack_source DIR [SOURCE]: Nix's unpackPhase, `cp -pr` of the source store path (default
# $source_path) to DIR/source, then `chmod -R u+w`.
unpack_source() {
  cp -pr -- "${2:-$source_path}" "$1/source"
  chmod -R u+w -- "$1/source"
}
# crane_env DIR PROFILE [VENDOR [FIXED_TOP]]: the build environment every variant shares, in the
# source root: what Nix and crane's configure hooks set (vendored crates from VENDOR, default
# $vendor). With FIXED_TOP, what `nixcacheStableVendorDir = true` adds after them, FIXED_TOP
# standing in for the sandbox's /build (the same dir for every build that passes it). Call it in
# a subshell. crane's code is not `set -u` clean (nor is stdenv's shell).
crane_env() {
  set +u
  export NIX_BUILD_CORES=$cores TMPDIR=$1/tmp CARGO_PROFILE=$2 CARGO_NET_OFFLINE=true
  mkdir -p "$TMPDIR"
  configureCargoCommonVars
  configureCargoVendoredDepsHook "${3:-$vendor}"
  if [ -n "${4:-}" ]; then
    mkdir -p "$4"
    NIX_BUILD_TOP=$4 nixcacheStableVendor "${3:-$vendor}"
  fi
}
profile_dir() { case $1 in release) echo release ;; dev|test) echo debug ;; *) echo "$1" ;; esac; }

# crane_deps_only PREFIX [RUNNER]: what crane's buildDepsOnly runs, in order (its
# cargoCheckCommand, cargoBuildCommand and cargoTestCommand with the default cargoExtraArgs and
# cargoTestExtraArgs), each command's JSON messages (for counting units) into PREFIX{check,build,
# test}.json. RUNNER (e.g. `step`) runs each command, given the command's name first.
crane_deps_only() {
  local out=$1 run=${2:-unnamed} j=(--message-format json-render-diagnostics)
  "$run" check cargoWithProfile check --locked --all-targets "${j[@]}" >"${out}check.json" &&
    "$run" build cargoWithProfile build --locked "${j[@]}" >"${out}build.json" &&
    "$run" test cargoWithProfile test --locked --no-run "${j[@]}" >"${out}test.json"
}
unnamed() { shift; "$@"; }

# ---- the store and the deps builds (kept) -------------------------------------------------------
# store_add STORE_PATH SOURCE...: a new store path holding copies of the SOURCEs (`DIR/.`: a
# directory's contents), registered as Nix does (mtime 1, read-only); nothing when it exists.
store_add() {
  local dest=$1
  shift
  [ ! -d "$dest" ] || return 0
  remove_tree "$dest.tmp"
  mkdir "$dest.tmp"
  cp -r "$@" "$dest.tmp/"
  mv "$dest.tmp" "$dest"
  canonicalize "$dest"
}
corpus_store() {
  state=$1
  store=$state/store
  export NIX_STORE_DIR=$store
  mkdir -p "$store"
  stamp=$( { rustc -vV; command cargo -V; cat "$app/Cargo.toml" "$app/Cargo.lock" "$app/src/main.rs"; } | sha256sum | cut -c1-16)
  if [ "$(cat "$state/stamp" 2>/dev/null)" != "$stamp" ]; then
    log "new state in $state (stamp $stamp: rustc and corpus)"
    local p
    for p in "$state"/* "$store"/*; do
      [ "$p" = "$store" ] || remove_tree "$p"
    done
  fi
  vendor=$(store_path corpus-vendor-cargo-deps)
  source_path=$(store_path corpus-source)
  store_add "$vendor" "$app/vendor/."
  store_add "$source_path" "$app/Cargo.toml" "$app/Cargo.lock" "$app/src"
  echo "$stamp" >"$state/stamp"
}

# build_once DIR SOURCE VENDOR PROFILE WHAT [WRAPPED [FIXED_TOP]]: SOURCE built as crane's
# buildDepsOnly builds it, against VENDOR (through FIXED_TOP/nixcache-vendor, see crane_env), once:
# kept in DIR (target-plain, build-ms, the JSON messages, build.log). WRAPPED=1: through the
# nixcache wrapper, as the adapter builds a deps derivation that installs our artifacts
# (nixcacheWrapperForPack), so the target holds cargo's rustc probes for the wrapper, as its
# consumers will ask them.
build_once() {
  local d=$1 p=$4 wrap=:
  [ "${6:-}" != 1 ] || wrap=nixcacheWrapperForPack
  [ -f "$d/done" ] && return 0
  remove_tree "$d"
  mkdir -p "$d/build"
  unpack_source "$d/build" "$2"
  log "$5 ($p): building as crane's buildDepsOnly does (log: $d/build.log)"
  local t0=$EPOCHREALTIME
  ( cd "$d/build/source" && crane_env "$d/build" "$p" "$3" "${7:-}" && $wrap && crane_deps_only "$d/" ) >"$d/build.log" 2>&1 ||
    die "$5 build failed, see $d/build.log"
  local t1=$EPOCHREALTIME
  echo $(( (${t1/./} - ${t0/./}) / 1000 )) >"$d/build-ms"
  mv "$d/build/source/target" "$d/target-plain"
  touch "$d/done"
}
# deps_build PROFILE: crane's deps (plain) and ours (through the wrapper), each built once.
deps_build() {
  build_once "$state/deps-$1" "$source_path" "$vendor" "$1" deps
  build_once "$state/deps-$1-wrapped" "$source_path" "$vendor" "$1" "deps, through the wrapper" 1
}

# deps_paths PROFILE: sets crane_deps and ours_deps, the two deps outputs' store paths.
deps_paths() {
  crane_deps=$(store_path "corpus-$1-deps-crane")
  ours_deps=$(store_path "corpus-$1-deps-nixcache")
}
# Both deps outputs, made again by this run's binaries and crane's hook, from the deps builds.
deps_outputs() {
  local p=$1 d=$state/deps-$1 w=$state/deps-$1-wrapped
  deps_paths "$p"
  remove_tree "$crane_deps"
  remove_tree "$ours_deps"
  remove_tree "$d/build/source/target"
  remove_tree "$w/build/source/target"
  cp -a "$d/target-plain" "$d/build/source/target"
  cp -a "$w/target-plain" "$w/build/source/target"
  ( cd "$d/build/source" && crane_env "$d/build" "$p" &&
    prepareAndInstallCargoArtifactsDir "$crane_deps" target use-zstd "" ) >"$d/outputs.log" 2>&1 ||
    die "making crane's deps output failed, see $d/outputs.log"
  ( cd "$w/build/source" && crane_env "$w/build" "$p" &&
    nixcacheInstallArtifacts "$ours_deps" target ) >"$w/outputs.log" 2>&1 ||
    die "making our deps output failed, see $w/outputs.log"
  canonicalize "$crane_deps"
  canonicalize "$ours_deps"
}

# ---- timing -------------------------------------------------------------------------------------
# CPU time (user+sys, µs) of this shell's waited-for children, into REPLY; `times` is a builtin
# and the redirection forks nothing. $times_file: a scratch file in the work dir.
child_cpu_us() {
  times >"$times_file"
  local _ u s x
  { read -r _ _; read -r u s; } <"$times_file"
  REPLY=0
  for x in "$u" "$s"; do
    local m=${x%%m*} sec=${x#*m}
    sec=${sec%s}
    REPLY=$(( REPLY + (10#$m * 60 + 10#${sec%.*}) * 1000000 + 10#${sec#*.} * 1000 ))
  done
}
step() {
  local name=$1 c0 t0 t1
  shift
  # Untimed: the write-back of what earlier steps wrote (a build tree is ~1 GB) otherwise lands
  # in whichever step runs next and costs it up to 10x its time on ext4 (docs/benchmarks.md).
  [ "${BENCH_SYNC_STEPS:-1}" = 0 ] || sync
  child_cpu_us; c0=$REPLY
  t0=$EPOCHREALTIME
  # exit: a variant's steps run in a subshell whose failure ends the run; a later step must not
  # run (and succeed) after a failed one (`set -e` does not hold in a subshell followed by `||`).
  "$@" || { echo "$bench_name: step $name (\`$*\`) failed" >&2; exit 1; }
  t1=$EPOCHREALTIME
  child_cpu_us
  printf '%s\t%s\t%d\t%d\n' "$step_key" "$name" $(( ${t1/./} - ${t0/./} )) $(( REPLY - c0 )) >>"$results"
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
settle() {
  local waited=0
  while busy_pct; [ "$REPLY" -ge 25 ] && [ "$waited" -lt "$settle" ]; do
    waited=$((waited + 1))
  done
  [ "$REPLY" -lt 25 ] || log "the machine is still ${REPLY} % busy after ${waited} s: going on"
  printf '%s\t%s\t%s\n' "$settle_key" "$REPLY" "$waited" >>"$rounds_tsv"
}

# run_start NAME: the run's work dir $w (TMPDIR/NAME.XXXXXX; removed at exit with the store
# paths in $round_outputs, unless --keep), OUT/logs/ (emptied), $results and $rounds_tsv with
# their header lines (per round and variant), $times_file, $run_id, $started, $load_start.
run_start() {
  run_id=$(date +%Y%m%d-%H%M%S)-$$
  started=$EPOCHREALTIME
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  w=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  # Each tree in a block group of its own (bench/bench.py's Loc says why).
  chattr +T "$w" 2>/dev/null || log "chattr +T failed: the trees share block groups"
  round_outputs=()
  trap run_cleanup EXIT
  rm -rf "$out_dir/logs"
  mkdir -p "$out_dir/logs"
  results=$out_dir/samples.tsv
  rounds_tsv=$out_dir/rounds.tsv
  printf 'round\tvariant\tstep\twall_us\tcpu_us\n' >"$results"
  printf 'round\tbusy_pct\twaited_s\n' >"$rounds_tsv"
  times_file=$w/times
}
run_cleanup() {
  [ "$keep" = 1 ] && { log "kept: $w ${round_outputs[*]}"; return; }
  local o
  for o in "${round_outputs[@]}"; do remove_tree "$o"; done
  remove_tree "$w"
  sync -f "$state"
}

# run_round INDEX: one round: $variants rotated by INDEX (no variant always first), after settle;
# run_variant runs each, with $variant set. $round names the round.
run_round() {
  local k=$(( $1 % ${#variants[@]} ))
  order=("${variants[@]:k}" "${variants[@]:0:k}")
  settle_key=$round
  settle
  log "round $round: ${order[*]} (machine ${REPLY} % busy before)"
  for variant in "${order[@]}"; do run_variant; done
}

# The run's facts, as key<TAB>value lines after a header line (the reports read them): WORK is
# where the builds ran; $started, $load_start, $run_id and $profile set.
run_meta_head() {
  printf 'key\tvalue\n'
  printf 'run_id\t%s\nelapsed_s\t%s\nprofile\t%s\n' "$run_id" $(( (${EPOCHREALTIME/./} - ${started/./}) / 1000000 )) "$profile"
  printf 'loadavg_start\t%s\nloadavg_end\t%s\n' "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'work\t%s %s\n' "$1" "$(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "$1" | head -1)"
  run_meta
}
# The machine's and the tools' facts, as key<TAB>value lines.
run_meta() {
  printf 'crane_src\t%s\ncrane_commit\t%s\n' "$crane" "$(git -C "$crane" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  printf 'nixcache_version\t%s\n' "$(cargo-nixcache --version)"
  printf 'nice\t%s\ncores\t%s\n' "$(nice)" "$cores"
  printf 'store\t%s\n' "$store"
}
