# shellcheck shell=bash
# An emulation of nixpkgs' stdenv `setup` ($stdenv/setup), for running crane's REAL Nix files and
# setup hooks here, where nixpkgs' pkgs/ cannot be fetched. Written from nixpkgs'
# pkgs/stdenv/generic/setup.sh (NixOS/nixpkgs, read at 183939da; behaviour emulated, code not
# copied). Like the real file it is SOURCED: by source-stdenv.sh before a build's builder (the
# default one runs genericBuild), by nix-shell in the user's shell, and by `nix develop` inside its
# env-dump build; so it defines functions and variables, runs the setup hooks, and leaves the
# caller's shell options as it found them. What is emulated:
#   - shell options: `set -eu -o pipefail` + inherit_errexit while setting up; the caller's
#     errexit/nounset restored at the end (a builder runs `bash -e`: errexit stays on);
#   - structured attrs: with `.attrs.sh` (sourced by source-stdenv.sh), outputs come from the
#     `outputs` associative array and `env` is exported; the dependency variables are arrays;
#   - runHook / runOneHook / _callImplicitHook / _eval: the implicit hook (a function, a file or a
#     string attribute of that name) first, then the `<name>Hooks` array, in order;
#   - inputs: depsBuildBuild, nativeBuildInputs, depsBuildTarget, then the stdenv's
#     defaultNativeBuildInputs (its cc and the fixup hooks; build platform) and depsHostHost,
#     buildInputs (host platform), with their propagated-* files followed depth first, activated
#     in setup.sh's order (build platform first): a file input is sourced, a package's `bin/` goes
#     on PATH (host packages' only without strictDeps), its `nix-support/setup-hook` is sourced;
#   - genericBuild: prePhases, unpack, patch, preConfigurePhases, configure, preBuildPhases,
#     build, check, preInstallPhases, install, preFixupPhases, fixup, installCheck, preDistPhases,
#     dist, postPhases (or `phases`), each skipped by its dont*/do* switch, each an attribute of that
#     name if set (eval'd) else the default function; buildCommand / buildCommandPath instead;
#     unpack copies a directory source (`cp -pr --reflink=auto`, hash stripped) and makes it
#     writable; fixup makes outputs writable, runs fixupOutput per output, records propagated
#     inputs;
#   - runHook postHook once the inputs are activated, then userHook.
# Not emulated: the exit handler (failureHook), logging nests, substitute*, configure/make.
# tests/nix/crane/nixpkgs.nix makes it the stdenv package's `setup`.

__nixpkgs_setup_set_original=$-
set -eu -o pipefail
shopt -s inherit_errexit nullglob

# Nix 2.8 names a NIX_ATTRS_SH_FILE outside the sandbox (Nix issue 6736): the file in the build
# dir is the one to trust, as setup.sh does.
if [ -f .attrs.sh ] || [ -e "${NIX_ATTRS_SH_FILE:-}" ]; then
    __structuredAttrs=1
    for outputName in "${!outputs[@]}"; do
        export "$outputName=${outputs[$outputName]}"
    done
    export NIX_ATTRS_JSON_FILE="${NIX_BUILD_TOP:-$PWD}/.attrs.json" NIX_ATTRS_SH_FILE="${NIX_BUILD_TOP:-$PWD}/.attrs.sh"
    for envVar in "${!env[@]}"; do
        declare -x "$envVar=${env[$envVar]}"
    done
    unset outputName envVar
else
    __structuredAttrs=
    : "${outputs:=out}"
fi

getAllOutputNames() {
    if [ -n "$__structuredAttrs" ]; then
        echo "${!outputs[*]}"
    else
        echo "$outputs"
    fi
}

PATH=
for i in ${initialPath:-}; do
    if [ "$i" = / ]; then i=; fi
    [ ! -d "$i/bin" ] || PATH="${PATH:+$PATH:}$i/bin"
done
unset i
export PATH
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
    for file in propagated-build-build-deps propagated-native-build-inputs \
        propagated-build-target-deps propagated-host-host-deps propagated-build-inputs; do
        [ -f "$pkg/nix-support/$file" ] || continue
        for next in $(cat "$pkg/nix-support/$file"); do
            _findInputs "$next" "$list"
        done
    done
}

