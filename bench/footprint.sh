#!/usr/bin/env bash
# The footprint of artifacts in the Nix store and in binary caches (issue 21): crane's real lib
# built by REAL Nix (2.24, a private store with sandboxed build users, as the Nix suite runs it)
# over the Nix suite's emulated nixpkgs (tests/nix/crane/nixpkgs.nix), for the benchmark corpus
# and one real project with tests (ripgrep from crates.io), in three install modes: crane's
# use-zstd (its default) and use-symlink, and use-nixcache (the adapter, nix/crane.nix, with the
# binaries of --bin-dir). bench/footprint.nix says what is built: per mode buildDepsOnly, and
# cargoClippy and cargoTest each inheriting it (both install their artifacts, crane's default);
# and `layered`, a cargoTest inheriting the cargoClippy: a chain of three layers.
#
#   bench/footprint.sh [--bin-dir DIR] [--state DIR] [--projects LIST] [--modes LIST]
#                      [--compressions LIST] [--substitute LIST] [--corpus DIR]
#                      [--ripgrep-version V] [--out DIR] [--keep]
#
# Measured per output (deps, clippy, test, layered) and mode, all in the same run:
#   du          `du -sB1` (disk usage) and `du -sb` (apparent size) of the store path
#   nar         its NAR size (`nix path-info --json`), and its closure's (`nix path-info -S`)
#   cache       `nix copy --to file://CACHE?compression=C&parallel-compression=true` of the
#               deps, clippy and test closures, per compression C (zstd, xz): the compressed
#               bytes of each path (its narinfo's FileSize: the .nar.C file) and of its closure
#   optimise    the closure of deps + clippy + test (siblings), and of the layered chain (deps ->
#               clippy -> layered), each copied into an empty store (`local?root=DIR`), then
#               `nix-store --optimise` there: du of the store before and after
#   substitute  for the modes of --substitute: the zstd cache served over HTTP (127.0.0.1), an
#               empty store (`local?root=DIR`, same store dir) that substitutes only from it
#               realises the deps output (timed), then builds buildPackage inheriting it (timed),
#               which must compile no registry unit (cargo's JSON messages in its log)
# Every consumer's log (clippy, test) is read the same way: registry units compiled there are
# reported (0 expected).
#
# Options:
#   --bin-dir DIR       cargo-nixcache and nixcache-rustc-wrapper to measure (default: a release
#                       build of this worktree, made first, into CARGO_TARGET_DIR or target/)
#   --state DIR         kept between runs (default /work/tgt/footprint): the private store (with
#                       GC roots of the last run's outputs: crane's modes do not depend on our
#                       binaries and are not built again), ripgrep's sources and vendored crates
#                       (downloaded once), the staged corpus sources
#   --projects LIST     comma-separated, from corpus,ripgrep (default both)
#   --modes LIST        from use-zstd,use-symlink,use-nixcache (default all three; use-zstd is the
#                       reference of the ratios, so always include it)
#   --compressions LIST from zstd,xz (default both)
#   --substitute LIST   modes whose zstd cache is substituted over HTTP into an empty store
#                       (default use-zstd,use-nixcache; `none`: skip)
#   --corpus DIR        the corpus (/work/shared/bench-corpus.sh DIR; default /work/tgt/corpus)
#   --ripgrep-version V ripgrep from crates.io (default 14.1.1; its [profile.release] has
#                       debug = 1, as the issue's figures)
#   --out DIR           results (default bench-out/footprint in the repo)
#   --keep              keep the work dir (caches, the optimise and substitution stores)
#
# Environment: CRANE_SRC, NIXPKGS_LIB (as the Nix suite: default ../shared/crane,
# ../shared/nixpkgs-lib), NIXCACHE_NIX_NEW (Nix 2.24, default ../shared/nix-2.24), BENCH_NICE
# (default 10), TMPDIR (the work dir's parent, default /tmp).
# Results: OUT/summary.md (also printed), OUT/results.json, OUT/samples.tsv, OUT/logs/.
# Needs: root, Debian's nix-bin (the nixbld build users), cargo, python3, curl (ripgrep, once).
# Method: docs/benchmarks.md ("Footprint in the store and in caches").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin_dir="" state=/work/tgt/footprint projects=corpus,ripgrep modes=use-zstd,use-symlink,use-nixcache
compressions=zstd,xz substitute=use-zstd,use-nixcache corpus=/work/tgt/corpus rg_version=14.1.1
out_dir=$repo/bench-out/footprint keep=0

