# Evaluates nix/crane.nix against a fake, minimal crane lib (a scope with callPackage and
# overrideScope, as crane's `makeScope newScope` provides). Returns { ok; failed; checks; }.
# Run: nix-instantiate --eval --strict tests/nix/crane-adapter.nix -A ok
# `adapter` is replaceable so the negative control can show a non-adapter failing the checks.
{ adapter ? import ../../nix/crane.nix }:
let
  # makeSetupHook stand-in: records what it was given.
  makeSetupHook = args: script: { fakeSetupHook = true; inherit args script; outPath = "/fake/${args.name}"; };
  pkgs = { inherit makeSetupHook; };

  # A scope like lib.makeScope: callPackage sees pkgs and the scope; overrideScope re-fixes.
  makeScope = f:
    let
      self = f self // {
        callPackage = fn: extra:
          let all = pkgs // self; fn' = if builtins.isFunction fn then fn else import fn;
          in fn' (builtins.intersectAttrs (builtins.functionArgs fn') all // extra);
        overrideScope = g: makeScope (s: let base = f s; in base // g s base);
      };
    in
    self;

  fakeCrane = makeScope (self: {
    inheritCargoArtifactsHook = { outPath = "/fake/crane-inherit"; };
    installCargoArtifactsHook = { outPath = "/fake/crane-install"; };
    buildDepsOnly = "buildDepsOnly";
    buildPackage = "buildPackage";
    mkCargoDerivation = "mkCargoDerivation";
  });

  fakePackage = { outPath = "/fake/cargo-nixcache"; };
  adapted = adapter { cargo-nixcache = fakePackage; } fakeCrane;

  inh = adapted.inheritCargoArtifactsHook;
  ins = adapted.installCargoArtifactsHook;
  names = s: builtins.filter (n: n != "callPackage" && n != "overrideScope") (builtins.attrNames s);

  checks = {
    inherit-hook-is-ours = inh.fakeSetupHook or false && baseNameOf (inh.script or "") == "crane-inherit-hook.sh";
    inherit-hook-sources-cranes = (inh.args.substitutions.craneInheritHook or null) == "/fake/crane-inherit/nix-support/setup-hook";
    inherit-hook-sources-ours = builtins.match ".*-nixcache-inherit-hook.sh" (inh.args.substitutions.nixcacheInheritHook or "") != null;
    install-hook-is-ours = baseNameOf (ins.script or "") == "crane-install-hook.sh";
    install-hook-sources-cranes = (ins.args.substitutions.craneInstallHook or null) == "/fake/crane-install/nix-support/setup-hook";
    hooks-bring-the-binary = (inh.args.propagatedBuildInputs or null) == [ fakePackage ]
      && (ins.args.propagatedBuildInputs or null) == [ fakePackage ];
    same-attribute-names = names adapted == names fakeCrane;
    others-untouched = builtins.all (n: adapted.${n} == fakeCrane.${n})
      [ "buildDepsOnly" "buildPackage" "mkCargoDerivation" ];
    # The adapter composes: adapting twice wraps crane's hook twice, never loses it.
    composes = let twice = adapter { cargo-nixcache = fakePackage; } adapted; in
      (twice.inheritCargoArtifactsHook.args.substitutions.craneInheritHook or null)
        == "/fake/nixcache-crane-inherit-hook/nix-support/setup-hook";
  };
  failed = builtins.filter (n: !checks.${n}) (builtins.attrNames checks);
in
{ inherit checks failed; ok = failed == [ ]; }
