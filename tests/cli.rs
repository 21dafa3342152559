//! The command line as a newcomer meets it: output into closed pipes, which command takes which
//! option, error messages that name the real cause, and `demo`.

mod support;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Output, Stdio};

use support::{Fixture, Store};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `cargo nixcache --store-dir=<store> <args>` in the fixture, whatever its exit status.
fn nixcache(fx: &Fixture, store: &Store, args: &[&str]) -> Output {
    fx.nixcache(std::iter::once(store.arg()).chain(args.iter().map(|a| a.to_string())))
}

/// A file naming `n` distinct store paths of `store`, one a line (the `refs` output is as long).
fn file_with_references(store: &Store, dir: &Path, n: usize) -> Vec<String> {
    fs::create_dir_all(dir).unwrap();
    let refs: Vec<String> = (0..n)
        .map(|i| format!("{}/{i:032}-p", store.dir.display()))
        .collect();
    fs::write(dir.join("refs.txt"), refs.join("\n")).unwrap();
    refs
}

/// `cargo nixcache refs DIR | head -1`: the reader is gone long before the last line, and the
/// command ends quietly, as it would on a normal exit. (It used to panic: "failed printing to
/// stdout: Broken pipe", rc 101.)
#[test]
fn refs_piped_into_head_exits_quietly() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let dir = fx.scratch_dir("scanned");
    // Far more than a pipe holds (64 KiB), so refs is still writing when head is gone.
    let refs = file_with_references(&store, &dir, 20_000);
    let err = fx.base().join("refs.stderr");
    let mut cmd = fx.command("bash");
    cmd.arg("-c")
        .arg(r#"set -o pipefail; "$0" "$1" refs "$2" 2>"$3" | head -1"#)
        .arg(support::nixcache_bin())
        .arg(store.arg())
        .arg(&dir)
        .arg(&err);
    let out = support::output_of(&mut cmd);
    let err = fs::read_to_string(&err).unwrap();
    assert!(err.is_empty(), "refs printed on stderr: {err}");
    assert_eq!(out.status.code(), Some(0), "refs | head -1 failed: {err}");
    let mut first = refs.clone();
    first.sort();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", first[0])
    );
}

/// A pipe whose reading end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> OwnedFd {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    write
}

/// Every command that writes to stdout ends quietly (exit 0, nothing on stderr) when stdout is a
/// pipe nobody reads any more.
#[test]
fn every_stdout_write_ends_quietly_on_a_closed_pipe() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let dir = fx.scratch_dir("scanned");
    file_with_references(&store, &dir, 3);
    let store_arg = store.arg();
    let cases: [&[&str]; 5] = [
        &[&store_arg, "refs", s(&dir)],
        &[&store_arg, "refs", "--json", s(&dir)],
        &["env"],
        &["env", "--json"],
        &["freshen", "--json"],
    ];
    for args in cases {
        let mut cmd = fx.command(support::nixcache_bin());
        cmd.args(args).stdout(Stdio::from(closed_pipe()));
        let out = support::output_of(&mut cmd);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}\n{}",
            support::command_line(&cmd),
            out.status,
            stderr(&out)
        );
    }
    // The result still decides the exit code: a forbidden reference is not hidden by `| head`.
    let forbidden = format!("{}/{:032}-p", store.dir.display(), 1);
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.args([&store_arg, "refs", "--forbid", &forbidden, s(&dir)])
        .stdout(Stdio::from(closed_pipe()));
    let out = support::output_of(&mut cmd);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("references forbidden `{forbidden}`")),
        "{}",
        stderr(&out)
    );
}

/// `env --json` prints the variables as a JSON object (it used to print the shell exports).
#[test]
fn env_json_prints_the_variables_as_json() {
    let fx = Fixture::copy("ws-basic");
    for args in [["env", "--json"], ["--json", "env"]] {
        let out = fx.nixcache_ok(args);
        let vars: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let wrapper = vars["RUSTC_WRAPPER"].as_str().unwrap();
        assert!(wrapper.ends_with("/nixcache-rustc-wrapper"), "{vars}");
        assert!(Path::new(wrapper).is_file(), "{vars}");
        assert_eq!(vars["NIXCACHE_USER_WRAPPER"], "", "{vars}");
        assert_eq!(vars["NIXCACHE_WRAPPER_STRATEGY"], "in-place", "{vars}");
        assert_eq!(vars.as_object().unwrap().len(), 3, "{vars}");
    }
}

