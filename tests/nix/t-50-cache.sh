# Test 5: artifacts survive a binary cache: a flat-file one (`nix copy --to file://DIR`), and the
# same cache served over HTTP, as CI uses one.

# nxt_fresh_store SUBSTITUTER: throw away this test's store, its state, its build logs (they would
# answer `nix-store --read-log` for builds the new store never ran) and Nix's narinfo disk cache
# ($XDG_CACHE_HOME/nix: an HTTP cache's answers outlive the store, and a positive one masks a
# narinfo deleted since), then start an empty store that substitutes from SUBSTITUTER only.
nxt_fresh_store() {
    chmod -R u+w "$T/store" "$T/state"
    rm -rf "$T/store" "$T/state" "$T/log" "$T/cache"
    nxt_store_init
    sed -i "s|^substituters =.*|substituters = $1|" "$NIX_CONF_DIR/nix.conf"
}

# nxt_narinfo_hash PATH: the hash part of a store path, which names its `.narinfo` in a cache.
nxt_narinfo_hash() {
    basename "$1" | cut -c1-32
}

test_5_binary_cache_roundtrip() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps app log cache="$T/cache-dir"
    # app2 builds app's sources again (guard off): after substitution everything must be Fresh.
    expr=$(nxt_chain_expr chain 'deps = { nixcacheCompress = "zstd"; }; app = { nixcacheCompress = "zstd"; };
                                 app2 = { dontNixcacheFreshen = "1"; };')
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    nix copy --to "file://$cache" "$app" >"$T/copy.log" 2>&1 ||
        nxt_fail "nix copy failed: $(tail -n 3 "$T/copy.log")"
    assert_exists "$cache/$(nxt_narinfo_hash "$deps").narinfo" "the deps output in the cache (app's closure)"

    # A fresh store with the same store dir, substituting from the cache only.
    nxt_fresh_store "file://$cache"
    nix-store -r "$app" >"$T/subst.log" 2>&1 || nxt_fail "substituting app failed: $(tail -n 5 "$T/subst.log")"
    assert_exists "$deps" "deps, substituted as part of app's closure"

    # app2 inherits from the substituted app: builds, nothing missing, deps not rebuilt.
    log=$(nxt_build "$expr" -A app2Drv.log)
    assert_not_contains "$T/build.log" "building '.*-(deps|app)\.drv'" "builds after substitution (only app2)"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app2's output"
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v '^fresh')" "units of app2 after substitution"
    nxt_assert_links "$log"
    nxt_verify_store

    # Negative control: a cache missing the deps output cannot provide app at all.
    rm -f "$cache/$(nxt_narinfo_hash "$deps").narinfo"
    nxt_fresh_store "file://$cache"
    expect_fail "substituting app without deps in the cache" nix-store -r "$app"
    assert_eq "$deps" "$(sed -n "/^don't know how to build these paths:/{n;s/^ *//;p}" "$T/expect_fail.out")" \
        "the path nix-store -r cannot substitute"
}

# --- over HTTP ---------------------------------------------------------------------------------

# nxt_trust_cache PUBKEY-FILE: the store requires signatures and trusts only that key.
nxt_trust_cache() {
    sed -i 's|^require-sigs = .*|require-sigs = true|' "$NIX_CONF_DIR/nix.conf"
    echo "trusted-public-keys = $(cat "$1")" >>"$NIX_CONF_DIR/nix.conf"
}

# nxt_assert_served ACCESS-LOG PATH: PATH came from the HTTP cache (served from $T/cache-dir):
# its narinfo and its NAR were fetched with status 200. The server's access log, not the build
# log: a retried build (nxt_nix_build) logs only its last attempt, and substituting was the first.
nxt_assert_served() {
    local access="$1" p="$2" h url
    h=$(nxt_narinfo_hash "$p")
    url=$(sed -n 's/^URL: //p' "$T/cache-dir/$h.narinfo")
    [ -n "$url" ] || nxt_fail "no URL in \`$T/cache-dir/$h.narinfo\`"
    assert_contains "$access" "\"GET /$h\\.narinfo HTTP/1\\.1\" 200 " "the narinfo of $p over HTTP"
    assert_contains "$access" "\"GET /${url//./\\.} HTTP/1\\.1\" 200 " "the NAR of $p over HTTP"
}

# nxt_assert_built EXPR ATTR yes|no: whether ATTR's derivation was ever built in this store, by
# its build log (kept across nxt_nix_build's retries; nxt_fresh_store clears them).
nxt_assert_built() {
    local drv
    drv=$(nix-instantiate "$1" -A "$2" 2>"$T/instantiate.log") ||
        nxt_fail "nix-instantiate $1 -A $2: $(tail -n 3 "$T/instantiate.log")"
    assert_exists "$drv" "the derivation of $2"
    if [ "$3" = yes ]; then
        nix-store --read-log "$drv" >/dev/null 2>&1 || nxt_fail "$2 was not built in this store (no build log)"
    else
        expect_fail "a build log of $2 in this store" nix-store --read-log "$drv"
        assert_contains "$T/expect_fail.out" "build log of derivation '$drv' is not available" "nix-store --read-log $drv"
    fi
}

# nxt_assert_consumer LOG: the consumer (app, inheriting deps) reused every inherited unit, built
# the rest, and its binary prints the right thing.
nxt_assert_consumer() {
    local log="$1"
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "units of the consumer's build (inherited units Fresh)"
    assert_eq "3" "$(nxt_units "$log/cargo.json" | grep -c '^fresh')" "Fresh units of the consumer's build"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "the consumer's app output"
    nxt_assert_links "$log"
}

