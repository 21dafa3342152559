# crane's OWN checks (checks/default.nix of the crane checkout, the attribute set crane's CI
# builds with `nix flake check ./test`) evaluated over the emulated nixpkgs (./nixpkgs.nix), once
# with crane's lib as it is and once through the cargo-nixcache adapter (nix/crane.nix). Used by
# tests/nix/t-83-crane-checks.sh.
#
# crane's test flake calls checks/default.nix with { pkgs, myLib, myLibCross, myLibFenix,
# myLibWindows }: nixpkgs with oxalica/rust-overlay, crane's lib over it, crane for a wasm32 and a
# mingw cross nixpkgs, and crane over a fenix toolchain. Here `pkgs` is the emulation, `myLib`
# crane's lib (or the adapted lib), and the three others cannot be made (no nixpkgs cross set for
# those platforms, no fenix): they throw, saying so, when a check uses them.
#
# What crane's checks take from nixpkgs and the emulation does not provide is named below
# (`absent`), each with why it is not here: a check that needs one fails to evaluate with that
# message, so the test can show why a check cannot run rather than only say it.
{
  # a copy of crane's checkout (t-83 makes it in $T, compilesFresh.nix's mode list extended)
  crane
  # the arguments of ./nixpkgs.nix (nixpkgsLib, nextest, craneUtils, mirror)
, nixpkgsArgs
  # the binaries under test, as a store path with bin/
, tools
, repo
}:
let
  absent = name: why: throw "crane check needs ${name}, which this emulation of nixpkgs lacks: ${why}";
  # An absent package: derivation-shaped (checks/default.nix keeps only derivations, so a check
  # made from one still shows up), failing with `absent`'s message once anything needs its path.
  absentPkg = name: why:
    let e = absent name why; in
    { type = "derivation"; name = "absent-${name}"; pname = name; version = "0"; outPath = e;
      drvPath = e; outputs = [ "out" ]; src = e; meta = { }; override = _: absentPkg name why;
      overrideAttrs = _: absentPkg name why; };
  # An absent function returning packages (a fetcher, a builder).
  absentFn = name: why: _: absentPkg name why;
  # An absent crane lib: its builders give absent packages.
  absentLib = name: why: {
    buildPackage = absentFn name why;
    buildDepsOnly = absentFn name why;
    vendorCargoDeps = absentFn name why;
    cleanCargoSource = _: absent name why;
  };
  network = "it fetches from the network (offline here)";
  notPackaged = what: "${what} is not installed on this machine nor emulated";

  # nixpkgs attributes crane's checks (or crane's lib functions they call) take that are not
  # emulated. Only their absence is declared here: the emulation adds what can be made.
  # (And one deliberate difference, linkFarmFromDrvs, at the end.)
  absentOverlay = final: prev: {
    fetchFromGitHub = absentFn "fetchFromGitHub" network;
    rust-bin = absent "rust-bin" "oxalica/rust-overlay's toolchains (fetched from static.rust-lang.org)";
    remarshal = absentPkg "remarshal" (notPackaged "remarshal");
    cargo-audit = absentPkg "cargo-audit" (notPackaged "cargo-audit");
    cargo-deny = absentPkg "cargo-deny" (notPackaged "cargo-deny");
    cargo-tarpaulin = absentPkg "cargo-tarpaulin" (notPackaged "cargo-tarpaulin");
    mdbook = absentPkg "mdbook" (notPackaged "mdbook");
    cmake = absentPkg "cmake" (notPackaged "cmake");
    clangStdenv = prev.stdenv // { mkDerivation = absentFn "clangStdenv" (notPackaged "clang"); };
    # nixpkgs' gccStdenv is stdenv itself when stdenv's compiler is GCC (pkgs/top-level/
    # all-packages.nix: `gccStdenv = if stdenv.cc.isGNU then stdenv else stdenv.override
    # { cc = buildPackages.gcc; ... }`), as the emulated stdenv's (the host's gcc) is.
    gccStdenv = prev.stdenv;
    llvmPackages = { libclang.lib = absentPkg "llvmPackages.libclang" (notPackaged "libclang"); };
    rustPlatform.buildRustPackage = absentFn "rustPlatform.buildRustPackage"
      "nixpkgs' Rust builder is not emulated (the suite builds crane-utils with cargo instead)";
    writableTmpDirAsHomeHook = absentPkg "writableTmpDirAsHomeHook" "a nixpkgs setup hook, only used with rustPlatform";
    gcc = absentPkg "gcc" "only used by illegalReferences, which needs rust-overlay and fenix too";
    openssl = absentPkg "openssl" (notPackaged "OpenSSL as a nixpkgs package");
    tailwindcss_4 = absentPkg "tailwindcss_4" (notPackaged "tailwindcss");
    "wasm-bindgen-cli_0_2_108" = absentPkg "wasm-bindgen-cli" (notPackaged "wasm-bindgen-cli");

    # crane's checks hand linkFarmFromDrvs derivations of the same name (chainedMultiple's three
    # chains, features' five compilesFresh link farms, ...), and nixpkgs' linkFarm keeps one entry
    # per name, the last: crane's CI builds only that one. Here every entry is kept (a repeated
    # name gets a `-N` suffix), so everything crane lists is built; `nixcacheSameNamed` lists the
    # entries nixpkgs' linkFarm would have dropped.
    linkFarmFromDrvs = name: drvs:
      let
        indexed = lib.imap0 (i: d: { inherit i d; }) drvs;
        earlier = x: lib.count (y: y.i < x.i && y.d.name == x.d.name) indexed;
        later = x: lib.count (y: y.i > x.i && y.d.name == x.d.name) indexed;
      in
      prev.linkFarm name (map (x: {
        name = if earlier x == 0 then x.d.name else "${x.d.name}-${toString (earlier x)}";
        path = x.d;
      }) indexed) // {
        nixcacheSameNamed = map (x: x.d.name) (builtins.filter (x: later x > 0) indexed);
      };
  };

  lib = import (nixpkgsArgs.nixpkgsLib + "/lib");
  pkgs = import ./nixpkgs.nix (nixpkgsArgs // { overlays = [ absentOverlay ]; });

  # crane's lib as t-80-crane.sh makes it: only crane-utils is the one built outside Nix. The
  # toolchain is the host's, bound into the sandbox (not a store path): crane's
  # removeReferencesToRustToolchain (buildPackage's postInstall) finds no store hash in
  # `rustc --print sysroot` and fails, so every check runs with it off, with either lib.
  craneLib = (pkgs.callPackage (crane + "/lib") { }).overrideScope (_: prev: {
    inherit (pkgs) craneUtils;
    mkCargoDerivation = args: prev.mkCargoDerivation ({ doNotRemoveReferencesToRustToolchain = true; } // args);
  });
  nixcacheLib = import (repo + "/nix/crane.nix") { cargo-nixcache = tools; } craneLib;

  checksFor = checksOf (crane + "/checks/default.nix");
  checksOf = file: myLib: import file {
    inherit pkgs myLib;
    myLibCross = absentLib "myLibCross" "crane for a wasm32-unknown-none cross nixpkgs (the emulation crosses to aarch64 only)";
    myLibFenix = absentLib "myLibFenix" "nix-community/fenix's toolchain (fetched from the network)";
    myLibWindows = absentLib "myLibWindows" "crane for a mingw cross nixpkgs (no windows toolchain here)";
  };
  # compilesFresh.nix (patched by t-83 to take its mode list as `compilesFreshModes`, crane's two
  # modes by default) gets ours as a third mode through the adapted lib's scope.
  oursLib = nixcacheLib.overrideScope (_: _: {
    compilesFreshModes = [ "use-zstd" "use-symlink" "use-nixcache" ];
  });
in
{
  inherit pkgs craneLib oursLib;
  # Every check, with crane's lib (`crane`) and with the adapted lib (`ours`).
  crane = checksFor craneLib;
  ours = checksFor oursLib;
  # crane's compilesFresh function (checks/compilesFresh.nix) over a lib, for the negative control.
  compilesFreshOf = myLib: myLib.callPackage (crane + "/checks/compilesFresh.nix") { };
  # FILE (a variant of checks/default.nix in the same directory) evaluated like it, with ours.
  oursOf = file: checksOf file oursLib;
  # The emulation's linkFarmFromDrvs, as nixpkgs' (one entry per name), not the overlay's.
  nixpkgsLinkFarmFromDrvs = (import ./nixpkgs.nix nixpkgsArgs).linkFarmFromDrvs;
}
