#!/usr/bin/env bash
# Layered dependency derivations (issue 12): what a change to Cargo.lock costs when the deps
# derivation inherits a layer of stable heavy dependencies, against one deps derivation built
# from scratch, interleaved, on the benchmark corpus.
#
#   bench/layered.sh [--rounds N] [--control-rounds N] [--stable-vendor-rounds N] [--settle S]
#                    [--profile P] [--state DIR] [--corpus DIR] [--out DIR] [--change SED]
#                    [--stable NAMES] [--no-build] [--keep]
#
# Layer 1 (built once, kept in --state) is a crate depending on the corpus's heavy, stable
# dependencies (--stable, with the corpus's own version and feature specs), or the corpus as it was
# before the change (--stable all: a pinned older Cargo.toml and Cargo.lock). The change: a sed
# command on the corpus's Cargo.toml (--change; by default one more dependency), and the
# Cargo.lock that cargo makes of it (`cargo vendor`: every locked version kept).
# Each round builds that new deps derivation, in an order rotated from round to round:
#   single   as crane's buildDepsOnly does today, from scratch, then `cargo-nixcache pack`;
#   layered  inheriting layer 1 as the crane adapter does (`cargo-nixcache unpack`, the
#            stale-binary guard, the wrapper's env), the same build, then pack.
# In the first --control-rounds rounds also:
#   own-vendor  the same as layered, but layer 1 was built against a vendor directory of its own
#               (its own lock's crates at another store path), as crane's vendorCargoDeps gives a
#               `buildDepsOnly { src = stableSrc; }`; cargo finds every crate root moved.
# In the first --stable-vendor-rounds rounds also:
#   stable-vendor  as own-vendor, with `nixcacheStableVendorDir = true` in both layers: layer 1 and
#               this build see their vendor dirs through FIXED/nixcache-vendor (nixcache-vendor-hook.sh
#               with NIX_BUILD_TOP=FIXED, a dir of the state standing in for the sandbox's /build).
# The build is buildDepsOnly's: `cargoWithProfile check --locked --all-targets`, `build --locked`,
# `test --locked --no-run`, each with --message-format json-render-diagnostics (to count the units),
# with crane's configureCargoCommonVars (CARGO_BUILD_INCREMENTAL=false) and
# configureCargoVendoredDepsHook, all from CRANE_SRC, ours from nix/hooks/. Every build runs in a
# fresh copy of the sources (mtime 1, from a fake store path, as Nix's unpackPhase copies them) at
# the same path (WORK/build/source). Each step is timed on its own (wall from $EPOCHREALTIME, CPU
# of its children from `times`).
#
# Checks (the run fails without them): single and layered (and stable-vendor) end with the same
# units (the same artifact file names over the three commands), and layered (and stable-vendor)
# compile none of the units layer 1 built. The report counts the units compiled by each variant, split into the new crates, layer 1's
# crates compiled again with other features, and the crates layer 1 does not have.
#
# Setup, kept in --state (shared with bench/crane-e2e.sh; wiped when rustc or the corpus change):
# the new Cargo.lock and its vendored crates, made once with `cargo vendor` (this needs crates.io
# the first time: the new crates are not in the corpus), put into the fake store with layer 1's
# sources and vendor directory; layer 1's builds. Every run packs layer 1 again with the binaries
# being measured.
#
# Options:
#   --rounds N          rounds of single + layered (default 2; a release deps build of the corpus
#                       costs ~4-5 min of CPU on this machine)
#   --control-rounds N  rounds that also run own-vendor (default 1; 0: none)
#   --stable-vendor-rounds N
#                       rounds that also run stable-vendor (default 0)
#   --settle S          before each round, wait up to S seconds (default 15) for a second in which
#                       the CPUs are less than 25 % busy
#   --profile P         crane's CARGO_PROFILE (default release)
#   --state DIR         the store and the builds kept between runs (default /work/tgt/crane-e2e)
#   --corpus DIR        the corpus (/work/shared/bench-corpus.sh DIR; default /work/tgt/corpus)
#   --out DIR           results (default bench-out/layered in the repo)
#   --change SED        the change, a sed command on the corpus's Cargo.toml (default
#                       '/^\[dependencies\]/a toml = "0.8"': one dependency more, 6 new crates).
#                       Without new registry crates crane's vendorCargoDeps gives both locks the
#                       same vendor dir (it depends only on the registry crates), so own-vendor
#                       shows nothing real: use --control-rounds 0 (and --stable-vendor-rounds 0)
#   --stable NAMES      layer 1's dependencies, comma-separated names from the corpus's Cargo.toml
#                       (default tokio,hyper,hyper-util,axum,tower,serde,serde_json,futures,bytes),
#                       or `all`: the whole corpus before the change
#   --no-build          use the release binaries already built
#   --keep              keep the build trees and outputs
#
# Environment: CRANE_SRC (default /var/cache/cargo-nixcache/crane), CARGO_TARGET_DIR (where our
# release binaries are built; default the repo's target/), BENCH_NICE (default 10), TMPDIR (the
# builds' parent, default /tmp).
# Results: OUT/summary.md (also printed), OUT/results.json, OUT/samples.tsv, OUT/logs/ (cargo's
# JSON messages). Needs: cargo, python3 (3.9+), GNU tar, zstd. Method: docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rounds=2 control_rounds=1 stable_vendor_rounds=0 settle=15 profile=release state=/work/tgt/crane-e2e corpus=/work/tgt/corpus
out_dir=$repo/bench-out/layered build=1 keep=0
change='/^\[dependencies\]/a toml = "0.8"'
bench_options="--rounds --settle --profile --state --corpus --out --no-build --keep"
stable=tokio,hyper,hyper-util,axum,tower,serde,serde_json,futures,bytes
bench_name=layered
# shellcheck source=bench/crane-lib.sh
source "$here/crane-lib.sh"
own_option() {
  REPLY=2
  case $1 in
    --control-rounds) want_value "$@"; control_rounds=$2 ;;
    --stable-vendor-rounds) want_value "$@"; stable_vendor_rounds=$2 ;;
    --change) want_value "$@"; change=$2 ;;
    --stable) want_value "$@"; stable=$2 ;;
    *) REPLY=0 ;;
  esac
}
bench_parse "$@"
want_count --rounds "$rounds" 1
want_count --control-rounds "$control_rounds" 0
want_count --stable-vendor-rounds "$stable_vendor_rounds" 0
want_count --settle "$settle" 0
want_profile "$profile"