# ${var[*]}: a word list whether the attribute came as a string or (structured) as an array.
for pkg in ${depsBuildBuild[*]:-} ${depsBuildBuildPropagated[*]:-} ${nativeBuildInputs[*]:-} \
    ${propagatedNativeBuildInputs[*]:-} ${depsBuildTarget[*]:-} ${depsBuildTargetPropagated[*]:-} \
    ${defaultNativeBuildInputs:-}; do
    _findInputs "$pkg" nixcacheEmuBuildPkgs
done
for pkg in ${depsHostHost[*]:-} ${depsHostHostPropagated[*]:-} ${buildInputs[*]:-} \
    ${propagatedBuildInputs[*]:-}; do
    _findInputs "$pkg" nixcacheEmuHostPkgs
done

_activatePkg() {
    local pkg="$1" onPath="$2"
    if [ -f "$pkg" ]; then
        # shellcheck disable=SC1090
        source "$pkg"
    fi
    if [ "$onPath" = 1 ]; then addToSearchPath nixcacheEmuPath "$pkg/bin"; fi
    if [ -f "$pkg/nix-support/setup-hook" ]; then
        # shellcheck disable=SC1090
        source "$pkg/nix-support/setup-hook"
    fi
}
nixcacheEmuPath=""
for pkg in ${nixcacheEmuBuildPkgs[@]+"${nixcacheEmuBuildPkgs[@]}"}; do
    _activatePkg "$pkg" 1
done
for pkg in ${nixcacheEmuHostPkgs[@]+"${nixcacheEmuHostPkgs[@]}"}; do
    if [ -n "${strictDeps:-}" ]; then _activatePkg "$pkg" 0; else _activatePkg "$pkg" 1; fi
done
PATH="${nixcacheEmuPath:+$nixcacheEmuPath:}$PATH"
unset nixcacheEmuPath pkg

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
    for output in $(getAllOutputNames); do
        if [ -e "${!output}" ]; then chmod -R u+w,u-s,g-s "${!output}"; fi
    done
    runHook preFixup
    # setup.sh: every output through the fixupOutput hooks, $prefix naming it (patchelf, strip,
    # patchShebangs, ...: ./fixup-hooks.sh registers nixpkgs' default ones).
    for output in $(getAllOutputNames); do
        prefix="${!output}" runHook fixupOutput
    done
    if [ -n "${propagatedBuildInputs[*]:-}" ]; then
        mkdir -p "$out/nix-support"
        # shellcheck disable=SC2048,SC2086 # a word list, string or array
        printf '%s ' ${propagatedBuildInputs[*]} >"$out/nix-support/propagated-build-inputs"
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
    if [ -f "${buildCommandPath:-}" ]; then
        # shellcheck disable=SC1090
        source "$buildCommandPath"
        return
    fi
    if [ -n "${buildCommand:-}" ]; then
        eval "$buildCommand"
        return
    fi
    if [ -z "${phases[*]:-}" ]; then
        phases="${prePhases[*]:-} unpackPhase patchPhase ${preConfigurePhases[*]:-} configurePhase \
            ${preBuildPhases[*]:-} buildPhase checkPhase ${preInstallPhases[*]:-} installPhase \
            ${preFixupPhases[*]:-} fixupPhase installCheckPhase ${preDistPhases[*]:-} distPhase \
            ${postPhases[*]:-}"
    fi
    local phase
    # shellcheck disable=SC2048 # phase names are words, as a string or an array
    for phase in ${phases[*]}; do
        runPhase "$phase"
    done
}

runHook postHook
runHook userHook

# The caller's shell options back (nix-shell sources this into an interactive shell; a builder
# started with `bash -e` keeps errexit and pipefail, and loses nounset).
[[ $__nixpkgs_setup_set_original == *e* ]] || set +e
[[ $__nixpkgs_setup_set_original == *u* ]] || set +u
unset -v __nixpkgs_setup_set_original
