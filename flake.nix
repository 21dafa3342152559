{
  description = "Inherit cargo target dirs across Nix derivations in O(files)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: {
        cargo-nixcache = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: rec {
        cargo-nixcache = pkgs.callPackage ./nix/package.nix { };
        default = cargo-nixcache;
      });

      lib = {
        # craneLib -> craneLib whose derivations pack and inherit with cargo-nixcache
        # (docs/nix.md). cargo-nixcache is built for the build platform of crane's pkgs.
        crane = import ./nix/crane.nix { };
        # The same with arguments: { cargo-nixcache ? <built>, defaultMode ? "use-nixcache",
        # stableVendorDir ? false }.
        craneWith = import ./nix/crane.nix;
        # The bare hook scripts, for makeSetupHook or `source` in a custom builder. Packaged
        # versions (with cargo-nixcache on PATH): packages.<system>.default.hooks.{inheritHook,installHook,vendorHook,shellHook}.
        hooks = {
          inheritHook = ./nix/hooks/nixcache-inherit-hook.sh;
          installHook = ./nix/hooks/nixcache-install-hook.sh;
          vendorHook = ./nix/hooks/nixcache-vendor-hook.sh;
          shellHook = ./nix/hooks/nixcache-shell-hook.sh;
        };
      };

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.system}.default;
        hooks-syntax = pkgs.runCommand "hooks-syntax" { } ''
          for f in ${./nix/hooks}/*.sh; do ${pkgs.bash}/bin/bash -n "$f"; done
          touch $out
        '';
      });
    };
}
