#!/usr/bin/env bash
# The stale-binary guard's cost on the corpus, every figure next to baselines from the same run.
#
#   bench/freshen.sh [--corpus DIR] [--out DIR] [--rounds N] [--old-bin PATH] [--no-build]
#
# Times `cargo nixcache freshen` (same sources: digest only; app changed: digest + touch; nothing
# inherited), pack with and without source digests, `cargo metadata` with and without
# `--no-deps`, spawning `true`, and cargo's own "new code" build of the corpus (main.rs edited,
# CARGO_INCREMENTAL=0), interleaved. --old-bin times a cargo-nixcache with the replaced guard.
# The corpus (DIR/app, default /work/tgt/corpus) comes from /work/shared/bench-corpus.sh DIR; it is
# copied, never modified. About 2 minutes. Results: OUT/freshen.{md,json} (OUT: bench-out/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
corpus=/work/tgt/corpus out=$repo/bench-out rounds=15 old_bin= build=1
while [ $# -gt 0 ]; do
  case $1 in
    --corpus) corpus=$2; shift ;;
    --out) out=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --old-bin) old_bin=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for tool in cargo cc python3 rustc; do
  command -v "$tool" >/dev/null || { echo "bench: \`$tool\` is missing" >&2; exit 2; }
done
target_dir=${CARGO_TARGET_DIR:-$repo/target}
if [ "$build" = 1 ]; then
  (cd "$repo" && CARGO_TARGET_DIR=$target_dir nice -n 10 cargo build --release --workspace -q)
fi
[ -x "$target_dir/release/cargo-nixcache" ] || { echo "bench: no release build in $target_dir (drop --no-build)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/nixcache-freshen-bench.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cc -O2 -o "$work/measure" "$here/measure.c"
nice -n "${BENCH_NICE:-10}" python3 "$here/freshen.py" --work "$work" --out "$out" \
  --bin-dir "$target_dir/release" --measure "$work/measure" --corpus "$corpus" --rounds "$rounds" \
  ${old_bin:+--old-bin "$old_bin"}
