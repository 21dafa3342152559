# shellcheck shell=bash
# crane adapter hook (added to every crane derivation by nix/crane.nix). crane's own setup hooks
# define inheritCargoArtifacts and prepareAndInstallCargoArtifactsDir and register them by name
# (postPatchHooks, postInstallHooks, or `installPhase = "prepareAndInstallCargoArtifactsDir"`).
# This hook is sourced before them, so it waits for stdenv's postHook (run once every setup hook
# is sourced) and then wraps both functions; crane's registrations then run the wrappers.
# It also brings the stable vendor path hook, which registers itself only where
# nixcacheStableVendorDir is set (after crane's vendoring config: it runs on postConfigure).
# @nixcacheInheritHook@, @nixcacheInstallHook@, @nixcacheVendorHook@ and @nixcacheDefaultMode@ are
# substituted by nix/crane.nix.

# Our functions, without our own registrations: crane's registrations drive them.
nixcacheCraneSaved="${dontNixcacheInherit-}:${dontNixcacheInstall-}"
dontNixcacheInherit=1
dontNixcacheInstall=1
# shellcheck disable=SC1091
source "@nixcacheInheritHook@"
# shellcheck disable=SC1091
source "@nixcacheInstallHook@"
# shellcheck disable=SC1091
source "@nixcacheVendorHook@"
dontNixcacheInherit="${nixcacheCraneSaved%%:*}"
dontNixcacheInstall="${nixcacheCraneSaved#*:}"
unset nixcacheCraneSaved

# nixcacheIsArtifacts DIR: DIR is a cargo-nixcache output (its manifest is written last, so its
# presence means the output is complete; docs/format.md).
nixcacheIsArtifacts() {
    [ -n "${1:-}" ] && [ -f "$1/nixcache.json" ]
}

nixcacheCraneAdapt() {
    if ! declare -F inheritCargoArtifacts >/dev/null ||
        ! declare -F prepareAndInstallCargoArtifactsDir >/dev/null; then
        echo "nixcache: crane's setup hooks are not in this derivation; the crane adapter does nothing"
        return 0
    fi
    eval "craneInheritCargoArtifacts ()
$(declare -f inheritCargoArtifacts | tail -n +2)"
    eval "cranePrepareAndInstallCargoArtifactsDir ()
$(declare -f prepareAndInstallCargoArtifactsDir | tail -n +2)"

    # inheritCargoArtifacts [ARTIFACTS [TARGET_DIR]]: crane's parameters. crane's function calls
    # itself by name for each `.prev` of a target.tar.zst chain: those files go back to crane.
    inheritCargoArtifacts() {
        local artifacts="${1:-${cargoArtifacts:?not defined}}"
        if nixcacheIsArtifacts "$artifacts"; then
            nixcacheInherit "$artifacts" "${2:-${CARGO_TARGET_DIR:-target}}"
        else
            craneInheritCargoArtifacts "$@"
        fi
    }

    # prepareAndInstallCargoArtifactsDir [DIR [TARGET_DIR [MODE [PREV]]]]: crane's parameters.
    prepareAndInstallCargoArtifactsDir() {
        local dir="${1:-${out:?}}"
        local targetDir="${2:-${CARGO_TARGET_DIR:-target}}"
        local prev="${4:-${cargoArtifacts:-}}"
        local mode="${3:-${installCargoArtifactsMode:-}}"
        if [ -z "$mode" ]; then
            if nixcacheIsArtifacts "$prev"; then mode=use-nixcache; else mode="@nixcacheDefaultMode@"; fi
        fi
        case "$mode" in
        use-nixcache)
            nixcacheInstallArtifacts "$dir" "$targetDir"
            ;;
        use-zstd)
            if nixcacheIsArtifacts "$prev"; then
                echo "nixcache: installCargoArtifactsMode = \"use-zstd\" cannot build on the" \
                    "cargo-nixcache artifacts $prev (a target.tar.zst chain cannot refer to them);" \
                    "use installCargoArtifactsMode = \"use-nixcache\" (or leave it unset)" >&2
                return 1
            fi
            cranePrepareAndInstallCargoArtifactsDir "$dir" "$targetDir" "$mode" "$prev"
            ;;
        *)
            cranePrepareAndInstallCargoArtifactsDir "$dir" "$targetDir" "$mode" "$prev"
            ;;
        esac
    }

    # A derivation that will install our artifacts builds through the wrapper, as its consumers
    # will (see nixcacheWrapperForPack); one that inherits ours gets it from nixcacheInherit.
    if [ "${doInstallCargoArtifacts:-}" = 1 ] && [ "${dontNixcacheWrapper:-}" != 1 ] &&
        [ "${installCargoArtifactsMode:-@nixcacheDefaultMode@}" = use-nixcache ]; then
        postPatchHooks+=(nixcacheWrapperForPack)
    fi
}
postHooks+=(nixcacheCraneAdapt)
