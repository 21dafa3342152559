# shellcheck shell=bash
# An emulation of nixpkgs' stdenv builder, for running crane's REAL Nix files and setup hooks
# here, where nixpkgs cannot be fetched. Written from nixpkgs' pkgs/stdenv/generic/setup.sh
# (NixOS/nixpkgs, read at 0008138; behaviour emulated, code not copied). What is emulated:
#   - shell options: `set -eu -o pipefail` + inherit_errexit while setting up, then nounset is
#     dropped again before the phases (setup.sh restores the caller's options, and the default
#     builder runs `bash -e`), so hooks that read unset variables behave as under nixpkgs;
#   - runHook / runOneHook / _callImplicitHook / _eval: the implicit hook (a function, a file or a
#     string attribute of that name) first, then the `<name>Hooks` array, in order;
#   - inputs: nativeBuildInputs (+ propagatedNativeBuildInputs) and buildInputs, followed through
#     `nix-support/propagated-build-inputs` and `propagated-native-build-inputs` depth first,
#     activated in setup.sh's order (build->host packages first): `bin/` on PATH, then
#     `nix-support/setup-hook` sourced;
#   - genericBuild: unpack patch configure build check install fixup installCheck dist, each
#     skipped by its dont*/do* switch, each an attribute of that name if set (eval'd) else the
#     default function; unpack copies a directory source (`cp -pr --reflink=auto`, hash stripped)
#     and makes it writable; fixup makes outputs writable and records propagated inputs;
#   - runHook postHook once the inputs are activated.
# Not emulated: structured attrs, strictDeps (no-op here: one platform runs the build), strip /
# patchelf / patchShebangs in fixup, the cc wrapper, nix-shell. tests/nix/crane/nixpkgs.nix
# builds derivations with this file as the builder's first argument.

set -eu -o pipefail
shopt -s inherit_errexit nullglob

: "${outputs:=out}"
export PATH="${initialPath:-/usr/bin:/bin}"
export SHELL=/bin/bash CONFIG_SHELL=/bin/bash TZ=UTC
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
NIX_BUILD_CORES="${NIX_BUILD_CORES:-1}"
if ((NIX_BUILD_CORES <= 0)); then NIX_BUILD_CORES=$(nproc); fi
export NIX_BUILD_CORES

# --- hooks -------------------------------------------------------------------------------------

_eval() {
    if declare -F "$1" >/dev/null 2>&1; then
        "$@"
    else
        eval "$1"
    fi
}

_callImplicitHook() {
    local fallback="$1" name="$2"
    if declare -F "$name" >/dev/null; then
        "$name"
    elif type -p "$name" >/dev/null; then
        # shellcheck disable=SC1090
        source "$name"
    elif [ -n "${!name:-}" ]; then
        eval "${!name}"
    else
        return "$fallback"
    fi
}

runHook() {
    local name="$1"
    shift
    local array="${name%Hook}Hooks[@]" hook
    for hook in "_callImplicitHook 0 $name" ${!array+"${!array}"}; do
        _eval "$hook" "$@"
    done
    return 0
}

runOneHook() {
    local name="$1"
    shift
    local array="${name%Hook}Hooks[@]" hook
    for hook in "_callImplicitHook 1 $name" ${!array+"${!array}"}; do
        if _eval "$hook" "$@"; then return 0; fi
    done
    return 1
}

addToSearchPath() {
    local var="$1" dir="$2"
    if [[ -d "$dir" && ":${!var-}:" != *":$dir:"* ]]; then
        export "$var=${!var:+${!var}:}$dir"
    fi
}

stripHash() {
    local base
    base=$(basename -- "$1")
    if [[ "$base" =~ ^[a-z0-9]{32}- ]]; then echo "${base:33}"; else echo "$base"; fi
}

# --- inputs ------------------------------------------------------------------------------------

declare -a nixcacheEmuBuildPkgs=() nixcacheEmuHostPkgs=()

# _findInputs PKG LIST: depth first, each package once, the package before what it propagates.
_findInputs() {
    local pkg="$1" list="$2" seen="${2}[*]" next file
    case " ${!seen-} " in *" $pkg "*) return 0 ;; esac
    eval "$list"'+=("$pkg")'
    [ -e "$pkg" ] || { echo "build input $pkg does not exist" >&2; exit 1; }
    for file in propagated-native-build-inputs propagated-build-inputs; do
        [ -f "$pkg/nix-support/$file" ] || continue
        for next in $(cat "$pkg/nix-support/$file"); do
            _findInputs "$next" "$list"
        done
    done
}

