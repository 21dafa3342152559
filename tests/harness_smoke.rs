//! Proves the test harness (`tests/support`) and the fixtures (`tests/fixtures`) behave as the
//! real integration tests assume: offline locked builds of registry-like dependencies, Fresh
//! rebuilds, mtime-driven path packages, version-driven registry packages, and read-only files
//! that stay read-only for root once capabilities are dropped.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{
    has_capabilities, make_read_only, make_writable, unprivileged_command, Compare, Fixture,
    NodeKind, TreeSnapshot,
};

/// Every unit of `cargo build` in ws-basic.
const WS_BASIC_BUILD_UNITS: &[&str] = &[
    "app bin:app",
    "applib lib:applib",
    "nc-alpha custom-build:build-script-build",
    "nc-alpha lib:nc_alpha",
    "nc-beta lib:nc_beta",
    "nc-macro proc-macro:nc_macro",
];

fn run_stdout(program: &Path) -> String {
    let out = Command::new(program)
        .output()
        .unwrap_or_else(|e| panic!("run `{}`: {e}", program.display()));
    assert!(
        out.status.success(),
        "`{}` failed: {out:?}",
        program.display()
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn ws_basic_builds_offline_then_rebuilds_fresh() {
    let fx = Fixture::copy("ws-basic");

    let first = fx.cargo(["build"]);
    assert_eq!(first.dirty_units(), WS_BASIC_BUILD_UNITS, "\n{first}");
    // The vendored crates are registry packages to cargo; the workspace members are path ones.
    for artifact in &first.artifacts {
        let registry = artifact.package.starts_with("nc-");
        let expected = if registry { "registry+" } else { "path+" };
        assert!(artifact.package_id.starts_with(expected), "{artifact:?}");
    }
    let app = first.bin("app");
    assert_eq!(app, fx.path("target/debug/app"));
    assert_eq!(run_stdout(&app), "hello from applib 84 42\n");

    let before = fx.snapshot("target");
    let second = fx.cargo(["build"]);
    assert!(second.all_fresh(), "\n{second}");
    assert_eq!(second.fresh_units(), WS_BASIC_BUILD_UNITS);
    // A no-op build leaves target/ alone, except that cargo may rewrite the uplifted dep-info
    // file `debug/app.d` with identical contents (about half the time; see tests/fixtures/README).
    let after = fx.snapshot("target");
    let changed = before.changed_paths(&after, Compare::ALL);
    assert!(
        changed.iter().all(|p| p == Path::new("debug/app.d")),
        "{:#?}",
        before.diff(&after)
    );
    assert!(before.diff_with(&after, Compare::CONTENTS).is_empty());

    // `cargo test --no-run` adds the test-harness units, then is Fresh too.
    let tests = fx.cargo(["test", "--no-run"]);
    assert_eq!(
        tests.dirty_units(),
        [
            "app bin:app (test)",
            "app test:cli",
            "applib lib:applib (test)"
        ],
        "\n{tests}"
    );
    let tests_again = fx.cargo(["test", "--no-run"]);
    assert!(tests_again.all_fresh(), "\n{tests_again}");
}

#[test]
fn path_package_is_dirty_after_touch_and_binary_follows_its_source() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);

    fx.touch("applib/src/lib.rs");
    let touched = fx.cargo(["build"]);
    assert_eq!(touched.dirty_packages(), ["app", "applib"], "\n{touched}");
    assert_eq!(touched.dirty_units(), ["app bin:app", "applib lib:applib"]);

    let source = fx.read("applib/src/lib.rs");
    fx.write(
        "applib/src/lib.rs",
        source.replace("\"hello from applib\"", "\"changed greeting\""),
    );
    let rebuilt = fx.cargo(["build"]);
    assert_eq!(rebuilt.dirty_packages(), ["app", "applib"], "\n{rebuilt}");
    assert_eq!(run_stdout(&rebuilt.bin("app")), "changed greeting 84 42\n");
}

