//! Scenarios: a fixture copy in the state a Nix build inherits it, for the wrapper's and the
//! stale-binary guard's tests (tests/wrapper.rs, tests/freshen.rs). A [`Scenario`]:
//!
//! 1. the vendored registry sources live in a store path made Nix-like ([`canonicalize`]: every
//!    mtime 1, `chmod -R a-w`), and the workspace sources carry mtime 1, as a Nix build copies
//!    them out of the store;
//! 2. the "deps derivation" builds, then the REAL `cargo nixcache pack` writes its target dir
//!    into a store path `<store>/<32 nixbase32 chars>-deps`, which is canonicalized too;
//! 3. the target dir is removed and the REAL `cargo nixcache unpack` restores it (it sees the
//!    canonical store and gives inline files mtime 1: asserted).
//!
//! Cargo then runs plain ([`Scenario::plain`], the negative control), behind the wrapper
//! ([`Scenario::wrapped`]) or through `cargo nixcache exec` ([`Scenario::exec`]), always with
//! every capability dropped (`setpriv --inh-caps=-all --bounding-set=-all` when the tests have
//! any), so that root cannot write the store either.

use crate::support::store::{canonicalize, Store};
use crate::support::{self, caps, CargoCommand, CargoRun, CompilerArtifact, Fixture};
use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const WRAPPER: &str = env!("CARGO_BIN_EXE_nixcache-rustc-wrapper");

/// Messages rustc/cargo print when an output is a read-only symlink into the store.
pub const READ_ONLY_ERRORS: &[&str] = &[
    "not writeable",
    "Permission denied",
    "Read-only file system",
];

/// One scenario's fixture copy, store and wrapper strategy.
pub struct Scenario {
    pub fx: Fixture,
    pub store: Store,
    pub strategy: &'static str,
    /// The last [`Scenario::inherit_dir`]: store path and directory, for [`Scenario::reinherit`].
    last: RefCell<Option<(PathBuf, PathBuf)>>,
}

impl Scenario {
    /// Copies `tests/fixtures/<fixture>` and moves the vendored sources into a canonical store
    /// path, as crane's `vendorCargoDeps` does, pointing the source replacement at it.
    pub fn new(fixture: &str, strategy: &'static str) -> Scenario {
        let fx = Fixture::copy(fixture);
        let store = Store::new(&fx);
        store.vendor(&fx);
        Scenario {
            fx,
            store,
            strategy,
            last: RefCell::new(None),
        }
    }

    pub fn target(&self) -> PathBuf {
        self.fx.path("target")
    }

