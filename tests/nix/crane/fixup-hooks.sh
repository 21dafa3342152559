# shellcheck shell=bash
# The fixup hooks nixpkgs' stdenv gives every derivation, emulated for the crane tests, where
# nixpkgs cannot be fetched (NixOS/nixpkgs, each file read at the commit named below; behaviour
# emulated, code not copied). A setup hook: sourced as an input of the derivation (a file among
# its inputs is sourced, as setup.sh does with stdenv's defaultNativeBuildInputs), each part
# registers on the hook array its nixpkgs file registers on, in the order stdenv brings them in
# (pkgs/stdenv/generic/default.nix's defaultNativeBuildInputs0 in its current form, whose store
# copy the search index names no commit for; after the Linux stdenv's extraNativeBuildInputs,
# patchelf; a real stdenv's env-vars show the same fixupOutputHooks order). The fixup phase
# (./stdenv-setup.sh, after setup.sh) then runs
#   fixupOutputHooks once per output, $prefix naming it:
#       patchELF, auditTmpdir, (the not-emulated check), patchShebangsAuto, _doStrip
#   postFixupHooks once:
#       noBrokenSymlinksInAllOutputs, _makeSymlinksRelativeInAllOutputs
# Not emulated, as they act only on paths that no cargo output has (crane's bin/, lib/,
# share/doc/; our artifacts/, nixcache.json, symlinks.tar.zst, nixcache-refs): move-docs.sh
# (doc, man, info), compress-man-pages.sh (share/man), move-lib64.sh, move-sbin.sh,
# move-systemd-user-units.sh (lib/systemd/user), prune-libtool-files.sh (*.la); an output that
# has one fails the build here rather than differ silently. multiple-outputs.sh only matters with
# outputs other than `out`; reproducible-builds.sh and set-source-date-epoch-to-latest.sh set
# variables no hook here reads.
#
# $prefix: the output being fixed up, set by fixupPhase around runHook fixupOutput.
# shellcheck disable=SC2154
#
# Tools: patchelf, strip and ranlib are the host's (Debian's patchelf, called exactly as the
# hooks call it); $STRIP and $RANLIB come from the emulated cc (./cc-setup-hook.sh).

# --- helpers of setup.sh (183939da5483), for a builder that lacks them ---------------------------

