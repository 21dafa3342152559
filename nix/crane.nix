# The crane adapter. Usage:
#
#   craneLib = cargo-nixcache.lib.crane (crane.mkLib pkgs);      # or import ./nix/crane.nix {..}
#   deps = craneLib.buildDepsOnly { inherit src; installCargoArtifactsMode = "use-nixcache"; };
#   app  = craneLib.buildPackage { inherit src; cargoArtifacts = deps;
#                                  installCargoArtifactsMode = "use-nixcache"; };
#
# It overrides crane's inheritCargoArtifactsHook and installCargoArtifactsHook through
# `overrideScope`: each new hook sources crane's original, then adds the "use-nixcache" mode.
# Derivations that do not opt in run crane's original functions; nothing else in the lib changes.
#
# `cargo-nixcache` defaults to building ./package.nix with the pkgs crane was made from.
{ cargo-nixcache ? null }:
craneLib:
craneLib.overrideScope (final: prev:
let
  package = if cargo-nixcache != null then cargo-nixcache else final.callPackage ./package.nix { };
in
{
  inheritCargoArtifactsHook = final.callPackage
    ({ makeSetupHook }: makeSetupHook {
      name = "nixcache-crane-inherit-hook";
      propagatedBuildInputs = [ package ];
      substitutions = {
        craneInheritHook = "${prev.inheritCargoArtifactsHook}/nix-support/setup-hook";
        nixcacheInheritHook = "${./hooks/nixcache-inherit-hook.sh}";
      };
    } ./hooks/crane-inherit-hook.sh)
    { };

  installCargoArtifactsHook = final.callPackage
    ({ makeSetupHook }: makeSetupHook {
      name = "nixcache-crane-install-hook";
      propagatedBuildInputs = [ package ];
      substitutions = {
        craneInstallHook = "${prev.installCargoArtifactsHook}/nix-support/setup-hook";
        nixcacheInstallHook = "${./hooks/nixcache-install-hook.sh}";
      };
    } ./hooks/crane-install-hook.sh)
    { };
})