bench_setup "$corpus" "$build"
corpus_store "$state"

# ---- setup: the new lock, layer 1's sources and vendor dirs (kept) ------------------------------
# Everything below depends on the change and on layer 1's dependencies: a directory per choice.
setup_id=$(printf '%s\n%s\n' "$change" "$stable" | sha256sum | cut -c1-8)
lstate=$state/layered-$setup_id
mkdir -p "$lstate"
if [ ! -f "$lstate/plus/done" ]; then
  remove_tree "$lstate/plus"
  mkdir -p "$lstate/plus"
  cp -r "$app/Cargo.toml" "$app/Cargo.lock" "$app/src" "$lstate/plus/"
  sed -i -e "$change" "$lstate/plus/Cargo.toml" || usage_error "--change: sed failed on \`$change\`"
  ! cmp -s "$app/Cargo.toml" "$lstate/plus/Cargo.toml" || usage_error "--change: \`$change\` changes nothing"
  log "the change: \`$change\`; cargo vendor (crates.io) -> $lstate/plus"
  # cargo vendor keeps every locked version and adds what the new line needs.
  (cd "$lstate/plus" && command cargo vendor -q --versioned-dirs vendor >/dev/null) ||
    die "cargo vendor failed in $lstate/plus (the new crates come from crates.io)"
  touch "$lstate/plus/done"
fi
# The crates the change brings, from the two locks.
lock_names() { python3 -c 'import sys,tomllib; print("\n".join(sorted(p["name"] + " " + p["version"] for p in tomllib.load(open(sys.argv[1],"rb"))["package"])))' "$1"; }
new_packages=$(comm -13 <(lock_names "$app/Cargo.lock") <(lock_names "$lstate/plus/Cargo.lock") | cut -d' ' -f1 | tr '\n' ' ')

plus_vendor=$(store_path "corpus-plus-$setup_id-vendor-cargo-deps")
plus_source=$(store_path "corpus-plus-$setup_id-source")
stable_vendor=$(store_path "corpus-stable-$setup_id-vendor-cargo-deps")
stable_source=$(store_path "corpus-stable-$setup_id-source")
store_add "$plus_vendor" "$lstate/plus/vendor/."
store_add "$plus_source" "$lstate/plus/Cargo.toml" "$lstate/plus/Cargo.lock" "$lstate/plus/src"
if [ ! -d "$stable_source" ]; then
  s=$stable_source.tmp
  remove_tree "$s"
  mkdir -p "$s/src"
  echo 'fn main() {}' >"$s/src/main.rs"  # crane's dummy
  if [ "$stable" = all ]; then
    # Layer 1: the corpus as it was before the change, its Cargo.toml and Cargo.lock.
    cp "$app/Cargo.toml" "$app/Cargo.lock" "$s/"
  else
    # Layer 1: a crate depending on the stable deps with the corpus's own lines, its lock trimmed
    # from the new one by cargo (same versions).
    printf '[package]\nname = "corpus-stable-deps"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n' >"$s/Cargo.toml"
    IFS=, read -ra stable_names <<<"$stable"
    for n in "${stable_names[@]}"; do
      grep -E "^$n *=" "$app/Cargo.toml" >>"$s/Cargo.toml" || usage_error "--stable: \`$n\` is not a dependency in $app/Cargo.toml"
    done
    cp "$lstate/plus/Cargo.lock" "$s/"
    (cd "$s" && command cargo metadata -q --offline --format-version 1 --config 'source.crates-io.replace-with="v"' \
      --config "source.v.directory=\"$plus_vendor\"" >/dev/null) || die "could not trim layer 1's lock in $s"
  fi
  mv "$s" "$stable_source"
  canonicalize "$stable_source"
