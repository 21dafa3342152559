# shellcheck shell=bash
# crane adapter, inherit side: crane's own inheritCargoArtifactsHook, unchanged, plus a dispatch
# so that derivations with installCargoArtifactsMode = "use-nixcache" go through
# `cargo-nixcache unpack`. Every other derivation runs crane's function exactly as before (so a
# derivation that forgot to opt in but inherits a cargo-nixcache output fails loudly with crane's
# "looks invalid", rather than building from a partial tree).
# @craneInheritHook@ and @nixcacheInheritHook@ are substituted by nix/crane.nix.

# crane's hook: defines inheritCargoArtifacts and registers it when cargoArtifacts is set.
# shellcheck disable=SC1091
source "@craneInheritHook@"

# Our functions, without our registration (crane's registration above already runs the dispatch).
nixcacheCraneSavedDont="${dontNixcacheInherit-}"
dontNixcacheInherit=1
# shellcheck disable=SC1091
source "@nixcacheInheritHook@"
dontNixcacheInherit="$nixcacheCraneSavedDont"
unset nixcacheCraneSavedDont

# Keep crane's function under another name; crane registers hooks by name, so redefining
# inheritCargoArtifacts below changes what its registration runs.
eval "craneInheritCargoArtifacts ()
$(declare -f inheritCargoArtifacts | tail -n +2)"

# inheritCargoArtifacts [ARTIFACTS [TARGET_DIR]]: same parameters as crane's.
inheritCargoArtifacts() {
    if [ "${installCargoArtifactsMode:-}" = use-nixcache ]; then
        nixcacheInherit "$@"
    else
        craneInheritCargoArtifacts "$@"
    fi
}
