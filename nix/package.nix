# cargo-nixcache built with nixpkgs' rustPlatform, with its setup hooks in passthru:
#   nativeBuildInputs = [ cargo-nixcache.hooks.inheritHook cargo-nixcache.hooks.installHook ];
{ lib, rustPlatform, makeSetupHook }:
let
  cargoToml = lib.importTOML ../Cargo.toml;

  cargo-nixcache = rustPlatform.buildRustPackage {
    pname = "cargo-nixcache";
    inherit (cargoToml.package) version;

    # The Rust sources only, so editing the hooks or docs does not rebuild the binary.
    src = lib.fileset.toSource {
      root = ../.;
      fileset = lib.fileset.unions [ ../Cargo.toml ../Cargo.lock ../src ../wrapper ];
    };
    cargoLock.lockFile = ../Cargo.lock;

    # Both binaries: cargo-nixcache and the rustc wrapper.
    cargoBuildFlags = [ "--workspace" ];
    # Unit tests only: the integration tests need cargo builds and Nix of their own.
    cargoTestFlags = [ "--workspace" "--lib" "--bins" ];

    passthru.hooks = hooks;

    meta = {
      description = cargoToml.package.description;
      license = with lib.licenses; [ mit asl20 ];
      mainProgram = "cargo-nixcache";
    };
  };

  hooks = {
    inheritHook = makeSetupHook {
      name = "cargo-nixcache-inherit-hook";
      propagatedBuildInputs = [ cargo-nixcache ];
    } ./hooks/nixcache-inherit-hook.sh;

    installHook = makeSetupHook {
      name = "cargo-nixcache-install-hook";
      propagatedBuildInputs = [ cargo-nixcache ];
    } ./hooks/nixcache-install-hook.sh;

    # Opt-in (nixcacheStableVendorDir): vendored crates at one path in every derivation
    # (docs/nix.md, "A stable vendor path").
    vendorHook = makeSetupHook {
      name = "cargo-nixcache-vendor-hook";
    } ./hooks/nixcache-vendor-hook.sh;

    # For dev shells: fills the target dir on entry (docs/nix.md, "Dev shells").
    shellHook = makeSetupHook {
      name = "cargo-nixcache-shell-hook";
      propagatedBuildInputs = [ cargo-nixcache ];
    } ./hooks/nixcache-shell-hook.sh;
  };
in
cargo-nixcache
