//! `cargo nixcache explain` against real cargo builds of the fixtures: each cause of a rebuild
//! provoked on purpose and named (the cause and its details asserted, not just "something was
//! dirty"), and an inherited target (pack -> read-only store -> unpack) where nothing is dirty.

mod support;

use std::fs;
use std::process::{Command, Output};

use serde_json::Value;
use support::layout::find_below;
use support::{cargo, nixcache_bin, output_of, Fixture, Store};

/// What one `explain` run printed.
struct Explained {
    out: Output,
    report: Value,
}

impl Explained {
    /// `unit: cause` for every row, in the report's order.
    fn rows(&self) -> Vec<String> {
        self.units()
            .iter()
            .map(|u| format!("{}: {}", s(&u["unit"]), s(&u["cause"])))
            .collect()
    }

    fn units(&self) -> &Vec<Value> {
        self.report["units"].as_array().expect("units is a list")
    }

    /// The row of `unit` (e.g. `applib lib:applib`); panics with the whole report if none.
    fn row(&self, unit: &str) -> &Value {
        self.units()
            .iter()
            .find(|u| u["unit"] == unit)
            .unwrap_or_else(|| panic!("no row for `{unit}`\n{self}"))
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\nrows: {:#?}\nreport: {:#}\n--- stderr\n{}",
            self.out.status,
            self.rows(),
            self.report,
            self.stderr()
        )
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// `cargo-nixcache` with the fixture's clean environment and `CARGO` set as cargo sets it for
/// `cargo nixcache ...`, optionally with every capability dropped.
fn nixcache_cmd(fx: &Fixture, unprivileged: bool) -> Command {
    let mut cmd = if unprivileged {
        support::unprivileged_command(nixcache_bin())
    } else {
        Command::new(nixcache_bin())
    };
    cmd.current_dir(fx.root());
    cargo::clean_env(&mut cmd, &fx.base().join("cargo-home"));
    cmd.env("CARGO", cargo::cargo_program());
    cmd
}

/// `cargo nixcache --json explain -- <cargo args> --offline --locked`, with `env` for cargo.
fn explain_cmd(
    fx: &Fixture,
    cargo_args: &[&str],
    env: &[(&str, &str)],
    unprivileged: bool,
) -> Explained {
    let mut cmd = nixcache_cmd(fx, unprivileged);
    cmd.args(["--json", "explain", "--"])
        .args(cargo_args)
        .args(["--offline", "--locked"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output_of(&mut cmd);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "explain printed no JSON report ({e}): {}\n--- stdout\n{}\n--- stderr\n{}",
            support::command_line(&cmd),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Explained { out, report }
}

fn explain(fx: &Fixture, cargo_args: &[&str], env: &[(&str, &str)]) -> Explained {
    let e = explain_cmd(fx, cargo_args, env, false);
    assert!(e.out.status.success(), "explain failed\n{e}");
    e
}

fn assert_all_fresh(e: &Explained) {
    assert_eq!(e.rows(), Vec::<String>::new(), "{e}");
    assert_eq!(e.report["not_fresh"], 0, "{e}");
}

#[test]
fn touched_source_names_the_file_and_both_mtimes() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    assert_all_fresh(&explain(&fx, &["build"], &[]));

    // A known mtime: now, after the build wrote its dep-info file.
    let touched = filetime::FileTime::now();
    let lib = fx.path("applib/src/lib.rs");
    filetime::set_file_mtime(&lib, touched).unwrap();
    let e = explain(&fx, &["build"], &[]);
    assert_eq!(
        e.rows(),
        [
            "applib lib:applib: file-changed",
            "app bin:app: dependency-rebuilt"
        ],
        "{e}"
    );
    let row = e.row("applib lib:applib");
    assert_eq!(s(&row["file"]), lib.to_str().unwrap(), "{e}");
    assert_eq!(row["mtime"]["seconds"], touched.unix_seconds(), "{e}");
    assert_eq!(row["mtime"]["nanos"], touched.nanoseconds(), "{e}");
    let reference = (
        row["reference_mtime"]["seconds"].as_i64().unwrap(),
        row["reference_mtime"]["nanos"].as_u64().unwrap() as u32,
    );
    assert!(
        reference < (touched.unix_seconds(), touched.nanoseconds())
            && reference.0 > touched.unix_seconds() - 600,
        "{e}"
    );
    assert!(s(&row["reference"]).contains("dep-lib-applib"), "{e}");
    assert_eq!(e.row("app bin:app")["change"], "stale", "{e}");
    assert_eq!(e.report["not_fresh"], 2, "{e}");

    // Negative control: another file touched is named instead, and applib stays out.
    let main = fx.path("app/src/main.rs");
    fx.touch("app/src/main.rs");
    let e = explain(&fx, &["build"], &[]);
    assert_eq!(e.rows(), ["app bin:app: file-changed"], "{e}");
    assert_eq!(s(&e.row("app bin:app")["file"]), main.to_str().unwrap());
}

#[test]
fn the_table_names_unit_cause_and_details() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    fx.touch("applib/src/lib.rs");
    let mut cmd = nixcache_cmd(&fx, false);
    cmd.args(["explain", "--", "build", "--offline", "--locked"]);
    let out = output_of(&mut cmd);
    support::assert_success(&cmd, &out);
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("UNIT") && lines[0].contains("CAUSE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("applib lib:applib")
            && lines[1].contains("file changed")
            && lines[1].contains("`applib/src/lib.rs` (mtime 20"),
        "{table}"
    );
    assert!(lines[2].starts_with("app bin:app") && lines[2].contains("dependency rebuilt"));
    // cargo's own output passes through; its log and JSON messages do not.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Compiling applib"), "{stderr}");
    assert!(stderr.contains("Explained 2 units not Fresh"), "{stderr}");
    assert!(
        !stderr.contains("cargo::core::compiler::fingerprint"),
        "{stderr}"
    );
    assert!(!table.contains("compiler-artifact"), "{table}");
}

#[test]
fn env_var_read_with_option_env_names_the_variable_and_both_values() {
    let fx = Fixture::copy("ws-basic");
    let lib = fx.read("applib/src/lib.rs").replace(
        "pub const GREETING: &str = \"hello from applib\";",
        "pub const GREETING: &str = match option_env!(\"NIXCACHE_EXPLAIN_GREETING\") {\n    \
         Some(g) => g,\n    None => \"hello from applib\",\n};",
    );
    assert!(lib.contains("option_env!"), "the fixture changed");
    fx.write("applib/src/lib.rs", lib);
    fx.cargo(["build"]);

    // Negative control: a variable the crate does not read changes nothing.
    assert_all_fresh(&explain(
        &fx,
        &["build"],
        &[("NIXCACHE_EXPLAIN_OTHER", "hi")],
    ));

    let e = explain(&fx, &["build"], &[("NIXCACHE_EXPLAIN_GREETING", "hi")]);
    let row = e.row("applib lib:applib");
    assert_eq!(row["cause"], "env-changed", "{e}");
    assert_eq!(row["name"], "NIXCACHE_EXPLAIN_GREETING", "{e}");
    assert_eq!(row["old"], Value::Null, "{e}");
    assert_eq!(row["new"], "hi", "{e}");
    assert_eq!(row["watched_by"], "compiler", "{e}");
    assert_eq!(e.row("app bin:app")["cause"], "dependency-rebuilt", "{e}");
}

#[test]
fn env_var_watched_by_a_build_script_names_the_variable_and_both_values() {
    let fx = Fixture::copy("ws-basic");
    fx.write(
        "applib/build.rs",
        "fn main() {\n    println!(\"cargo::rerun-if-env-changed=NIXCACHE_EXPLAIN_BUILD\");\n}\n",
    );
    fx.cargo(["build"]);
    let env = [("NIXCACHE_EXPLAIN_BUILD", "one")];
    fx.cargo_cmd(["build"]).env(env[0].0, env[0].1).run();
    assert_all_fresh(&explain(&fx, &["build"], &env));

    let e = explain(&fx, &["build"], &[("NIXCACHE_EXPLAIN_BUILD", "two")]);
    let row = e.row("applib custom-build:build-script-build (run)");
    assert_eq!(row["cause"], "env-changed", "{e}");
    assert_eq!(row["name"], "NIXCACHE_EXPLAIN_BUILD", "{e}");
    assert_eq!(row["old"], "one", "{e}");
    assert_eq!(row["new"], "two", "{e}");
    assert_eq!(row["watched_by"], "build-script", "{e}");
    // The lib and the bin follow their build script.
    let lib = e.row("applib lib:applib");
    assert_eq!(lib["cause"], "dependency-rebuilt", "{e}");
    assert_eq!(lib["change"], "fingerprint-changed", "{e}");
}

#[test]
fn rustflags_change_makes_new_units_and_names_the_flags() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    let e = explain(&fx, &["build"], &[("RUSTFLAGS", "--cfg nixcache_explain")]);
    // Every unit is new (cargo folds RUSTFLAGS into the unit hash), and each says why.
    assert!(e.units().len() >= 7, "{e}");
    for unit in e.units() {
        assert_eq!(unit["cause"], "new-unit", "{e}");
        let first = &unit["nearest"]["differences"][0];
        assert_eq!(first["field"], "rustflags", "{}: {e}", unit["unit"]);
        assert_eq!(first["old"], serde_json::json!([]), "{e}");
        assert_eq!(
            first["new"],
            serde_json::json!(["--cfg", "nixcache_explain"])
        );
    }
    // Negative control: back to the old flags, the old units are still there and Fresh.
    assert_all_fresh(&explain(&fx, &["build"], &[]));
}

/// With `--remap-path-prefix` cargo leaves RUSTFLAGS out of the unit hash (for reproducible
/// builds, as Nix builds use it), so the same unit is dirty and cargo itself names the flags.
#[test]
fn rustflags_change_with_remap_path_prefix_names_both_flag_lists() {
    let fx = Fixture::copy("ws-basic");
    let remap = "--remap-path-prefix=/nowhere=/else";
    fx.cargo_cmd(["build"]).env("RUSTFLAGS", remap).run();
    let with = format!("{remap} --cfg nixcache_explain");
    let e = explain(&fx, &["build"], &[("RUSTFLAGS", &with)]);
    let row = e.row("applib lib:applib");
    assert_eq!(row["cause"], "rustflags-changed", "{e}");
    assert_eq!(row["old"], serde_json::json!([remap]), "{e}");
    assert_eq!(
        row["new"],
        serde_json::json!([remap, "--cfg", "nixcache_explain"]),
        "{e}"
    );
    // Negative control: the same flags again change nothing.
    assert_all_fresh(&explain(&fx, &["build"], &[("RUSTFLAGS", &with)]));
}

#[test]
fn profile_change_is_named() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    // The profile is part of the unit hash: new units, the profile their first difference.
    let e = explain(&fx, &["build"], &[("CARGO_PROFILE_DEV_OPT_LEVEL", "1")]);
    let row = e.row("applib lib:applib");
    assert_eq!(row["cause"], "new-unit", "{e}");
    assert_eq!(row["nearest"]["differences"][0]["field"], "profile", "{e}");

