//! The stale-binary guard (`cargo nixcache freshen`) and the source digests pack records for it,
//! with real cargo builds of the fixtures in the state a Nix build inherits them (see
//! `support::scenario`): sources at mtime 1, artifacts packed into a read-only store path and
//! unpacked, cargo without capabilities. Every test shows both sides: what goes wrong without
//! the behaviour it pins (the negative control), then that it does not happen with it.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::scenario::{dirty_units, run_ok, Scenario};
use support::store::{set_mtimes, sources_from_store, CANONICAL_MTIME};
use support::{Fixture, TreeSnapshot};

/// `key -> (action, reason)` of a `freshen --json` report.
type Decisions = BTreeMap<String, (String, String)>;

fn decisions(out: &Output) -> Decisions {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("freshen --json printed no JSON ({e}): {out:?}"));
    report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("key"), (s("action"), s("reason")))
        })
        .collect()
}

/// ws-basic's packages (`.`, `app`, `applib`): those named freshened as their sources differ,
/// the others kept.
fn differing(keys: &[&str]) -> Decisions {
    let decide = |key| match keys.contains(&key) {
        true => (key, "freshened", "sources_differ"),
        false => (key, "kept", "same_sources"),
    };
    expect(&[".", "app", "applib"].map(decide))
}

fn expect(list: &[(&str, &str, &str)]) -> Decisions {
    list.iter()
        .map(|(k, a, r)| (k.to_string(), (a.to_string(), r.to_string())))
        .collect()
}

/// `cargo nixcache freshen --json [--inherited ARTIFACTS]` in the scenario's workspace.
fn freshen(sc: &Scenario, inherited: Option<&Path>) -> Decisions {
    let mut args = vec!["--json".as_ref(), "freshen".as_ref()];
    if let Some(a) = inherited {
        args.extend(["--inherited".as_ref(), a.as_os_str()]);
    }
    decisions(&sc.nixcache(&args))
}