log() { echo "footprint: $*" >&2; }
die() { echo "footprint: error: $*" >&2; exit 1; }
usage_error() { echo "footprint: $* (see --help)" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --keep) keep=1; shift; continue ;;
    --bin-dir|--state|--projects|--modes|--compressions|--substitute|--corpus|--ripgrep-version|--out)
      [ $# -ge 2 ] || usage_error "$1 wants a value" ;;
    *) usage_error "unknown argument \`$1\`" ;;
  esac
  case $1 in
    --bin-dir) bin_dir=$2 ;;
    --state) state=$2 ;;
    --projects) projects=$2 ;;
    --modes) modes=$2 ;;
    --compressions) compressions=$2 ;;
    --substitute) substitute=$2 ;;
    --corpus) corpus=$2 ;;
    --ripgrep-version) rg_version=$2 ;;
    --out) out_dir=$2 ;;
  esac
  shift 2
done
# want_list NAME VALUE ALLOWED...: VALUE is a comma-separated list of ALLOWED words.
want_list() {
  local name=$1 value=$2 w
  shift 2
  [ -n "$value" ] || usage_error "$name wants at least one of: $*"
  for w in ${value//,/ }; do
    case " $* " in *" $w "*) ;; *) usage_error "$name: \`$w\` is not one of: $*" ;; esac
  done
}
want_list --projects "$projects" corpus ripgrep
want_list --modes "$modes" use-zstd use-symlink use-nixcache
want_list --compressions "$compressions" zstd xz
[ "$substitute" = none ] || want_list --substitute "$substitute" use-zstd use-symlink use-nixcache
case ",$modes," in *,use-zstd,*) ;; *) usage_error "--modes must include use-zstd (the reference)" ;; esac
[[ $rg_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || usage_error "--ripgrep-version: \`$rg_version\` is not a version"
state=$(realpath -m -- "$state") corpus=$(realpath -m -- "$corpus") out_dir=$(realpath -m -- "$out_dir")
[ "$(id -u)" = 0 ] || die "needs root (a private Nix store with build users, as tests/nix/run.sh)"
for tool in cargo python3 curl tar; do command -v "$tool" >/dev/null || die "\`$tool\` is missing"; done
renice -n "${BENCH_NICE:-10}" -p $$ >/dev/null

# The binaries measured.
if [ -z "$bin_dir" ]; then
  target_dir=${CARGO_TARGET_DIR:-$repo/target}
  log "building release binaries into $target_dir"
  (cd "$repo" && CARGO_TARGET_DIR=$target_dir cargo build --release --workspace --bins -q) ||
    die "cargo build --release failed"
  bin_dir=$target_dir/release
fi
bin_dir=$(realpath -- "$bin_dir")
for b in cargo-nixcache nixcache-rustc-wrapper; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing (--bin-dir)"
done

# The Nix suite's harness, on Nix 2.24, with the store in the state dir (T: lib.sh's test dir).
nix_new=${NIXCACHE_NIX_NEW:-$repo/../shared/nix-2.24}
[ -x "$nix_new/bin/nix" ] || die "no Nix 2.24 at $nix_new (NIXCACHE_NIX_NEW)"
# One binary that dispatches on its name (as tests/nix/run.sh links it).
mkdir -p "$state/nix" "$state/nix-bin"
for b in nix nix-build nix-store nix-instantiate; do
  ln -sfn "$(realpath "$nix_new/bin/nix")" "$state/nix-bin/$b"
done
export PATH=$state/nix-bin:$PATH NXT_NIX=2.24 NIXCACHE_BIN_DIR=$bin_dir
T=$state/nix
export T
# shellcheck source=tests/nix/lib.sh
source "$repo/tests/nix/lib.sh"
# shellcheck source=tests/nix/t-80-crane.sh
source "$repo/tests/nix/t-80-crane.sh" # nxt_crane_utils
[ -n "$NXT_CRANE_SRC" ] || die "no crane checkout (\$CRANE_SRC, ../shared/crane)"
[ -n "$NXT_NIXPKGS_LIB" ] || die "no nixpkgs lib (\$NIXPKGS_LIB, ../shared/nixpkgs-lib)"
NXT_CRANE_UTILS=$(nxt_crane_utils)
NXT_EXTRA_SANDBOX_PATHS="$NXT_EXTRA_SANDBOX_PATHS $NXT_CRANE_UTILS"
# shellcheck disable=SC2119 # the default store dir, $T/store
nxt_store_init
rm -rf "$T/tools"
nxt_tools
store=$NIX_STORE_DIR

# ---- the projects (mode-independent, kept) ------------------------------------------------------
# stage_corpus: the corpus app's sources (no .cargo/, no vendor/) in STATE/corpus/src; its vendor
# dir is used where it is.
stage_corpus() {
  local app=$corpus/app d=$state/corpus
  if [ ! -f "$app/Cargo.lock" ] || [ ! -d "$app/vendor" ]; then
    die "no corpus at $app (Cargo.lock and vendor/ wanted): run /work/shared/bench-corpus.sh $corpus"
  fi
  rm -rf "$d/src.tmp"
  mkdir -p "$d/src.tmp"
  cp -r "$app/Cargo.toml" "$app/Cargo.lock" "$app/src" "$d/src.tmp/"
  if [ -d "$d/src" ] && diff -r "$d/src" "$d/src.tmp" >/dev/null; then
    rm -rf "$d/src.tmp"
  else
    rm -rf "$d/src"
    mv "$d/src.tmp" "$d/src"
  fi
  proj_src=$d/src proj_vendor=$app/vendor proj_name=corpus
}
# stage_ripgrep: ripgrep's published crate (it has tests/ and a Cargo.lock) and its vendored
# crates (`cargo vendor --locked`), from crates.io once, in STATE/ripgrep-V.
stage_ripgrep() {
  local d=$state/ripgrep-$rg_version
  if [ ! -f "$d/done" ]; then
    log "ripgrep $rg_version: downloading the crate and vendoring its dependencies (once)"
    rm -rf "$d"
    mkdir -p "$d"
    curl -sSfL -o "$d/ripgrep.crate" "https://static.crates.io/crates/ripgrep/ripgrep-$rg_version.crate" ||
      die "cannot download ripgrep $rg_version from crates.io"
    tar -xzf "$d/ripgrep.crate" -C "$d"
    mv "$d/ripgrep-$rg_version" "$d/src"
    rm -f "$d/src/.cargo_vcs_info.json"
    (cd "$d/src" && CARGO_HOME=$d/cargo-home cargo vendor -q --locked "$d/vendor" >/dev/null) ||
      die "cargo vendor of ripgrep failed"
    rm -rf "$d/cargo-home"
    touch "$d/done"
  fi
  proj_src=$d/src proj_vendor=$d/vendor proj_name=ripgrep
}
# project_expr PROJECT: STATE/PROJECT.nix, bench/footprint.nix over the staged project.
project_expr() {
  "stage_$1"
  cat >"$state/$1.nix" <<NIX
import $here/footprint.nix {
  nixpkgsLib = $NXT_NIXPKGS_LIB;
  craneSrc = $NXT_CRANE_SRC;
  craneUtils = "$NXT_CRANE_UTILS";
  repo = $repo;
  tools = $T/tools;
  src = $proj_src;
  vendor = $proj_vendor;
  pname = "$proj_name";
}
NIX
  echo "$state/$1.nix"
}

# ---- the run ------------------------------------------------------------------------------------
run_id=$(date +%Y%m%d-%H%M%S)-$$
started=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
w=$(mktemp -d "${TMPDIR:-/tmp}/footprint.XXXXXX")
chmod 755 "$w"
cleanup() {
  nxt_http_stop
  if [ "$keep" = 1 ]; then log "kept: $w"; return; fi
  chmod -R u+w "$w" 2>/dev/null || true
  rm -rf "$w"
}
trap cleanup EXIT
# Nothing here may fall back to a flake in the working directory (`nix path-info` without a path).
cd "$w"
rm -rf "$out_dir/logs"
mkdir -p "$out_dir/logs" "$state/roots"
samples=$out_dir/samples.tsv
printf 'project\tmode\twhat\tmetric\tvalue\n' >"$samples"
printf 'round\tbusy_pct\twaited_s\n' >"$out_dir/rounds.tsv"
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$samples"; }
ms_since() { echo $(( (${EPOCHREALTIME/./} - ${1/./}) / 1000 )); }

# build PROJECT MODE WHAT: nix-build of PROJECT.MODE.WHAT (GC-rooted in STATE/roots), its path in
# REPLY; rows: build_ms (0 when it was already valid) and, for a consumer, the registry units its
# log says were compiled (and Fresh).
build() {
  local p=$1 m=$2 what=$3 expr=$state/$1.nix t0 out
  local drv
  drv=$(nix-instantiate "$expr" -A "$m.$what" 2>"$w/instantiate.log") ||
    die "nix-instantiate $p $m.$what: $(tail -n 5 "$w/instantiate.log")"
  out=$(nix-store -q --outputs "$drv")
  if nix-store --check-validity "$out" 2>/dev/null; then
    row "$p" "$m" "$what" build_ms 0
  else
    log "$p: building $m.$what"
    t0=$EPOCHREALTIME
    nxt_nix_build "$expr" -A "$m.$what" || {
      cp "$T/build.log" "$out_dir/logs/$p-$m-$what.build.log"
      die "building $p $m.$what failed: see $out_dir/logs/$p-$m-$what.build.log"
    }
    row "$p" "$m" "$what" build_ms "$(ms_since "$t0")"
  fi
  nix-store --add-root "$state/roots/$p-$m-$what" --indirect -r "$out" >/dev/null
  nix-store -l "$out" >"$out_dir/logs/$p-$m-$what.log" 2>/dev/null || true
  if [ "$what" != deps ]; then
    units_rows "$p" "$m" "$what" "$out_dir/logs/$p-$m-$what.log"
  fi
  REPLY=$out
}
# units_rows PROJECT MODE WHAT LOG: rows registry_compiled, registry_fresh, local_compiled from
# cargo's JSON messages in LOG.
units_rows() {
  local k v
  while read -r k v; do row "$1" "$2" "$3" "$k" "$v"; done < <(python3 "$here/footprint.py" units "$4")
}
# sizes PROJECT MODE WHAT PATH: du (disk, apparent), NAR size, closure (NAR bytes, paths).
sizes() {
  local p=$1 m=$2 what=$3 path=$4
  [ -n "$path" ] || die "sizes $p $m $what: no path"
  row "$p" "$m" "$what" path "$path"
  row "$p" "$m" "$what" du_disk "$(du -sB1 "$path" | cut -f1)"
  row "$p" "$m" "$what" du_apparent "$(du -sb "$path" | cut -f1)"
  row "$p" "$m" "$what" files "$(find "$path" -type f | wc -l)"
  row "$p" "$m" "$what" nar "$(nix-store -q --size "$path")"
  row "$p" "$m" "$what" closure "$(nix path-info -S --json "$path" | python3 "$here/footprint.py" closure-size)"
  row "$p" "$m" "$what" closure_paths "$(nix-store -q --requisites "$path" | wc -l)"
  # The vendor dir is an input of every consumer anyway: the closure without it.
  local -a rest
  mapfile -t rest < <(nix-store -q --requisites "$path" | grep -vxF "${vendor:-/}")
  if [ "${#rest[@]}" = 0 ]; then
    row "$p" "$m" "$what" closure_no_vendor 0
  else
    row "$p" "$m" "$what" closure_no_vendor "$(nix path-info --json "${rest[@]}" | python3 "$here/footprint.py" nar-sum)"
  fi
  nix-store -q --references "$path" | sed "s|^|$p\t$m\t$what\treference\t|" >>"$samples"
}
# cache_sizes PROJECT MODE COMPRESSION CACHE WHAT PATH: the compressed bytes of PATH in CACHE
# (its narinfo's FileSize) and of its closure.
narinfo_field() { sed -n "s/^$2: //p" "$1/$(basename "$3" | cut -c1-32).narinfo"; }
cache_sizes() {
  local p=$1 m=$2 c=$3 cache=$4 what=$5 path=$6 q total=0 n
  row "$p" "$m" "$what" "cache_${c}" "$(narinfo_field "$cache" FileSize "$path")"
  for q in $(nix-store -q --requisites "$path"); do
    n=$(narinfo_field "$cache" FileSize "$q")
    [ -n "$n" ] || die "$q (in the closure of $path) is not in $cache"
    total=$((total + n))
  done
  row "$p" "$m" "$what" "cache_${c}_closure" "$total"
}

# optimise PROJECT MODE WHAT PATH...: nix-store --optimise on a store holding the closures of
# PATHs and nothing else (a chroot store: the same logical store dir, its files in
# ROOT/nix/store); rows optimise_before, optimise_after (du) and optimise_files (Nix's count).
optimise() {
  local p=$1 m=$2 what=$3 root=$w/opt-$1-$2-$3
  shift 3
  log "$p: $m: nix-store --optimise of $what in an empty store"
  nix copy --no-check-sigs --to "local?root=$root" "$@" >"$out_dir/logs/$p-$m-$what-opt-copy.log" 2>&1 ||
    die "nix copy to local?root=$root failed: $(tail -n 3 "$out_dir/logs/$p-$m-$what-opt-copy.log")"
  row "$p" "$m" "$what" optimise_before "$(du -sB1 "$root/nix/store" | cut -f1)"
  nix-store --store "local?root=$root" --optimise >"$out_dir/logs/$p-$m-$what-optimise.log" 2>&1 ||
    die "nix-store --optimise failed: $(tail -n 3 "$out_dir/logs/$p-$m-$what-optimise.log")"
  row "$p" "$m" "$what" optimise_after "$(du -sB1 "$root/nix/store" | cut -f1)"
  # Nix's own count: "X MiB freed by hard-linking N files".
  row "$p" "$m" "$what" optimise_files "$(sed -n 's/.* freed by hard-linking \([0-9]*\) files.*/\1/p' "$out_dir/logs/$p-$m-$what-optimise.log")"
  chmod -R u+w "$root"
  rm -rf "$root"
}

measure_project() {
  local p=$1 expr m what c cache root t0 paths url fresh out
  expr=$(project_expr "$p")
  local -A out_of=()
  for m in ${modes//,/ }; do
    for what in deps clippy test layered; do
      build "$p" "$m" "$what"
      out_of[$m.$what]=$REPLY
    done
  done
  # The vendor dir: in the closure of every output that names vendored sources.
  vendor=$(nix-instantiate --eval "$expr" -A vendor 2>"$w/instantiate.log" | tr -d '"')
  nix-store --check-validity "$vendor" 2>/dev/null || die "the vendor dir \`$vendor\` is not in the store: $(tail -n 3 "$w/instantiate.log")"
  sizes "$p" all vendor "$vendor"
  for m in ${modes//,/ }; do
    for what in deps clippy test layered; do
      sizes "$p" "$m" "$what" "${out_of[$m.$what]}"
    done
    paths=("${out_of[$m.deps]}" "${out_of[$m.clippy]}" "${out_of[$m.test]}")
    # The union of the three closures: what a store holding them holds.
    row "$p" "$m" chain closure "$(nix path-info -S --json "${paths[@]}" | python3 "$here/footprint.py" union-size)"
    for c in ${compressions//,/ }; do
      cache=$w/cache-$p-$m-$c
      log "$p: $m: nix copy to a file:// cache, compression $c"
      t0=$EPOCHREALTIME
      nix copy --to "file://$cache?compression=$c&parallel-compression=true" "${paths[@]}" \
        >"$out_dir/logs/$p-$m-copy-$c.log" 2>&1 || die "nix copy ($c) failed: $(tail -n 3 "$out_dir/logs/$p-$m-copy-$c.log")"
      row "$p" "$m" chain "copy_${c}_ms" "$(ms_since "$t0")"
      row "$p" "$m" chain "cache_${c}_dir" "$(du -sb "$cache" | cut -f1)"
      for what in deps clippy test; do
        cache_sizes "$p" "$m" "$c" "$cache" "$what" "${out_of[$m.$what]}"
      done
      [ "$c" = zstd ] || { chmod -R u+w "$cache"; rm -rf "$cache"; }
    done
    optimise "$p" "$m" chain "${paths[@]}"
    row "$p" "$m" layered_chain closure "$(nix path-info -S --json "${out_of[$m.layered]}" | python3 "$here/footprint.py" union-size)"
    optimise "$p" "$m" layered_chain "${out_of[$m.layered]}"
  done
  # Substitution over HTTP into an empty store, then a consumer built there. The empty store is
  # a chroot store (the same logical store dir, its files in FRESH/nix/store). The package's
  # derivation is evaluated here and its .drv closure (derivations and sources, no outputs)
  # imported there: evaluating crane's mkDummySrc against a chroot store gives another dummy
  # (no Cargo.lock in it, seen with Nix 2.24), so another deps derivation.
  [ "$substitute" = none ] && return 0
  local drv attempt
  for m in ${substitute//,/ }; do
    case ",$modes," in *,"$m",*) ;; *) continue ;; esac
    case ",$compressions," in *,zstd,*) ;; *) log "no zstd cache: no substitution"; return 0 ;; esac
    nxt_http_serve "$w/cache-$p-$m-zstd"
    # nxt_http_serve sets its own EXIT trap (it stops the server); cleanup stops it too.
    trap cleanup EXIT
    url=$NXT_HTTP_URL
    fresh=$w/fresh-$p-$m
    log "$p: $m: substituting deps over HTTP into an empty store, then buildPackage there"
    local -a opts=(--store "local?root=$fresh" --option substituters "$url" --option require-sigs false)
    export XDG_CACHE_HOME=$w/xdg-$p-$m
    drv=$(nix-instantiate "$expr" -A "$m.package" 2>"$w/instantiate.log") ||
      die "nix-instantiate $p $m.package: $(tail -n 5 "$w/instantiate.log")"
    # shellcheck disable=SC2046 # store paths
    nix-store --export $(nix-store -q --requisites "$drv") | nix-store "${opts[@]}" --import >/dev/null 2>"$w/import.log" ||
      die "importing the derivations of $p $m.package into the empty store: $(tail -n 3 "$w/import.log")"
    t0=$EPOCHREALTIME
    nix-store "${opts[@]}" -r "${out_of[$m.deps]}" >"$out_dir/logs/$p-$m-substitute.log" 2>&1 ||
      die "substituting $p $m deps failed: $(tail -n 3 "$out_dir/logs/$p-$m-substitute.log")"
    row "$p" "$m" substitute deps_ms "$(ms_since "$t0")"
    row "$p" "$m" substitute fetched "$(python3 "$here/footprint.py" fetched "$NXT_HTTP_LOG" "$w/cache-$p-$m-zstd")"
    t0=$EPOCHREALTIME
    # Nix's EOF race can SIGKILL a builder that succeeded (tests/nix/lib.sh, nxt_nix_build).
    for attempt in 1 2 3; do
      nix-store "${opts[@]}" -r "$drv" >"$w/package.out" 2>"$out_dir/logs/$p-$m-package.build.log" && break
      if ! grep -q 'failed due to signal 9 (Killed)' "$out_dir/logs/$p-$m-package.build.log" || [ "$attempt" = 3 ]; then
        die "buildPackage in the empty store ($p $m) failed: see $out_dir/logs/$p-$m-package.build.log"
      fi
    done
    row "$p" "$m" substitute package_ms "$(ms_since "$t0")"
    unset XDG_CACHE_HOME
    out=$(head -n 1 "$w/package.out")
    ! grep -q "building '[^']*-deps-[^']*\\.drv'" "$out_dir/logs/$p-$m-package.build.log" ||
      die "$p $m: the empty store built deps instead of substituting it"
    nix-store "${opts[@]}" -l "$out" >"$out_dir/logs/$p-$m-package.log" 2>/dev/null || true
    units_rows "$p" "$m" package "$out_dir/logs/$p-$m-package.log"
    nxt_http_stop
    chmod -R u+w "$fresh"
    rm -rf "$fresh"
  done
}

for p in ${projects//,/ }; do
  measure_project "$p"
done
log "deleting what no output of this run needs (nix-store --gc)"
nix-store --gc >"$out_dir/logs/gc.log" 2>&1 || log "nix-store --gc failed: $(tail -n 2 "$out_dir/logs/gc.log")"

{
  printf 'key\tvalue\n'
  printf 'run_id\t%s\nelapsed_s\t%s\nprofile\trelease\n' "$run_id" $((SECONDS - started))
  printf 'loadavg_start\t%s\nloadavg_end\t%s\n' "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'crane_src\t%s\ncrane_commit\t%s\n' "$NXT_CRANE_SRC" "$(nxt_revision "$NXT_CRANE_SRC" | grep -oE '[0-9a-f]{40}' | cut -c1-12)"
  printf 'nixcache_version\t%s\nbin_dir\t%s\n' "$("$bin_dir/cargo-nixcache" --version)" "$bin_dir"
  printf 'nix\t%s\nnice\t%s\nstore\t%s\n' "$(nix --version)" "$(nice)" "$store"
  printf 'ripgrep\t%s\ncompression_options\tparallel-compression=true, default levels\n' "$rg_version"
} >"$out_dir/meta.tsv"
python3 "$here/footprint.py" report --out "$out_dir" --work "$w"
