# Derivations for the Nix tests: plain `derivation`s whose builder (./builder.sh) runs stdenv's
# phases and sources our setup hooks, with the host's toolchain on PATH (bound into the sandbox at
# /nixcache-rust by tests/nix/lib.sh). No nixpkgs needed.
{ tools ? null, src ? null, vendor ? null, repo ? ../.. }:
let
  # The whole directory, copied into the store once, so hooks can find their siblings.
  hooks = "${repo + "/nix/hooks"}";
  nonNull = attrs: builtins.removeAttrs attrs
    (builtins.filter (n: attrs.${n} == null) (builtins.attrNames attrs));
in
rec {
  inherit hooks vendor;
  inheritHook = "${hooks}/nixcache-inherit-hook.sh";
  installHook = "${hooks}/nixcache-install-hook.sh";
  vendorHook = "${hooks}/nixcache-vendor-hook.sh";

  # mkCargo { name, buildPhase, ... }: every extra attribute becomes an environment variable, as
  # with stdenv.mkDerivation. `log` is a second output for what the test wants to inspect.
  mkCargo = { name, ... }@args:
    derivation (nonNull ({
      inherit src vendor;
      system = builtins.currentSystem;
      builder = "/bin/bash";
      args = [ ./builder.sh ];
      outputs = [ "out" "log" ];
      sourceRoot = "ws-basic";
      setupHooks = [ inheritHook installHook vendorHook ];
      hostPath = (if tools == null then "" else "${tools}/bin:") + "/nixcache-rust/bin:/usr/bin:/bin";
      buildPhase = defaultBuildPhase;
      installPhase = defaultInstallPhase;
      preBuild = checkLinks;
      inherit cargoBuildCmd;
    } // args));

  # Build with cargo's JSON messages in $log/cargo.json (tests read the `fresh` flags).
  cargoBuildCmd = "cargo build --offline";
  defaultBuildPhase = ''
    $cargoBuildCmd --message-format json-render-diagnostics > $log/cargo.json
  '';
  # Keep the app binary and what it prints, when there is one.
  defaultInstallPhase = ''
    if [ -x "''${CARGO_TARGET_DIR:-target}/debug/app" ]; then
      mkdir -p $log/bin
      cp "''${CARGO_TARGET_DIR:-target}/debug/app" $log/bin/app
      $log/bin/app > $log/app.out
    fi
  '';
  # After inheriting: every symlink in the target dir resolves, in one hop.
  checkLinks = ''
    : > $log/links-bad
    if [ -d "''${CARGO_TARGET_DIR:-target}" ]; then
      find "''${CARGO_TARGET_DIR:-target}" -type l > $TMPDIR/links
    else
      : > $TMPDIR/links
    fi
    while IFS= read -r l; do
      dest=$(readlink "$l")
      if [ -L "$dest" ]; then echo "two hops: $l -> $dest" >> $log/links-bad; fi
      if [ ! -e "$dest" ]; then echo "dangling: $l -> $dest" >> $log/links-bad; fi
    done < $TMPDIR/links
    wc -l < $TMPDIR/links > $log/links-count
  '';
}
