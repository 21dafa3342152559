#!/usr/bin/env bash
# The crates.io packages a workspace's Cargo.lock names, as the .crate files crates.io serves,
# downloaded by cargo once per machine into a cache later runs (and CI, on the same machine)
# reuse. Prints one line per package: `NAME VERSION SHA256 PATH-OF-THE-.crate`.
#
# Usage: tests/nix/fetch-crates.sh WORKSPACE   (e.g. tests/fixtures/ws-real)
#
# The cache is a CARGO_HOME of its own, $NIXCACHE_CARGO_CACHE/crates-io-home (default
# /var/cache/cargo-nixcache, as tests/registry-tool.sh): `cargo fetch --locked` keeps every
# .crate it downloads under registry/cache/<index>/NAME-VERSION.crate. When every file the lock
# names is there with the lock's checksum, cargo is not run at all (no network). Every file
# printed has been checked against the lock's checksum. Nothing is written into WORKSPACE.
set -euo pipefail
ws=${1:?usage: tests/nix/fetch-crates.sh WORKSPACE}
[ -f "$ws/Cargo.lock" ] || { echo "fetch-crates.sh: no Cargo.lock in $ws" >&2; exit 2; }
ws=$(cd "$ws" && pwd)
cache="${NIXCACHE_CARGO_CACHE:-/var/cache/cargo-nixcache}"
home="$cache/crates-io-home"
mkdir -p "$home"

# check: every crates.io package of the lock, with its cached file when that file has the lock's
# checksum; exits 1 when any is missing or differs.
check() {
    python3 - "$ws/Cargo.lock" "$home/registry/cache" <<'PY'
import glob, hashlib, os, sys, tomllib
lock, cache = sys.argv[1], sys.argv[2]
crates_io = "registry+https://github.com/rust-lang/crates.io-index"
with open(lock, "rb") as f:
    packages = tomllib.load(f).get("package", [])
missing = []
for p in packages:
    if p.get("source") != crates_io:
        continue
    if "checksum" not in p:
        sys.exit("fetch-crates.sh: %s %s has no checksum in %s" % (p["name"], p["version"], lock))
    found = None
    for path in sorted(glob.glob(os.path.join(glob.escape(cache), "*", "%s-%s.crate" % (p["name"], p["version"])))):
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == p["checksum"]:
                found = path
                break
    if found is None:
        missing.append("%s-%s" % (p["name"], p["version"]))
    else:
        print(p["name"], p["version"], p["checksum"], found)
if missing:
    print("fetch-crates.sh: not cached: " + " ".join(missing), file=sys.stderr)
    sys.exit(1)
PY
}

exec 9>"$home.lock"
flock 9
if ! check >/dev/null 2>&1; then
    echo "fetch-crates.sh: downloading the crates of $ws/Cargo.lock into $home (once per machine)" >&2
    # Only this cache's config: the user's ~/.cargo (source replacements, vendored sources) must
    # not decide what is downloaded.
    CARGO_HOME="$home" cargo fetch --locked --quiet --manifest-path "$ws/Cargo.toml" >&2
fi
check