for pkg in ${nativeBuildInputs:-} ${propagatedNativeBuildInputs:-}; do
    _findInputs "$pkg" nixcacheEmuBuildPkgs
done
for pkg in ${buildInputs:-} ${propagatedBuildInputs:-}; do
    _findInputs "$pkg" nixcacheEmuHostPkgs
done

newPath=""
for pkg in ${nixcacheEmuBuildPkgs[@]+"${nixcacheEmuBuildPkgs[@]}"} \
    ${nixcacheEmuHostPkgs[@]+"${nixcacheEmuHostPkgs[@]}"}; do
    if [ -f "$pkg" ]; then
        # shellcheck disable=SC1090
        source "$pkg"
    fi
    addToSearchPath newPath "$pkg/bin"
    if [ -f "$pkg/nix-support/setup-hook" ]; then
        # shellcheck disable=SC1090
        source "$pkg/nix-support/setup-hook"
    fi
done
PATH="${newPath:+$newPath:}$PATH"
unset newPath pkg

# --- phases ------------------------------------------------------------------------------------

unpackPhase() {
    runHook preUnpack
    local fn="${srcs:-${src:?variable \$src or \$srcs should point to the source}}" dest
    for fn in $fn; do
        if [ -d "$fn" ]; then
            dest=$(stripHash "$fn")
            cp -pr --reflink=auto -- "$fn" "$dest"
            : "${sourceRoot:=$dest}"
        else
            tar xf "$fn" --mode=+w --warning=no-timestamp
        fi
    done
    echo "source root is $sourceRoot"
    if [ "${dontMakeSourcesWritable:-0}" != 1 ]; then chmod -R u+w -- "$sourceRoot"; fi
    runHook postUnpack
}

patchPhase() {
    runHook prePatch
    runHook postPatch
}

configurePhase() {
    runHook preConfigure
    runHook postConfigure
}

buildPhase() {
    runHook preBuild
    echo "no Makefile or custom buildPhase, doing nothing"
    runHook postBuild
}

checkPhase() {
    runHook preCheck
    runHook postCheck
}

installPhase() {
    runHook preInstall
    runHook postInstall
}

fixupPhase() {
    local output
    for output in $outputs; do
        if [ -e "${!output}" ]; then chmod -R u+w,u-s,g-s "${!output}"; fi
    done
    runHook preFixup
    if [ -n "${propagatedBuildInputs:-}" ]; then
        mkdir -p "$out/nix-support"
        printf '%s ' $propagatedBuildInputs >"$out/nix-support/propagated-build-inputs"
    fi
    runHook postFixup
}

installCheckPhase() { :; }
distPhase() { :; }

runPhase() {
    local phase="$1"
    case "$phase" in
    unpackPhase) [ -z "${dontUnpack:-}" ] || return 0 ;;
    patchPhase) [ -z "${dontPatch:-}" ] || return 0 ;;
    configurePhase) [ -z "${dontConfigure:-}" ] || return 0 ;;
    buildPhase) [ -z "${dontBuild:-}" ] || return 0 ;;
    checkPhase) [ -n "${doCheck:-}" ] || return 0 ;;
    installPhase) [ -z "${dontInstall:-}" ] || return 0 ;;
    fixupPhase) [ -z "${dontFixup:-}" ] || return 0 ;;
    installCheckPhase) [ -n "${doInstallCheck:-}" ] || return 0 ;;
    distPhase) [ -n "${doDist:-}" ] || return 0 ;;
    esac
    echo "Running phase: $phase"
    eval "${!phase:-$phase}"
    if [ "$phase" = unpackPhase ]; then
        chmod +x -- "${sourceRoot:-.}"
        cd -- "${sourceRoot:-.}"
    fi
}

genericBuild() {
    if [ -n "${buildCommand:-}" ]; then
        eval "$buildCommand"
        return
    fi
    local phase
    for phase in ${phases:-unpackPhase patchPhase configurePhase buildPhase checkPhase \
        installPhase fixupPhase installCheckPhase distPhase}; do
        runPhase "$phase"
    done
}

runHook postHook

# As setup.sh does for a builder started with `bash -e`: keep errexit and pipefail, drop nounset.
set +u
cd "${NIX_BUILD_TOP:-$TMPDIR}"
genericBuild
