#!/usr/bin/env bash
# cargo-nixcache benchmarks, every figure a ratio against baselines measured in the same run.
#
#   bench/run.sh [--quick] [--no-wrapper] [--keep] [--work DIR] [--out DIR] [--corpus DIR] [--no-build]
#                [--old-bin DIR]
#
#   (full)   a. unpack of synthetic target dirs (1k/10k/100k entries) vs GNU tar -x (plain and
#               zstd) of an equivalent archive and vs a raw mkdir+symlink+create loop, on tmpfs
#               (/dev/shm) and on the disk of TMPDIR;
#            b. peak RSS of pack and unpack at each size;
#            c. the real corpus (/work/shared/bench-corpus.sh DIR, built once, reused; default
#               /work/tgt/corpus): pack, no-change re-pack, unpack vs crane's target.tar.zst
#               inherit and vs GNU tar -x of an all-symlinks tar;
#            d. full corpus `cargo build --offline` without and with nixcache-rustc-wrapper (both
#               strategies): one untimed warm-up, then 3 interleaved rounds (~35 s per build here).
#            About 11 minutes on 2 cores; the disk trees (~6 GB, ~2M inodes) are kept until the
#            end (see docs/benchmarks.md on ext4 without a journal).
#   --quick  a+b at 1k/10k only (under a minute).
#   --no-wrapper  everything but d.
#   --old-bin DIR  also time DIR/cargo-nixcache (another build, e.g. of the base of a change) in
#               every suite that times ours, interleaved with it: the summary's last table gives
#               new / old per command. Verify is timed too (synthetic archives and the corpus).
#
# Results: OUT/results.json (every sample's median, min, max, CPU, RSS) and OUT/summary.md (the
# tables; also printed). OUT defaults to bench-out/ in the repo (git-ignored). Method and figures:
# docs/benchmarks.md.
#
# Environment: CARGO_TARGET_DIR (where the release binaries are built; default the repo's target/),
# BENCH_NICE (niceness of the whole run, default 10: the machine is shared), TMPDIR (the work dir's
# parent: trees are created and removed there, so its file system is what is measured).
# Needs: cargo, cc, python3 (3.9+), GNU tar, zstd, strace, findmnt; chattr (optional, see above).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
quick=0 keep=0 build=1 no_wrapper=0 work= out=$repo/bench-out corpus=/work/tgt/corpus old_bin=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --no-wrapper) no_wrapper=1 ;;
    --work) work=$2; shift ;;
    --out) out=$2; shift ;;
    --corpus) corpus=$2; shift ;;
    --old-bin) old_bin=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done

for tool in cargo cc python3 tar zstd strace sync; do
  command -v "$tool" >/dev/null || { echo "bench: \`$tool\` is missing" >&2; exit 2; }
done
tar --version | head -1 | grep -q 'GNU tar' || { echo "bench: tar is not GNU tar" >&2; exit 2; }

target_dir=${CARGO_TARGET_DIR:-$repo/target}
if [ "$build" = 1 ]; then
  echo "bench: building release binaries into $target_dir" >&2
  (cd "$repo" && CARGO_TARGET_DIR=$target_dir nice -n 10 cargo build --release --workspace -q)
fi
bin_dir=$target_dir/release
for b in cargo-nixcache nixcache-rustc-wrapper; do
  [ -x "$bin_dir/$b" ] || { echo "bench: $bin_dir/$b missing (drop --no-build)" >&2; exit 2; }
done

if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/nixcache-bench.XXXXXX")
  [ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
else
  mkdir -p "$work"
  [ -z "$(ls -A "$work")" ] || { echo "bench: work dir $work is not empty" >&2; exit 2; }
fi
cc -O2 -o "$work/rawloop" "$here/rawloop.c"
cc -O2 -o "$work/measure" "$here/measure.c"

args=(--work "$work" --out "$out" --bin-dir "$bin_dir" --rawloop "$work/rawloop" --measure "$work/measure" --corpus "$corpus")
if [ "$quick" = 1 ]; then
  args+=(--sizes 1000,10000 --rounds 5 --disk-rounds 3 --rss-rounds 2 --skip-corpus --skip-wrapper)
fi
[ "$no_wrapper" = 0 ] || args+=(--skip-wrapper)
if [ -n "$old_bin" ]; then
  [ -x "$old_bin/cargo-nixcache" ] || { echo "bench: $old_bin/cargo-nixcache missing" >&2; exit 2; }
  args+=(--old-bin-dir "$(cd "$old_bin" && pwd)")
fi
nice -n "${BENCH_NICE:-10}" python3 "$here/bench.py" "${args[@]}"
