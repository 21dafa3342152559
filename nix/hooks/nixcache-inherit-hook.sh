# shellcheck shell=bash
# cargo-nixcache inherit hook: restore a cargo target dir from `$cargoArtifacts`, make stale
# binaries impossible, and route rustc through the nixcache wrapper.
#
# Add it to nativeBuildInputs (with cargo-nixcache on PATH) and set `cargoArtifacts` to the output
# of an earlier derivation: a cargo-nixcache output, or crane's own formats (target.tar.zst with
# its .prev chain, or a target/ dir), which `cargo-nixcache unpack` reads too.
#
# Runs after the patch phase, in the source root, like crane's inheritCargoArtifactsHook.
#
# Knobs (derivation attributes):
#   cargoArtifacts          what to inherit; unset or empty: this hook does nothing
#   CARGO_TARGET_DIR        the target dir (default `target`)
#   CARGO_BUILD_BUILD_DIR   a separate build dir (cargo's build.build-dir), honoured by the binary
#   dontNixcacheInherit     1: do not register the hook (call nixcacheInherit yourself)
#   dontNixcacheFreshen     1: skip the stale-binary guard (see nixcacheFreshenSources)
#   dontNixcacheWrapper     1: do not set up the rustc wrapper
#   nixcacheUnpackFlags     extra arguments for `cargo-nixcache unpack` (a string of words, or
#                           a list under __structuredAttrs)
#   doNotLinkInheritedArtifacts
#                           1: writable copies instead of links into the store (crane's knob, for
#                           tools that modify inherited artifacts in place, e.g. tarpaulin)

# nixcacheFlagWords NAME: the words of flags attribute NAME, one per line: an array (a list
# attribute under __structuredAttrs) element by element, a string split on white space.
nixcacheFlagWords() {
    if [[ "$(declare -p "$1" 2>/dev/null)" == "declare -a"* ]]; then
        local -n nixcacheFlagsRef="$1"
        [ ${#nixcacheFlagsRef[@]} -eq 0 ] || printf '%s\n' "${nixcacheFlagsRef[@]}"
    else
        local words
        read -ra words <<<"${!1:-}"
        [ ${#words[@]} -eq 0 ] || printf '%s\n' "${words[@]}"
    fi
}

# nixcacheInherit [ARTIFACTS [TARGET_DIR]]
nixcacheInherit() {
    local artifacts="${1:-${cargoArtifacts:-}}"
    local targetDir="${2:-${CARGO_TARGET_DIR:-target}}"

    if [ -z "$artifacts" ]; then
        echo "nixcache: cargoArtifacts not set, nothing to inherit"
        return 0
    fi

    local -a flags
    mapfile -t flags < <(nixcacheFlagWords nixcacheUnpackFlags)
    echo "nixcache: inheriting $artifacts into $targetDir"
    cargo-nixcache unpack "$artifacts" --target-dir "$targetDir" ${flags[@]+"${flags[@]}"} || return 1
    if [ -n "${doNotLinkInheritedArtifacts:-}" ]; then
        nixcacheCopyInherited "$targetDir" || return 1
    fi

    if [ "${dontNixcacheFreshen:-}" != 1 ]; then
        nixcacheFreshenSources "$artifacts" "$targetDir" || return 1
    fi
    if [ "${dontNixcacheWrapper:-}" != 1 ]; then
        nixcacheSetupWrapper || return 1
    fi
}

# nixcacheCopyInherited TARGET_DIR: replace the links into the store with writable copies (their
# mtimes kept, so cargo still finds them Fresh), as crane does for doNotLinkInheritedArtifacts.
nixcacheCopyInherited() {
    local targetDir="$1"
    echo "nixcache: copying inherited artifacts instead of linking them, as requested"
    cp -r --dereference --preserve=timestamps --no-preserve=ownership --no-target-directory \
        -- "$targetDir" "$targetDir.nixcache-copy" || return 1
    chmod -R u+w -- "$targetDir.nixcache-copy" || return 1
    rm -rf -- "$targetDir" && mv -- "$targetDir.nixcache-copy" "$targetDir"
}

# nixcacheFreshenSources [ARTIFACTS [TARGET_DIR]]: the stale-binary guard (see `cargo nixcache
# freshen --help` and docs/nix.md). Every store file has mtime 1, and so do sources copied out of
# the store, so inherited fingerprints built from other sources could make cargo ship an old
# binary. Local packages whose sources differ from the digests recorded in ARTIFACTS get a fresh
# mtime, so cargo rebuilds them; the others, and registry dependencies, stay Fresh. It runs no
# cargo, so it works before crane's vendoring config exists.
nixcacheFreshenSources() {
    cargo-nixcache freshen --inherited "${1:-${cargoArtifacts:?}}" \
        --target-dir "${2:-${CARGO_TARGET_DIR:-target}}"
}

# nixcacheSetupWrapper: export what `cargo-nixcache env` prints: RUSTC_WRAPPER pointing at the
# nixcache wrapper, chained in front of the project's own wrapper (resolved with cargo's
# precedence). Without it, rebuilding a unit whose outputs are read-only symlinks into the store
# fails with "Permission denied".
nixcacheSetupWrapper() {
    local exports
    exports=$(cargo-nixcache env) || return 1
    eval "$exports"
    echo "nixcache: rustc wrapper set up (RUSTC_WRAPPER=${RUSTC_WRAPPER:-})"
}

if [ -z "${dontNixcacheInherit:-}" ]; then
    postPatchHooks+=(nixcacheInherit)
fi