    // A package's [lints] count as profile settings without changing the unit hash: cargo
    // itself says the profile changed.
    let manifest = fx.read("applib/Cargo.toml") + "\n[lints.rust]\nunused_variables = \"allow\"\n";
    fx.write("applib/Cargo.toml", manifest);
    let e = explain(&fx, &["build"], &[]);
    assert_eq!(
        e.row("applib lib:applib")["cause"],
        "profile-changed",
        "{e}"
    );
    // Negative control: only applib has the table; its registry dependencies stay Fresh.
    assert!(
        e.units()
            .iter()
            .all(|u| u["package"] == "applib" || u["package"] == "app"),
        "{e}"
    );
}

#[test]
fn feature_change_names_both_feature_lists() {
    let fx = Fixture::copy("ws-basic");
    let manifest = fx.read("applib/Cargo.toml") + "\n[features]\nextra = []\n";
    fx.write("applib/Cargo.toml", manifest);
    fx.cargo(["build"]);
    let e = explain(&fx, &["build", "--features", "applib/extra"], &[]);
    let row = e.row("applib lib:applib");
    assert_eq!(row["cause"], "new-unit", "{e}");
    let first = &row["nearest"]["differences"][0];
    assert_eq!(first["field"], "features", "{e}");
    assert_eq!(first["old"], "[]", "{e}");
    assert_eq!(first["new"], "[\"extra\"]", "{e}");
    // The bin only follows: a consequence, listed after the cause.
    let rows = e.rows();
    assert_eq!(
        rows.last().map(String::as_str),
        Some("app bin:app: new-unit"),
        "{e}"
    );
    let app = e.row("app bin:app");
    assert_eq!(app["nearest"]["differences"][0]["field"], "deps", "{e}");
    // Negative control: registry crates do not see the feature.
    assert!(e.units().iter().all(|u| u["package"] != "nc-beta"), "{e}");
}

