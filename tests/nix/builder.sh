# Builder for the Nix tests: a minimal stand-in for nixpkgs' stdenv (which cannot be downloaded
# here). It runs the same phases and hook arrays as stdenv, in the same shell options, so the
# setup hooks under nix/hooks are exercised the way a real stdenv derivation would run them.
#
# Inputs (derivation attributes): src (a directory holding the workspace at $sourceRoot), hostPath,
# setupHooks (files to source), buildPhase, installPhase, optional cargoArtifacts and hook knobs.
set -eu -o pipefail

export PATH="$hostPath"
# Without HOME, tools write to /homeless-shelter, which breaks every later build as root.
export HOME="$TMPDIR/home"
export CARGO_HOME="$TMPDIR/cargo-home"
mkdir -p "$HOME" "$CARGO_HOME"
if [ -n "${log:-}" ]; then mkdir -p "$log"; fi

# stdenv's runHook: the implicit hook (a variable of that name) first, then the `<name>Hooks` array.
runHook() {
    local hookName="$1"
    shift
    local hooksSlice="${hookName%Hook}Hooks[@]"
    if [ -n "${!hookName:-}" ]; then
        eval "${!hookName}"
    fi
    local hook
    for hook in ${!hooksSlice+"${!hooksSlice}"}; do
        "$hook" "$@"
    done
    return 0
}

for hook in ${setupHooks:-}; do
    # shellcheck disable=SC1090
    source "$hook"
done

# unpackPhase, as stdenv does it for a directory source: copy with mtimes kept (they are 1, as
# everything in the store), then make it writable.
cp -pr --reflink=auto -- "$src" "$TMPDIR/source"
chmod -R u+w -- "$TMPDIR/source"
cd "$TMPDIR/source/${sourceRoot:-.}"
# The fixtures find their vendored registry at ../vendor; point cargo at the vendor store path
# instead (as crane's configureCargoVendoredDeps does), so artifacts really name a store path.
if [ -n "${vendor:-}" ] && [ -f .cargo/config.toml ]; then
    sed -i "s|^directory = .*|directory = \"$vendor\"|" .cargo/config.toml
fi
runHook postUnpack

runHook prePatch
runHook postPatch

runHook preConfigure
runHook postConfigure

runHook preBuild
eval "${buildPhase:-}"
runHook postBuild

runHook preInstall
eval "${installPhase:-}"
runHook postInstall

runHook preFixup
runHook postFixup

# A derivation that packed nothing still has to produce $out.
[ -e "$out" ] || mkdir -p "$out"