fi
if [ ! -d "$stable_vendor" ]; then
  # What crane's vendorCargoDeps makes of layer 1's own lock: its crates, in another store path.
  mkdir "$stable_vendor.tmp"
  lock_names "$stable_source/Cargo.lock" | while read -r n v; do
    [ ! -d "$plus_vendor/$n-$v" ] || cp -r "$plus_vendor/$n-$v" "$stable_vendor.tmp/"
  done
  mv "$stable_vendor.tmp" "$stable_vendor"
  canonicalize "$stable_vendor"
fi

# Where stable-vendor builds find their vendor dir (FIXED/nixcache-vendor): the same for layer 1
# and the new build, as /build is in the sandbox.
fixed_top=$lstate/fixed-build-top

# layer1_build KIND VENDOR [FIXED_TOP]: layer 1 built once, as buildDepsOnly, against VENDOR
# (through FIXED_TOP); kept.
layer1_build() {
  build_once "$lstate/layer1-$profile-$1" "$stable_source" "$2" "$profile" "layer 1 ($1 vendor dir)" "" "${3:-}"
}
# layer1_output KIND: layer 1 packed again by this run's binaries into its store path.
layer1_output() {
  local d=$lstate/layer1-$profile-$1 o
  o=$(store_path "corpus-stable-$setup_id-$profile-$1-deps")
  remove_tree "$o"
  remove_tree "$d/build/source/target"
  cp -a "$d/target-plain" "$d/build/source/target"
  ( cd "$d/build/source" && nixcacheInstallArtifacts "$o" target ) >"$d/outputs.log" 2>&1 ||
    die "packing layer 1 failed, see $d/outputs.log"
  canonicalize "$o"
  echo "$o"
}

# ---- the rounds ---------------------------------------------------------------------------------
run_start layered

# run_variant: one build of the new deps derivation as $variant, in a fresh tree; $round set.
run_variant() {
  local top=$w/build src=$w/build/source outp logs=$out_dir/logs/$round-$variant
  outp=$(store_path "layered-$run_id-$round-$variant")
  round_outputs+=("$outp")
  mkdir "$top"
  unpack_source "$top" "$plus_source"
  sync -f "$top"
  step_key="$round	$variant"
  local fixed=
  [ "$variant" != stable-vendor ] || fixed=$fixed_top
  ( cd "$src"
    crane_env "$top" "$profile" "$plus_vendor" "$fixed" || exit 1
    case $variant in
      layered|own-vendor|stable-vendor)
        case $variant in
          layered) cargoArtifacts=$layer1_shared ;;
          own-vendor) cargoArtifacts=$layer1_own ;;
          stable-vendor) cargoArtifacts=$layer1_own_stable ;;
        esac
        step unpack cargo-nixcache unpack "$cargoArtifacts" --target-dir target
        step freshen nixcacheFreshenSources
        step env nixcacheSetupWrapper ;;
    esac
    crane_deps_only "$logs-" step
    step pack nixcacheInstallArtifacts "$outp" target
  ) >"$logs.log" 2>&1 || die "round $round: $variant failed; see $logs.log and $top"
  mkdir -p "$w/trash"
  mv "$top" "$w/trash/$round-$variant"
}

layer1_build shared "$plus_vendor"
[ "$control_rounds" = 0 ] || layer1_build own "$stable_vendor"
[ "$stable_vendor_rounds" = 0 ] || layer1_build own-stable "$stable_vendor" "$fixed_top"
layer1_shared=$(layer1_output shared)
layer1_own= layer1_own_stable=
[ "$control_rounds" = 0 ] || layer1_own=$(layer1_output own)
[ "$stable_vendor_rounds" = 0 ] || layer1_own_stable=$(layer1_output own-stable)
for ((r = 1; r <= rounds; r++)); do
  round=$r
  variants=(single layered)
  [ "$r" -gt "$control_rounds" ] || variants+=(own-vendor)
  [ "$r" -gt "$stable_vendor_rounds" ] || variants+=(stable-vendor)
  run_round $((r - 1))
done

{
  run_meta_head "$w"
  printf 'change\t%s\nchange_diff\t%s\nnew_packages\t%s\nstable\t%s\n' "$change" \
    "$(diff "$app/Cargo.toml" "$lstate/plus/Cargo.toml" | grep '^[<>]' | tr '\n' ' ')" "$new_packages" "$stable"
  for kind in shared own own-stable; do
    d=$lstate/layer1-$profile-$kind
    [ -f "$d/done" ] || continue
    printf 'layer1_%s_dir\t%s\nlayer1_%s_build_ms\t%s\n' "${kind//-/_}" "$d" "${kind//-/_}" "$(cat "$d/build-ms")"
  done
  printf 'layer1_shared_vendor\t%s\nlayer1_own_vendor\t%s\nplus_vendor\t%s\n' "$plus_vendor" "$stable_vendor" "$plus_vendor"
} >"$out_dir/meta.tsv"
python3 "$here/layered.py" report --out "$out_dir" --work "$w"