/// The vendored sources moved (crane vendors into a store path that differs between
/// derivations): cargo passes rustc the absolute path of a registry crate's root, so every
/// registry unit is dirty.
#[test]
fn moved_vendor_dir_is_a_source_path_change() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    Store::new(&fx).vendor(&fx);
    let e = explain(&fx, &["build"], &[]);
    for unit in [
        "nc-alpha lib:nc_alpha",
        "nc-beta lib:nc_beta",
        "nc-macro proc-macro:nc_macro",
    ] {
        assert_eq!(e.row(unit)["cause"], "source-path-changed", "{e}");
    }
    // Negative control: the workspace's own crates (paths relative to the workspace) only
    // follow their dependencies.
    for unit in ["applib lib:applib", "app bin:app"] {
        assert_eq!(e.row(unit)["cause"], "dependency-rebuilt", "{e}");
    }
}

#[test]
fn deleted_output_is_named() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    let rlib = find_below(&fx.path("target"), "libapplib-", ".rlib");
    fs::remove_file(&rlib).unwrap();
    let e = explain(&fx, &["build"], &[]);
    let row = e.row("applib lib:applib");
    assert_eq!(row["cause"], "output-missing", "{e}");
    assert_eq!(s(&row["file"]), rlib.to_str().unwrap(), "{e}");
    assert_eq!(e.rows()[0], "applib lib:applib: output-missing", "{e}");
    // Negative control: rebuilt, nothing is missing any more.
    assert_all_fresh(&explain(&fx, &["build"], &[]));
}