#[test]
fn registry_package_stays_fresh_after_touch_unless_a_build_script_watches_the_file() {
    // The difference the project is about: cargo fingerprints registry packages by version, so
    // new mtimes on their sources (as after unpacking) do not make them dirty. The previous test
    // is the control: the same touch on a path package does.
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    for file in [
        "nc-alpha/src/lib.rs",
        "nc-beta/src/lib.rs",
        "nc-beta/Cargo.toml",
        "nc-macro/src/lib.rs",
    ] {
        fx.touch(Path::new("../vendor").join(file));
    }
    let run = fx.cargo(["build"]);
    assert!(run.all_fresh(), "\n{run}");

    // But `cargo:rerun-if-changed` is mtime-based for registry packages too: nc-alpha's script
    // watches build.rs, so it reruns, and everything above its lib recompiles. The script's own
    // compile unit stays Fresh; the rerun shows only through its dependents.
    fx.touch("../vendor/nc-alpha/build.rs");
    let rerun = fx.cargo(["build"]);
    assert_eq!(
        rerun.dirty_units(),
        [
            "app bin:app",
            "applib lib:applib",
            "nc-alpha lib:nc_alpha",
            "nc-beta lib:nc_beta"
        ],
        "\n{rerun}"
    );
}

#[test]
fn ws_rerun_reruns_its_build_script_on_every_build() {
    let fx = Fixture::copy("ws-rerun");
    let first = fx.cargo(["build"]);
    assert_eq!(run_stdout(&first.bin("app")), "hello from applib 84 42 7\n");

    let second = fx.cargo(["build"]);
    assert_eq!(
        second.dirty_units(),
        ["app bin:app", "applib lib:applib", "nc-rerun lib:nc_rerun"],
        "\n{second}"
    );
    assert!(second
        .fresh_units()
        .contains(&"nc-beta lib:nc_beta".to_string()));
}

/// Writes `text` into `path` with `sh`, through `cmd` (privileged or not); returns success.
fn shell_write(mut cmd: Command, path: &Path) -> bool {
    let script = format!("echo x >> '{}'", path.display());
    let out = cmd.args(["-c", &script]).output().expect("run sh");
    out.status.success()
}

#[test]
fn dropped_capabilities_cannot_write_read_only_files() {
    let fx = Fixture::copy("ws-basic");
    let dir = fx.scratch_dir("ro");
    let file = dir.join("file");
    fs::write(&file, "x\n").unwrap();
    make_read_only(&dir);
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o444
    );

    assert!(
        !shell_write(unprivileged_command("sh"), &file),
        "wrote a 0444 file"
    );
    assert!(
        !shell_write(unprivileged_command("sh"), &dir.join("new")),
        "created in a 0555 dir"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "x\n");

    if has_capabilities() {
        // Negative control: the same writes with capabilities succeed, so the failures above come
        // from dropping them, not from a broken command.
        assert!(shell_write(Command::new("sh"), &file));
        assert!(shell_write(Command::new("sh"), &dir.join("new")));
        assert_eq!(fs::read_to_string(&file).unwrap(), "x\nx\n");
    } else {
        eprintln!("no capabilities to drop: skipping the privileged negative control");
    }
    make_writable(&dir);
    fs::write(dir.join("new"), "writable again").unwrap();
}

/// `chmod a-w` on every directory below and including `dir`, leaving files alone.
fn make_dirs_read_only(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_dir() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o555)).unwrap();
        }
    }
}

#[test]
fn unprivileged_cargo_cannot_rebuild_into_read_only_dirs() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    // Files keep their write bits (rustc checks those itself; see the next test), so only the
    // directories' modes stand between cargo and a rebuild.
    make_dirs_read_only(&fx.path("target"));
    fx.touch("applib/src/lib.rs");

    let failed = fx.cargo_cmd(["build"]).unprivileged().run_failing();
    assert!(failed.stderr.contains("Permission denied"), "\n{failed}");

    if has_capabilities() {
        // Negative control: with capabilities, root writes into the read-only directories.
        let run = fx.cargo(["build"]);
        assert_eq!(run.dirty_packages(), ["app", "applib"], "\n{run}");
    } else {
        eprintln!("no capabilities to drop: skipping the privileged negative control");
    }
}

