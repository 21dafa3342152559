# shellcheck shell=bash
# The emulated stdenv's C compiler (`stdenv.cc` of tests/nix/crane/nixpkgs.nix: its bin/cc runs
# `cc-wrapper.sh COMPILER ARGS...`). It links as nixpkgs' cc-wrapper does, with what its
# ld-wrapper adds, written from NixOS/nixpkgs pkgs/build-support/cc-wrapper/cc-wrapper.sh and
# pkgs/build-support/bintools-wrapper/ld-wrapper.sh (both read at 6e369ff78b54) and
# pkgs/build-support/wrapper-common/utils.bash (4aeb2ba51274); behaviour emulated, code not
# copied. rustc links every proc-macro, build script, test and binary through `cc`, so under
# nixpkgs each of those ELF files gets:
#   - NIX_LDFLAGS, each word as `-Wl,WORD` (a `-L/DIR` word as it is), after the arguments. Its
#     first words are `-rpath $out/lib`: setup.sh's `_addRpathPrefix "$out"` unless
#     NIX_NO_SELF_RPATH=1 (here ./cc-setup-hook.sh). The fixup phase's `patchelf --shrink-rpath`
#     removes that entry again when $out/lib holds nothing the file needs (./fixup-hooks.sh);
#   - ld-wrapper's `-rpath DIR` for each `-L DIR` inside $NIX_STORE holding a `lib<name>.so` that
#     a `-l<name>` asks for (or a store `.so` named directly), in -L order, each DIR once; not
#     with NIX_DONT_SET_RPATH=1;
#   - no build ID: nixpkgs' gcc is configured without --enable-linker-build-id
#     (pkgs/development/compilers/gcc/common/configure-flags.nix, read at 5b249ff4ae1b), and
#     ld-wrapper adds --build-id only with NIX_SET_BUILD_ID=1 (separateDebugInfo), never to a
#     relocatable (-r) link. The host's gcc adds one by default; `-Wl,--build-id=none` undoes it.
#     A build ID is a hash of the linked file, self rpath included: with one, a binary would name
#     its derivation's output even after the fixup has shrunk the rpath;
#   - nothing of this for a compile that does not link (-c, -S, -E, -M, -MM, `-x *-header`, no
#     input file), and no -rpath for a `-static-pie` link (filterRpathFlags).
# Not emulated: the hardening flags (rustc passes -z relro and -z now itself), -dynamic-linker and
# the libc and compiler -L flags (the toolchain is the host's, outside the store), response-file
# rewriting, NIX_ENFORCE_PURITY, role suffixes (one NIX_LDFLAGS for every platform).
set -eu -o pipefail

prog=$1
shift

# The arguments with response files read out (@FILE: rustc writes one when a command line is too
# long, an argument a line, `\` escaping backslashes and spaces), for scanning only: the
# compiler gets "$@" unchanged. ldArgs: the same with `-Wl,A,B` split into A B, as ld sees them.
params=() ldArgs=()
for arg in "$@"; do
    if [[ $arg == @?* && -r ${arg:1} ]]; then
        # read without -r undoes rustc's escapes; IFS= keeps leading spaces.
        # shellcheck disable=SC2162
        while IFS= read line || [ -n "$line" ]; do params+=("$line"); done <"${arg:1}"
    else
        params+=("$arg")
    fi
done
for arg in ${params[@]+"${params[@]}"}; do
    if [[ $arg == -Wl,* ]]; then
        IFS=, read -ra words <<<"${arg#-Wl,}"
        ldArgs+=(${words[@]+"${words[@]}"})
    else
        ldArgs+=("$arg")
    fi
done

dontLink=0 nonFlagArgs=0 linkType=dynamic prev=
for arg in ${params[@]+"${params[@]}"}; do
    case $arg in
    -c | -S | -E | -M | -MM) dontLink=1 ;;
    -static) linkType=static ;;
    -static-pie) linkType=static-pie ;;
    -?*) ;;
    *) nonFlagArgs=1 ;;
    esac
    if [[ $prev == -x && $arg == *-header ]]; then dontLink=1; fi
    prev=$arg
done
# `cc -v` or `cc` alone: gcc must not be told to link.
[ "$nonFlagArgs" = 1 ] || dontLink=1

after=()
if [ "$dontLink" != 1 ]; then
    read -ra ldflags <<<"${NIX_LDFLAGS:-}"
    if [ "$linkType" = static-pie ]; then
        # glibc's static-pie wants no rpath at all: -rpath and its value go.
        kept=()
        for ((i = 0; i < ${#ldflags[@]}; i++)); do
            if [ "${ldflags[i]}" = -rpath ]; then i=$((i + 1)); else kept+=("${ldflags[i]}"); fi
        done
        ldflags=(${kept[@]+"${kept[@]}"})
    fi
    for word in ${ldflags[@]+"${ldflags[@]}"}; do
        if [[ $word == -L/* ]]; then after+=("$word"); else after+=("-Wl,$word"); fi
    done

    relocatable=0
    for arg in ${ldArgs[@]+"${ldArgs[@]}"}; do
        case $arg in -r | --relocatable | -i) relocatable=1 ;; esac
    done
    if [ "$relocatable" = 0 ]; then
        if [ "${NIX_SET_BUILD_ID:-}" = 1 ]; then after+=("-Wl,--build-id"); else after+=("-Wl,--build-id=none"); fi
    fi

    # ld-wrapper's rpath for the libraries the link takes from the store. Without NIX_STORE (never
    # in a Nix build) no directory is in the store.
    if [ "${NIX_DONT_SET_RPATH:-}" != 1 ] && [ "$linkType" != static-pie ] && [ -n "${NIX_STORE:-}" ]; then
        libDirs=()
        declare -A libs=() rpaths=()
        prev=
        for arg in ${ldArgs[@]+"${ldArgs[@]}"} ${ldflags[@]+"${ldflags[@]}"}; do
            case $prev in
            -L) libDirs+=("$arg") ;;
            -l) libs["lib$arg.so"]=1 ;;
            -dynamic-linker | -plugin) ;; # its value is no library, whatever its name
            *)
                case $arg in
                -L/*) libDirs+=("${arg:2}") ;;
                -l?*) libs["lib${arg:2}.so"]=1 ;;
                "$NIX_STORE"/*.so | "$NIX_STORE"/*.so.*)
                    libDirs+=("${arg%/*}")
                    libs["${arg##*/}"]=1
                    ;;
                esac
                ;;
            esac
            prev=$arg
        done
        for dir in ${libDirs[@]+"${libDirs[@]}"}; do
            # ld-wrapper resolves a dir only when it has `//`, `/.`, `./` or `..` in it.
            if [[ $dir =~ [/.][/.] ]] && resolved=$(readlink -f "$dir"); then dir=$resolved; fi
            [[ -z ${rpaths[$dir]:-} && $dir == "$NIX_STORE"/* ]] || continue
            for path in "$dir"/*; do
                if [ -n "${libs[${path##*/}]:-}" ]; then
                    rpaths[$dir]=1
                    after+=("-Wl,-rpath,$dir")
                    break
                fi
            done
        done
    fi
fi

exec "$prog" "$@" ${after[@]+"${after[@]}"}