/// `cargo nixcache pack` of the target dir into a new, canonicalized store path; returns it and
/// the pack report.
fn pack(sc: &Scenario, name: &str) -> (PathBuf, serde_json::Value) {
    let out = sc.store.path(name);
    let o = sc.nixcache(&[
        "--json".as_ref(),
        "pack".as_ref(),
        "--target-dir".as_ref(),
        sc.target().as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    support::canonicalize(&out);
    (out, serde_json::from_slice(&o.stdout).unwrap())
}

/// `cargo nixcache pack` of the target dir into `out`, run in `dir`.
fn pack_from(sc: &Scenario, dir: &Path, out: &Path, extra: &[&str]) {
    let mut cmd = sc.fx.command(support::nixcache_bin());
    cmd.current_dir(dir)
        .arg(sc.store.arg())
        .args(["pack", "--target-dir"])
        .arg(sc.target())
        .arg("--out")
        .arg(out)
        .args(extra);
    let o = support::output_of(&mut cmd);
    support::assert_success(&cmd, &o);
}

/// The next derivation's start: sources from the store (mtime 1), the target dir replaced by an
/// unpack of `artifacts`.
fn inherit(sc: &Scenario, artifacts: &Path) {
    sources_from_store(&sc.fx);
    if sc.target().exists() {
        support::make_writable(sc.target());
        fs::remove_dir_all(sc.target()).unwrap();
    }
    sc.unpack(artifacts, &sc.target());
}

/// `cargo nixcache exec -- cargo ARGS`, unprivileged; panics unless it succeeds.
fn exec(sc: &Scenario, args: &[&str]) -> Output {
    run_ok(&mut sc.exec(sc.fx.cargo_cmd(args)))
}

fn manifest_sources(artifacts: &Path) -> serde_json::Value {
    let text = fs::read_to_string(artifacts.join("nixcache.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["sources"].clone()
}

fn mtime(path: &Path) -> i64 {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("stat `{}`: {e}", path.display()));
    filetime::FileTime::from_last_modification_time(&meta).unix_seconds()
}

/// The fixture's documented message, from `app` as built in `target/debug`.
fn app_prints(sc: &Scenario) -> String {
    sc.run_bin("debug/app").trim().to_string()
}

/// Sets applib's greeting, the string `app` prints first, to the Rust expression `expr`.
fn set_greeting(fx: &Fixture, expr: &str) {
    let lib = fx.read("applib/src/lib.rs");
    let line = lib
        .lines()
        .find(|l| l.starts_with("pub const GREETING"))
        .unwrap();
    let lib = lib.replace(line, &format!("pub const GREETING: &str = {expr};"));
    fx.write("applib/src/lib.rs", lib);
}

// ---- no dependency resolution -----------------------------------------------------------

/// crane runs the guard at postPatch, before its preConfigure hook writes the vendored-sources
/// config: registry dependencies, no source replacement, an empty CARGO_HOME.
#[test]
fn freshen_needs_no_dependency_resolution() {
    let fx = Fixture::copy("ws-basic");
    fs::remove_file(fx.path(".cargo/config.toml")).unwrap();
    let home = fx.base().join("cargo-home");
    assert_eq!(
        fs::read_dir(&home).unwrap().count(),
        0,
        "CARGO_HOME is not empty"
    );
    // Negative control: what the guard used to run fails here.
    let meta = fx
        .cargo_cmd(["metadata", "--format-version", "1"])
        .run_failing();
    assert!(
        meta.stderr.contains("no matching package named `nc-"),
        "{meta}"
    );

    let out = fx.nixcache_ok(["--json", "freshen"]);
    assert_eq!(
        decisions(&out),
        expect(&[
            (".", "freshened", "no_artifacts"),
            ("app", "freshened", "no_artifacts"),
            ("applib", "freshened", "no_artifacts"),
        ])
    );
    // The members agree with cargo's own reading of the workspace (which needs no resolution).
    let meta = fx
        .cargo_cmd(["metadata", "--no-deps", "--format-version", "1"])
        .run();
    let meta: serde_json::Value = serde_json::from_str(&meta.stdout).unwrap();
    let mut members: Vec<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Vec<String> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    assert_eq!(ours, members);
}

#[test]
fn freshen_outside_a_workspace_says_what_to_do() {
    let fx = Fixture::copy("ws-basic");
    let dir = fx.scratch_dir("elsewhere");
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.current_dir(&dir).arg("freshen");
    let out = support::output_of(&mut cmd);
    // Usage: the command was run in the wrong place.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("found no `Cargo.toml` in") && err.contains("pass --manifest-path"),
        "{err}"
    );
    // Input rejected: what --inherited names holds no artifacts.
    let out = fx.nixcache(["freshen", "--inherited", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no cargo artifacts"), "{err}");
}

/// pack cannot digest the sources it was pointed at: a clear error, nothing written.
#[test]
fn pack_with_a_missing_manifest_writes_nothing() {
    let sc = Scenario::new("ws-basic", "in-place");
    sc.fx.cargo(["build"]);
    let out = sc.store.path("deps");
    let gone = sc.fx.path("gone/Cargo.toml");
    let run = |manifest: &Path| {
        let mut cmd = sc.fx.command(support::nixcache_bin());
        cmd.arg(sc.store.arg())
            .args(["pack", "--target-dir", "target", "--out"])
            .arg(&out)
            .arg("--manifest-path")
            .arg(manifest);
        support::output_of(&mut cmd)
    };
    let o = run(&gone);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "error: --manifest-path `{}` does not exist",
            gone.display()
        )),
        "{err}"
    );
    assert!(!out.exists(), "pack wrote {}", out.display());
    // Control: the right manifest packs.
    let o = run(&sc.fx.path("Cargo.toml"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        manifest_sources(&out)["packages"]
            .as_object()
            .unwrap()
            .len(),
        3
    );
}

// ---- only the workspace's own files ---------------------------------------------------------

/// `cargo vendor`'s layout: the registry crates in the workspace's own `vendor/`.
fn vendor_in_tree(fx: &Fixture) {
    fs::rename(fx.vendor(), fx.path("vendor")).unwrap();
    let config = fx.read(".cargo/config.toml");
    fx.write(
        ".cargo/config.toml",
        config.replace("\"../vendor\"", "\"vendor\""),
    );
}

/// What the guard used to do: every file below the package directory but `.git`, `target` and
/// CACHEDIR.TAG directories (here: and the target dir by another name).
fn old_walk_touch(root: &Path, target_dir: &Path) {
    let now = filetime::FileTime::now();
    let walk = walkdir::WalkDir::new(root).into_iter().filter_entry(|e| {
        !(e.file_type().is_dir()
            && e.depth() > 0
            && (e.file_name() == ".git"
                || e.file_name() == "target"
                || e.path() == target_dir
                || e.path().join("CACHEDIR.TAG").is_file()))
    });
    for e in walk {
        let e = e.unwrap();
        if e.file_type().is_file() {
            filetime::set_file_mtime(e.path(), now).unwrap();
        }
    }
}

#[test]
fn freshen_touches_neither_vendored_crates_nor_the_target_dir() {
    let fx = Fixture::copy("ws-basic");
    vendor_in_tree(&fx);
    fx.write("notes/data.txt", "not a package: the root's own file");
    // A target dir by another name, inside the workspace.
    let target_dir = fx.path("out");
    let cargo = |args: &[&str]| {
        fx.cargo_cmd(args)
            .env("CARGO_TARGET_DIR", &target_dir)
            .run()
    };
    cargo(&["build"]);
    // Without its tag, only --target-dir keeps freshen out of it.
    fs::remove_file(target_dir.join("CACHEDIR.TAG")).unwrap();
    sources_from_store(&fx);
    set_mtimes(&target_dir, 2);
    assert!(cargo(&["build"]).all_fresh());
    // (After the build: a no-op build may rewrite `app.d`, see tests/fixtures/README.md.)
    let target_before = TreeSnapshot::capture(&target_dir);

    let mut cmd = fx.command(support::nixcache_bin());
    cmd.args(["--json", "freshen", "--target-dir"])
        .arg(&target_dir);
    let out = support::output_of(&mut cmd);
    support::assert_success(&cmd, &out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["freshened"], 3, "{report}");
    // Exactly the members' and the root's own files have a new mtime.
    let mut touched: Vec<String> = walkdir::WalkDir::new(fx.root())
        .into_iter()
        .filter_entry(|e| e.path() != target_dir)
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file() && mtime(e.path()) != CANONICAL_MTIME)
        .map(|e| {
            let rel = e.path().strip_prefix(fx.root()).unwrap();
            rel.display().to_string()
        })
        .collect();
    touched.sort();
    assert_eq!(
        touched,
        [
            ".cargo/config.toml",
            "Cargo.lock",
            "Cargo.toml",
            "app/Cargo.toml",
            "app/src/main.rs",
            "app/tests/cli.rs",
            "applib/Cargo.toml",
            "applib/src/lib.rs",
            "notes/data.txt",
        ]
    );
    assert_eq!(report["touched"], 9, "{report}");
    let diff = target_before.diff(&TreeSnapshot::capture(&target_dir));
    assert!(
        diff.is_empty(),
        "freshen changed the target dir:\n{}",
        diff.join("\n")
    );
    // So only the workspace's own units rebuild: nc-alpha's build script (which watches its
    // `build.rs`) does not rerun.
    let run = cargo(&["build"]);
    assert_eq!(
        run.dirty_units(),
        ["app bin:app", "applib lib:applib"],
        "{run}"
    );

    // Negative control: the old walk touches the vendored crates too, and their build
    // scripts rerun.
    old_walk_touch(fx.root(), &target_dir);
    let run = cargo(&["build"]);
    assert!(
        run.dirty_packages().contains(&"nc-alpha".to_string()),
        "the old walk did not rerun nc-alpha's build script:\n{run}"
    );
}

// ---- kept when the same, freshened when different -------------------------------------------

/// crane's mkDummySrc in spirit: the same manifests, other sources (a unit test by another name,
/// so a test binary built from them is recognisable).
fn dummy_sources(fx: &Fixture) {
    set_greeting(fx, "\"dummy\"");
    let lib = fx.read("applib/src/lib.rs");
    fx.write(
        "applib/src/lib.rs",
        lib.replace("fn message_uses_every_dependency()", "fn dummy_test()")
            .replace("\"hello from applib 84 42\"", "\"dummy 84 42\""),
    );
    fx.write("app/src/main.rs", "fn main() { println!(\"dummy\") }\n");
}

/// deps (dummy sources) -> build -> test, as crane chains them: the build derivation rebuilds
/// the workspace crates once, and the test derivation reuses them (same sources, so nothing is
/// touched) while the test units the deps derivation built from the dummy sources are rebuilt,
/// never run stale.
#[test]
fn deps_build_test_reuses_workspace_crates_and_never_runs_dummy_tests() {
    let sc = Scenario::new("ws-basic", "in-place");
    let real_lib = sc.fx.read("applib/src/lib.rs");
    let real_main = sc.fx.read("app/src/main.rs");
    dummy_sources(&sc.fx);
    sc.deps(&[sc.plain(["build"]), sc.plain(["test", "--no-run"])]);
    let (deps_out, _) = pack(&sc, "deps");
    inherit(&sc, &deps_out);

    // build: the real sources, from the store (mtime 1).
    sc.fx.write("applib/src/lib.rs", &real_lib);
    sc.fx.write("app/src/main.rs", &real_main);
    sources_from_store(&sc.fx);
    assert_eq!(freshen(&sc, Some(&deps_out)), differing(&["app", "applib"]));
    let built = exec(&sc, &["build"]);
    assert_eq!(
        dirty_units(&built.stdout),
        ["app bin:app", "applib lib:applib"]
    );
    assert_eq!(app_prints(&sc), "hello from applib 84 42");
    // crane's buildPackage keeps cargo's messages in the source root (`mktemp
    // cargoBuildLogXXXX.json`), written to the end of the build: neither a source nor newer
    // than the sources.
    sc.fx.write("cargoBuildLogQ3x9.json", &built.stdout);
    // The units the dummy sources built and this derivation did not rebuild are left out.
    let fingerprints: Vec<PathBuf> = fs::read_dir(sc.target().join("debug/.fingerprint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let saved = sc.fx.scratch_dir("build-fingerprints");
    for f in &fingerprints {
        copy_dir(f, &saved.join(f.file_name().unwrap()));
    }
    let (build_out, report) = pack(&sc, "build");
    let left_out: Vec<&str> = report["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        left_out.len(),
        3,
        "app bin (test), app test:cli, applib lib (test): {report}"
    );
    for p in &left_out {
        let name = Path::new(p).file_name().unwrap().to_string_lossy();
        assert!(
            p.starts_with("target/debug/.fingerprint/")
                && (name.starts_with("app-") || name.starts_with("applib-")),
            "{p}"
        );
    }
    assert_eq!(report["digested"], 3, "{report}");

    // Negative control: had pack kept those fingerprints, the test derivation (same sources,
    // nothing touched) would call the dummy test units Fresh and run them.
    inherit(&sc, &build_out);
    for p in &left_out {
        let name = Path::new(p).file_name().unwrap();
        let dest = sc.target().join("debug/.fingerprint").join(name);
        copy_dir(&saved.join(name), &dest);
        set_mtimes(&dest, CANONICAL_MTIME);
    }
    freshen(&sc, Some(&build_out));
    let tested = exec(&sc, &["test", "--lib"]);
    let out = String::from_utf8_lossy(&tested.stdout);
    assert!(
        out.contains("dummy_test ... ok"),
        "control ran no stale test:\n{out}"
    );

    // test: same sources, so nothing is touched; the build's crates are reused.
    inherit(&sc, &build_out);
    assert_eq!(freshen(&sc, Some(&build_out)), differing(&[]));
    let built = exec(&sc, &["build"]);
    assert_eq!(
        dirty_units(&built.stdout),
        Vec::<String>::new(),
        "not reused"
    );
    let tested = exec(&sc, &["test"]);
    assert_eq!(
        dirty_units(&tested.stdout),
        [
            "app bin:app (test)",
            "app test:cli",
            "applib lib:applib (test)"
        ]
    );
    let out = String::from_utf8_lossy(&tested.stdout);
    assert!(
        out.contains("message_uses_every_dependency ... ok") && !out.contains("dummy"),
        "{out}"
    );

    // The reused binary is the one a clean build makes.
    let reused = fs::read(sc.target().join("debug/app")).unwrap();
    fs::rename(sc.target(), sc.fx.base().join("reused-target")).unwrap();
    sc.fx.cargo(["build"]);
    assert!(
        fs::read(sc.target().join("debug/app")).unwrap() == reused,
        "the reused app differs from a clean build's"
    );
}

/// Copies a directory of regular files (a unit's fingerprint).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The target inherited from `artifacts` was built from the sources before `change`. After it
/// (sources back at mtime 1, as from the store): a plain build ships the binary printing `old`
/// (the negative control); `freshen --inherited` decides `decided`, and the build through the
/// wrapper rebuilds applib and app, which then prints `new`.
fn change_is_rebuilt_never_masked(
    sc: &Scenario,
    artifacts: &Path,
    change: impl Fn(&Fixture),
    [old, new]: [&str; 2],
    decided: Decisions,
) {
    assert_eq!(app_prints(sc), old);
    change(&sc.fx);
    sources_from_store(&sc.fx);
    let run = sc.plain(["build"]).run();
    assert!(run.all_fresh(), "{run}");
    assert_eq!(app_prints(sc), old, "the control shipped no stale binary");

    sc.reinherit();
    assert_eq!(freshen(sc, Some(artifacts)), decided);
    let built = exec(sc, &["build"]);
    assert_eq!(
        dirty_units(&built.stdout),
        ["app bin:app", "applib lib:applib"]
    );
    assert_eq!(app_prints(sc), new);
}

/// An inherited target built from older sources: the changed package is freshened (and rebuilt
/// with everything above it), the unchanged ones are kept.
#[test]
fn a_changed_member_is_rebuilt_never_masked() {
    let sc = Scenario::new("ws-basic", "in-place");
    let artifacts = sc.inherited(&[&["build"]]);
    change_is_rebuilt_never_masked(
        &sc,
        &artifacts,
        |fx| set_greeting(fx, "\"hello from NEW applib\""),
        ["hello from applib 84 42", "hello from NEW applib 84 42"],
        differing(&["applib"]),
    );
}

/// A file outside every member (the virtual root's own) read by a member's unit: the root's
/// digest changes, its files are touched, and cargo rebuilds the unit that lists the file.
#[test]
fn a_changed_file_of_the_virtual_root_rebuilds_the_units_that_read_it() {
    let sc = Scenario::new("ws-basic", "in-place");
    sc.fx.write("greeting.txt", "hello from the root");
    set_greeting(&sc.fx, "include_str!(\"../../greeting.txt\")");
    let artifacts = sc.inherited(&[&["build"]]);
    change_is_rebuilt_never_masked(
        &sc,
        &artifacts,
        |fx| fx.write("greeting.txt", "hello from the CHANGED root"),
        [
            "hello from the root 84 42",
            "hello from the CHANGED root 84 42",
        ],
        differing(&["."]),
    );
}

/// Nothing to compare with: crane's formats, a pack that found no workspace, no artifacts named,
/// a package the digests do not know. Each next to its control: the same sources with digests
/// are kept.
#[test]
fn without_digests_every_package_is_freshened() {
    let sc = Scenario::new("ws-basic", "in-place");
    let with = sc.inherited(&[&["build"]]);
    let kept = differing(&[]);
    let all = |reason: &str| {
        expect(&[
            (".", "freshened", reason),
            ("app", "freshened", reason),
            ("applib", "freshened", reason),
        ])
    };
    assert_eq!(freshen(&sc, Some(&with)), kept);
    let sources = manifest_sources(&with);
    assert_eq!(sources["hash"], "blake3");
    let keys: Vec<&String> = sources["packages"].as_object().unwrap().keys().collect();
    assert_eq!(keys, [".", "app", "applib"]);

    // A pack run outside any workspace records no digests...
    let without = sc.store.path("no-digests");
    pack_from(&sc, sc.fx.base(), &without, &[]);
    assert!(manifest_sources(&without).is_null());
    assert_eq!(freshen(&sc, Some(&without)), all("no_digests"));
    // ...unless told where the workspace is.
    let pointed = sc.store.path("pointed");
    let manifest = sc.fx.path("Cargo.toml");
    pack_from(
        &sc,
        sc.fx.base(),
        &pointed,
        &["--manifest-path", manifest.to_str().unwrap()],
    );
    assert_eq!(manifest_sources(&pointed), sources);

    // crane's use-zstd output.
    let crane = sc.fx.scratch_dir("crane-out");
    let tar = format!(
        "tar --sort=name --mtime=@1 --owner=0 --group=0 -c target | zstd -q -o {}/target.tar.zst",
        crane.display()
    );
    let mut sh = Command::new("sh");
    sh.current_dir(sc.fx.root()).args(["-c", &tar]);
    run_ok(&mut sh);
    assert_eq!(freshen(&sc, Some(&crane)), all("no_digests"));
    assert_eq!(freshen(&sc, None), all("no_artifacts"));

    // A member the inherited digests do not name.
    sources_from_store(&sc.fx);
    sc.fx.write(
        "tool/Cargo.toml",
        "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    sc.fx.write("tool/src/main.rs", "fn main() {}\n");
    let root = sc.fx.read("Cargo.toml");
    sc.fx.write(
        "Cargo.toml",
        root.replace(
            "members = [\"app\", \"applib\"]",
            "members = [\"app\", \"applib\", \"tool\"]",
        ),
    );
    assert_eq!(
        freshen(&sc, Some(&with)),
        expect(&[
            (".", "freshened", "sources_differ"),
            ("app", "kept", "same_sources"),
            ("applib", "kept", "same_sources"),
            ("tool", "freshened", "not_inherited"),
        ])
    );
}

// ---- whatever the source is (issue 19) ------------------------------------------------------

/// A store path holding `applib/src/lib.rs` as it is now but for the greeting, made Nix-like
/// (mtime 1, read-only); returns the file.
fn lib_in_store(sc: &Scenario, greeting: &str) -> PathBuf {
    let dir = sc.store.path("applib-src");
    let lib = sc.fx.read("applib/src/lib.rs");
    let line = lib
        .lines()
        .find(|l| l.starts_with("pub const GREETING"))
        .unwrap();
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lib.rs");
    let text = lib.replace(line, &format!("pub const GREETING: &str = \"{greeting}\";"));
    fs::write(&file, text).unwrap();
    support::canonicalize(&dir);
    file
}

/// A source replaced by a symlink into the store (mtime 1, as a Nix source tree may hold):
/// freshen digests what the link leads to, and as it cannot give a store file a new mtime it
/// replaces the link by a copy, so cargo rebuilds. The store file is left as it was.
#[test]
fn a_source_linked_into_the_store_is_rebuilt_never_masked() {
    let sc = Scenario::new("ws-basic", "in-place");
    let artifacts = sc.inherited(&[&["build"]]);
    let linked = lib_in_store(&sc, "hello from the store");
    let lib = sc.fx.path("applib/src/lib.rs");
    change_is_rebuilt_never_masked(
        &sc,
        &artifacts,
        |fx| {
            let lib = fx.path("applib/src/lib.rs");
            fs::remove_file(&lib).unwrap();
            std::os::unix::fs::symlink(&linked, &lib).unwrap();
        },
        ["hello from applib 84 42", "hello from the store 84 42"],
        differing(&["applib"]),
    );
    let meta = fs::symlink_metadata(&lib).unwrap();
    assert!(meta.is_file(), "the link was not replaced by a copy");
    assert_eq!(fs::read(&lib).unwrap(), fs::read(&linked).unwrap());
    assert_eq!(
        mtime(&linked),
        CANONICAL_MTIME,
        "freshen wrote into the store"
    );

    // The copy digests as the link did: the next derivation, given the link again, keeps it.
    let (build_out, _) = pack(&sc, "build");
    inherit(&sc, &build_out);
    fs::remove_file(&lib).unwrap();
    std::os::unix::fs::symlink(&linked, &lib).unwrap();
    assert_eq!(freshen(&sc, Some(&build_out)), differing(&[]));
    assert!(
        fs::symlink_metadata(&lib).unwrap().is_symlink(),
        "kept means untouched"
    );
}

/// A module in a directory that holds a `CACHEDIR.TAG` (any tool may write one) is a source:
/// only a target or build dir cargo made is left out.
#[test]
fn a_module_beside_a_cachedir_tag_is_rebuilt_never_masked() {
    let sc = Scenario::new("ws-basic", "in-place");
    let lib = sc.fx.read("applib/src/lib.rs");
    sc.fx
        .write("applib/src/lib.rs", format!("{lib}\nmod cache;\n"));
    set_greeting(&sc.fx, "cache::GREETING");
    sc.fx.write(
        "applib/src/cache/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n# a cache directory tag\n",
    );
    let module = |greeting: &str| format!("pub const GREETING: &str = \"{greeting}\";\n");
    sc.fx
        .write("applib/src/cache/mod.rs", module("hello from the cache"));
    let artifacts = sc.inherited(&[&["build"]]);
    change_is_rebuilt_never_masked(
        &sc,
        &artifacts,
        |fx| {
            fx.write(
                "applib/src/cache/mod.rs",
                module("hello from the CHANGED cache"),
            )
        },
        [
            "hello from the cache 84 42",
            "hello from the CHANGED cache 84 42",
        ],
        differing(&["applib"]),
    );
}