#[test]
fn rustc_refuses_read_only_outputs_even_with_capabilities() {
    // rustc checks an existing output's mode bits before writing and refuses a read-only one
    // (following symlinks), whoever runs it: a dirty unit cannot simply recompile over outputs
    // that are read-only files or symlinks into the store.
    if !has_capabilities() {
        // Without them cargo already fails writing the fingerprint, before rustc runs.
        eprintln!("no capabilities: this test is about what happens despite them; skipping");
        return;
    }
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    make_read_only(fx.path("target"));
    // Cargo opens its lock read-write even on a no-op build; leave only that writable.
    make_writable(fx.path("target/debug/.cargo-lock"));
    fx.touch("applib/src/lib.rs");

    let failed = fx.cargo_cmd(["build"]).run_failing();
    assert!(
        failed.stderr.contains("libapplib-") && failed.stderr.contains("is not writeable"),
        "\n{failed}"
    );
}

#[test]
fn cargo_command_adds_flags_after_the_subcommand_and_cleans_the_environment() {
    let fx = Fixture::copy("ws-basic");
    let cmd = fx
        .cargo_cmd(["test", "--no-run", "--", "--nocapture"])
        .env("RUSTC_WRAPPER", "/nonexistent")
        .command();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "test",
            "--offline",
            "--locked",
            "--message-format=json-render-diagnostics",
            "--no-run",
            "--",
            "--nocapture"
        ]
    );
    let env: Vec<_> = cmd.get_envs().collect();
    let set = |key: &str| env.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
    assert_eq!(set("CARGO_INCREMENTAL"), Some(Some("0".as_ref())));
    assert_eq!(
        set("CARGO_HOME"),
        Some(Some(fx.base().join("cargo-home").as_os_str()))
    );
    assert_eq!(set("RUSTC_WRAPPER"), Some(Some("/nonexistent".as_ref())));
    // Whatever the outer `cargo test` (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...) or the caller's
    // shell set must not reach the fixture's cargo.
    for (key, _) in std::env::vars_os() {
        let key = key.to_str().unwrap_or_default();
        let replaced = [
            "CARGO_HOME",
            "CARGO_INCREMENTAL",
            "CARGO_TERM_COLOR",
            "RUSTC_WRAPPER",
        ];
        if support::cargo::is_leaky(key) && !replaced.contains(&key) {
            assert_eq!(set(key), Some(None), "{key}");
        }
    }

    let metadata = fx.cargo_cmd(["metadata", "--format-version=1"]).command();
    let args: Vec<_> = metadata.get_args().map(|a| a.to_str().unwrap()).collect();
    assert_eq!(
        args,
        ["metadata", "--offline", "--locked", "--format-version=1"]
    );

    for (key, leaky) in [
        ("CARGO_TARGET_DIR", true),
        ("CARGO_BUILD_RUSTFLAGS", true),
        ("CARGO_ENCODED_RUSTFLAGS", true),
        ("CARGO_MAKEFLAGS", true),
        ("CARGO_PRIMARY_PACKAGE", true),
        ("CARGO", true),
        ("__CARGO_FIX_PLZ", true),
        ("RUSTC_WRAPPER", true),
        ("RUSTFLAGS", true),
        ("MAKEFLAGS", true),
        ("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", false),
        ("RUSTUP_TOOLCHAIN", false),
        ("RUSTC", false),
        ("PATH", false),
    ] {
        assert_eq!(support::cargo::is_leaky(key), leaky, "{key}");
    }
}

