# The nixpkgs `lib` functions crane's Nix files use, emulated from nixpkgs' lib/ (customisation.nix,
# trivial.nix, lists.nix, strings.nix, attrsets.nix, versions.nix); see ./nixpkgs.nix. Among them
# those of crane's vendoring (vendorCargoDeps and what it calls).
let
  fix = f: let x = f x; in x;
  extends = g: f: final: let prev = f final; in prev // g final prev;
  isDerivation = v: builtins.isAttrs v && (v.type or null) == "derivation";
  callPackageWith = autoArgs: fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
      fargs = builtins.functionArgs f;
      missing = builtins.filter (n: !fargs.${n} && !(autoArgs ? ${n}) && !(args ? ${n}))
        (builtins.attrNames fargs);
    in
    if missing != [ ] then throw "callPackage: ${toString fn} needs ${toString missing}"
    else f (builtins.intersectAttrs fargs autoArgs // args);
  makeScope = newScope: f:
    let
      self = f self // {
        newScope = scope: newScope (self // scope);
        callPackage = self.newScope { };
        overrideScope = g: makeScope newScope (extends g f);
        packages = f;
      };
    in
    self;
  # lib/customisation.nix: self's callPackage sees the splice of the other stages' scopes with
  # self; overrideScope re-splices self only ("the other stages ... are *not* overridden").
  makeScopeWithSplicing' = { splicePackages, newScope }:
    { otherSplices, keep ? (_: { }), extra ? (_: { }), f }:
    let
      spliced0 = splicePackages {
        pkgsBuildBuild = otherSplices.selfBuildBuild;
        pkgsBuildHost = otherSplices.selfBuildHost;
        pkgsBuildTarget = otherSplices.selfBuildTarget;
        pkgsHostHost = otherSplices.selfHostHost;
        pkgsHostTarget = self;
        pkgsTargetTarget = otherSplices.selfTargetTarget;
      };
      spliced = extra spliced0 // spliced0 // keep self;
      self = f self // {
        newScope = scope: newScope (spliced // scope);
        callPackage = newScope spliced;
        overrideScope = g: makeScopeWithSplicing' { inherit splicePackages newScope; } {
          inherit otherSplices keep extra;
          f = extends g f;
        };
        packages = f;
      };
    in
    self;
  optionalAttrs = c: a: if c then a else { };
  optionalString = c: s: if c then s else "";
  optional = c: x: if c then [ x ] else [ ];
  warn = msg: v: builtins.trace "warning: ${msg}" v;
  flatten = x: if builtins.isList x then builtins.concatMap flatten x else [ x ];
  splitVersion = builtins.splitVersion;
  filterAttrs = p: a: builtins.listToAttrs (builtins.concatMap
    (n: if p n a.${n} then [{ name = n; value = a.${n}; }] else [ ]) (builtins.attrNames a));
  # lists.nix: the first occurrence of each element, in order.
  unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  escapeShellArg = s: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
  nameValuePair = name: value: { inherit name value; };
  hasPrefix = pre: s: builtins.substring 0 (builtins.stringLength pre) s == pre;
  removePrefix = pre: s:
    if hasPrefix pre s
    then builtins.substring (builtins.stringLength pre) (builtins.stringLength s) s
    else s;
  concatMapStrings = f: l: builtins.concatStringsSep "" (map f l);
in
rec {
  inherit fix extends isDerivation callPackageWith makeScope makeScopeWithSplicing' optionalAttrs
    optionalString optional warn flatten splitVersion filterAttrs unique escapeShellArg
    nameValuePair hasPrefix removePrefix concatMapStrings;
  version = "26.05";
  versionOlder = a: b: builtins.compareVersions b a == 1;
  warnIf = c: msg: v: if c then warn msg v else v;
  isFunction = builtins.isFunction;
  concatStringsSep = builtins.concatStringsSep;
  elem = builtins.elem;
  flip = f: a: b: f b a;
  foldl = builtins.foldl';
  genList = builtins.genList;
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  mapAttrsToList = f: a: map (n: f n a.${n}) (builtins.attrNames a);
  mapAttrs = builtins.mapAttrs;
  "mapAttrs'" = f: a: builtins.listToAttrs (mapAttrsToList f a);
  groupBy = f: builtins.foldl' (acc: x: let k = f x; in acc // { ${k} = (acc.${k} or [ ]) ++ [ x ]; }) { };
  concatStrings = builtins.concatStringsSep "";
  concatMapStringsSep = sep: f: l: builtins.concatStringsSep sep (map f l);
  optionals = c: l: if c then l else [ ];
  any = builtins.any;
  last = l: builtins.elemAt l (builtins.length l - 1);
  toLower = builtins.replaceStrings (stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    (stringToCharacters "abcdefghijklmnopqrstuvwxyz");
  stringToCharacters = s: builtins.genList (i: builtins.substring i 1 s) (builtins.stringLength s);
  # strings.nix: every character regex syntax gives a meaning to, backslashed.
  escapeRegex = builtins.replaceStrings (stringToCharacters "\\[{()^$?*+|.")
    (map (c: "\\${c}") (stringToCharacters "\\[{()^$?*+|."));
  mergeAttrsList = builtins.foldl' (a: b: a // b) { };
  lists = { inherit optional flatten unique; sublist = start: count: l: builtins.genList (i: builtins.elemAt l (start + i))
    (let n = builtins.length l - start; in if count < n then count else n); };
  strings.escapeShellArg = escapeShellArg;
  trivial = { inherit warn; };
  attrsets = { inherit optionalAttrs filterAttrs genAttrs; };
  asserts.assertMsg = c: msg: if c then true else throw msg;
}