# A CI round trip over HTTP: one job pushes the deps closure to a signed flat-file cache, a server
# on 127.0.0.1 serves it, and a consumer in an empty store (trusting only that cache's key) builds
# app from it. The vendor dir is a derivation's output here, as crane's vendorCargoDeps is, so every
# path the deps output's anchor names can only come from the cache (a local source would be added
# to the store by evaluation instead).
test_5_binary_cache_over_http() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    mv "$T/src/vendor" "$T/vendor-src"
    local expr deps deps_hash vendor p cache="$T/cache-dir" anchored=() log seen
    expr=$(nxt_expr http <<NIX
let
  vendor = derivation {
    name = "vendor";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" "/bin/cp -r \${builtins.path { path = $T/vendor-src; name = "vendor-src"; }} \$out" ];
  };
in import $NXT_DIR/chain.nix {
  t = t // { mkCargo = args: t.mkCargo ({ inherit vendor; } // args); };
  deps = { nixcacheCompress = "zstd"; };
} // { inherit vendor; }
NIX
    )
    deps=$(nxt_build "$expr" -A depsDrv.out)
    vendor=$(nxt_build "$expr" -A vendor)
    deps_hash=$(nix-store -q --hash "$deps")
    mapfile -t anchored <"$deps/nixcache-refs"
    # The anchor names the deps output itself and the vendor dir (its `.d` files name sources).
    assert_contains "$deps/nixcache-refs" "^$deps\$" "the deps output's anchor names the deps output"
    assert_contains "$deps/nixcache-refs" "^$vendor\$" "the deps output's anchor names the vendor dir"

    # Push the deps closure, signed, as a CI job would.
    nix-store --generate-binary-cache-key nixcache-test-1 "$T/cache.sec" "$T/cache.pub" ||
        nxt_fail "could not generate a binary cache key"
    nix copy --to "file://$cache?secret-key=$T/cache.sec" "$deps" >"$T/copy.log" 2>&1 ||
        nxt_fail "nix copy failed: $(tail -n 3 "$T/copy.log")"
    for p in "${anchored[@]}"; do
        assert_contains "$cache/$(nxt_narinfo_hash "$p").narinfo" "^Sig: nixcache-test-1:" "the signed narinfo of $p in the cache"
    done

    nxt_http_serve "$cache"
    nxt_fresh_store "$NXT_HTTP_URL"
    nxt_trust_cache "$T/cache.pub"
    for p in "${anchored[@]}"; do
        expect_fail "$p in the fresh store before the consumer's build" nix-store --check-validity "$p"
        assert_missing "$p" "$p in the fresh store before the consumer's build"
    done

    # The consumer: app, inheriting deps. Nix substitutes deps and its references over HTTP.
    log=$(nxt_build "$expr" -A appDrv.log)
    for p in "${anchored[@]}"; do
        nxt_assert_served "$NXT_HTTP_LOG" "$p"
    done
    assert_eq "$deps_hash" "$(nix-store -q --hash "$deps")" "the NAR hash of the substituted deps output"
    assert_not_contains "$T/build.log" "building '[^']*-(deps|vendor)\\.drv'" "builds in the consumer's store (only app)"
    assert_contains "$T/build.log" "building '[^']*-app\\.drv'" "the consumer's build"
    nxt_assert_built "$expr" depsDrv no
    nxt_assert_built "$expr" vendor no
    nxt_assert_consumer "$log"
    nxt_verify_artifacts "$deps"
    nxt_verify_store

    # Negative control: the same cache without one path the anchor names (the vendor dir).
    rm -f "$cache/$(nxt_narinfo_hash "$vendor").narinfo"
    nxt_fresh_store "$NXT_HTTP_URL"
    nxt_trust_cache "$T/cache.pub"
    seen=$(wc -l <"$NXT_HTTP_LOG")
    # Substituting deps alone (a CI step that pulls it) fails, naming the missing path, and leaves
    # no deps output behind: Nix never registers a path whose references it cannot bring along.
    expect_fail "substituting deps from a cache without the vendor dir" nix-store --realise "$deps"
    assert_eq "$vendor" "$(sed -n "/^don't know how to build these paths:/{n;s/^ *//;p}" "$T/expect_fail.out")" \
        "the path nix-store --realise cannot substitute"
    assert_contains "$T/expect_fail.out" "^error: build of '$deps' failed" "nix-store --realise of deps"
    assert_missing "$deps" "the deps output after a failed substitution"
    assert_missing "$vendor" "the vendor dir after a failed substitution"
    # The consumer does not fail: Nix builds the vendor dir from its derivation, then takes deps
    # (whose references are now all valid) from the cache, and app inherits it as before.
    log=$(nxt_build "$expr" -A appDrv.log)
    tail -n +"$((seen + 1))" "$NXT_HTTP_LOG" >"$T/http-negative.log"
    assert_contains "$T/http-negative.log" "\"GET /$(nxt_narinfo_hash "$vendor")\\.narinfo HTTP/1\\.1\" 404 " \
        "the vendor dir's narinfo, asked for and missing"
    nxt_assert_served "$T/http-negative.log" "$deps"
    nxt_assert_built "$expr" vendor yes
    nxt_assert_built "$expr" depsDrv no
    nxt_assert_consumer "$log"
    nxt_verify_artifacts "$deps"
}
