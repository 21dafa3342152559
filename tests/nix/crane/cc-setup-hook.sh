# shellcheck shell=bash
# Setup hook of the emulated `stdenv.cc` (tests/nix/crane/nixpkgs.nix; @out@ and @targetPrefix@
# are filled in when it is built). What a derivation gets from nixpkgs' compiler wrappers and
# setup.sh (NixOS/nixpkgs, behaviour emulated, code not copied):
#   - pkgs/build-support/bintools-wrapper/setup-hook.sh (read at c5bb4efae845): AR, AS, LD, NM,
#     OBJCOPY, OBJDUMP, READELF, RANLIB, STRIP, STRINGS, SIZE exported as the prefixed names of
#     the tools the wrapper has (strip.sh runs $STRIP and $RANLIB; ./fixup-hooks.sh);
#   - pkgs/stdenv/generic/setup.sh (183939da5483) `_addRpathPrefix "$out"`: NIX_LDFLAGS starts
#     with `-rpath $out/lib` unless NIX_NO_SELF_RPATH=1, which ./cc-wrapper.sh passes to the
#     linker. setup.sh does this for every derivation; here the derivations that link through
#     this cc get it, which are the only ones it changes.

for nixcacheEmuTool in ar as ld nm objcopy objdump readelf ranlib strip strings size; do
    if [ -x "@out@/bin/@targetPrefix@$nixcacheEmuTool" ]; then
        export "${nixcacheEmuTool^^}=@targetPrefix@$nixcacheEmuTool"
    fi
done
unset nixcacheEmuTool

# shellcheck disable=SC2154 # out: the derivation's output, set by Nix
if [ "${NIX_NO_SELF_RPATH:-0}" != 1 ]; then
    export NIX_LDFLAGS="-rpath $out/lib ${NIX_LDFLAGS-}"
fi