    /// `cargo ARGS`: not wrapped, no capabilities.
    pub fn plain<I, S>(&self, args: I) -> CargoCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.fx
            .cargo_cmd(args)
            .env_remove("NIXCACHE_USER_WRAPPER")
            .env_remove("NIXCACHE_WRAPPER_STRATEGY")
            .unprivileged()
    }

    /// `cargo ARGS` behind the wrapper alone (no user wrapper), with this scenario's strategy.
    pub fn wrapped<I, S>(&self, args: I) -> CargoCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.plain(args)
            .env("RUSTC_WRAPPER", WRAPPER)
            .env("NIXCACHE_WRAPPER_STRATEGY", self.strategy)
    }

    /// `cargo nixcache exec -- CARGO...` without capabilities: the front end resolves the user
    /// wrapper from `cargo`'s environment and directory (pass a command that is not
    /// `unprivileged()`; its program, arguments, directory and environment are used) and keeps
    /// this scenario's strategy.
    pub fn exec(&self, cargo: CargoCommand) -> Command {
        let inner = cargo
            .env_remove("NIXCACHE_USER_WRAPPER")
            .env("NIXCACHE_WRAPPER_STRATEGY", self.strategy)
            .command();
        let mut cmd = caps::unprivileged_command(support::nixcache_bin());
        cmd.arg("exec")
            .arg("--")
            .arg(inner.get_program())
            .args(inner.get_args());
        if let Some(dir) = inner.get_current_dir() {
            cmd.current_dir(dir);
        }
        for (key, value) in inner.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// The deps derivation: the workspace's sources get mtime 1 (a Nix build copies them out of
    /// the store), then each cargo command runs, unprivileged.
    pub fn deps(&self, commands: &[CargoCommand]) {
        support::store::sources_from_store(&self.fx);
        for cmd in commands {
            cmd.clone().run();
        }
    }

    /// [`Scenario::deps`] with plain `cargo ARGS` commands, then [`Scenario::inherit`].
    pub fn inherited(&self, commands: &[&[&str]]) -> PathBuf {
        let cmds: Vec<CargoCommand> = commands.iter().map(|args| self.plain(*args)).collect();
        self.deps(&cmds);
        self.inherit()
    }

    /// [`Scenario::inherit_dir`] of the target dir.
    pub fn inherit(&self) -> PathBuf {
        self.inherit_dir(&self.target())
    }

    /// `cargo nixcache pack` of `dir` into a new store path, made Nix-like; `dir` removed and
    /// restored by `cargo nixcache unpack`. Returns the store path.
    pub fn inherit_dir(&self, dir: &Path) -> PathBuf {
        let out = self.store.path("deps");
        self.nixcache(&[
            "pack".as_ref(),
            "--target-dir".as_ref(),
            dir.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        canonicalize(&out);
        fs::remove_dir_all(dir).unwrap();
        self.unpack(&out, dir);
        *self.last.borrow_mut() = Some((out.clone(), dir.to_owned()));
        out
    }

    /// `cargo nixcache unpack ARTIFACTS --target-dir DIR`; asserts that it saw a canonical store
    /// and gave the restored files its mtime (so an untouched tree is all Fresh).
    pub fn unpack(&self, artifacts: &Path, dir: &Path) {
        let out = self.nixcache(&[
            "--json".as_ref(),
            "unpack".as_ref(),
            artifacts.as_os_str(),
            "--target-dir".as_ref(),
            dir.as_os_str(),
        ]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["mtimes"], "store", "unpack report: {report}");
    }

    /// Removes the last inherited dir (with whatever a build left there) and unpacks the same
    /// store path again: the next derivation's starting point. Sources keep their mtimes.
    pub fn reinherit(&self) {
        let (artifacts, dir) = self.last.borrow().clone().expect("nothing inherited yet");
        fs::remove_dir_all(&dir).unwrap();
        self.unpack(&artifacts, &dir);
    }

    /// The negative control every scenario has: `cmd` (not wrapped) fails on the inherited
    /// tree because an output is a read-only link into the store. The tree is then restored
    /// ([`Scenario::reinherit`]), so the wrapped build that follows starts from the same state
    /// and rebuilds every unit itself (a plain build can get some units through, e.g. a build
    /// script linked by `cc`, which replaces its output).
    pub fn negative_control(&self, cmd: CargoCommand) -> CargoRun {
        let run = fails_read_only(cmd);
        self.reinherit();
        run
    }

    /// `cargo nixcache --store-dir STORE ARGS` in the workspace; panics unless it succeeds.
    pub fn nixcache(&self, args: &[&OsStr]) -> Output {
        let mut all = vec![format!("--store-dir={}", self.store.dir.display()).into()];
        all.extend(args.iter().map(|a| a.to_os_string()));
        self.fx.nixcache_ok(all)
    }

    /// The checks every successful wrapped build ends with: no temp names left in target/.
    pub fn assert_clean(&self) {
        let leaks = mentions_tmp(&self.target());
        assert!(leaks.is_empty(), "temp names left in target/: {leaks:?}");
    }

    /// Runs `rel` (below the target dir) and returns its stdout.
    pub fn run_bin(&self, rel: &str) -> String {
        let mut cmd = Command::new(self.target().join(rel));
        let out = run_ok(&mut cmd);
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Runs `cmd` and panics (command line, status, both streams) unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = support::output_of(cmd);
    support::assert_success(cmd, &out);
    out
}

/// Both streams of `out`, for assertions.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` and asserts that it fails because an inherited output is read-only: the negative
/// control every scenario has.
pub fn fails_read_only(cmd: CargoCommand) -> CargoRun {
    let run = cmd.run_failing();
    assert!(
        READ_ONLY_ERRORS.iter().any(|e| run.stderr.contains(e)),
        "failed for another reason:\n{run}"
    );
    run
}

/// Like [`fails_read_only`] for a plain `Command` (rustc driven directly).
pub fn command_fails_read_only(cmd: &mut Command) -> Output {
    let out = support::output_of(cmd);
    let t = text(&out);
    assert!(!out.status.success(), "expected a failure:\n{t}");
    assert!(
        READ_ONLY_ERRORS.iter().any(|e| t.contains(e)),
        "failed for another reason:\n{t}"
    );
    out
}

/// The units cargo (re)compiled, as [`CompilerArtifact::unit`] names, sorted, from the JSON
/// messages on stdout of a cargo run through `cargo nixcache exec` (which `CargoRun` cannot read).
pub fn dirty_units(stdout: &[u8]) -> Vec<String> {
    let mut units: Vec<String> = String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["fresh"] == false)
        .map(|v| {
            let package_id = v["package_id"].as_str().unwrap().to_owned();
            CompilerArtifact {
                package: support::cargo::package_name(&package_id),
                package_id,
                target_name: v["target"]["name"].as_str().unwrap().to_owned(),
                kind: v["target"]["kind"][0].as_str().unwrap().to_owned(),
                test: v["profile"]["test"] == true,
                fresh: false,
                filenames: Vec::new(),
                executable: None,
            }
            .unit()
        })
        .collect();
    units.sort();
    units
}

/// Every path under `dir` whose name or content mentions the wrapper's temp names.
pub fn mentions_tmp(dir: &Path) -> Vec<PathBuf> {
    let needle = nixcache_rustc_wrapper::plan::TMP_PREFIX.as_bytes();
    let contains = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let mut found = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        if contains(e.file_name().as_encoded_bytes())
            || (e.file_type().is_file() && contains(&fs::read(e.path()).unwrap()))
        {
            found.push(e.path().to_owned());
        }
    }
    found
}

pub fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("lstat `{}`: {e}", p.display()))
        .file_type()
        .is_symlink()
}

/// The machine an ELF file is built for (`e_machine`), as `file` reports it.
pub fn elf_machine(path: &Path) -> u16 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// `e_machine` of AArch64 ELF files (`file`: "ARM aarch64").
pub const EM_AARCH64: u16 = 183;

pub fn os(s: &str) -> std::ffi::OsString {
    s.into()
}
