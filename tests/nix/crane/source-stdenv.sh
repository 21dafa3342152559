# shellcheck shell=bash
# A derivation's first builder argument, as nixpkgs' pkgs/stdenv/generic/source-stdenv.sh
# (467a6d0c) is: structured attributes (if any), then $stdenv/setup, then the builder named by the
# next argument. Nix 2.8 sets no NIX_ATTRS_SH_FILE: its `.attrs.sh` lies in the build dir.
if [ -e "${NIX_ATTRS_SH_FILE:-}" ]; then
    # shellcheck disable=SC1090
    . "$NIX_ATTRS_SH_FILE"
elif [ -f .attrs.sh ]; then
    . .attrs.sh
fi
# shellcheck disable=SC1091
source "$stdenv/setup"
# shellcheck disable=SC1090
source "$1"
