# The derivations bench/footprint.sh measures: crane's REAL lib (its checkout, `craneSrc`) over the
# emulated nixpkgs of the Nix suite (tests/nix/crane/nixpkgs.nix), for one project, in each of three
# install modes: crane's use-zstd (its default) and use-symlink, through crane's own lib, and
# use-nixcache, through the adapter (nix/crane.nix) with the binaries under test (`tools`).
#
# Per mode: `deps` (buildDepsOnly), and, each inheriting `deps`: `clippy` (cargoClippy) and `test`
# (cargoTest), which install their artifacts (crane's default for both), and `package`
# (buildPackage, which does not); `layered`, a cargoTest inheriting `clippy`: the third layer of
# the chain deps -> clippy -> layered, each inheriting the one before (crane's cargoArtifacts
# chain). `vendor` is the project's vendored crates as a store path, given
# to crane as cargoVendorDir.
{ nixpkgsLib, craneSrc, craneUtils, repo, tools, src, vendor, pname, version ? "0.1.0"
, cargoTestExtraArgs ? "" }:
let
  pkgs = import (repo + "/tests/nix/crane/nixpkgs.nix") {
    inherit nixpkgsLib craneUtils;
    # cargoNextest is not measured; the emulation wants a path all the same.
    nextest = "/nonexistent/cargo-nextest";
  };
  craneLib = (pkgs.callPackage (craneSrc + "/lib") { }).overrideScope (_: _: { inherit (pkgs) craneUtils; });
  toolsPkg = builtins.path { path = tools; name = "cargo-nixcache"; };
  nixcacheLib = import (repo + "/nix/crane.nix") { cargo-nixcache = toolsPkg; } craneLib;
  vendorPath = builtins.path { path = vendor; name = "${pname}-vendor"; };
  common = {
    inherit pname version;
    src = builtins.path { path = src; name = "source"; };
    cargoVendorDir = vendorPath;
    # The toolchain is the host's, bound into the sandbox, not a store path: crane's
    # removeReferencesToRustToolchain finds no store hash in it and fails (as in the Nix suite).
    doNotRemoveReferencesToRustToolchain = true;
  };
  modeOf = lib: mode:
    let
      m = if mode == null then { } else { installCargoArtifactsMode = mode; };
      deps = lib.buildDepsOnly (common // m);
      on = common // m // { cargoArtifacts = deps; };
      # cargo's JSON messages in the log: the bench counts the units each consumer compiled.
      json = { cargoExtraArgs = "--locked --message-format json-render-diagnostics"; };
    in
    rec {
      inherit deps;
      clippy = lib.cargoClippy (on // json);
      test = lib.cargoTest (on // json // { inherit cargoTestExtraArgs; });
      layered = lib.cargoTest (on // json // { inherit cargoTestExtraArgs; cargoArtifacts = clippy; });
      # Not installed by default (crane's buildPackage): the substitution step's consumer. Its
      # build phase writes cargo's JSON messages to $cargoBuildLog.
      package = lib.buildPackage (on // {
        # Checks are cargoTest's; the package's build is what the consumer measures.
        doCheck = false;
        postBuild = ''cat "''${cargoBuildLog:-/dev/null}"'';
      });
    };
in
{
  vendor = vendorPath;
  "use-zstd" = modeOf craneLib null;
  "use-symlink" = modeOf craneLib "use-symlink";
  "use-nixcache" = modeOf nixcacheLib "use-nixcache";
}
