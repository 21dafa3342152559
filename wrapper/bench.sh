#!/usr/bin/env bash
# Added time per rustc call behind nixcache-rustc-wrapper, for both strategies, vs rustc directly.
# Usage: wrapper/bench.sh [RUNS]   (needs hyperfine: apt-get install -y hyperfine)
# Builds the wrapper in release mode into $CARGO_TARGET_DIR (default /tmp/nixcache-bench-tgt).
set -euo pipefail
runs=${1:-200}
here=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/nixcache-bench-tgt}
cargo build --release -q --manifest-path "$here/../Cargo.toml" --bin nixcache-rustc-wrapper
wrapper=$CARGO_TARGET_DIR/release/nixcache-rustc-wrapper
rustc=$(rustup which rustc 2>/dev/null || command -v rustc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/deps"
echo 'pub fn f() -> u32 { 1 }' > "$work/lib.rs"
# A deps dir as big as a real one: 1500 unrelated files the wrapper has to skip.
for i in $(seq 1500); do : > "$work/deps/libother$i-0123456789abcdef.rlib"; done
compile="--crate-name tiny --edition=2021 $work/lib.rs --crate-type lib --emit=dep-info,metadata,link \
 -C extra-filename=-0123 --out-dir $work/deps --error-format=json --json=artifacts"
probe="- --crate-name ___ --print=file-names --crate-type lib"
unset NIXCACHE_USER_WRAPPER
hf() { hyperfine -N --warmup 5 --runs "$runs" --style basic --export-json "$work/$1.json" "${@:2}" >/dev/null
       python3 - "$work/$1.json" "$1" <<'PY'
import json, sys, statistics
r = json.load(open(sys.argv[1]))["results"]
base = statistics.median(r[0]["times"])
for x in r:
    m = statistics.median(x["times"])
    cmd = x['command'].split()[1].split('=')[1]
    print(f"{sys.argv[2]:8} {cmd:9} median {m*1e3:8.2f} ms  added {(m-base)*1e3:+6.2f} ms")
PY
}
hf probe "env NIXCACHE_WRAPPER_STRATEGY=none $rustc $probe" \
  "env NIXCACHE_WRAPPER_STRATEGY=in-place $wrapper $rustc $probe" \
  "env NIXCACHE_WRAPPER_STRATEGY=redirect $wrapper $rustc $probe" < /dev/null
hf compile "env NIXCACHE_WRAPPER_STRATEGY=none $rustc $compile" \
  "env NIXCACHE_WRAPPER_STRATEGY=in-place $wrapper $rustc $compile" \
  "env NIXCACHE_WRAPPER_STRATEGY=redirect $wrapper $rustc $compile"
hf noop "env NIXCACHE_WRAPPER_STRATEGY=none true" \
  "env NIXCACHE_WRAPPER_STRATEGY=in-place $wrapper true --out-dir $work/deps --crate-name tiny -C extra-filename=-0123" \
  "env NIXCACHE_WRAPPER_STRATEGY=redirect $wrapper true --out-dir $work/deps --crate-name tiny -C extra-filename=-0123"
