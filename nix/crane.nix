# The crane adapter. Usage:
#
#   craneLib = cargo-nixcache.lib.crane (crane.mkLib pkgs);   # or import ./nix/crane.nix { } lib
#   deps = craneLib.buildDepsOnly { inherit src; };             # packed by cargo-nixcache
#   app  = craneLib.buildPackage { inherit src; cargoArtifacts = deps; };
#   clippy = craneLib.cargoClippy { inherit src; cargoArtifacts = deps; };  # nothing to add
#
# How: crane builds every derivation through `mkCargoDerivation`. The adapter wraps it (through
# `overrideScope`) to add one setup hook, nix/hooks/crane-adapter-hook.sh, to nativeBuildInputs.
# Wrapping the function rather than replacing crane's hook packages matters for cross builds:
# crane's scope is made with makeScopeWithSplicing', and a cross derivation's nativeBuildInputs
# come from the build->host splice, which `overrideScope` does not touch (nixpkgs
# lib/customisation.nix: "the other stages of the package set spliced in are *not* overridden"),
# while functions such as mkCargoDerivation always come from the overridden scope itself.
#
# Once all setup hooks are sourced, the adapter hook wraps crane's own inheritCargoArtifacts and
# prepareAndInstallCargoArtifactsDir, which crane registers by name:
# - inheriting is decided by what the artifacts ARE: a cargo-nixcache output (nixcache.json) is
#   restored by `cargo nixcache unpack`; anything else goes to crane's function, unchanged;
# - installing: mode "use-nixcache" packs with `cargo nixcache pack`; an unset mode follows the
#   inherited artifacts (ours -> use-nixcache), else `defaultMode`; crane's own modes run crane's
#   function, except use-zstd on top of cargo-nixcache artifacts, which is refused (crane's chain
#   cannot follow into our format).
#
# Layered deps: `buildDepsOnly { ...; cargoArtifacts = stableDeps; }` inherits `stableDeps`
# (crane itself ignores cargoArtifacts there), so a change to Cargo.lock rebuilds only what the
# layer below lacks.
#
# A stable vendor path (opt-in, `nixcacheStableVendorDir = true` on a derivation, or
# `stableVendorDir = true` below for all): cargo sees the vendored crates at
# $NIX_BUILD_TOP/nixcache-vendor in every derivation (hooks/nixcache-vendor-hook.sh), so a layer
# vendored from another lock inherits the registry units it shares with the layer below Fresh.
#
# Arguments: `cargo-nixcache`, the package (default: ./package.nix built for the build platform);
# `defaultMode`, the install mode of derivations that set none and inherit nothing of ours
# ("use-nixcache", or "use-zstd" = crane's default, to opt in per deps derivation instead);
# `stableVendorDir`, the default of `nixcacheStableVendorDir` (every derivation of a chain must
# agree, or the one that differs rebuilds every registry unit it inherits).
{ cargo-nixcache ? null, defaultMode ? "use-nixcache", stableVendorDir ? false }:
craneLib:
craneLib.overrideScope (final: prev: {
  nixcachePackage = final.callPackage
    ({ pkgsBuildHost }:
      if cargo-nixcache != null then cargo-nixcache else pkgsBuildHost.callPackage ./package.nix { })
    { };

  nixcacheCraneHook = final.callPackage
    ({ makeSetupHook }: makeSetupHook {
      name = "nixcache-crane-adapter-hook";
      propagatedBuildInputs = [ final.nixcachePackage ];
      substitutions = {
        nixcacheInheritHook = "${./hooks/nixcache-inherit-hook.sh}";
        nixcacheInstallHook = "${./hooks/nixcache-install-hook.sh}";
        nixcacheVendorHook = "${./hooks/nixcache-vendor-hook.sh}";
        nixcacheDefaultMode = defaultMode;
      };
    } ./hooks/crane-adapter-hook.sh)
    { };

  # Which executables an output keeps inside its archive (docs/nix.md "What an output stores"):
  # every one by default (`nixcacheInlineExecutables = "all"`: a check's or a package's build
  # scripts and test binaries are its own, nothing is expected to inherit them); buildDepsOnly
  # says "none" below.
  mkCargoDerivation = args: prev.mkCargoDerivation (builtins.removeAttrs args [ "nixcacheLayerArtifacts" ] // {
    nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ [ final.nixcacheCraneHook ];
    nixcacheInlineExecutables = args.nixcacheInlineExecutables or "all";
  } // (if stableVendorDir && !(args ? nixcacheStableVendorDir) then {
    nixcacheStableVendorDir = true;
  } else { }) // (if args.nixcacheLayerArtifacts or null != null then {
    cargoArtifacts = args.nixcacheLayerArtifacts;
  } else { }));

  # Dev shells: crane's devShell with the dev-shell hook among its packages, so
  # `devShell { inputsFrom = [ app ]; cargoArtifacts = deps; }` fills the target dir on entry
  # (hooks/nixcache-shell-hook.sh); cargoVendorDir defaults to the one the deps were built with
  # (crane's default is vendored from the lock file), without which cargo in the shell would
  # rebuild every dependency from ~/.cargo/registry.
  nixcacheShellHook = final.callPackage
    ({ makeSetupHook }: makeSetupHook {
      name = "nixcache-shell-hook";
      propagatedBuildInputs = [ final.nixcachePackage ];
    } ./hooks/nixcache-shell-hook.sh)
    { };

  devShell = args: prev.devShell (args // {
    packages = (args.packages or [ ]) ++ [ final.nixcacheShellHook ];
  } // (if !(args ? cargoVendorDir) && (args.cargoArtifacts or null) ? cargoVendorDir then {
    inherit (args.cargoArtifacts) cargoVendorDir;
  } else { }));

  # Layered dependencies: crane's buildDepsOnly always sets `cargoArtifacts = null`. Given
  # `cargoArtifacts` (an earlier deps output), it is carried past that to mkCargoDerivation
  # above, so a deps derivation inherits the layer below and only builds what that lacks; with
  # cargo-nixcache, rebuilding through the inherited links is safe and the chain stays one hop.
  # Only for deps packed by cargo-nixcache: deps in one of crane's own modes drop it as crane
  # does (crane's checks pass their deps as cargoArtifacts to buildDepsOnly too, and a use-zstd
  # chain cannot be built on our artifacts; t-83's docsFresh).
  #
  # A deps derivation links its executables (`nixcacheInlineExecutables = "none"` unless the
  # derivation says otherwise): its build scripts are what every consumer inherits and runs
  # only if stale, its bins and tests are built from crane's dummy sources and no later
  # derivation rebuilds them (their units differ); kept inside the archive, each consumer that
  # installs artifacts would store them again (4.4 MB compressed of ripgrep's executables in
  # each, bench/footprint.sh), linked they cost deps their size once.
  buildDepsOnly = args: prev.buildDepsOnly (builtins.removeAttrs args [ "cargoArtifacts" ]
    // {
    nixcacheInlineExecutables = args.nixcacheInlineExecutables or "none";
    nixcacheLayerArtifacts =
      if (args.installCargoArtifactsMode or defaultMode) == "use-nixcache"
      then args.cargoArtifacts or null else null;
  });
})
