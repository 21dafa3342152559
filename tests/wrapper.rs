//! Real cargo builds in the inherited state (outputs are absolute symlinks into a read-only store
//! dir, cargo runs without capabilities). Every scenario first shows that the build FAILS without
//! the wrapper (the negative control), then passes behind it, for both strategies.

#[path = "wrapper_support/mod.rs"]
mod harness;

use harness::*;
use std::path::Path;

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
    s6_user_wrapper_runs_once_and_its_status_passes_through,
    s7_pipelining_preserved_with_slow_user_wrapper,
    s8_check_test_clippy_doc_after_unpack,
    s9_rebuild_is_byte_identical_and_names_no_temp_dir,
    argfile_compile_is_rebuilt,
);

/// The common end of a scenario: clean up checks after a successful wrapped build.
fn assert_clean(fx: &Fixture) {
    let leaks = mentions_tmp(&fx.target());
    assert!(leaks.is_empty(), "temp names left in target/: {leaks:?}");
}

fn s1_rerun_if_changed_missing_file_in_inherited_dep(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    fx.inherited(&[&["build"]]);
    // `rerun-if-changed=does-not-exist` reruns the build script, so `rerun` recompiles in place.
    fails_read_only(&mut fx.cargo(&["build"]));
    ok(&mut fx.wrapped(&["build"]));
    assert!(!is_symlink(&find(
        &fx.target().join("debug/deps"),
        "librerun-",
        ".rlib"
    )));
    let out = run(&mut std::process::Command::new(
        fx.target().join("debug/app"),
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 7 one\n");
    assert_clean(&fx);
}

fn s2_touched_workspace_lib_same_filename_hash(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    fx.inherited(&[&["build"]]);
    let rlib = find(&fx.target().join("debug/deps"), "libalib-", ".rlib");
    fx.touch("ws/alib/src/lib.rs");
    fails_read_only(&mut fx.cargo(&["build"]));
    ok(&mut fx.wrapped(&["build"]));
    assert!(
        !is_symlink(&rlib),
        "same name rebuilt in place of the symlink"
    );
    // A second build is all fresh (cargo trusts what we left behind).
    let out = ok(&mut fx.wrapped(&["build", "-v"]));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Compiling alib"),
        "{}",
        text(&out)
    );
    assert_clean(&fx);
}

fn s3_build_script_rebuilt_and_rerun_writes_out_dir(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    fx.inherited(&[&["build"]]);
    fx.touch("vendor/gen/build.rs");
    fx.write("vendor/gen/input.txt", "two\n");
    fails_read_only(&mut fx.cargo(&["build"]));
    ok(&mut fx.wrapped(&["build"]));
    let out = run(&mut std::process::Command::new(
        fx.target().join("debug/app"),
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 7 two\n");
    assert_clean(&fx);
}

fn host() -> String {
    let out = run(std::process::Command::new("rustc").arg("-vV"));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

fn s4_explicit_host_target(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    let host = host();
    fx.inherited(&[&["build", "--target", &host]]);
    // Target units in target/<triple>/debug, host units (build scripts) in target/debug.
    fx.touch("ws/alib/src/lib.rs");
    fx.touch("vendor/gen/build.rs");
    fails_read_only(&mut fx.cargo(&["build", "--target", &host]));
    ok(&mut fx.wrapped(&["build", "--target", &host]));
    let deps = fx.target().join(&host).join("debug/deps");
    assert!(!is_symlink(&find(&deps, "libalib-", ".rlib")));
    let out = run(&mut std::process::Command::new(
        fx.target().join(&host).join("debug/app"),
    ));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 7 one\n");
    assert_clean(&fx);
}

#[test]
fn s5_cross_compile_aarch64() {
    let installed =
        run(std::process::Command::new("rustup").args(["target", "list", "--installed"]));
    let has_target =
        String::from_utf8_lossy(&installed.stdout).contains("aarch64-unknown-linux-gnu");
    let has_linker = std::process::Command::new("aarch64-linux-gnu-gcc")
        .arg("--version")
        .output()
        .is_ok();
    if !(has_target && has_linker) {
        eprintln!(
            "SKIPPED s5_cross_compile_aarch64: needs `rustup target add aarch64-unknown-linux-gnu` \
             (target installed: {has_target}) and apt's gcc-aarch64-linux-gnu (linker found: {has_linker})"
        );
        return;
    }
    let fx = Fixture::new("in-place");
    let t = "aarch64-unknown-linux-gnu";
    fx.write(
        "ws/.cargo/config.toml",
        "[target.aarch64-unknown-linux-gnu]\nlinker = \"aarch64-linux-gnu-gcc\"\n",
    );
    fx.inherited(&[&["build", "--target", t]]);
    fx.touch("ws/alib/src/lib.rs");
    fx.touch("vendor/gen/build.rs");
    fails_read_only(&mut fx.cargo(&["build", "--target", t]));
    ok(&mut fx.wrapped(&["build", "--target", t]));
    assert_clean(&fx);
}

/// A user wrapper that logs `NAME crate-name` for every compile (calls with `--out-dir`),
/// prints a marker and exits 42 for the crate named in `$UW_FAIL`, and execs the rest otherwise.
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

/// Environment from the real front end, as `cargo nixcache exec` would set it.
fn frontend_env(
    fx: &Fixture,
    cwd: &Path,
    env: &[(&str, &str)],
) -> Vec<(String, std::ffi::OsString)> {
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| os(v))
            .or_else(|| match k {
                "PATH" | "HOME" | "CARGO_HOME" => std::env::var_os(k),
                _ => None,
            })
    };
    let mut vars =
        nixcache_rustc_wrapper::frontend::plan_env(Path::new(WRAPPER), cwd, &lookup, &[]).unwrap();
    for (k, v) in vars.iter_mut() {
        if k == nixcache_rustc_wrapper::ENV_STRATEGY {
            *v = fx.strategy.into();
        }
    }
    vars
}

fn compiles_logged(log: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn s6_user_wrapper_runs_once_and_its_status_passes_through(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    fx.write_exe("ws/tools/uw.sh", USER_WRAPPER);
    fx.inherited(&[&["build"]]);
    let log = fx.p("uw.log");
    let uw = fx.p("ws/tools/uw.sh");
    // `rerun` recompiles on every build (its build script's `rerun-if-changed` file is missing).
    let expected = ["uw alib", "uw app", "uw blib", "uw rerun"];

    // From env RUSTC_WRAPPER, resolved by the front end.
    fx.touch("ws/alib/src/lib.rs");
    let mut plain = fx.cargo(&["build"]);
    plain.env("RUSTC_WRAPPER", &uw).env("UW_LOG", &log);
    fails_read_only(&mut plain);
    std::fs::remove_file(&log).ok();
    let mut cmd = fx.cargo(&["build"]);
    cmd.env("UW_LOG", &log).envs(frontend_env(
        &fx,
        &fx.ws(),
        &[("RUSTC_WRAPPER", uw.to_str().unwrap())],
    ));
    ok(&mut cmd);
    assert_eq!(
        compiles_logged(&log),
        expected,
        "each compile went through the user wrapper once"
    );

    // Negative control: our wrapper alone (what crane PR #386 did) silently drops the user's.
    fx.touch("ws/alib/src/lib.rs");
    std::fs::remove_file(&log).ok();
    ok(fx.wrapped(&["build"]).env("UW_LOG", &log));
    assert_eq!(compiles_logged(&log), Vec::<String>::new());

    // From .cargo/config.toml, relative to the directory containing `.cargo/`, cargo run in a
    // member dir; the user wrapper's failure (output, exit status) passes through.
    fx.write(
        ".cargo/../ws/.cargo/config.toml",
        "[build]\nrustc-wrapper = \"tools/uw.sh\"\n",
    );
    fx.touch("ws/alib/src/lib.rs");
    std::fs::remove_file(&log).ok();
    let app_dir = fx.p("ws/app");
    let vars = frontend_env(&fx, &app_dir, &[]);
    assert!(
        vars.iter()
            .any(|(k, v)| k == "NIXCACHE_USER_WRAPPER" && Path::new(v) == uw),
        "{vars:?}"
    );
    let mut cmd = fx.cargo(&["build"]);
    cmd.current_dir(&app_dir)
        .env("UW_LOG", &log)
        .env("UW_FAIL", "blib")
        .envs(vars.clone());
    let out = run(&mut unprivileged(&cmd));
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("uw-says-no-to-blib") && t.contains("exit status: 42"),
        "{t}"
    );
    std::fs::remove_file(&log).ok();
    let mut cmd = fx.cargo(&["build"]);
    cmd.current_dir(&app_dir).env("UW_LOG", &log).envs(vars);
    ok(&mut cmd);
    assert_eq!(compiles_logged(&log), ["uw app", "uw blib", "uw rerun"]);
    assert_clean(&fx);
}

/// Microseconds since the epoch, as the shell's `date +%s%6N` prints them.
const PIPELINE_WRAPPER: &str = r#"#!/bin/sh
name=""; prev=""
for a in "$@"; do [ "$prev" = "--crate-name" ] && name="$a"; prev="$a"; done
echo "start $name $(date +%s%6N)" >> "$UW_LOG"
if [ "$name" = alib ]; then
  if [ -n "$UW_BUFFER" ]; then "$@" 2> "$UW_LOG.err"; rc=$?; sleep 3; cat "$UW_LOG.err" >&2
  else "$@"; rc=$?; sleep 3; fi
  echo "end $name $(date +%s%6N)" >> "$UW_LOG"
  exit $rc
fi
exec "$@"
"#;

fn pipeline_overlaps(fx: &Fixture, buffer: bool) -> bool {
    let log = fx.p("pipe.log");
    std::fs::remove_file(&log).ok();
    fx.touch("ws/alib/src/lib.rs");
    let uw = fx.p("ws/tools/pw.sh");
    let mut cmd = fx.cargo(&["build"]);
    cmd.env("UW_LOG", &log).envs(frontend_env(
        fx,
        &fx.ws(),
        &[("RUSTC_WRAPPER", uw.to_str().unwrap())],
    ));
    if buffer {
        cmd.env("UW_BUFFER", "1");
    }
    ok(&mut cmd);
    let text = std::fs::read_to_string(&log).unwrap();
    let at = |what: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` in {text}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    at("start blib") < at("end alib")
}

fn s7_pipelining_preserved_with_slow_user_wrapper(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    fx.write_exe("ws/tools/pw.sh", PIPELINE_WRAPPER);
    fx.inherited(&[&["build"]]);
    fx.touch("ws/alib/src/lib.rs");
    fails_read_only(&mut fx.cargo(&["build"]));
    assert!(
        pipeline_overlaps(&fx, false),
        "blib waited for alib's wrapper to exit"
    );
    // Negative control: a user wrapper that buffers rustc's stderr does kill pipelining, and the
    // measurement sees it.
    assert!(!pipeline_overlaps(&fx, true), "the measurement cannot tell");
    assert_clean(&fx);
}

fn s8_check_test_clippy_doc_after_unpack(strategy: &'static str) {
    let has_clippy = std::process::Command::new("cargo")
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut commands: Vec<(&[&str], &[&str])> = vec![
        (&["check"], &["check"]),
        (&["test", "--no-run"], &["test", "--no-run"]),
        // `cargo doc` reuses check's metadata units; rustdoc itself writes a fresh target/doc.
        (&["check"], &["doc"]),
    ];
    if has_clippy {
        commands.push((&["clippy"], &["clippy"]));
    } else {
        eprintln!("SKIPPED cargo clippy part of s8: clippy is not installed");
    }
    for (deps_cmd, cmd) in commands {
        let fx = Fixture::new(strategy);
        fx.inherited(&[deps_cmd]);
        fx.touch("ws/alib/src/lib.rs");
        fails_read_only(&mut fx.cargo(cmd));
        ok(&mut fx.wrapped(cmd));
        assert_clean(&fx);
    }
}

fn s9_rebuild_is_byte_identical_and_names_no_temp_dir(strategy: &'static str) {
    for split in ["off", "unpacked"] {
        let fx = Fixture::new(strategy);
        let profile_env = ("CARGO_PROFILE_DEV_SPLIT_DEBUGINFO", split);
        let mut clean = fx.cargo(&["build"]);
        clean.env(profile_env.0, profile_env.1);
        ok(&mut clean);
        let reference = snapshot(&fx.target().join("debug/deps"));
        inherit(&fx.target(), &fx.store());
        fx.touch("ws/alib/src/lib.rs");
        let mut cmd = fx.cargo(&["build"]);
        cmd.env(profile_env.0, profile_env.1);
        fails_read_only(&mut cmd);
        let mut cmd = fx.wrapped(&["build"]);
        cmd.env(profile_env.0, profile_env.1);
        ok(&mut cmd);
        let deps = fx.target().join("debug/deps");
        let app = find(&deps, "app-", ".d").with_extension("");
        let rebuilt = [
            find(&deps, "libalib-", ".rlib"),
            find(&deps, "libblib-", ".rlib"),
            app,
        ];
        // Control: the units were really rebuilt (no longer links to the store) ...
        for f in &rebuilt {
            assert!(!is_symlink(f), "{} was not rebuilt", f.display());
        }
        // ... and yet every output is byte-identical to the clean build's.
        let after = snapshot(&deps);
        assert_eq!(
            reference.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "split={split}"
        );
        for (k, v) in &reference {
            assert!(
                after[k] == *v,
                "{} differs from the clean build (split-debuginfo={split})",
                k.display()
            );
        }
        assert_clean(&fx);
    }
}

/// Cargo passes `RUSTC @argfile` when the command line is too long. Driven directly (cargo only
/// does it on E2BIG): a unit whose outputs are read-only links, compiled from an argfile.
fn argfile_compile_is_rebuilt(strategy: &'static str) {
    let fx = Fixture::new(strategy);
    let out_dir = fx.p("t/deps");
    std::fs::create_dir_all(&out_dir).unwrap();
    let args = format!(
        "--crate-name\nalib\n--edition=2021\n{}\n--crate-type\nlib\n--emit=dep-info,metadata,link\n-C\nextra-filename=-0123\n--out-dir\n{}\n--error-format=json\n--json=artifacts\n",
        fx.p("ws/alib/src/lib.rs").display(),
        out_dir.display()
    );
    fx.write("args", &args);
    let argfile = format!("@{}", fx.p("args").display());
    ok(std::process::Command::new("rustc").arg(&argfile));
    inherit(&fx.p("t"), &fx.store());
    let rmeta = out_dir.join("libalib-0123.rmeta");
    assert!(is_symlink(&rmeta));
    fails_read_only(std::process::Command::new("rustc").arg(&argfile));
    let out = ok(std::process::Command::new(WRAPPER)
        .args(["rustc", &argfile])
        .env("NIXCACHE_WRAPPER_STRATEGY", strategy)
        .env_remove("NIXCACHE_USER_WRAPPER"));
    for name in ["libalib-0123.rmeta", "libalib-0123.rlib", "alib-0123.d"] {
        assert!(!is_symlink(&out_dir.join(name)), "{name} not rebuilt");
    }
    // Artifact notifications name the real out-dir, and the file exists there.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("\"artifact\":\"{}\"", rmeta.display());
    assert!(stderr.contains(&want), "{stderr}");
    let leaks = mentions_tmp(&fx.p("t"));
    assert!(leaks.is_empty(), "{leaks:?}");
}

/// The wrapper driven directly with a fake rustc: exit codes, signals, stdout bytes, errors.
mod direct {
    use super::harness::*;
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
                let out = run(&mut wrapper(strategy, &fake, out_dir, "exit 3"));
                assert_eq!(out.status.code(), Some(3), "{strategy} {out_dir:?}");
                assert_eq!(out.stdout, b"stdout\0bytes");
                assert_eq!(String::from_utf8_lossy(&out.stderr), "plain stderr line\n");
                let out = run(&mut wrapper(strategy, &fake, out_dir, "kill -TERM $$"));
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
        let out = run(&mut wrapper("redirect", &fake, Some(&deps), "exit 1"));
        assert_eq!(out.status.code(), Some(1));
        assert!(is_symlink(&deps.join("libx-1.rlib")), "old output kept");
        assert!(mentions_tmp(&deps).is_empty(), "{:?}", mentions_tmp(&deps));
        // Control: on success the new output replaces the link, so the check above can fail.
        let out = run(&mut wrapper("redirect", &fake, Some(&deps), "exit 0"));
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

    #[test]
    fn own_errors_are_prefixed_with_documented_codes() {
        let (dir, _) = setup();
        let missing = dir.path().join("no-such-rustc");
        for (strategy, out_dir) in [
            ("in-place", None),
            ("in-place", Some(dir.path())),
            ("redirect", Some(dir.path())),
        ] {
            let out = run(&mut wrapper(strategy, &missing, out_dir, ""));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.starts_with("nixcache-rustc-wrapper: error: failed to run `"),
                "{err}"
            );
            assert_eq!(
                out.status.code(),
                Some(nixcache_rustc_wrapper::EXIT_WRAPPER_ERROR)
            );
        }
        let out = run(&mut Command::new(WRAPPER));
        assert_eq!(out.status.code(), Some(nixcache_rustc_wrapper::EXIT_USAGE));
        let (_d, fake) = setup();
        let out = run(&mut wrapper("sideways", &fake, Some(dir.path()), "exit 0"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("NIXCACHE_WRAPPER_STRATEGY must be"));
    }
}