/// An option a command has no use for is a usage error naming the option and the command,
/// wherever it is given; the command does not run.
#[test]
fn an_option_a_command_does_not_take_is_refused() {
    let fx = Fixture::copy("ws-basic");
    let marker = fx.base().join("ran");
    let touch = format!("touch {}", s(&marker));
    let cases: [(&[&str], &str, &str); 6] = [
        (&["--json", "exec", "sh", "-c", &touch], "--json", "exec"),
        (&["-q", "exec", "sh", "-c", &touch], "--quiet", "exec"),
        (
            &["--store-dir", "/elsewhere", "exec", "sh", "-c", &touch],
            "--store-dir",
            "exec",
        ),
        (&["--store-dir", "/elsewhere", "env"], "--store-dir", "env"),
        (&["--quiet", "env"], "--quiet", "env"),
        (&["--json", "demo", "--keep", s(&marker)], "--json", "demo"),
    ];
    for (args, option, command) in cases {
        let out = fx.nixcache(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "`{option}` does not apply to `cargo nixcache {command}`"
            )),
            "{args:?}: {err}"
        );
        assert!(!marker.exists(), "{args:?} ran anyway");
    }
    // After the command name, clap itself refuses what the command does not take.
    for args in [
        &["env", "--quiet"][..],
        &["env", "--store-dir", "/elsewhere"],
        &["demo", "--json"],
        &["demo", "--store-dir", "/elsewhere"],
        &["refs", "--quiet", "."],
    ] {
        let out = fx.nixcache(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

/// `env --config 'bad['` is a usage error (2) like any bad flag value; it exited 1 while the
/// exit codes came from a table of error types that missed the user wrapper's. `exec` takes the
/// same `--config` from the cargo command line it runs, and refuses it the same way.
#[test]
fn env_config_that_is_not_toml_exits_2() {
    let fx = Fixture::copy("ws-basic");
    let marker = fx.base().join("ran");
    let touch = format!("touch {}", s(&marker));
    for args in [
        &["env", "--config", "bad["][..],
        &["exec", "sh", "-c", &touch, "--config", "bad["],
    ] {
        let out = fx.nixcache(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(
                "error: `--config bad[` is neither an existing file nor a TOML `KEY=VALUE`\n  \
                 caused by: TOML parse error"
            ),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!marker.exists(), "{args:?} ran anyway");
    }
}

/// The help of each command lists exactly the options it takes.
#[test]
fn help_lists_the_options_each_command_takes() {
    let fx = Fixture::copy("ws-basic");
    let takes = [
        ("pack", [true, true, true]),
        ("unpack", [true, true, true]),
        ("verify", [true, true, true]),
        ("freshen", [true, true, true]),
        ("refs", [true, false, true]),
        ("env", [false, false, true]),
        ("exec", [false, false, false]),
        ("demo", [false, false, false]),
    ];
    for (command, [store_dir, quiet, json]) in takes {
        let help = String::from_utf8(fx.nixcache_ok([command, "--help"]).stdout).unwrap();
        assert_eq!(
            help.contains("--store-dir <DIR>"),
            store_dir,
            "{command}:\n{help}"
        );
        assert_eq!(help.contains("-q, --quiet"), quiet, "{command}:\n{help}");
        assert_eq!(help.contains("--json"), json, "{command}:\n{help}");
    }
}

/// freshen reads the inherited manifest in the store dir it is given (`--store-dir` before or
/// after the command name), and says which one to pass when it is not given.
#[test]
fn freshen_honours_store_dir() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fs::create_dir(fx.path("target")).unwrap();
    let out = store.path("deps");
    fx.nixcache_ok([
        store.arg().as_str(),
        "pack",
        "--target-dir",
        "target",
        "--out",
        s(&out),
    ]);
    let freshen = |args: &[&str]| {
        let mut cmd = fx.command(support::nixcache_bin());
        cmd.args(args)
            .env_remove("NIX_STORE")
            .env_remove("NIX_STORE_DIR");
        support::output_of(&mut cmd)
    };
    let store_arg = store.arg();
    for args in [
        &[&store_arg, "freshen", "--inherited", s(&out)][..],
        &["freshen", &store_arg, "--inherited", s(&out)],
    ] {
        let res = freshen(args);
        assert!(res.status.success(), "{args:?}: {}", stderr(&res));
        assert!(
            stderr(&res).contains("Freshened 0 of 3 local packages"),
            "{}",
            stderr(&res)
        );
    }
    let res = freshen(&["freshen", "--inherited", s(&out)]);
    assert!(!res.status.success());
    assert!(
        stderr(&res).contains(&format!(
            "was packed for the store dir `{}`, but the store dir here is `/nix/store`; pass --store-dir {}",
            store.dir.display(),
            store.dir.display()
        )),
        "{}",
        stderr(&res)
    );
}

/// A path that is not there is called so, whichever command reads artifacts.
#[test]
fn missing_artifacts_do_not_exist() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let gone = fx.base().join("gone");
    let crane_gone = gone.join("target.tar.zst");
    for args in [
        vec!["unpack", s(&gone), "--target-dir", "t"],
        vec!["unpack", s(&crane_gone), "--target-dir", "t"],
        vec!["verify", s(&gone)],
        vec!["freshen", "--inherited", s(&gone)],
    ] {
        let out = nixcache(&fx, &store, &args);
        let err = stderr(&out);
        let path = if args.contains(&s(&crane_gone)) {
            &crane_gone
        } else {
            &gone
        };
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(&format!("`{}` does not exist", path.display())),
            "{args:?}: {err}"
        );
        assert!(!err.contains("holds no cargo artifacts"), "{args:?}: {err}");
        assert!(!fx.path("t").exists(), "{args:?} created the target dir");
    }
}