# isELF FILE / isScript FILE: the file starts with "\177ELF" / "#!" (read with bash, no fork).
declare -F isELF >/dev/null || isELF() {
    local fd magic
    exec {fd}<"$1"
    read -r -n 4 -u "$fd" magic
    exec {fd}<&-
    [ "$magic" = $'\177ELF' ]
}
declare -F isScript >/dev/null || isScript() {
    local fd magic
    exec {fd}<"$1"
    read -r -n 2 -u "$fd" magic
    exec {fd}<&-
    [[ $magic =~ \#! ]]
}
declare -F getAllOutputNames >/dev/null || getAllOutputNames() { echo "${outputs:-out}"; }

# _nixcacheEmuFiles DIR: every regular file below DIR, NUL-terminated, except those whose path
# matches the regex `.build-id` (anything followed by `build-id`: separate-debug-info.sh's tree),
# which patchelf's and audit-tmpdir's hooks both skip.
_nixcacheEmuFiles() {
    local f
    while IFS= read -r -d '' f; do
        [[ $f =~ .build-id ]] || printf '%s\0' "$f"
    done < <(find "$1" -type f -print0)
}

# --- patchELF: pkgs/development/tools/misc/patchelf/setup-hook.sh (81392dd68a58) ----------------
# Every ELF file of the output through `patchelf --shrink-rpath`, which keeps only the RUNPATH
# entries that hold a library the file needs (so the self rpath `$out/lib` of ./cc-wrapper.sh
# goes when $out/lib does not exist) and rewrites the file when that changes anything; patchelf's
# failures (a file without a dynamic section) are ignored. Off with dontPatchELF.
# shellcheck disable=SC2016 # evaluated by runHook, per output
fixupOutputHooks+=('if [ -z "${dontPatchELF-}" ]; then patchELF "$prefix"; fi')
patchELF() {
    local f
    echo "shrinking RPATHs of ELF executables and libraries in $1"
    while IFS= read -r -d '' f; do
        isELF "$f" || continue
        echo "shrinking $f"
        patchelf --shrink-rpath "$f" || true
    done < <(_nixcacheEmuFiles "$1")
}

# --- auditTmpdir: pkgs/build-support/setup-hooks/audit-tmpdir.sh (9147cb36dcb4) -----------------
# The build fails when an ELF file's RUNPATH names something under $TMPDIR/ (the sandbox's
# /build), or a wrapper script (FILE beside .FILE-wrapped) mentions $TMPDIR/. Off with
# noAuditTmpdir.
# shellcheck disable=SC2016 # evaluated by runHook, per output
fixupOutputHooks+=('if [[ -z "${noAuditTmpdir-}" && -e "$prefix" ]]; then auditTmpdir "$prefix"; fi')
auditTmpdir() {
    local f
    [ -e "$1" ] || return 0
    echo "checking for references to $TMPDIR/ in $1..."
    while IFS= read -r -d '' f; do
        if isELF "$f" && { printf :; patchelf --print-rpath "$f"; } | grep -q -F ":$TMPDIR/"; then
            echo "RPATH of binary $f contains a forbidden reference to $TMPDIR/"
            exit 1
        fi
        if isScript "$f" && [ -e "$(dirname "$f")/.$(basename "$f")-wrapped" ] &&
            grep -q -F "$TMPDIR/" "$f"; then
            echo "wrapper script $f contains a forbidden reference to $TMPDIR/"
            exit 1
        fi
    done < <(_nixcacheEmuFiles "$1")
}

# --- what this emulation leaves out (see the top) must not be there -------------------------------
fixupOutputHooks+=(_nixcacheEmuNotEmulated)
_nixcacheEmuNotEmulated() {
    local p
    [ -e "$prefix" ] || return 0
    for p in doc man info share/man lib64 sbin lib/systemd/user; do
        if [ -e "$prefix/$p" ]; then
            echo "$prefix/$p: the fixup hook for it is not emulated (tests/nix/crane/fixup-hooks.sh)" >&2
            exit 1
        fi
    done
    if [ -n "$(find "$prefix" -type f -name '*.la' -print -quit)" ]; then
        echo "$prefix has libtool files: prune-libtool-files.sh is not emulated" >&2
        exit 1
    fi
}

# --- patchShebangsAuto: pkgs/build-support/setup-hooks/patch-shebangs.sh (9147cb36dcb4) ----------
# Every executable script of the output whose interpreter is outside the store gets the one of
# that name found on HOST_PATH (the dev output: PATH); `#!/usr/bin/env NAME` becomes NAME's path,
# and env with an option or an assignment fails the build. Modification times are kept. Off with
# dontPatchShebangs.
fixupOutputHooks+=(patchShebangsAuto)
patchShebangsAuto() {
    [[ -z ${dontPatchShebangs-} && -e $prefix ]] || return 0
    if [[ ${output:-out} != out && ${output:-out} = "${outputDev:-out}" ]]; then
        patchShebangs --build "$prefix"
    else
        patchShebangs --host "$prefix"
    fi
}
# patchShebangs [--build | --host] PATH...: --host looks interpreters up on HOST_PATH, which
# setup.sh makes of the bin/ of initialPath's directories and of the host inputs (when the
# builder made none: initialPath's), --build on PATH.
patchShebangs() {
    local pathName='' f line old arg0 rest new newLine stamp dir
    case ${1-} in
    --host) pathName=HOST_PATH; shift ;;
    --build) pathName=PATH; shift ;;
    esac
    if [[ $pathName == HOST_PATH && -z ${HOST_PATH+set} ]]; then
        HOST_PATH=
        for dir in ${initialPath-}; do
            [ "$dir" != / ] || dir=
            HOST_PATH+=${HOST_PATH:+:}$dir/bin
        done
    fi
    echo "patching script interpreter paths in $*"
    [ $# -gt 0 ] || return 0
    while IFS= read -r -d '' f; do
        isScript "$f" || continue
        read -r line <"$f"
        read -r old arg0 rest <<<"${line:2}"
        if [ -z "$pathName" ]; then
            if [[ -n ${strictDeps-} && $f == "$NIX_STORE"* ]]; then pathName=HOST_PATH; else pathName=PATH; fi
        fi
        if [[ $old == */bin/env ]]; then
            if [[ $arg0 == -* || $arg0 == *=* ]]; then
                echo "$f: unsupported interpreter directive \"$line\" (set dontPatchShebangs=1 and handle shebang patching yourself)" >&2
                exit 1
            fi
            new=$(PATH=${!pathName-} command -v "$arg0" || true)
        else
            # No interpreter named: the kernel runs /bin/sh.
            : "${old:=/bin/sh}"
            new=$(PATH=${!pathName-} command -v "${old##*/}" || true)
            rest="$arg0 $rest"
        fi
        newLine="$new $rest"
        newLine=${newLine%"${newLine##*[![:space:]]}"}
        if [[ -n $old && ${old:0:${#NIX_STORE}} != "$NIX_STORE" && -n $new && $new != "$old" ]]; then
            echo "$f: interpreter directive changed from \"$line\" to \"$newLine\""
            stamp=$(stat --printf %y "$f")
            sed -i -e "1 s|.*|#\!${newLine//\\/\\\\}|" "$f"
            touch --date "$stamp" "$f"
        fi
    done < <(find "$@" -type f -perm -0100 -print0)
}

# --- _doStrip: pkgs/build-support/setup-hooks/strip.sh ------------------------------------------
# As stored at c091be90572e and, what this follows, its newer version (flags -S -p and -s -p,
# each file once by its real path, strip in parallel): the files below the output's
# stripDebugList (default lib lib32 lib64 libexec bin sbin, and Darwin's Applications
# Library/Frameworks) through `$STRIP ${stripDebugFlags:--S -p}`, those below stripAllList
# (default none) through `$STRIP ${stripAllFlags:--s -p}`, lib/debug/ and stripExclude patterns
# left out, then $RANLIB over the .a files there; a file strip cannot handle is left as it is.
# Only below those directories: anything else in the output (our artifacts/) is never stripped.
# Off with dontStrip (or dontStripHost; the *Target lists use STRIP_FOR_TARGET, which no
# derivation here has).
fixupOutputHooks+=(_doStrip)
_doStrip() {
    local -ra flags=(dontStripHost dontStripTarget) stripCmds=(STRIP STRIP_FOR_TARGET)
    local -ra ranlibCmds=(RANLIB RANLIB_FOR_TARGET)
    local -ra debugDirs=(stripDebugList stripDebugListTarget) allDirs=(stripAllList stripAllListTarget)
    stripDebugList=${stripDebugList[*]:-lib lib32 lib64 libexec bin sbin Applications Library/Frameworks}
    stripDebugListTarget=${stripDebugListTarget[*]:-}
    stripAllList=${stripAllList[*]:-}
    stripAllListTarget=${stripAllListTarget[*]:-}
    local i
    for i in "${!stripCmds[@]}"; do
        local -n flag=${flags[i]} stripCmd=${stripCmds[i]} ranlibCmd=${ranlibCmds[i]}
        local -n debugDirList=${debugDirs[i]} allDirList=${allDirs[i]}
        if [[ -n ${dontStrip-} || -n ${flag-} ]] || ! type -f "${stripCmd-}" >/dev/null 2>&1; then
            continue
        fi
        stripDirs "$stripCmd" "$ranlibCmd" "$debugDirList" "${stripDebugFlags[*]:--S -p}"
        stripDirs "$stripCmd" "$ranlibCmd" "$allDirList" "${stripAllFlags[*]:--s -p}"
    done
}
# stripDirs STRIP RANLIB "DIR..." "FLAGS": DIRs relative to $prefix.
stripDirs() {
    local cmd=$1 ranlibCmd=$2 stripFlags=$4 d pattern status=0
    local -a dirs=() exclude=() flagWords
    read -ra flagWords <<<"$stripFlags"
    for d in $3; do
        if [ -e "$prefix/$d" ]; then dirs+=("$prefix/$d"); fi
    done
    [ ${#dirs[@]} -gt 0 ] || return 0
    if [ -n "${stripExclude:-}" ]; then
        for pattern in "${stripExclude[@]}"; do
            exclude+=(-a '!' '(' -name "$pattern" -o -wholename "$prefix/$pattern" ')')
        done
    fi
    echo "stripping (with command $cmd and flags $stripFlags) in ${dirs[*]}"
    local errors
    errors=$(mktemp --tmpdir="$TMPDIR" striperr.XXXXXX)
    # One strip per real file: two stripping one file at once (through a symlink) can corrupt it.
    find "${dirs[@]}" -type f ${exclude[@]+"${exclude[@]}"} -a '!' -path "$prefix/lib/debug/*" -print0 |
        xargs -r -0 -n1 -- realpath -z | sort -u -z |
        xargs -r -0 -n1 -P "${NIX_BUILD_CORES:-1}" -- "$cmd" "${flagWords[@]}" 2>"$errors" || status=$?
    # xargs says 123 when some strip failed (a file that is no object): that is expected.
    if [[ $status != 0 && $status != 123 ]]; then
        cat "$errors" >&2
        exit 1
    fi
    rm -f "$errors"
    # strip drops an archive's index; ranlib writes it again.
    find "${dirs[@]}" -name '*.a' -type f -exec "$ranlibCmd" '{}' \; 2>/dev/null
}

# --- postFixupHooks ---------------------------------------------------------------------------------

# noBrokenSymlinksInAllOutputs: pkgs/build-support/setup-hooks/no-broken-symlinks.sh
# (2faec4eca3b0). In every output, a symlink that cannot be read, points to itself, points under
# $TMPDIR/, or points into the store at nothing fails the build (after all are listed); links
# out of the store are not checked. Off with dontCheckForBrokenSymlinks.
postFixupHooks+=(noBrokenSymlinksInAllOutputs)
noBrokenSymlinksInAllOutputs() {
    local output
    [ -z "${dontCheckForBrokenSymlinks-}" ] || return 0
    for output in $(getAllOutputNames); do
        noBrokenSymlinks "${!output}"
    done
}
noBrokenSymlinks() {
    local link target broken=0
    [ -e "$1" ] || return 0
    while IFS= read -r -d '' link; do
        if ! target=$(readlink "$link"); then
            echo "the symlink $link is unreadable" >&2
            broken=$((broken + 1))
            continue
        fi
        if [[ $target != /* ]]; then
            target=$(realpath --no-symlinks --canonicalize-missing "$(dirname "$link")/$target")
        fi
        if [[ $target == "$TMPDIR"/* ]]; then
            echo "the symlink $link points to $TMPDIR directory: $target" >&2
            broken=$((broken + 1))
        elif [[ $target != "$NIX_STORE"/* ]]; then
            continue
        elif [ "$link" = "$target" ]; then
            echo "the symlink $link is reflexive" >&2
            broken=$((broken + 1))
        elif [ ! -e "$target" ]; then
            echo "the symlink $link points to a missing target: $target" >&2
            broken=$((broken + 1))
        fi
    done < <(find "$1" -type l -print0)
    if [ "$broken" -gt 0 ]; then
        echo "found $broken broken symlinks in $1" >&2
        exit 1
    fi
}

# _makeSymlinksRelativeInAllOutputs: pkgs/build-support/setup-hooks/make-symlinks-relative.sh
# (as stored at 09f76e171e8e, and its newer per-output form): in every output, a symlink to a
# path inside that output becomes relative (`ln -snrf`), so the output does not name its own
# store path. Off with dontRewriteSymlinks.
postFixupHooks+=(_makeSymlinksRelativeInAllOutputs)
_makeSymlinksRelativeInAllOutputs() {
    local output
    for output in $(getAllOutputNames); do
        prefix=${!output} _makeSymlinksRelative
    done
}
_makeSymlinksRelative() {
    local link target
    [[ -z ${dontRewriteSymlinks-} && -e $prefix ]] || return 0
    while IFS= read -r -d '' link; do
        target=$(readlink "$link")
        [[ $target/ == "$prefix"/* ]] || continue
        [ -e "$target" ] || echo "the symlink $link is broken, it points to $target (which is missing)"
        echo "rewriting symlink $link to be relative to $prefix"
        ln -snrf "$target" "$link"
    done < <(find "$prefix" -type l -print0)
}
