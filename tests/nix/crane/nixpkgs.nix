# The part of nixpkgs that crane's own Nix files need, emulated so crane's REAL lib/default.nix,
# mkCargoDerivation.nix, buildDepsOnly.nix, buildPackage.nix, cargo*.nix and setup hooks can be
# evaluated and built here, where nixpkgs cannot be fetched. Each piece names the nixpkgs file it
# follows (NixOS/nixpkgs, read for this purpose; behaviour emulated, code not copied):
#   lib.makeScope, callPackageWith, makeScopeWithSplicing'   lib/customisation.nix
#   splicePackages (derivations get `__spliced`)             pkgs/top-level/splice.nix
#   stdenv.mkDerivation (name, env, nativeBuildInputs taken
#     from `__spliced.buildHost` when cross, __ignoreNulls)  pkgs/stdenv/generic/make-derivation.nix
#   the builder                                              ./stdenv-setup.sh (setup.sh)
#   makeSetupHook (substitutions, propagatedBuildInputs)     pkgs/build-support/trivial-builders
#   runCommand, runCommandLocal                              pkgs/build-support/trivial-builders
#   fetchurl (a fixed-output derivation; from `mirror`,
#     not the network)                                       pkgs/build-support/fetchurl
#   the toolchain: the host's rustc/cargo (bound into the sandbox at /nixcache-rust by
#     tests/nix/lib.sh), /usr/bin tools (rsync, zstd, jq, gcc, cross gcc) and `nextest`, a
#     cargo-nextest built from crates.io (tests/registry-tool.sh, bound into the sandbox).
#
# `cross = true` gives a build platform x86_64-linux and a host platform aarch64-linux: two
# package sets, spliced as nixpkgs splices them, so crane's makeScopeWithSplicing' behaves as it
# does under a real cross nixpkgs.
#
# `mirror`: a directory holding what `fetchurl` may fetch, by host and path (`https://HOST/PATH`
# is `mirror/HOST/PATH`), e.g. the .crate files crane's vendorCargoDeps downloads from
# static.crates.io. The output is checked against the hash the caller names, as with nixpkgs'.
{ cross ? false, system ? builtins.currentSystem, nextest, mirror ? null }:
let
  lib = import ./lib.nix;

  platforms = {
    x86_64 = {
      config = "x86_64-unknown-linux-gnu";
      isAarch64 = false;
      rust = { rustcTarget = "x86_64-unknown-linux-gnu"; cargoEnvVarTarget = "X86_64_UNKNOWN_LINUX_GNU"; };
      ccPrefix = "";
    };
    aarch64 = {
      config = "aarch64-unknown-linux-gnu";
      isAarch64 = true;
      rust = { rustcTarget = "aarch64-unknown-linux-gnu"; cargoEnvVarTarget = "AARCH64_UNKNOWN_LINUX_GNU"; };
      ccPrefix = "aarch64-linux-gnu-";
    };
  };
  mkPlatform = p: p // {
    system = "${if p.isAarch64 then "aarch64" else "x86_64"}-linux";
    isDarwin = false;
    isLinux = true;
    isMinGW = false;
    canExecute = other: other.config == p.config;
    emulatorAvailable = _: false;
  };
  buildPlatform = mkPlatform platforms.x86_64;

  # A derivation of symlinks to programs outside the store (made visible in the sandbox by
  # tests/nix/lib.sh's extra-sandbox-paths): how this emulation provides nixpkgs' packages.
  links = name: targets: derivation {
    inherit name system;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      /bin/mkdir -p $out/bin
      for t in $targets; do /bin/ln -s "''${t#*=}" "$out/bin/''${t%%=*}"; done
    '' ];
    targets = lib.concatStringsSep " " (lib.mapAttrsToList (n: v: "${n}=${v}") targets);
  };

  mkSet = { hostPlatform, buildSet ? null }: self:
    let
      isCross = hostPlatform.config != buildPlatform.config;
      ccPrefix = hostPlatform.ccPrefix;
      buildHost = if buildSet == null then self else buildSet;
    in
    {
      inherit lib;

      stdenv = {
        inherit buildPlatform hostPlatform;
        targetPlatform = hostPlatform;
        cc = (links "cc-wrapper-emulated" {
          "${ccPrefix}cc" = "/usr/bin/${ccPrefix}gcc";
          "${ccPrefix}c++" = "/usr/bin/${ccPrefix}g++";
          "${ccPrefix}ar" = "/usr/bin/${ccPrefix}ar";
        }) // { targetPrefix = ccPrefix; };
        mkDerivation = mkDerivation { inherit isCross; };
      };

      makeSetupHook = makeSetupHook;
      runCommand = name: env: text: (mkDerivation { isCross = false; }) (env // {
        inherit name;
        buildCommand = text;
      });
      runCommandLocal = name: env: text: self.runCommand name (env // {
        preferLocalBuild = true;
        allowSubstitutes = false;
      }) text;
      fetchurl = { url, sha256, name ? baseNameOf url, ... }: derivation {
        inherit name system;
        builder = "/bin/bash";
        args = [ "-c" ''
          set -e
          if [ -z "$mirror" ]; then echo "fetchurl $url: no mirror given to nixpkgs.nix" >&2; exit 1; fi
          /bin/cp -- "$mirror/''${url#*://}" "$out"
        '' ];
        inherit url;
        mirror = if mirror == null then "" else mirror;
        outputHashMode = "flat";
        outputHashAlgo = "sha256";
        outputHash = sha256;
      };
      writeText = name: text: builtins.toFile name text;

      # Packages crane takes by name. rustc/cargo/clippy are the one host toolchain: in a cross
      # set they still run on the build platform, as nixpkgs' spliced toolchain would.
      cargo = links "cargo" { cargo = "/nixcache-rust/bin/cargo"; };
      rustc = links "rustc" { rustc = "/nixcache-rust/bin/rustc"; rustdoc = "/nixcache-rust/bin/rustdoc"; };
      clippy = links "clippy" {
        cargo-clippy = "/nixcache-rust/bin/cargo-clippy";
        clippy-driver = "/nixcache-rust/bin/clippy-driver";
      };
      cargo-nextest = links "cargo-nextest" { cargo-nextest = nextest; };
      # cargoNextest.nix takes it as an argument; only `withLlvmCov = true` uses it (not here).
      cargo-llvm-cov = links "cargo-llvm-cov-absent" { };
      rsync = links "rsync" { rsync = "/usr/bin/rsync"; };
      zstd = links "zstd" { zstd = "/usr/bin/zstd"; };
      jq = links "jq" { jq = "/usr/bin/jq"; };

      pkgs = self;
      pkgsBuildBuild = buildHost;
      pkgsBuildHost = buildHost;
      pkgsBuildTarget = buildHost;
      pkgsHostHost = self;
      pkgsHostTarget = self;
      pkgsTargetTarget = { };
      buildPackages = buildHost;

      splicePackages = splicePackages isCross;
      newScope = extra: lib.callPackageWith (self.splicePackages {
        inherit (self) pkgsBuildBuild pkgsBuildHost pkgsBuildTarget pkgsHostHost pkgsHostTarget
          pkgsTargetTarget;
      } // { inherit (self) pkgs pkgsBuildBuild pkgsBuildHost pkgsBuildTarget pkgsHostHost
          pkgsHostTarget pkgsTargetTarget buildPackages; } // extra);
      callPackage = self.newScope { };
      "makeScopeWithSplicing'" = lib."makeScopeWithSplicing'" {
        inherit (self) splicePackages newScope;
      };
    };

  # pkgs/stdenv/generic/make-derivation.nix, as far as crane uses it.
  mkDerivation = { isCross }: args:
    let
      pick = d: if isCross then (d.__spliced.buildHost or d) else d;
      env = args.env or { };
      clean = builtins.removeAttrs args [ "env" "passthru" "meta" "nativeBuildInputs" "buildInputs"
        "propagatedBuildInputs" "strictDeps" ];
      drv = derivation (clean // env // {
        name = args.name or "${args.pname}-${args.version}";
        inherit system;
        builder = "/bin/bash";
        args = [ "-e" ./stdenv-setup.sh ];
        __ignoreNulls = true;
        nativeBuildInputs = map pick (lib.flatten (args.nativeBuildInputs or [ ]));
        buildInputs = lib.flatten (args.buildInputs or [ ]);
        propagatedBuildInputs = lib.flatten (args.propagatedBuildInputs or [ ]);
        initialPath = "/usr/bin:/bin";
      });
    in
    drv // (args.passthru or { });

  # makeSetupHook: a package whose nix-support/setup-hook is SCRIPT with @name@ substituted.
  makeSetupHook = { name ? "hook", propagatedBuildInputs ? [ ], substitutions ? { }, ... }: script:
    let
      keys = builtins.attrNames substitutions;
      text = builtins.replaceStrings (map (k: "@${k}@") keys)
        (map (k: toString substitutions.${k}) keys) (builtins.readFile script);
    in
    derivation {
      inherit name system;
      builder = "/bin/bash";
      args = [ "-c" ''
        set -e
        /bin/mkdir -p $out/nix-support
        /bin/cp "$hookTextPath" $out/nix-support/setup-hook
        if [ -n "$propagated" ]; then echo "$propagated" > $out/nix-support/propagated-build-inputs; fi
      '' ];
      hookText = text;
      passAsFile = [ "hookText" ];
      propagated = toString propagatedBuildInputs;
    };

  # pkgs/top-level/splice.nix: with distinct build and host sets, every derivation gets
  # `__spliced` = the same attribute in each set; other attribute sets are spliced recursively;
  # anything else (functions) comes from the host set.
  splicePackages = actuallySplice: sets:
    let
      spliceReal = inputs:
        let
          mash = inputs.buildBuild // inputs.buildTarget // inputs.hostHost // inputs.targetTarget
            // inputs.buildHost // inputs.hostTarget;
          merge = name: default:
            let values = builtins.mapAttrs (_: s: s.${name} or { }) inputs;
            in
            if lib.isDerivation default then
              default // { __spliced = lib.filterAttrs (k: _: inputs.${k} ? ${name}) values; }
            else if builtins.isAttrs default then spliceReal values
            else default;
        in
        builtins.mapAttrs merge mash;
    in
    if actuallySplice then spliceReal {
      buildBuild = sets.pkgsBuildBuild;
      buildHost = sets.pkgsBuildHost;
      buildTarget = sets.pkgsBuildTarget;
      hostHost = sets.pkgsHostHost;
      hostTarget = sets.pkgsHostTarget;
      targetTarget = sets.pkgsTargetTarget;
    } else sets.pkgsHostTarget;

  native = lib.fix (mkSet { hostPlatform = buildPlatform; });
  crossSet = lib.fix (mkSet { hostPlatform = mkPlatform platforms.aarch64; buildSet = native; });
in
if cross then crossSet else native
