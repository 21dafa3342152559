# shellcheck shell=bash
# nixpkgs' pkgs/stdenv/generic/default-builder.sh (084c45c0): the phases. Sourced by
# source-stdenv.sh, which has sourced $stdenv/setup.
genericBuild
