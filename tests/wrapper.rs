//! Real cargo builds in the inherited state a Nix build starts from: the deps derivation's target
//! dir went through the real `cargo nixcache pack`, a Nix-like store path (mtime 1, read-only)
//! and `cargo nixcache unpack`; cargo runs without capabilities (see `support::scenario`). Every
//! scenario first shows that the build FAILS without the wrapper (the negative control), then
//! passes behind it, for both strategies.

mod support;

use std::path::Path;
use std::process::Command;
use support::layout::{self, build_script, find_below};
use support::scenario::*;
use support::{caps, CargoCommand, Compare};

/// One `#[test]` per strategy for a scenario `fn(&'static str)`.
macro_rules! both_strategies {
    ($($name:ident),* $(,)?) => {
        mod in_place { $( #[test] fn $name() { super::$name("in-place") } )* }
        mod redirect { $( #[test] fn $name() { super::$name("redirect") } )* }
    };
}

both_strategies!(
    s1_rerun_if_changed_missing_file_in_inherited_dep,
    s2_touched_workspace_lib_same_filename_hash,
    s3_build_script_rebuilt_and_rerun_writes_out_dir,
    s4_explicit_host_target,
    s5_cross_compile_aarch64,
    s6_user_wrapper_runs_once_and_its_status_passes_through,
    s7_pipelining_preserved_with_slow_user_wrapper,
    s8_check_test_clippy_doc_after_unpack,
    s9_rebuild_is_byte_identical_and_names_no_temp_dir,
    s10_sccache_chained_behind_the_wrapper_gets_cache_hits,
    argfile_compile_is_rebuilt,
);

fn s1_rerun_if_changed_missing_file_in_inherited_dep(strategy: &'static str) {
    let sc = Scenario::new("ws-rerun", strategy);
    sc.inherited(&[&["build"]]);
    let debug = sc.target().join("debug");
    let rerun = find_below(&debug, "libnc_rerun-", ".rlib");
    let beta = find_below(&debug, "libnc_beta-", ".rlib");
    assert!(is_symlink(&rerun) && is_symlink(&beta));
    // nc-rerun's build script watches a file that never exists: cargo reruns it, so the registry
    // lib nc-rerun and everything above it recompile over their links.
    sc.negative_control(sc.plain(["build"]));
    let run = sc.wrapped(["build"]).run();
    assert_eq!(
        run.dirty_units(),
        ["app bin:app", "applib lib:applib", "nc-rerun lib:nc_rerun"],
        "\n{run}"
    );
    assert!(!is_symlink(&rerun), "rebuilt in place of the link");
    assert!(is_symlink(&beta), "another unit's link was touched");
    assert_eq!(sc.run_bin("debug/app"), "hello from applib 84 42 7\n");
    sc.assert_clean();
}

/// The documented flow: unpack, `cargo nixcache freshen`, `cargo nixcache exec -- cargo build`.
fn s2_touched_workspace_lib_same_filename_hash(strategy: &'static str) {
    let sc = Scenario::new("ws-basic", strategy);
    sc.inherited(&[&["build"]]);
    let debug = sc.target().join("debug");
    let rlib = find_below(&debug, "libapplib-", ".rlib");
    assert!(is_symlink(&rlib));
    // Control: untouched, the inherited tree is all Fresh (canonical mtimes everywhere), so the
    // rebuild below is the touch's doing.
    let run = sc.plain(["build"]).run();
    assert!(run.all_fresh(), "\n{run}");
    // freshen gives every file of the local packages (applib, app) a new mtime.
    sc.nixcache(&["freshen".as_ref()]);
    sc.negative_control(sc.plain(["build"]));
    let out = run_ok(&mut sc.exec(sc.fx.cargo_cmd(["build"])));
    assert_eq!(
        dirty_units(&out.stdout),
        ["app bin:app", "applib lib:applib"]
    );
    assert_eq!(
        find_below(&debug, "libapplib-", ".rlib"),
        rlib,
        "same filename hash"
    );
    assert!(!is_symlink(&rlib), "rebuilt in place of the link");
    // A second build is all Fresh: cargo trusts what the wrapped rebuild left behind.
    let run = sc.wrapped(["build"]).run();
    assert!(run.all_fresh(), "\n{run}");
    sc.assert_clean();
}

/// applib gets a build script (a host unit of a path package, so touching `build.rs`
/// recompiles it) that writes `GREETING` from `greeting.txt` into `$OUT_DIR`.
fn with_greeting_build_script(sc: &Scenario) {
    sc.fx.write(
        "applib/build.rs",
        "fn main() {\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    \
         println!(\"cargo:rerun-if-changed=greeting.txt\");\n    \
         let text = std::fs::read_to_string(\"greeting.txt\").unwrap();\n    \
         let out = std::path::Path::new(&std::env::var(\"OUT_DIR\").unwrap()).join(\"greeting.rs\");\n    \
         std::fs::write(out, format!(\"pub const GREETING: &str = {:?};\", text.trim())).unwrap();\n}\n",
    );
    sc.fx.write("applib/greeting.txt", "hello from applib\n");
    let lib = sc.fx.read("applib/src/lib.rs");
    let from =
        "/// Tests rewrite this string and check that the rebuilt `app` prints the new one.\n\
                pub const GREETING: &str = \"hello from applib\";";
    assert!(lib.contains(from), "applib's GREETING moved:\n{lib}");
    sc.fx.write(
        "applib/src/lib.rs",
        lib.replace(
            from,
            "include!(concat!(env!(\"OUT_DIR\"), \"/greeting.rs\"));",
        ),
    );
}

fn s3_build_script_rebuilt_and_rerun_writes_out_dir(strategy: &'static str) {
    let sc = Scenario::new("ws-basic", strategy);
    with_greeting_build_script(&sc);
    sc.inherited(&[&["build"]]);
    let script = build_script(&sc.target().join("debug"), "applib");
    assert!(is_symlink(&script));
    sc.fx.touch("applib/build.rs");
    sc.fx.write("applib/greeting.txt", "hello from s3\n");
    sc.negative_control(sc.plain(["build"]));
    let run = sc.wrapped(["build"]).run();
    assert_eq!(run.dirty_units(), APPLIB_AND_DEPENDENTS, "\n{run}");
    assert!(
        !is_symlink(&script),
        "build script rebuilt in place of the link"
    );
    let out_dir = &run
        .build_scripts
        .iter()
        .find(|b| b.package == "applib")
        .unwrap()
        .out_dir;
    let generated = std::fs::read_to_string(out_dir.join("greeting.rs")).unwrap();
    assert!(generated.contains("hello from s3"), "{generated}");
    assert_eq!(sc.run_bin("debug/app"), "hello from s3 84 42\n");
    sc.assert_clean();
}

fn host() -> String {
    let out = run_ok(Command::new("rustc").arg("-vV"));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

fn s4_explicit_host_target(strategy: &'static str) {
    let sc = Scenario::new("ws-basic", strategy);
    let host = host();
    with_greeting_build_script(&sc);
    sc.inherited(&[&["build", "--target", &host]]);
    // Target units in target/<triple>/debug, host units (build scripts) in target/debug.
    let script = build_script(&sc.target().join("debug"), "applib");
    let rlib = find_below(&sc.target().join(&host), "libapplib-", ".rlib");
    assert!(is_symlink(&script) && is_symlink(&rlib));
    sc.fx.touch("applib/build.rs");
    sc.negative_control(sc.plain(["build", "--target", &host]));
    sc.wrapped(["build", "--target", &host]).run();
    assert!(!is_symlink(&script), "host unit not rebuilt");
    assert!(!is_symlink(&rlib), "target unit not rebuilt");
    let app = format!("{host}/debug/app");
    assert_eq!(sc.run_bin(&app), "hello from applib 84 42\n");
    sc.assert_clean();
}

/// What touching `applib/build.rs` rebuilds: its build script, the library, the binary on top.
const APPLIB_AND_DEPENDENTS: [&str; 3] = [
    "app bin:app",
    "applib custom-build:build-script-build",
    "applib lib:applib",
];

const CROSS: &str = "aarch64-unknown-linux-gnu";
const CROSS_LINKER: &str = "aarch64-linux-gnu-gcc";

/// Why the cross scenario cannot run here, if it cannot.
fn cross_toolchain_missing() -> Option<String> {
    let sysroot = run_ok(Command::new("rustc").args(["--print", "sysroot"])).stdout;
    let sysroot = String::from_utf8(sysroot).unwrap();
    let std_dir = Path::new(sysroot.trim()).join("lib/rustlib").join(CROSS);
    let has_target = std_dir.is_dir();
    let has_linker = Command::new(CROSS_LINKER)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (!(has_target && has_linker)).then(|| {
        format!(
            "needs the {CROSS} standard library (`rustup target add {CROSS}`; present: \
             {has_target}) and the linker `{CROSS_LINKER}` (apt's gcc-aarch64-linux-gnu; \
             present: {has_linker})"
        )
    })
}

fn s5_cross_compile_aarch64(strategy: &'static str) {
    if let Some(why) = cross_toolchain_missing() {
        eprintln!("SKIPPED s5_cross_compile_aarch64 ({strategy}): {why}");
        return;
    }
    let sc = Scenario::new("ws-basic", strategy);
    with_greeting_build_script(&sc);
    let cross = |cmd: CargoCommand| {
        cmd.arg("--target").arg(CROSS).env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            CROSS_LINKER,
        )
    };
    sc.deps(&[cross(sc.plain(["build"]))]);
    sc.inherit();
    let script = build_script(&sc.target().join("debug"), "applib");
    let rlib = find_below(&sc.target().join(CROSS), "libapplib-", ".rlib");
    let macro_so = find_below(&sc.target().join("debug"), "libnc_macro-", ".so");
    assert!(is_symlink(&script) && is_symlink(&rlib) && is_symlink(&macro_so));
    sc.fx.touch("applib/build.rs");
    sc.negative_control(cross(sc.plain(["build"])));
    let run = cross(sc.wrapped(["build"])).run();
    assert_eq!(run.dirty_units(), APPLIB_AND_DEPENDENTS, "\n{run}");
    assert!(!is_symlink(&script) && !is_symlink(&rlib), "not rebuilt");
    assert!(is_symlink(&macro_so), "an untouched host unit was rebuilt");
    // The rebuilt binary is for the target, the rebuilt build script for the host.
    let app = sc.target().join(CROSS).join("debug/app");
    assert_eq!(elf_machine(&app), EM_AARCH64, "{}", app.display());
    if let Ok(file) = Command::new("file").arg("-b").arg(&app).output() {
        let file = String::from_utf8_lossy(&file.stdout);
        assert!(file.contains("ARM aarch64"), "file(1) says: {file}");
    }
    let this = std::env::current_exe().unwrap();
    assert_eq!(elf_machine(&script), elf_machine(&this));
    assert_ne!(elf_machine(&this), EM_AARCH64, "not a cross build");
    sc.assert_clean();
}

/// A user wrapper that logs `uw CRATE` for every compile (calls with `--out-dir`), prints a
/// marker and exits 42 for the crate named in `$UW_FAIL`, and execs the rest otherwise.
const USER_WRAPPER: &str = r#"#!/bin/sh
name=""; prev=""; out=0
for a in "$@"; do
  [ "$prev" = "--crate-name" ] && name="$a"
  [ "$a" = "--out-dir" ] && out=1
  prev="$a"
done
if [ "$out" = 1 ]; then echo "uw $name" >> "$UW_LOG"; fi
if [ -n "$UW_FAIL" ] && [ "$name" = "$UW_FAIL" ]; then echo "uw-says-no-to-$name" >&2; exit 42; fi
exec "$@"
"#;

fn write_exe(sc: &Scenario, rel: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    sc.fx.write(rel, text);
    let path = sc.fx.path(rel);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn compiles_logged(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    std::fs::remove_file(log).ok();
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn s6_user_wrapper_runs_once_and_its_status_passes_through(strategy: &'static str) {
    let sc = Scenario::new("ws-basic", strategy);
    let uw = write_exe(&sc, "tools/uw.sh", USER_WRAPPER);
    sc.inherited(&[&["build"]]);
    let log = sc.fx.base().join("uw.log");
    let expected = ["uw app", "uw applib"];

    // From env RUSTC_WRAPPER, resolved by `cargo nixcache exec`.
    sc.fx.touch("applib/src/lib.rs");
    sc.negative_control(
        sc.plain(["build"])
            .env("RUSTC_WRAPPER", &uw)
            .env("UW_LOG", &log),
    );
    compiles_logged(&log);
    let cargo = sc
        .fx
        .cargo_cmd(["build"])
        .env("RUSTC_WRAPPER", &uw)
        .env("UW_LOG", &log);
    run_ok(&mut sc.exec(cargo));
    assert_eq!(
        compiles_logged(&log),
        expected,
        "one user-wrapper call per compile"
    );

    // From .cargo/config.toml, relative to the directory containing `.cargo/`, with cargo run
    // in a member's directory.
    let config = sc.fx.read(".cargo/config.toml");
    sc.fx.write(
        ".cargo/config.toml",
        format!("{config}\n[build]\nrustc-wrapper = \"tools/uw.sh\"\n"),
    );
    let app_dir = sc.fx.path("app");
    // Negative control: forcing our wrapper through RUSTC_WRAPPER alone (what crane PR #386
    // did) silently drops the project's wrapper.
    sc.fx.touch("applib/src/lib.rs");
    sc.wrapped(["build"])
        .current_dir(&app_dir)
        .env("UW_LOG", &log)
        .run();
    assert_eq!(compiles_logged(&log), Vec::<String>::new());
    // Through the front end it runs, and its failure (output, exit status) passes through.
    sc.fx.touch("applib/src/lib.rs");
    let cargo = sc
        .fx
        .cargo_cmd(["build"])
        .current_dir(&app_dir)
        .env("UW_LOG", &log);
    let out = support::output_of(&mut sc.exec(cargo.clone().env("UW_FAIL", "applib")));
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("uw-says-no-to-applib") && t.contains("exit status: 42"),
        "{t}"
    );
    compiles_logged(&log);
    run_ok(&mut sc.exec(cargo));
    assert_eq!(compiles_logged(&log), expected);
    sc.assert_clean();
}

/// Logs `start CRATE` / `end CRATE` with microseconds since the epoch; for nc_rerun it sleeps
/// after rustc returns (buffering rustc's stderr until then when `$UW_BUFFER` is set).
const PIPELINE_WRAPPER: &str = r#"#!/bin/sh
name=""; prev=""
for a in "$@"; do [ "$prev" = "--crate-name" ] && name="$a"; prev="$a"; done
echo "start $name $(date +%s%6N)" >> "$UW_LOG"
if [ "$name" = nc_rerun ]; then
  if [ -n "$UW_BUFFER" ]; then "$@" 2> "$UW_LOG.err"; rc=$?; sleep 3; cat "$UW_LOG.err" >&2
  else "$@"; rc=$?; sleep 3; fi
  echo "end $name $(date +%s%6N)" >> "$UW_LOG"
  exit $rc
fi
exec "$@"
"#;

/// Whether applib (which needs nc_rerun's metadata only) started before nc_rerun's user wrapper
/// exited, in a build through `cargo nixcache exec` of a freshly unpacked tree.
fn pipeline_overlaps(sc: &Scenario, pw: &Path, buffer: bool) -> bool {
    sc.reinherit();
    let log = sc.fx.base().join("pipe.log");
    std::fs::remove_file(&log).ok();
    let mut cargo = sc
        .fx
        .cargo_cmd(["build"])
        .env("RUSTC_WRAPPER", pw)
        .env("UW_LOG", &log);
    if buffer {
        cargo = cargo.env("UW_BUFFER", "1");
    }
    run_ok(&mut sc.exec(cargo));
    let text = std::fs::read_to_string(&log).unwrap();
    let at = |what: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` in {text}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    at("start applib") < at("end nc_rerun")
}

fn s7_pipelining_preserved_with_slow_user_wrapper(strategy: &'static str) {
    let sc = Scenario::new("ws-rerun", strategy);
    let pw = write_exe(&sc, "tools/pw.sh", PIPELINE_WRAPPER);
    sc.inherited(&[&["build"]]);
    // nc-rerun recompiles on every build (see s1), and applib above it.
    sc.negative_control(sc.plain(["build"]));
    assert!(
        pipeline_overlaps(&sc, &pw, false),
        "applib waited for nc_rerun's wrapper to exit"
    );
    // Negative control: a user wrapper that buffers rustc's stderr does kill pipelining, and the
    // measurement sees it.
    assert!(
        !pipeline_overlaps(&sc, &pw, true),
        "the measurement cannot tell"
    );
    sc.assert_clean();
}

/// One deps derivation as crane's buildDepsOnly makes it (check, build, test --no-run; and
/// clippy), then each command on a fresh unpack of it with applib touched.
fn s8_check_test_clippy_doc_after_unpack(strategy: &'static str) {
    let has_clippy = Command::new("cargo")
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let sc = Scenario::new("ws-basic", strategy);
    let mut deps: Vec<&[&str]> = vec![&["check"], &["build"], &["test", "--no-run"]];
    // `cargo doc` reuses check's metadata units; rustdoc itself writes a fresh target/doc.
    let mut commands: Vec<&[&str]> = vec![&["check"], &["test", "--no-run"], &["doc"]];
    if has_clippy {
        deps.push(&["clippy"]);
        commands.push(&["clippy"]);
    } else {
        eprintln!("SKIPPED the cargo clippy part of s8 ({strategy}): clippy is not installed");
    }
    sc.inherited(&deps);
    for cmd in commands {
        sc.reinherit();
        sc.fx.touch("applib/src/lib.rs");
        sc.negative_control(sc.plain(cmd));
        let run = sc.wrapped(cmd).run();
        // clippy takes no --message-format from the harness: read its progress lines instead.
        let rebuilt = run.dirty_packages().contains(&"applib".to_string())
            || run.stderr.contains("Checking applib");
        assert!(rebuilt, "applib was not rebuilt\n{run}");
        sc.assert_clean();
    }
}

fn s9_rebuild_is_byte_identical_and_names_no_temp_dir(strategy: &'static str) {
    for split in ["off", "unpacked"] {
        let sc = Scenario::new("ws-basic", strategy);
        let split_env = |cmd: CargoCommand| cmd.env("CARGO_PROFILE_DEV_SPLIT_DEBUGINFO", split);
        sc.deps(&[split_env(sc.plain(["build"]))]);
        let debug = sc.target().join("debug");
        let reference = layout::unit_outputs_snapshot(&debug, false);
        sc.inherit();
        sc.fx.touch("applib/src/lib.rs");
        sc.negative_control(split_env(sc.plain(["build"])));
        split_env(sc.wrapped(["build"])).run();
        let app = layout::bin_output(&debug, "app");
        let rebuilt = [find_below(&debug, "libapplib-", ".rlib"), app];
        // Control: the units were really rebuilt (no longer links into the store) ...
        for f in &rebuilt {
            assert!(!is_symlink(f), "{} was not rebuilt", f.display());
        }
        // ... and yet every output is byte-identical to the clean build's.
        let after = layout::unit_outputs_snapshot(&debug, true);
        let diff = reference.diff_with(&after, Compare::CONTENTS);
        assert!(diff.is_empty(), "split-debuginfo={split}: {diff:#?}");
        sc.assert_clean();
    }
}

/// sccache as the project's wrapper (env `RUSTC_WRAPPER=sccache`, resolved by `cargo nixcache
/// exec`), behind ours: it compiles inherited units, and the next derivation's identical rebuild
/// is served from its cache. sccache 0.4 caches lib crates only (`not_cached: crate-type` for
/// the bin).
fn s10_sccache_chained_behind_the_wrapper_gets_cache_hits(strategy: &'static str) {
    if Command::new("sccache").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED s10_sccache_chained_behind_the_wrapper_gets_cache_hits ({strategy}): \
             sccache is not installed (Debian: apt-get install sccache)"
        );
        return;
    }
    let sc = Scenario::new("ws-basic", strategy);
    sc.inherited(&[&["build"]]);
    let sccache = Sccache::start(&sc);
    let with_sccache = |cmd: CargoCommand| sccache.env(cmd.env("RUSTC_WRAPPER", "sccache"));

    // Negative control: sccache alone runs rustc into the read-only links.
    sc.fx.touch("applib/src/lib.rs");
    sc.negative_control(with_sccache(sc.plain(["build"])));

    // One derivation: rebuild applib (and app) over the read-only links through our wrapper and
    // sccache; returns sccache's (hits, misses) and its stats.
    let rlib = find_below(&sc.target().join("debug"), "libapplib-", ".rlib");
    let derivation = || {
        assert!(is_symlink(&rlib));
        sccache.zero_stats();
        let out = run_ok(&mut sc.exec(with_sccache(sc.fx.cargo_cmd(["build"]))));
        assert_eq!(
            dirty_units(&out.stdout),
            ["app bin:app", "applib lib:applib"]
        );
        assert!(!is_symlink(&rlib), "rebuilt in place of the link");
        assert_eq!(sc.run_bin("debug/app"), "hello from applib 84 42\n");
        let stats = sccache.stats();
        let counts = (
            rust_count(&stats, "cache_hits"),
            rust_count(&stats, "cache_misses"),
        );
        (counts, stats)
    };

    // Derivation 1: a miss for applib (then cached), the bin is not cacheable.
    let (counts, stats) = derivation();
    assert_eq!(counts, (0, 1), "{stats}");
    assert_eq!(stats["not_cached"]["crate-type"], 1, "{stats}");

    // Derivation 2: the same change on a fresh unpack is a cache hit, through our wrapper.
    sc.reinherit();
    sc.fx.touch("applib/src/lib.rs");
    let (counts, stats) = derivation();
    assert_eq!(counts, (1, 0), "{stats}");
    sc.assert_clean();
}

fn rust_count(stats: &serde_json::Value, what: &str) -> u64 {
    stats[what]["counts"]["Rust"].as_u64().unwrap_or(0)
}

/// A private sccache server (own cache dir and port, no capabilities), stopped on drop.
struct Sccache {
    dir: std::path::PathBuf,
    port: u16,
}

impl Sccache {
    fn start(sc: &Scenario) -> Sccache {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = Sccache {
            dir: sc.fx.scratch_dir("sccache"),
            port,
        };
        // The server runs the compilers, so it must not have capabilities either. sccache waits
        // a fixed 10 s for its server to say it is up; on a loaded machine (CI seen once) that
        // can run out while the server is still starting. Then it either answers a moment later
        // or is started again, three times at most.
        for attempt in 1..=3 {
            let mut cmd = caps::unprivileged_command("sccache");
            let out = s.vars(cmd.arg("--start-server")).output().unwrap();
            if out.status.success() || s.answers() {
                return s;
            }
            eprintln!(
                "sccache --start-server, attempt {attempt}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            let _ = s
                .vars(Command::new("sccache").arg("--stop-server"))
                .output();
        }
        panic!("the sccache server did not start in three attempts");
    }

    /// Whether the server answers (`--show-stats` succeeds), within a few seconds. Without
    /// capabilities too: a client that finds no server starts one.
    fn answers(&self) -> bool {
        (0..10).any(|_| {
            let ok = self
                .vars(caps::unprivileged_command("sccache").arg("--show-stats"))
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            ok
        })
    }

    fn vars<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SCCACHE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SCCACHE_DIR", &self.dir)
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .env("SCCACHE_IDLE_TIMEOUT", "120")
    }

    fn env(&self, cmd: CargoCommand) -> CargoCommand {
        cmd.env("SCCACHE_DIR", &self.dir)
            .env("SCCACHE_SERVER_PORT", self.port.to_string())
            .env("SCCACHE_IDLE_TIMEOUT", "120")
    }

    fn zero_stats(&self) {
        run_ok(self.vars(Command::new("sccache").arg("--zero-stats")));
    }

    /// The `stats` object of `sccache --show-stats --stats-format=json`.
    fn stats(&self) -> serde_json::Value {
        let mut cmd = Command::new("sccache");
        cmd.args(["--show-stats", "--stats-format=json"]);
        let out = run_ok(self.vars(&mut cmd));
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        all["stats"].clone()
    }
}

impl Drop for Sccache {
    fn drop(&mut self) {
        let mut cmd = Command::new("sccache");
        let _ = self.vars(cmd.arg("--stop-server")).output();
    }
}

/// Cargo passes `RUSTC @argfile` when the command line is too long. Driven directly (cargo only
/// does it on E2BIG): a unit whose outputs are read-only links, compiled from an argfile.
fn argfile_compile_is_rebuilt(strategy: &'static str) {
    let sc = Scenario::new("ws-basic", strategy);
    let t = sc.fx.scratch_dir("t");
    // Shaped like a target dir, so pack recognises rustc's out-dir (see `classify`).
    let out_dir = t.join("debug/deps");
    std::fs::create_dir_all(&out_dir).unwrap();
    let src = sc.fx.base().join("alib.rs");
    std::fs::write(&src, "pub fn a() -> u32 {\n    1\n}\n").unwrap();
    let args = format!(
        "--crate-name\nalib\n--edition=2021\n{}\n--crate-type\nlib\n--emit=dep-info,metadata,link\n-C\nextra-filename=-0123\n--out-dir\n{}\n--error-format=json\n--json=artifacts\n",
        src.display(),
        out_dir.display()
    );
    let argfile = sc.fx.base().join("args");
    std::fs::write(&argfile, args).unwrap();
    let argfile = format!("@{}", argfile.display());
    run_ok(Command::new("rustc").arg(&argfile));
    sc.inherit_dir(&t);
    let rmeta = out_dir.join("libalib-0123.rmeta");
    assert!(is_symlink(&rmeta) && is_symlink(&out_dir.join("libalib-0123.rlib")));
    command_fails_read_only(caps::unprivileged_command("rustc").arg(&argfile));
    let out = run_ok(
        caps::unprivileged_command(WRAPPER)
            .args(["rustc", &argfile])
            .env("NIXCACHE_WRAPPER_STRATEGY", strategy)
            .env_remove("NIXCACHE_USER_WRAPPER"),
    );
    for name in ["libalib-0123.rmeta", "libalib-0123.rlib"] {
        assert!(!is_symlink(&out_dir.join(name)), "{name} not rebuilt");
    }
    // Artifact notifications name the real out-dir, and the file exists there.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("\"artifact\":\"{}\"", rmeta.display());
    assert!(stderr.contains(&want), "{stderr}");
    let leaks = mentions_tmp(&t);
    assert!(leaks.is_empty(), "{leaks:?}");
}

/// The wrapper driven directly with a fake rustc: exit codes, signals, stdout bytes, errors.
mod direct {
    use super::support::output_of;
    use super::support::scenario::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    const SIGTERM: i32 = 15;

    /// A fake rustc: finds `--out-dir`, writes `libx-1.rlib` there, prints to both streams, then
    /// ends as `$FAKE_END` says (`exit N` or `kill -SIG $$`).
    const FAKE_RUSTC: &str = r#"#!/bin/sh
out=""; prev=""
for a in "$@"; do [ "$prev" = "--out-dir" ] && out="$a"; prev="$a"; done
[ -n "$out" ] && echo new > "$out/libx-1.rlib"
printf 'stdout\000bytes'
echo "plain stderr line" >&2
eval "$FAKE_END"
"#;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-rustc");
        std::fs::write(&fake, FAKE_RUSTC).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::create_dir(dir.path().join("deps")).unwrap();
        (dir, fake)
    }

    fn wrapper(
        strategy: &str,
        fake: &std::path::Path,
        out_dir: Option<&std::path::Path>,
        end: &str,
    ) -> Command {
        let mut cmd = Command::new(WRAPPER);
        cmd.arg(fake)
            .args(["--crate-name", "x", "-C", "extra-filename=-1"]);
        if let Some(d) = out_dir {
            cmd.arg("--out-dir").arg(d);
        }
        cmd.env("NIXCACHE_WRAPPER_STRATEGY", strategy)
            .env("FAKE_END", end)
            .env_remove("NIXCACHE_USER_WRAPPER");
        cmd
    }

    #[test]
    fn exit_code_signal_and_stdout_pass_through() {
        let (dir, fake) = setup();
        let deps = dir.path().join("deps");
        for strategy in ["in-place", "redirect"] {
            for out_dir in [None, Some(deps.as_path())] {
                let out = output_of(&mut wrapper(strategy, &fake, out_dir, "exit 3"));
                assert_eq!(out.status.code(), Some(3), "{strategy} {out_dir:?}");
                assert_eq!(out.stdout, b"stdout\0bytes");
                assert_eq!(String::from_utf8_lossy(&out.stderr), "plain stderr line\n");
                let out = output_of(&mut wrapper(strategy, &fake, out_dir, "kill -TERM $$"));
                assert_eq!(out.status.signal(), Some(SIGTERM), "{strategy} {out_dir:?}");
            }
        }
    }

    #[test]
    fn redirect_failure_keeps_old_outputs_and_removes_temp_dir() {
        let (dir, fake) = setup();
        let deps = dir.path().join("deps");
        let old = dir.path().join("old.rlib");
        std::fs::write(&old, "old").unwrap();
        std::os::unix::fs::symlink(&old, deps.join("libx-1.rlib")).unwrap();
        let out = output_of(&mut wrapper("redirect", &fake, Some(&deps), "exit 1"));
        assert_eq!(out.status.code(), Some(1));
        assert!(is_symlink(&deps.join("libx-1.rlib")), "old output kept");
        assert!(mentions_tmp(&deps).is_empty(), "{:?}", mentions_tmp(&deps));
        // Control: on success the new output replaces the link, so the check above can fail.
        let out = output_of(&mut wrapper("redirect", &fake, Some(&deps), "exit 0"));
        assert!(out.status.success());
        assert!(!is_symlink(&deps.join("libx-1.rlib")));
        assert_eq!(
            std::fs::read_to_string(deps.join("libx-1.rlib")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_to_string(&old).unwrap(),
            "old",
            "the store file is untouched"
        );
        assert!(mentions_tmp(&deps).is_empty());
    }

    /// `-C extra-filename` is free text: one holding `/` or `..` must not move the redirect's
    /// temporary out-dir (which it removes before and after rustc) outside the out-dir.
    #[test]
    fn redirect_never_leaves_the_out_dir_whatever_extra_filename_says() {
        let (dir, fake) = setup();
        let deps = dir.path().join("deps");
        // The odd precondition: the name the unit's temp dir starts with exists, so that
        // `<out-dir>/.nixcache-tmp-x/../../victim` resolves.
        std::fs::create_dir(deps.join(".nixcache-tmp-x")).unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("precious"), "keep").unwrap();
        for strategy in ["redirect", "in-place"] {
            let mut cmd = Command::new(WRAPPER);
            cmd.arg(&fake)
                .args(["--crate-name", "x", "-C", "extra-filename=/../../victim"])
                .arg("--out-dir")
                .arg(&deps)
                .env("NIXCACHE_WRAPPER_STRATEGY", strategy)
                .env("FAKE_END", "exit 0")
                .env_remove("NIXCACHE_USER_WRAPPER");
            let out = output_of(&mut cmd);
            assert!(out.status.success(), "{strategy}: {out:?}");
            assert_eq!(
                std::fs::read_to_string(victim.join("precious"))
                    .ok()
                    .as_deref(),
                Some("keep"),
                "{strategy} removed a directory outside the out-dir"
            );
        }
    }

    #[test]
    fn own_errors_are_prefixed_with_documented_codes() {
        let (dir, _) = setup();
        let missing = dir.path().join("no-such-rustc");
        for (strategy, out_dir) in [
            ("in-place", None),
            ("in-place", Some(dir.path())),
            ("redirect", Some(dir.path())),
        ] {
            let out = output_of(&mut wrapper(strategy, &missing, out_dir, ""));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.starts_with("nixcache-rustc-wrapper: error: failed to run `"),
                "{err}"
            );
            assert_eq!(
                out.status.code(),
                Some(nixcache_rustc_wrapper::EXIT_WRAPPER_ERROR.into())
            );
        }
        let out = output_of(&mut Command::new(WRAPPER));
        assert_eq!(
            out.status.code(),
            Some(nixcache_rustc_wrapper::EXIT_USAGE.into())
        );
        let (_d, fake) = setup();
        let out = output_of(&mut wrapper("sideways", &fake, Some(dir.path()), "exit 0"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("NIXCACHE_WRAPPER_STRATEGY must be"));
    }
}

/// The front end's resolution agrees with the wrapper real cargo runs, level by level.
#[test]
fn userwrapper_agrees_with_cargo_on_precedence() {
    use nixcache::userwrapper::resolve_user_wrapper;
    let fx = support::Fixture::copy("ws-basic");
    let log = fx.base().join("which.log");
    let cargo_home = fx.base().join("cargo-home");
    for name in ["w-file", "w-home", "w-cargo-build", "w-cli", "w-env"] {
        let rel = format!("tools/{name}");
        fx.write(
            &rel,
            format!("#!/bin/sh\necho {name} >> \"$W_LOG\"\nexec \"$@\"\n"),
        );
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(fx.path(&rel), mode).unwrap();
    }
    std::fs::write(
        cargo_home.join("config.toml"),
        "build.rustc-wrapper = \"../ws-basic/tools/w-home\"\n",
    )
    .unwrap();
    let config = fx.read(".cargo/config.toml");
    fx.write(
        ".cargo/config.toml",
        format!("{config}\n[build]\nrustc-wrapper = \"tools/w-file\"\n"),
    );
    let cli = "build.rustc-wrapper=\"tools/w-cli\"".to_string();
    let env_b = ("CARGO_BUILD_RUSTC_WRAPPER", "tools/w-cargo-build");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool);
    let cases: Vec<Case> = vec![
        ("config file", vec![], false),
        ("CARGO_BUILD_RUSTC_WRAPPER", vec![env_b], false),
        ("--config beats CARGO_BUILD_*", vec![env_b], true),
        (
            "RUSTC_WRAPPER beats all",
            vec![env_b, ("RUSTC_WRAPPER", "tools/w-env")],
            true,
        ),
        (
            "empty RUSTC_WRAPPER is none",
            vec![env_b, ("RUSTC_WRAPPER", "")],
            true,
        ),
    ];
    for (what, env, with_cli) in cases {
        std::fs::remove_file(&log).ok();
        // A real compile at each level (the first case builds everything).
        fx.touch("applib/src/lib.rs");
        let mut cmd = fx.cargo_cmd(["check"]).env("W_LOG", &log);
        for (k, v) in &env {
            cmd = cmd.env(k, v);
        }
        if with_cli {
            cmd = cmd.arg("--config").arg(&cli);
        }
        let run = cmd.run();
        assert!(
            run.dirty_packages().contains(&"applib".to_string()),
            "{what}: nothing compiled\n{run}"
        );
        let ran = std::fs::read_to_string(&log).unwrap_or_default();
        let mut ran: Vec<&str> = ran.lines().collect();
        ran.dedup();
        let lookup = |k: &str| match k {
            "CARGO_HOME" => Some(cargo_home.clone().into()),
            "PATH" => std::env::var_os("PATH"),
            _ => env.iter().find(|(n, _)| *n == k).map(|(_, v)| os(v)),
        };
        let cli_args: Vec<String> = if with_cli { vec![cli.clone()] } else { vec![] };
        let ours = resolve_user_wrapper(Path::new(WRAPPER), fx.root(), &lookup, &cli_args).unwrap();
        let ours: Vec<String> = ours
            .path
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ran, ours, "{what}");
    }
}
