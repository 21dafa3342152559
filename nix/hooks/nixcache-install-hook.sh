# shellcheck shell=bash
# cargo-nixcache install hook: pack the cargo target dir into an output after the install phase,
# so later derivations can inherit it (`cargoArtifacts = thisDerivation;`).
#
# The output gets nixcache.json, symlinks.tar[.zst], the GC anchor nixcache-refs and artifacts/
# (see docs/format.md). Knobs (derivation attributes):
#   nixcacheOutput          name of the output to pack into (default `out`)
#   CARGO_TARGET_DIR        the target dir (default `target`)
#   CARGO_BUILD_BUILD_DIR   a separate build dir, packed too (handled by the binary)
#   nixcacheCompress        zstd or none (default: the binary's default)
#   nixcacheInlineExecutables  which executables go inside the archive rather than being linked:
#                           leaves (test binaries, bins, examples), all (build scripts too) or
#                           none (default: the binary's, leaves; the crane adapter says none for
#                           buildDepsOnly and all for the rest, see docs/nix.md "What an output
#                           stores")
#   dontNixcacheInstall     1: do not register the hook (call nixcacheInstallArtifacts yourself)
#   dontNixcacheWrapper     1: do not build through the rustc wrapper (see nixcacheWrapperForPack)
#   nixcachePackFlags       extra arguments for `cargo-nixcache pack` (a string of words, or a
#                           list under __structuredAttrs)

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

# nixcacheInstallArtifacts [DEST [TARGET_DIR]]
nixcacheInstallArtifacts() {
    local outputName="${nixcacheOutput:-out}"
    local dest="${1:-${!outputName:-}}"
    local targetDir="${2:-${CARGO_TARGET_DIR:-target}}"
    local -a flags=()

    if [ -z "$dest" ]; then
        echo "nixcache: output \`$outputName\` is not defined; cannot pack $targetDir" >&2
        return 1
    fi
    if [ -n "${nixcacheCompress:-}" ]; then
        flags+=(--compress "$nixcacheCompress")
    fi
    if [ -n "${nixcacheInlineExecutables:-}" ]; then
        flags+=(--inline-executables "$nixcacheInlineExecutables")
    fi
    mapfile -t -O ${#flags[@]} flags < <(nixcacheFlagWords nixcachePackFlags)
    echo "nixcache: packing $targetDir into $dest"
    mkdir -p -- "$dest" || return 1
    cargo-nixcache pack --target-dir "$targetDir" --out "$dest" "${flags[@]}"
}

# nixcacheWrapperForPack: a derivation whose target dir is packed builds through the rustc
# wrapper too, as every derivation inheriting it will. cargo keeps its rustc probes (`rustc -vV`,
# the target's file names) in the target dir (.rustc_info.json), per wrapper: probes made without
# it make each consumer run rustc twice more before building, ~35 ms a build (docs/benchmarks.md).
# Without inherited links the wrapper only runs rustc.
nixcacheWrapperForPack() {
    local exports
    exports=$(cargo-nixcache env) || return 1
    eval "$exports"
}

if [ -z "${dontNixcacheInstall:-}" ]; then
    postInstallHooks+=(nixcacheInstallArtifacts)
    if [ "${dontNixcacheWrapper:-}" != 1 ]; then
        postPatchHooks+=(nixcacheWrapperForPack)
    fi
fi