/// The test matrix's cargo and layout (`tests/cargo-matrix.sh`) are what the tests really run:
/// the fixture's cargo and the `cargo` on the PATH cargo-nixcache sees are the one named, and
/// the tree has the layout asked for (a cargo that ignored `-Zbuild-dir-new-layout`, or a typo,
/// would otherwise silently test the defaults again).
#[test]
fn matrix_cargo_and_layout_take_effect() {
    use support::cargo::{cargo_program, layout_v2, ENV_TEST_CARGO};
    let fx = Fixture::copy("ws-basic");
    let version = |mut cmd: Command| {
        let out = support::output_of(cmd.arg("--version"));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let fixture_cargo = version(fx.command(cargo_program()));
    let cargo_on_path = version(fx.command("cargo"));
    if let Some(want) = std::env::var_os(ENV_TEST_CARGO) {
        assert_eq!(fixture_cargo, version(Command::new(&want)));
        assert_eq!(cargo_on_path, fixture_cargo, "PATH finds another cargo");
    }
    eprintln!("cargo under test: {}", fixture_cargo.trim());
    fx.cargo(["build"]);
    let debug = fx.path("target/debug");
    let v2_unit = debug.join("build/applib");
    assert_eq!(
        (v2_unit.is_dir(), debug.join("deps").is_dir()),
        (layout_v2(), !layout_v2()),
        "the tree does not have the layout asked for: {:?}",
        fx.snapshot("target/debug")
            .nodes()
            .keys()
            .take(40)
            .collect::<Vec<_>>()
    );
}

#[test]
fn package_names_from_package_ids() {
    for (id, name) in [
        (
            "registry+https://github.com/rust-lang/crates.io-index#nc-alpha@0.1.0",
            "nc-alpha",
        ),
        ("path+file:///tmp/x/ws-basic/applib#0.1.0", "applib"),
        ("path+file:///tmp/x/ws-basic/weird-dir#app@0.1.0", "app"),
        (
            "git+https://example.invalid/r?branch=main#nc-beta@0.1.0",
            "nc-beta",
        ),
    ] {
        assert_eq!(support::cargo::package_name(id), name, "{id}");
    }
}

#[test]
fn tree_snapshot_reports_each_kind_of_change() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/f"), "one").unwrap();
    fs::write(root.join("gone"), "").unwrap();
    std::os::unix::fs::symlink("/nix/store/x-a", root.join("l")).unwrap();
    let t = filetime::FileTime::from_unix_time(1_000, 5);
    filetime::set_file_mtime(root.join("d/f"), t).unwrap();
    filetime::set_file_mtime(root.join("d"), t).unwrap();
    let before = TreeSnapshot::capture(root);

    assert_eq!(before.len(), 4);
    let f = before.get("d/f").unwrap();
    assert_eq!(
        (f.kind, f.len, f.mtime.unwrap().to_string()),
        (NodeKind::File, 3, "1000.000000005".into())
    );
    assert_eq!(
        before.get("l").unwrap().link,
        Some(PathBuf::from("/nix/store/x-a"))
    );
    assert_eq!(before.get("l").unwrap().mtime, None);
    assert!(before.diff(&TreeSnapshot::capture(root)).is_empty());

    fs::write(root.join("d/f"), "two!").unwrap();
    filetime::set_file_mtime(
        root.join("d/f"),
        filetime::FileTime::from_unix_time(2_000, 0),
    )
    .unwrap();
    fs::set_permissions(root.join("d/f"), fs::Permissions::from_mode(0o444)).unwrap();
    fs::remove_file(root.join("gone")).unwrap();
    fs::remove_file(root.join("l")).unwrap();
    std::os::unix::fs::symlink("/nix/store/y-b", root.join("l")).unwrap();
    fs::write(root.join("d/new"), "").unwrap();
    filetime::set_file_mtime(root.join("d"), t).unwrap(); // only the file changes below
    let after = TreeSnapshot::capture(root);

    let f_hash = |s: &TreeSnapshot| s.get("d/f").unwrap().hash;
    assert_eq!(
        before.diff(&after),
        [
            format!(
                "changed d/f: contents (3 bytes, {:016x}) -> (4 bytes, {:016x}), mode 644 -> 444, \
                 mtime 1000.000000005 -> 2000.000000000",
                f_hash(&before),
                f_hash(&after)
            ),
            "added d/new (file)".to_string(),
            "removed gone (file)".to_string(),
            "changed l: link /nix/store/x-a -> /nix/store/y-b".to_string(),
        ]
    );
    filetime::set_file_mtime(root.join("d"), filetime::FileTime::from_unix_time(3_000, 0)).unwrap();
    let touched = TreeSnapshot::capture(root);
    assert_eq!(
        after.diff(&touched),
        ["changed d: mtime 1000.000000005 -> 3000.000000000"]
    );
    assert!(after
        .diff_with(&touched, Compare::IGNORE_DIR_MTIMES)
        .is_empty());
    assert_eq!(support::snapshot::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(support::snapshot::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn nixcache_runner_finds_the_binary() {
    let fx = Fixture::copy("ws-basic");
    assert!(support::nixcache_bin().is_file());
    let out = fx.nixcache(["--version"]);
    assert!(out.status.code().is_some(), "{out:?}");
}
