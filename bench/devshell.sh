#!/usr/bin/env bash
# Dev shells (issue 12): what entering a dev shell costs with the shell hook
# (nix/hooks/nixcache-shell-hook.sh: `cargo nixcache hydrate` and the wrapper's env), and what the
# first `cargo build` in it costs, against the same shell with an empty target dir and against
# filling the target dir by hand, interleaved, on the benchmark corpus.
#
#   bench/devshell.sh [--rounds N] [--empty-rounds N] [--warmup N] [--settle S] [--profile P]
#                     [--state DIR] [--corpus DIR] [--out DIR] [--no-build] [--keep]
#
# The deps output is the corpus's deps built as crane's buildDepsOnly builds them with
# CARGO_PROFILE=P (default dev: what `cargo build` in a shell uses), packed by `cargo-nixcache pack`
# and by crane's use-zstd install (kept in --state, shared with bench/crane-e2e.sh). Each round
# enters the shell in a fresh checkout of the corpus (its sources copied with new mtimes, as a
# user's clone has; no target dir; always at WORK/shell/app), then runs the first
# `CARGO_INCREMENTAL=1 cargo build` there, once per variant, in an order rotated from round to
# round:
#   hook    nixcacheShellHook, as on entering the shell (IN_NIX_SHELL): the vendored-sources
#           CARGO_HOME (cargoVendorDir), `cargo nixcache hydrate "$cargoArtifacts"` and
#           `eval "$(cargo nixcache env)"`; after the build, entering again (timed as re-entry);
#   cp      the same CARGO_HOME (the hook's nixcacheShellVendoring), then `cp -a` of the deps
#           build's target dir (a writable copy kept beside it);
#   crane   the same CARGO_HOME, then crane's inheritCargoArtifacts of the use-zstd output (what a
#           crane devShell's shellHook can call today);
#   empty   the same CARGO_HOME and nothing else: cargo builds every dependency (only in the first
#           --empty-rounds rounds: it costs a whole deps build).
# The shell's environment: the hooks' functions (crane's from CRANE_SRC, ours from nix/hooks/),
# XDG_CACHE_HOME=STATE/devshell-xdg (where the hook keeps the shell's CARGO_HOME; made by the
# warm-up), nothing else of the caller's cargo environment. Each step timed on its own (wall from
# $EPOCHREALTIME, CPU of its children from `times`). Not measured: Nix's own start-up of
# `nix develop` / `nix-shell` (evaluation, building the shell's inputs).
#
# Checks (the run fails without them): in every round all variants end with the same units (cargo's
# artifact file names), and the first build after hook, cp and crane compiles only the workspace's
# own crate.
#
# Options:
#   --rounds N        measured rounds (default 5)
#   --empty-rounds N  rounds that also run empty (default 3)
#   --warmup N        untimed rounds first, without empty (default 1)
#   --settle S        before each round, wait up to S seconds (default 15) for a second in which
#                     the CPUs are less than 25 % busy
#   --profile P       the deps' CARGO_PROFILE and the shell build's profile (default dev)
#   --state DIR       the store and the deps builds (default /work/tgt/crane-e2e)
#   --corpus DIR      the corpus (default /work/tgt/corpus)
#   --out DIR         results (default bench-out/devshell in the repo)
#   --no-build        use the release binaries already built
#   --keep            keep the checkouts
#
# Environment: CRANE_SRC, CARGO_TARGET_DIR (where our release binaries are built), BENCH_NICE
# (default 10), TMPDIR (the checkouts' parent, default /tmp).
# Results: OUT/summary.md (also printed), OUT/results.json, OUT/samples.tsv, OUT/logs/.
# Needs: cargo, python3 (3.9+), GNU tar, zstd. Method: docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rounds=5 empty_rounds=3 warmup=1 settle=15 profile=dev state=/work/tgt/crane-e2e corpus=/work/tgt/corpus
out_dir=$repo/bench-out/devshell build=1 keep=0
bench_options="--rounds --warmup --settle --profile --state --corpus --out --no-build --keep"
bench_name=devshell
# shellcheck source=bench/crane-lib.sh
source "$here/crane-lib.sh"
own_option() {
  REPLY=2
  case $1 in
    --empty-rounds) want_value "$@"; empty_rounds=$2 ;;
    *) REPLY=0 ;;
  esac
}
bench_parse "$@"
want_count --rounds "$rounds" 1
want_count --empty-rounds "$empty_rounds" 0
want_count --warmup "$warmup" 0
want_count --settle "$settle" 0
want_profile "$profile"