/// A `--manifest-path` that is missing or a directory is reported as such, first, by both
/// commands that take it; nothing about cargo, even where cargo's config could set a build dir
/// (which makes pack ask cargo).
#[test]
fn a_bad_manifest_path_is_about_the_path() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let config = fx.read(".cargo/config.toml");
    fx.write(
        ".cargo/config.toml",
        format!("{config}\n[build]\nbuild-dir = \"build\"\n"),
    );
    fs::create_dir(fx.path("target")).unwrap();
    let out = store.path("deps");
    let gone = fx.base().join("gone/Cargo.toml");
    let dir = fx.root().to_path_buf();
    for (manifest, says) in [
        (&gone, "does not exist"),
        (&dir, "is a directory; pass the path of its Cargo.toml"),
    ] {
        let first_line = format!("error: --manifest-path `{}` {says}", manifest.display());
        for args in [
            vec!["freshen", "--manifest-path", s(manifest)],
            vec![
                "pack",
                "--target-dir",
                "target",
                "--out",
                s(&out),
                "--manifest-path",
                s(manifest),
            ],
        ] {
            let res = nixcache(&fx, &store, &args);
            let err = stderr(&res);
            assert!(!res.status.success(), "{args:?}");
            assert!(err.starts_with(&first_line), "{args:?}: {err}");
            assert!(!err.contains("cargo metadata"), "{args:?}: {err}");
            assert!(!out.exists(), "{args:?} wrote {}", out.display());
        }
    }
}

/// `demo --help` shows where the example comes from, not a path of the machine that built the
/// binary.
#[test]
fn demo_help_names_no_build_machine_path() {
    let fx = Fixture::copy("ws-basic");
    let help = String::from_utf8(fx.nixcache_ok(["demo", "--help"]).stdout).unwrap();
    let here = env!("CARGO_MANIFEST_DIR");
    assert!(!help.contains(here), "{help}");
    assert!(help.contains("tests/fixtures/ws-basic"), "{help}");
}

/// Outside a checkout, with no `--workspace`, the demo says where its example is expected;
/// a `--workspace` that is not there is called so.
#[test]
fn demo_without_an_example_says_what_to_pass() {
    let fx = Fixture::copy("ws-basic");
    let elsewhere = fx.scratch_dir("elsewhere");
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.current_dir(&elsewhere).arg("demo");
    let out = support::output_of(&mut cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "no example workspace at `{}`",
            elsewhere.join("tests/fixtures/ws-basic").display()
        )) && err.contains("pass --workspace"),
        "{err}"
    );
    let gone = fx.base().join("gone");
    let out = fx.nixcache(["demo", "--workspace", s(&gone)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("`{}` does not exist", gone.display())),
        "{err}"
    );
}

/// The demo's whole cycle on a copy of the example, run as an installed binary would be (the
/// wrapper beside it, no `cargo run` around it). It needs no `zstd` command: crane's pipeline is
/// timed with libzstd feeding GNU tar.
#[test]
fn demo_runs_the_whole_cycle() {
    let fx = Fixture::copy("ws-basic");
    let keep = fx.base().join("kept");
    let out = fx.nixcache_ok(["demo", "--workspace", s(fx.root()), "--keep", s(&keep)]);
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "deps derivation: nixcache pack",
        "crane use-zstd inherit (zstd -d | tar -x)",
        "app derivation: nixcache unpack",
        // applib changed; the root and app did not.
        "app derivation: nixcache freshen (1 of 3 packages)",
        // applib and app, which depends on it, rebuilt; the vendored crates fresh.
        "app derivation: cargo build (4 of 6 units fresh)",
        "app derivation: nixcache pack",
        "the app prints: hello from the changed applib",
    ] {
        assert!(table.contains(row), "no `{row}` in:\n{table}");
    }
    // The crane archive was made with libzstd: a zstd frame.
    let archive = fs::read(keep.join("target.tar.zst")).unwrap();
    assert_eq!(&archive[..4], &[0x28, 0xb5, 0x2f, 0xfd], "not a zstd frame");
}
