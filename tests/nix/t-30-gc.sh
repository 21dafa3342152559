# Test 3: GC with only the last output rooted keeps the whole chain alive through the anchor.

# nxt_archive_links OUT: the symlink targets in OUT's archive (decompressed when needed).
nxt_archive_links() {
    local out="$1" archive
    archive=$(ls "$out"/symlinks.tar* 2>/dev/null | head -n 1)
    [ -n "$archive" ] || nxt_fail "no symlinks.tar* in \`$out\`"
    case "$archive" in
        *.zst) zstd -dc -- "$archive" | tar -tvf - ;;
        *) tar -tvf "$archive" ;;
    esac | grep -E '^l' | sed -E 's/.* -> //'
}

test_3_gc_keeps_anchored_chain() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps app root="$T/result"
    expr=$(nxt_chain_expr chain 'deps = { nixcacheCompress = "zstd"; }; app = { nixcacheCompress = "zstd"; };')
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    assert_exists "$app/symlinks.tar.zst" "app's compressed archive"
    assert_contains "$app/nixcache-refs" "^$deps\$" "app's anchor names the deps output"
    # Only app's artifacts output is rooted.
    nix-store --add-root "$root" --indirect -r "$app" >/dev/null || nxt_fail "could not root $app"
    nix-store --gc >"$T/gc.log" 2>&1 || nxt_fail "nix-store --gc failed: $(tail -n 3 "$T/gc.log")"
    assert_contains "$T/gc.log" "store paths deleted" "gc output"
    assert_exists "$deps" "the deps output after GC (anchored by app)"

    local n=0 dest
    while IFS= read -r dest; do
        [ -e "$dest" ] || nxt_fail "dangling link after GC: -> $dest"
        n=$((n + 1))
    done < <(nxt_archive_links "$app")
    [ "$n" -gt 0 ] || nxt_fail "app's archive holds no symlinks"
    nxt_log "$n links resolve after GC"
    nxt_verify_artifacts "$app"
    nxt_verify_store
}

# Negative control: the same compressed archive without the anchor (copied into an output of its
# own) does not keep the deps output alive: GC deletes it and the links dangle.
test_3_gc_without_anchor_loses_deps() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    local expr deps app bare root="$T/result"
    expr=$(nxt_expr noanchor <<NIX
let c = import $NXT_DIR/chain.nix { inherit t; deps = { nixcacheCompress = "zstd"; };
                                    app = { nixcacheCompress = "zstd"; }; }; in
c // {
  bare = derivation {
    name = "archive-without-anchor";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" "/bin/mkdir \$out && /bin/cp \${c.appDrv.out}/symlinks.tar.zst \$out/" ];
  };
}
NIX
    )
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    bare=$(nxt_build "$expr" -A bare)
    if nix-store -q --references "$bare" | grep -q .; then
        nxt_log "note: Nix found references inside the zstd archive: $(nix-store -q --references "$bare" | tr '\n' ' ')"
    fi
    nix-store --add-root "$root" --indirect -r "$bare" >/dev/null || nxt_fail "could not root $bare"
    nix-store --gc >"$T/gc.log" 2>&1 || nxt_fail "nix-store --gc failed"
    assert_missing "$deps" "the deps output after GC without an anchor"
    local dangling=0 dest
    while IFS= read -r dest; do
        [ -e "$dest" ] || dangling=$((dangling + 1))
    done < <(nxt_archive_links "$bare")
    [ "$dangling" -gt 0 ] || nxt_fail "expected dangling links without the anchor"
    nxt_log "$dangling links dangle without the anchor (as expected)"
}
