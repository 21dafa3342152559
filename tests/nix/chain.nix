# The crane-style chain used by most tests: deps (registry crates only) -> app (whole workspace,
# inheriting deps) -> app2 (inheriting app). Each takes extra attributes from the test.
{ t, deps ? { }, app ? { }, app2 ? { } }:
rec {
  depsDrv = t.mkCargo ({
    name = "deps";
    # Registry crates only (nc-beta and nc-alpha, which has a build script), from the real
    # sources. Not `-p nc-macro`: a proc macro built as a root unit gets another unit hash than
    # the same macro built as a dependency, so app would not reuse it anyway.
    cargoBuildCmd = "cargo build --offline -p nc-beta";
  } // deps);

  appDrv = t.mkCargo ({
    name = "app";
    cargoArtifacts = depsDrv;
  } // app);

  app2Drv = t.mkCargo ({
    name = "app2";
    cargoArtifacts = appDrv;
  } // app2);
}
