# shellcheck shell=bash
# crane adapter, install side: crane's own installCargoArtifactsHook, unchanged, plus the mode
# "use-nixcache" for installCargoArtifactsMode. Every other mode runs crane's function exactly as
# before. @craneInstallHook@ and @nixcacheInstallHook@ are substituted by nix/crane.nix.

# crane's hook: defines prepareAndInstallCargoArtifactsDir and registers it on postInstallHooks
# when doInstallCargoArtifacts = 1.
# shellcheck disable=SC1091
source "@craneInstallHook@"

nixcacheCraneSavedDont="${dontNixcacheInstall-}"
dontNixcacheInstall=1
# shellcheck disable=SC1091
source "@nixcacheInstallHook@"
dontNixcacheInstall="$nixcacheCraneSavedDont"
unset nixcacheCraneSavedDont

eval "cranePrepareAndInstallCargoArtifactsDir ()
$(declare -f prepareAndInstallCargoArtifactsDir | tail -n +2)"

# prepareAndInstallCargoArtifactsDir [DIR [TARGET_DIR [MODE]]]: same parameters as crane's.
prepareAndInstallCargoArtifactsDir() {
    local mode="${3:-${installCargoArtifactsMode:-use-symlink}}"
    if [ "$mode" != use-nixcache ]; then
        cranePrepareAndInstallCargoArtifactsDir "$@"
        return
    fi
    if [ $# -eq 0 ] && [ -n "${nixcacheCranePackLast:-}" ]; then
        # Called from postInstallHooks: nixcacheCranePack (registered last) does the work.
        return 0
    fi
    nixcacheInstallArtifacts "${1:-}" "${2:-}"
}

# crane's removeReferencesToVendoredSources is also a postInstall hook: it rewrites vendor store
# hashes in every file of $out. Packing after it keeps the archive and its GC anchor intact (and
# the vendor dir anchored for the .d files that name it). Registering during preInstall puts us
# after every hook registered when the setup hooks were sourced.
nixcacheCranePack() {
    nixcacheInstallArtifacts "${out:?}" "${CARGO_TARGET_DIR:-target}"
}
nixcacheCraneRegisterPack() {
    postInstallHooks+=(nixcacheCranePack)
}
if [ "${doInstallCargoArtifacts-}" = 1 ] && [ "${installCargoArtifactsMode-}" = use-nixcache ]; then
    nixcacheCranePackLast=1
    preInstallHooks+=(nixcacheCraneRegisterPack)
fi