#[test]
fn rerun_if_changed_on_a_missing_file_is_named_on_every_build() {
    let fx = Fixture::copy("ws-rerun");
    fx.cargo(["build"]);
    for _ in 0..2 {
        let e = explain(&fx, &["build"], &[]);
        let row = e.row("nc-rerun custom-build:build-script-build (run)");
        assert_eq!(row["cause"], "file-missing", "{e}");
        assert!(
            s(&row["file"]).ends_with("vendor/nc-rerun/does-not-exist"),
            "{e}"
        );
        // Root cause first; everything above it follows.
        assert_eq!(
            e.rows()[0],
            "nc-rerun custom-build:build-script-build (run): file-missing",
            "{e}"
        );
        for unit in ["nc-rerun lib:nc_rerun", "applib lib:applib", "app bin:app"] {
            assert_eq!(e.row(unit)["cause"], "dependency-rebuilt", "{e}");
        }
        // Negative control: nc-rerun's neighbours without the script stay Fresh.
        assert!(e.units().iter().all(|u| u["package"] != "nc-beta"), "{e}");
    }
}

/// pack -> read-only store -> unpack, as in a Nix build that inherits its dependencies: explain
/// reports every unit Fresh. Then the inherited fingerprints made older than the sources (as
/// when unpack loses their mtimes): explain names the workspace sources.
#[test]
fn inherited_build_is_all_fresh_and_explain_says_so() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let out = store.path("deps");
    let target = fx.path("target");
    fx.nixcache_ok([
        &store.arg(),
        "pack",
        "--target-dir",
        target.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    support::make_read_only(&out);
    fs::remove_dir_all(&target).unwrap();
    fx.nixcache_ok([
        &store.arg(),
        "unpack",
        out.to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
    ]);

    let e = explain_cmd(&fx, &["build"], &[], true);
    assert!(e.out.status.success(), "{e}");
    assert_all_fresh(&e);
    assert_eq!(e.report["fresh"], 6, "{e}");
    let mut cmd = nixcache_cmd(&fx, true);
    cmd.args(["explain", "--", "build", "--offline", "--locked"]);
    let table = output_of(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&table.stdout),
        "All 6 units Fresh: nothing was rebuilt.\n"
    );

    // Negative control: the inherited fingerprints older than the sources.
    for file in support::layout::fingerprint_files(&target) {
        filetime::set_file_mtime(file, filetime::FileTime::from_unix_time(1, 0)).unwrap();
    }
    let e = explain_cmd(&fx, &["build"], &[], true);
    // The rebuild itself fails on the read-only store (the rustc wrapper's business); explain
    // still reports, and exits as cargo did.
    assert_eq!(e.out.status.code(), Some(101), "{e}");
    assert!(e.stderr().contains("not writeable"), "{e}");
    // cargo checks dependencies first: the first stale file it meets is the code nc-alpha's
    // build script generated into its OUT_DIR, newer than the fingerprint's mtime 1; every
    // unit above follows.
    assert_eq!(e.rows()[0], "nc-alpha lib:nc_alpha: file-changed", "{e}");
    let row = e.row("nc-alpha lib:nc_alpha");
    assert!(s(&row["file"]).ends_with("out/generated.rs"), "{e}");
    assert!(s(&row["reference"]).ends_with("dep-lib-nc_alpha"), "{e}");
    assert_eq!(row["reference_mtime"]["seconds"], 1, "{e}");
    assert_eq!(
        e.row("applib lib:applib")["cause"],
        "dependency-rebuilt",
        "{e}"
    );
}