/// The front end's resolution agrees with the wrapper real cargo runs, level by level.
#[test]
fn frontend_agrees_with_cargo_on_precedence() {
    use nixcache_rustc_wrapper::frontend::resolve_user_wrapper;
    let fx = Fixture::new("in-place");
    let log = fx.p("which.log");
    for name in ["w-file", "w-home", "w-cargo-build", "w-cli", "w-env"] {
        fx.write_exe(
            &format!("ws/tools/{name}"),
            &format!("#!/bin/sh\necho {name} >> \"$W_LOG\"\nexec \"$@\"\n"),
        );
    }
    fx.write(
        "home/config.toml",
        "build.rustc-wrapper = \"../ws/tools/w-home\"\n",
    );
    fx.write(
        "ws/.cargo/config.toml",
        "build.rustc-wrapper = \"tools/w-file\"\n",
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
        std::fs::remove_dir_all(fx.target()).ok();
        let mut cmd = fx.cargo(&["check"]);
        cmd.env("W_LOG", &log)
            .env("CARGO_HOME", fx.p("home"))
            .envs(env.iter().copied());
        if with_cli {
            cmd.args(["--config", &cli]);
        }
        ok(&mut cmd);
        let ran = std::fs::read_to_string(&log).unwrap_or_default();
        let mut ran: Vec<&str> = ran.lines().collect();
        ran.dedup();
        let lookup = |k: &str| match k {
            "CARGO_HOME" => Some(fx.p("home").into()),
            "PATH" => std::env::var_os("PATH"),
            _ => env.iter().find(|(n, _)| *n == k).map(|(_, v)| os(v)),
        };
        let cli_args: Vec<String> = if with_cli { vec![cli.clone()] } else { vec![] };
        let ours = resolve_user_wrapper(Path::new(WRAPPER), &fx.ws(), &lookup, &cli_args).unwrap();
        let ours: Vec<String> = ours
            .path
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ran, ours, "{what}");
    }
}
