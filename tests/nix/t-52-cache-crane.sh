# Binary caches at fixture scale, through crane (issue 21, "binary caches at scale"): a deps output
# (buildDepsOnly) and a consumer that installs artifacts (cargoTest, inheriting it) pushed with
# their closures to flat-file caches compressed with zstd and with xz, the zstd one served over
# HTTP to an empty store that substitutes the consumer's closure and builds a package inheriting
# it, with every registry unit Fresh; the xz one substituted from the file system. bench/footprint.sh
# measures the same at the corpus's and ripgrep's scale. Uses t-50's and t-80's helpers.

# nxt_cache_nar CACHE PATH COMPRESSION EXT MAGIC: PATH is in CACHE, compressed with COMPRESSION:
# its narinfo says so, its URL ends with .nar.EXT, the file starts with MAGIC (hex), and its
# FileSize is that file's size.
nxt_cache_nar() {
    local cache="$1" p="$2" comp="$3" ext="$4" magic="$5" info url
    info="$cache/$(nxt_narinfo_hash "$p").narinfo"
    assert_exists "$info" "the narinfo of $p in $cache"
    assert_contains "$info" "^Compression: $comp\$" "the compression of $p in $cache"
    url=$(sed -n 's/^URL: //p' "$info")
    case "$url" in *.nar."$ext") ;; *) nxt_fail "the NAR of $p in $cache is \`$url\`, not a .nar.$ext" ;; esac
    assert_eq "$magic" "$(head -c "$(( ${#magic} / 2 ))" "$cache/$url" | od -An -tx1 | tr -d ' \n')" \
        "the magic number of $cache/$url"
    assert_eq "$(sed -n 's/^FileSize: //p' "$info")" "$(stat -c %s "$cache/$url")" "FileSize of $p in $cache"
}

test_5_crane_caches_zstd_xz() {
    nxt_crane_setup
    local expr deps test app c ext magic p info nar file
    expr=$(nxt_crane_expr caches <<'NIX'
rec {
  deps = nixcacheLib.buildDepsOnly common;
  test = nixcacheLib.cargoTest (common // { cargoArtifacts = deps; cargoExtraArgs = jsonArgs; });
  app = nixcacheLib.buildPackage (common // { cargoArtifacts = test;
    postBuild = ''cat "''${cargoBuildLog:-/dev/null}"''; });
}
NIX
    )
    deps=$(nxt_build "$expr" -A deps)
    test=$(nxt_build "$expr" -A test)
    assert_exists "$test/nixcache.json" "the consumer's output, packed by cargo-nixcache"
    grep -qx "$deps" "$test/nixcache-refs" || nxt_fail "the consumer's anchor does not name deps"
    # The consumer's own executables are inside its archive; deps' (linked there by the adapter's
    # default) are not stored again: no executable member of the consumer's archive is a file or
    # a member of deps (with deps' executables inside its archive, the consumer stores them again).
    # (rustc's outputs in deps/, named by unit; an uplifted name is the same in both when both
    # built the bin.)
    tar --zstd -tvf "$test/symlinks.tar.zst" | awk '$1 ~ /^-..x/ && $NF ~ /\/deps\// { print $NF }' |
        sort >"$T/test.exes"
    [ -s "$T/test.exes" ] || nxt_fail "no executable inside the consumer's archive"
    { (cd "$deps/artifacts" && find . -type f | sed 's|^\./||'); tar --zstd -tf "$deps/symlinks.tar.zst"; } |
        sort -u >"$T/deps.names"
    assert_eq "" "$(comm -12 "$T/test.exes" "$T/deps.names")" "deps' executables stored again by the consumer"
    nix-store -q --references "$test" | grep -qx "$deps" || nxt_fail "deps is not a reference of the consumer"

    # Push the consumer's closure (deps and the vendor dir with it) to one cache per compression.
    for c in zstd:zst:28b52ffd xz:xz:fd377a585a00; do
        IFS=: read -r c ext magic <<<"$c"
        nix copy --to "file://$T/cache-$c?compression=$c" "$test" >"$T/copy-$c.log" 2>&1 ||
            nxt_fail "nix copy, compression $c: $(tail -n 3 "$T/copy-$c.log")"
        for p in $(nix-store -q --requisites "$test"); do
            nxt_cache_nar "$T/cache-$c" "$p" "$c" "$ext" "$magic"
        done
        info="$T/cache-$c/$(nxt_narinfo_hash "$deps").narinfo"
        nar=$(sed -n 's/^NarSize: //p' "$info")
        file=$(sed -n 's/^FileSize: //p' "$info")
        [ "$file" -lt "$nar" ] || nxt_fail "deps in the $c cache: $file compressed bytes for a $nar-byte NAR"
        nxt_log "deps: NAR $nar bytes, $c $file bytes"
    done
    # The HTTP test of t-50 reads the served cache from $T/cache-dir.
    mv "$T/cache-zstd" "$T/cache-dir"

    # An empty store substitutes from the zstd cache over HTTP, then builds the package on the
    # consumer's artifacts (which link into deps, substituted as the consumer's reference).
    nxt_http_serve "$T/cache-dir"
    nxt_fresh_store "$NXT_HTTP_URL"
    for p in "$deps" "$test"; do
        expect_fail "$p in the fresh store" nix-store --check-validity "$p"
    done
    app=$(nxt_build "$expr" -A app)
    for p in "$deps" "$test"; do
        nxt_assert_served "$NXT_HTTP_LOG" "$p"
    done
    nxt_assert_built "$expr" deps no
    nxt_assert_built "$expr" test no
    assert_contains "$T/build.log" "nixcache: inheriting $test" "the package inherited the substituted consumer"
    assert_eq "hello from applib 84 42" "$("$app/bin/app")" "the app built after substitution"
    assert_eq "" "$(nxt_crane_stale_deps "$app")" "registry units not Fresh after substitution"
    nxt_crane_units "$app" >"$T/app.units"
    assert_contains "$T/app.units" "^fresh nc-alpha lib" "the package's cargo JSON: Fresh registry units"
    nxt_verify_artifacts "$test"
    nxt_verify_artifacts "$deps"
    nxt_verify_store
    nxt_http_stop

    # The xz cache, from the file system: the same NARs.
    nxt_fresh_store "file://$T/cache-xz"
    nix-store -r "$test" >"$T/subst-xz.log" 2>&1 || nxt_fail "substituting from the xz cache: $(tail -n 3 "$T/subst-xz.log")"
    assert_eq "$(sed -n 's/^NarHash: //p' "$T/cache-dir/$(nxt_narinfo_hash "$deps").narinfo")" \
        "$(nix-store -q --hash "$deps")" "the NAR hash of deps substituted from the xz cache"
    nxt_verify_artifacts "$test"

    # Negative control: a cache whose narinfo of the consumer lost its reference to deps (and
    # has no deps at all; no signatures are required here). Nix substitutes the consumer alone,
    # and the package inheriting it fails in unpack, naming the store path that is missing,
    # instead of building on a target dir with dangling links.
    info="$T/cache-dir/$(nxt_narinfo_hash "$test").narinfo"
    awk -v d="$(basename "$deps")" '/^References:/ { s = "References:"; for (i = 2; i <= NF; i++) if ($i != d) s = s " " $i; print s; next }
        /^Sig: / { next } { print }' "$info" >"$info.new"
    mv "$info.new" "$info"
    assert_not_contains "$info" "$(basename "$deps")" "the edited narinfo of the consumer"
    rm -f "$T/cache-dir/$(nxt_narinfo_hash "$deps").narinfo"
    nxt_http_serve "$T/cache-dir"
    nxt_fresh_store "$NXT_HTTP_URL"
    nix-store -r "$test" >"$T/subst-bad.log" 2>&1 || nxt_fail "substituting the edited consumer: $(tail -n 3 "$T/subst-bad.log")"
    assert_missing "$deps" "deps, not in the cache"
    nxt_build_fails "$expr" -A app
    nxt_log "the negative control's error: $(grep -m1 '^error: archive' "$T/build.log" | cut -c1-400)"
    assert_contains "$T/build.log" "^error: archive \`$test/[^\`]*\` links into \`$deps\`, which does not exist \(garbage-collected or never substituted\?\); realise it" \
        "unpack's error for the package on a consumer whose deps are missing"
    assert_not_contains "$T/build.log" "Compiling nc-" "a build on dangling links"
}