bench_setup "$corpus" "$build"
corpus_store "$state"

run_start devshell
xdg=$state/devshell-xdg
mkdir -p "$xdg"

# The user's first build in the shell.
shell_build() {
  local -a p=()
  [ "$profile" = dev ] || p=(--profile "$profile")
  CARGO_INCREMENTAL=1 cargo build "${p[@]}" --message-format json-render-diagnostics
}
# run_variant: enter the shell in a fresh checkout as $variant, then build; $round set.
run_variant() {
  local top=$w/shell logs=$out_dir/logs/$round-$variant
  mkdir -p "$top/app"
  # A user's clone: new mtimes, no target dir, no vendoring config of its own.
  cp -r "$app/Cargo.toml" "$app/Cargo.lock" "$app/src" "$top/app/"
  sync -f "$top"
  step_key="$round	$variant"
  ( cd "$top/app"
    export IN_NIX_SHELL=impure XDG_CACHE_HOME=$xdg
    cargoArtifacts=$ours_deps cargoVendorDir=$vendor
    case $variant in
      hook) step enter nixcacheShellHook ;;
      cp) step enter eval 'nixcacheShellVendoring "$cargoVendorDir" && cp -a "$state/deps-$profile/target-plain" target' ;;
      crane) step enter eval 'nixcacheShellVendoring "$cargoVendorDir" && inheritCargoArtifacts "$crane_deps" target' ;;
      empty) step enter nixcacheShellVendoring "$cargoVendorDir" ;;
    esac
    step build shell_build >"$logs.json"
    [ "$variant" != hook ] || step reenter nixcacheShellHook
  ) >"$logs.log" 2>&1 || die "round $round: $variant failed; see $logs.log and $top"
  mkdir -p "$w/trash"
  mv "$top" "$w/trash/$round-$variant"
}

deps_build "$profile"
deps_outputs "$profile"
# Making the deps outputs deleted thousands of inodes: on this ext4 without a journal, creating
# files next to them in the next 60 s costs many times the CPU (docs/benchmarks.md).
log "sync, then 65 s for ext4 to forget the inodes just deleted (docs/benchmarks.md)"
sync -f "$w"
sleep 65
for ((r = 0; r < warmup + rounds; r++)); do
  if [ "$r" -lt "$warmup" ]; then round=w$((r + 1)); else round=$((r - warmup + 1)); fi
  variants=(hook cp crane)
  [ "$r" -lt "$warmup" ] || [ "$round" -gt "$empty_rounds" ] || variants+=(empty)
  run_round "$r"
done

{
  run_meta_head "$w"
  d=$state/deps-$profile
  printf 'deps_build_ms\t%s\n' "$(cat "$d/build-ms")"
  printf 'deps_target_bytes\t%s\n' "$(du -sb "$d/target-plain" | cut -f1)"
  printf 'deps_target_entries\t%s\n' "$(find "$d/target-plain" | wc -l)"
  printf 'crane_archive_bytes\t%s\n' "$(stat -c %s "$crane_deps/target.tar.zst")"
  printf 'nixcache_archive_bytes\t%s\n' "$(du -cb "$ours_deps"/symlinks.tar* | tail -1 | cut -f1)"
} >"$out_dir/meta.tsv"
python3 "$here/devshell.py" report --out "$out_dir" --work "$w"