/// A saved log (stderr and stdout in one file, as `>build.log 2>&1` makes it) gives the same
/// answer as a run.
#[test]
fn a_saved_log_is_read() {
    let fx = Fixture::copy("ws-basic");
    fx.cargo(["build"]);
    fx.touch("applib/src/lib.rs");
    let log = fx.base().join("build.log");
    save_log(&fx, &log, &["build", "--message-format", "json"], true);
    let mut cmd = nixcache_cmd(&fx, false);
    cmd.args(["--json", "explain", "--log"]).arg(&log);
    let out = output_of(&mut cmd);
    support::assert_success(&cmd, &out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = Explained { out, report };
    assert_eq!(
        e.rows(),
        [
            "applib lib:applib: file-changed",
            "app bin:app: dependency-rebuilt"
        ],
        "{e}"
    );
    assert_eq!(e.report["fresh"], 4, "{e}");

    // Negative control: the same build's log without CARGO_LOG explains nothing, and says why.
    fx.touch("applib/src/lib.rs");
    save_log(&fx, &log, &["build", "--message-format", "human"], false);
    let mut cmd = nixcache_cmd(&fx, false);
    cmd.args(["explain", "--log"]).arg(&log);
    let out = output_of(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No unit was dirty in cargo's log.\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run it with CARGO_LOG=cargo::core::compiler::fingerprint=info"),
        "{stderr}"
    );
}

/// Runs cargo (with the fingerprint log when `logged`) and saves its stderr, then its stdout.
fn save_log(fx: &Fixture, log: &std::path::Path, args: &[&str], logged: bool) {
    let mut builder = fx.cargo_cmd(args);
    if logged {
        builder = builder.env("CARGO_LOG", nixcache::explain::LOG_FILTER);
    }
    let mut cmd = builder.command();
    let out = output_of(&mut cmd);
    support::assert_success(&cmd, &out);
    fs::write(log, [out.stderr, out.stdout].concat()).unwrap();
}

#[test]
fn a_missing_log_is_an_error_naming_it() {
    let fx = Fixture::copy("ws-basic");
    let missing = fx.base().join("no-such.log");
    let mut cmd = nixcache_cmd(&fx, false);
    cmd.args(["explain", "--log"]).arg(&missing);
    let out = output_of(&mut cmd);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "failed to read the cargo log `{}`",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// cargo stops before building (a bad argument): its error and exit code pass through, and
/// explain adds no report.
#[test]
fn cargo_failing_early_passes_its_error_through() {
    let fx = Fixture::copy("ws-basic");
    let mut cmd = nixcache_cmd(&fx, false);
    cmd.args(["explain", "--", "build", "--no-such-flag"]);
    let out = output_of(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert!(!stderr.contains("Explained"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
