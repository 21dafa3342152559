# The part of nixpkgs' `pkgs` that crane's own Nix files need, emulated so crane's REAL
# lib/default.nix, mkCargoDerivation.nix, buildDepsOnly.nix, buildPackage.nix, cargo*.nix,
# devShell.nix and setup hooks can be evaluated and built here, where nixpkgs' pkgs/ cannot be
# fetched. `lib` is nixpkgs' REAL lib/ (../shared/nixpkgs-lib, nixpkgs.lib at de42d442, passed in
# as `nixpkgsLib`). Each emulated piece names the nixpkgs file it follows (NixOS/nixpkgs, read for
# this purpose at the commit given; behaviour emulated, code not copied):
#   splicePackages (derivations get `__spliced`)       pkgs/top-level/splice.nix
#   stdenv.mkDerivation                                 pkgs/stdenv/generic/make-derivation.nix
#     (000b5872): name (+ host suffix when cross), `stdenv` attribute, builder = stdenv.shell with
#     `-e source-stdenv.sh default-builder.sh`, the six dependency kinds taken from the matching
#     `__spliced` stage, doCheck/doInstallCheck only where the build platform can execute the host
#     platform, strictDeps (default: when cross), __structuredAttrs (`env` stays an attribute,
#     exported by setup), `env` exported otherwise, passthru/meta kept off the derivation
#   the stdenv package ($stdenv/setup)                 ./stdenv-setup.sh (setup.sh)
#   source-stdenv.sh, default-builder.sh               ./source-stdenv.sh, ./default-builder.sh
#   mkShell                                             pkgs/build-support/mkshell/default.nix
#     (07c91341): inputs merged from inputsFrom, shellHooks concatenated, one buildPhase
#     (the docs' INFOPATH/MANPATH hook is left out: no docs here)
#   makeSetupHook (substitutions, propagatedBuildInputs)  pkgs/build-support/trivial-builders
#   runCommand, runCommandLocal, writeText               pkgs/build-support/trivial-builders
#   writeTextFile, writeScript, writeShellScript,
#     linkFarm, linkFarmFromDrvs (00ee9b64)              pkgs/build-support/trivial-builders
#   fetchurl (a fixed-output derivation; from `mirror`,
#     not the network)                                   pkgs/build-support/fetchurl
#   the toolchain: the host's rustc/cargo/clippy/rustfmt (bound into the sandbox at
#     /nixcache-rust by tests/nix/lib.sh), /usr/bin tools (rsync, zstd, jq, gcc, cross gcc),
#     `nextest`, a cargo-nextest built from crates.io (tests/registry-tool.sh, bound into the
#     sandbox), and `craneUtils`, crane's own pkgs/crane-utils built from crane's checkout with
#     cargo once per machine (t-80-crane.sh's nxt_crane_utils; nixpkgs' rustPlatform cannot
#     run here), given to crane's scope in place of its own callPackage of that package.
#
# `cross = true` gives a build platform x86_64-linux and a host platform aarch64-linux: two
# package sets, spliced as nixpkgs splices them, so crane's makeScopeWithSplicing' behaves as it
# does under a real cross nixpkgs.
#
# `mirror`: a directory holding what `fetchurl` may fetch, by host and path (`https://HOST/PATH`
# is `mirror/HOST/PATH`), e.g. the .crate files crane's vendorCargoDeps downloads from
# static.crates.io. The output is checked against the hash the caller names, as with nixpkgs'.
#
# `overlays`: nixpkgs-style overlays (`final: prev: { ... }`) applied to each package set, as
# nixpkgs' `import nixpkgs { overlays = ...; }` does (lib.extends; tests/nix/crane/checks.nix
# names there what crane's own checks take from nixpkgs and the emulation does not provide).
{ nixpkgsLib, cross ? false, system ? builtins.currentSystem, nextest, mirror ? null
, craneUtils ? null, overlays ? [ ] }:
let
  lib = import (nixpkgsLib + "/lib");

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
      # nixpkgs' cc-wrapper: bin/cc and bin/c++ run the host's gcc/g++ through ./cc-wrapper.sh
      # (a link gets NIX_LDFLAGS and ld-wrapper's rpath for store libraries), the host's
      # binutils beside them, and a setup hook (./cc-setup-hook.sh: STRIP, RANLIB, ... and the
      # self rpath `-rpath $out/lib`). Every ELF file rustc links through it carries that rpath,
      # as under nixpkgs, until the fixup phase shrinks it (./fixup-hooks.sh).
      cc = derivation {
        name = "cc-wrapper-emulated";
        inherit system;
        builder = "/bin/bash";
        args = [ "-c" ''
          set -e
          /bin/mkdir -p $out/bin $out/nix-support
          /bin/cp "$wrapper" $out/nix-support/cc-wrapper.sh
          for c in cc=gcc c++=g++; do
            printf '#!/bin/bash\nexec /bin/bash %s %s "$@"\n' $out/nix-support/cc-wrapper.sh \
              "/usr/bin/$prefix''${c#*=}" > "$out/bin/$prefix''${c%%=*}"
            /bin/chmod +x "$out/bin/$prefix''${c%%=*}"
          done
          for t in ar as ld nm objcopy objdump readelf ranlib strip strings size; do
            if [ -x "/usr/bin/$prefix$t" ]; then /bin/ln -s "/usr/bin/$prefix$t" "$out/bin/$prefix$t"; fi
          done
          hook=$(< "$hookSrc")
          hook=''${hook//@out@/$out}
          printf '%s\n' "''${hook//@targetPrefix@/$prefix}" > $out/nix-support/setup-hook
        '' ];
        prefix = ccPrefix;
        wrapper = ./cc-wrapper.sh;
        hookSrc = ./cc-setup-hook.sh;
      } // { targetPrefix = ccPrefix; };
      # The stdenv package of this set: its default native inputs are this set's cc and the
      # fixup hooks, as nixpkgs' stdenv gives every derivation its cc-wrapper and
      # pkgs/build-support/setup-hooks (defaultNativeBuildInputs).
      stdenvDrv = mkStdenvPkg [ ./fixup-hooks.sh cc ];
    in
    {
      inherit lib;

      stdenv = stdenvDrv // {
        inherit buildPlatform hostPlatform;
        targetPlatform = hostPlatform;
        shell = "/bin/bash";
        # stdenv's utility flags for the platform it builds for (pkgs/stdenv/generic/default.nix,
        # read at 006769be, where they come from `system`; current nixpkgs inherits them from
        # hostPlatform, as here). crane's checks read isDarwin.
        inherit (hostPlatform) isDarwin isLinux;
        inherit cc;
        mkDerivation = mkDerivation { inherit hostPlatform; stdenvPkg = stdenvDrv; };
      };

      makeSetupHook = makeSetupHook;
      runCommand = name: env: text: self.stdenv.mkDerivation ({
        inherit name;
        buildCommand = text;
      } // env);
      runCommandLocal = name: env: text: self.runCommand name (env // {
        preferLocalBuild = true;
        allowSubstitutes = false;
      }) text;
      writeText = name: text: self.runCommandLocal name { inherit text; passAsFile = [ "text" ]; }
        ''cp "$textPath" "$out"'';
      # writeTextFile, writeScript, writeShellScript, linkFarm, linkFarmFromDrvs: nixpkgs'
      # pkgs/build-support/trivial-builders/default.nix (00ee9b64): a runCommand that writes
      # `text` to $out + destination (chmod +x when executable) and runs checkPhase there; a
      # shell script is `#!runtimeShell` + text, checked with stdenv's shellDryRun (`bash -n -O
      # extglob`, pkgs/stdenv/generic/default.nix); a link farm is a directory of `name -> path`
      # symlinks (linkFarmFromDrvs: each derivation under its name).
      runtimeShell = "/bin/bash";
      writeTextFile = { name, text, executable ? false, destination ? "", checkPhase ? ""
        , derivationArgs ? { }, ... }: self.runCommandLocal name ({
          inherit text executable checkPhase;
          passAsFile = [ "text" ];
        } // derivationArgs) ''
          target=$out${lib.escapeShellArg destination}
          mkdir -p "$(dirname "$target")"
          mv "$textPath" "$target"
          if [ -n "$executable" ]; then chmod +x "$target"; fi
          eval "$checkPhase"
        '';
      writeScript = name: text: self.writeTextFile { inherit name text; executable = true; };
      writeShellScript = name: text: self.writeTextFile {
        inherit name;
        executable = true;
        text = "#!${self.runtimeShell}\n${text}\n";
        checkPhase = ''${self.stdenv.shell} -n -O extglob "$target"'';
      };
      linkFarm = name: entries:
        let
          entries' = if lib.isAttrs entries then entries
            else lib.foldl (a: b: a // { "${b.name}" = b.path; }) { } entries;
        in
        self.runCommandLocal name { passthru.entries = entries'; } ''
          mkdir -p $out
          cd $out
          ${lib.concatStrings (lib.mapAttrsToList (n: path: ''
            mkdir -p -- "$(dirname -- ${lib.escapeShellArg n})"
            ln -s -- ${lib.escapeShellArg "${path}"} ${lib.escapeShellArg n}
          '') entries')}
        '';
      linkFarmFromDrvs = name: drvs: self.linkFarm name (map (d: { name = d.name; path = d; }) drvs);
      mkShell = mkShell self;
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

      # Packages crane takes by name. rustc/cargo/clippy are the one host toolchain: in a cross
      # set they still run on the build platform, as nixpkgs' spliced toolchain would.
      cargo = links "cargo" { cargo = "/nixcache-rust/bin/cargo"; };
      rustc = links "rustc" { rustc = "/nixcache-rust/bin/rustc"; rustdoc = "/nixcache-rust/bin/rustdoc"; };
      rustfmt = links "rustfmt" {
        rustfmt = "/nixcache-rust/bin/rustfmt";
        cargo-fmt = "/nixcache-rust/bin/cargo-fmt";
      };
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
      # nixpkgs' pkg-config-wrapper (pkgs/build-support/pkg-config-wrapper: default.nix 052a91ee,
      # setup-hook.sh 30f6c698): bin/pkg-config (here the host's) and a setup hook exporting
      # PKG_CONFIG. Its env hook adding each input's lib/pkgconfig and share/pkgconfig to
      # PKG_CONFIG_PATH is left out: the emulated stdenv has no env hooks, and no emulated package
      # has .pc files.
      pkg-config = derivation {
        name = "pkg-config-wrapper-emulated";
        inherit system;
        builder = "/bin/bash";
        args = [ "-c" ''
          set -e
          /bin/mkdir -p $out/bin $out/nix-support
          /bin/ln -s /usr/bin/pkg-config $out/bin/pkg-config
          echo 'export PKG_CONFIG=pkg-config' > $out/nix-support/setup-hook
        '' ];
      };
      craneUtils = if craneUtils == null then throw "nixpkgs.nix: no craneUtils given (t-80-crane.sh's nxt_crane_utils builds it)"
        else links "crane-utils" { crane-json2toml = "${craneUtils}/bin/crane-json2toml";
          crane-resolve-workspace-inheritance = "${craneUtils}/bin/crane-resolve-workspace-inheritance"; };

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

  # A stdenv package: `setup` is ./stdenv-setup.sh behind the preamble stdenv's own builder
  # writes (pkgs/stdenv/generic/builder.sh): initialPath, the directories whose bin/ start PATH,
  # and defaultNativeBuildInputs, which every derivation gets after its own.
  mkStdenvPkg = defaultNativeBuildInputs: derivation {
    name = "stdenv-linux-emulated";
    inherit system;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      /bin/mkdir $out
      { echo 'initialPath="/usr /"'
        echo "defaultNativeBuildInputs=\"$defaultNativeBuildInputs\""
        /bin/cat "$setupBody"; } > $out/setup
    '' ];
    inherit defaultNativeBuildInputs;
    setupBody = ./stdenv-setup.sh;
  };

  # pkgs/stdenv/generic/make-derivation.nix (000b5872), as far as crane and mkShell use it.
  mkDerivation = { hostPlatform, stdenvPkg }: attrs:
    let
      isCross = hostPlatform.config != buildPlatform.config;
      canRun = buildPlatform.canExecute hostPlatform;
      structured = attrs.__structuredAttrs or false;
      env = attrs.env or { };
      envIsExportable = builtins.isAttrs env && !lib.isDerivation env;
      # A dependency list as the stage KEY of the splice sees it (getDev: its dev output).
      deps = name: key: map (d: lib.getDev (d.__spliced.${key} or d)) (lib.flatten (attrs.${name} or [ ]));
      name =
        if attrs ? name then attrs.name + lib.optionalString isCross "-${hostPlatform.config}"
        else "${attrs.pname}${lib.optionalString isCross "-${hostPlatform.config}"}-${attrs.version}";
      derivationArg = builtins.removeAttrs attrs ([ "meta" "passthru" "pos" "checkInputs"
        "installCheckInputs" "nativeCheckInputs" "nativeInstallCheckInputs" ]
        ++ lib.optional (structured || envIsExportable) "env") // {
        inherit name system;
        builder = attrs.realBuilder or "/bin/bash";
        args = attrs.args or [ "-e" ./source-stdenv.sh (attrs.builder or ./default-builder.sh) ];
        stdenv = stdenvPkg;
        __ignoreNulls = true;
        __structuredAttrs = structured;
        strictDeps = attrs.strictDeps or isCross;
        doCheck = (attrs.doCheck or false) && canRun;
        doInstallCheck = (attrs.doInstallCheck or false) && canRun;
        outputs = attrs.outputs or [ "out" ];
        depsBuildBuild = deps "depsBuildBuild" "buildBuild";
        nativeBuildInputs = deps "nativeBuildInputs" "buildHost"
          ++ lib.optionals (attrs.doCheck or false && canRun) (deps "nativeCheckInputs" "buildHost");
        depsBuildTarget = deps "depsBuildTarget" "buildTarget";
        depsHostHost = deps "depsHostHost" "hostHost";
        buildInputs = deps "buildInputs" "hostTarget"
          ++ lib.optionals (attrs.doCheck or false && canRun) (deps "checkInputs" "hostTarget");
        depsTargetTarget = deps "depsTargetTarget" "targetTarget";
        depsBuildBuildPropagated = deps "depsBuildBuildPropagated" "buildBuild";
        propagatedNativeBuildInputs = deps "propagatedNativeBuildInputs" "buildHost";
        depsBuildTargetPropagated = deps "depsBuildTargetPropagated" "buildTarget";
        depsHostHostPropagated = deps "depsHostHostPropagated" "hostHost";
        propagatedBuildInputs = deps "propagatedBuildInputs" "hostTarget";
        depsTargetTargetPropagated = deps "depsTargetTargetPropagated" "targetTarget";
      } // lib.optionalAttrs structured { inherit env; };
      drv = derivation (derivationArg // lib.optionalAttrs (envIsExportable && !structured) env);
    in
    drv // { overrideAttrs = f: mkDerivation { inherit hostPlatform stdenvPkg; } (attrs // f attrs); }
    // (attrs.passthru or { });

  # pkgs/build-support/mkshell/default.nix (07c91341).
  mkShell = pkgs: { name ? "nix-shell", packages ? [ ], inputsFrom ? [ ], ... }@attrs:
    let
      mergeInputs = input: (attrs.${input} or [ ])
        ++ lib.subtractLists inputsFrom (lib.flatten (lib.catAttrs input inputsFrom));
      rest = builtins.removeAttrs attrs [ "name" "packages" "inputsFrom" "buildInputs"
        "nativeBuildInputs" "propagatedBuildInputs" "propagatedNativeBuildInputs" "shellHook" ];
    in
    pkgs.stdenv.mkDerivation ({
      inherit name;
      buildInputs = mergeInputs "buildInputs";
      nativeBuildInputs = packages ++ mergeInputs "nativeBuildInputs";
      propagatedBuildInputs = mergeInputs "propagatedBuildInputs";
      propagatedNativeBuildInputs = mergeInputs "propagatedNativeBuildInputs";
      shellHook = lib.concatStringsSep "\n" (lib.catAttrs "shellHook" (lib.reverseList inputsFrom ++ [ attrs ]));
      phases = [ "buildPhase" ];
      buildPhase = ''
        { echo "the environment of an emulated pkgs.mkShell"; export; } >> "$out"
      '';
      preferLocalBuild = true;
    } // rest);

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

  withOverlays = f: lib.fix (lib.extends (lib.composeManyExtensions overlays) f);
  native = withOverlays (mkSet { hostPlatform = buildPlatform; });
  crossSet = withOverlays (mkSet { hostPlatform = mkPlatform platforms.aarch64; buildSet = native; });
in
if cross then crossSet else native
