//! Test harness for integration tests that drive REAL cargo builds of the fixture workspaces in
//! `tests/fixtures/` (see its README), in the spirit of ripgrep's `tests/util.rs`.
//!
//! Use it from an integration test with `mod support;`. Pieces:
//!
//! - [`Fixture`]: a private copy of one fixture workspace plus the shared `vendor/` directory
//!   source, in a temporary directory that lives as long as the value.
//! - [`cargo`]: `Fixture::cargo(["build"])` runs the real cargo offline and locked, with a clean
//!   environment, and parses its JSON messages into a [`CargoRun`].
//! - [`caps`]: running commands with capabilities dropped, so that root really cannot write to
//!   read-only files (as inside a Nix build), and [`make_read_only`].
//! - [`snapshot`]: [`TreeSnapshot`], a comparable picture of a directory tree.
//! - [`scenario`]: [`scenario::Scenario`], a fixture in the state a Nix build inherits it
//!   (packed into a read-only store path, unpacked, cargo without capabilities).
//!
//! Every helper panics with a message naming the path or the command line; these are tests.

// Each test binary that says `mod support;` uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod caps;
pub mod cargo;
pub mod hostile;
pub mod layout;
pub mod scenario;
pub mod snapshot;
pub mod store;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub use caps::{has_capabilities, make_read_only, make_writable, unprivileged_command};
pub use cargo::{BuildScriptRun, CargoCommand, CargoRun, CompilerArtifact};
pub use snapshot::{Compare, Mtime, Node, NodeKind, TreeSnapshot};
#[allow(unused_imports)]
pub use store::{canonicalize, Store};

/// `tests/fixtures` in the source tree.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The `cargo-nixcache` binary cargo built for this test run.
pub fn nixcache_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cargo-nixcache"))
}

/// A private copy of `tests/fixtures/<name>` and `tests/fixtures/vendor`, side by side in a
/// fresh temporary directory, so the workspace's `.cargo/config.toml` (`directory = "../vendor"`)
/// finds the vendored registry. Layout:
///
/// ```text
/// <tempdir>/<name>/        root(): the workspace; cargo runs here, target/ lands here
/// <tempdir>/vendor/        the directory source standing in for crates.io
/// <tempdir>/cargo-home/    CARGO_HOME for every command, so no user config leaks in
/// ```
///
/// Dropping it deletes everything, first making read-only parts writable again.
pub struct Fixture {
    root: PathBuf,
    cargo_home: PathBuf,
    tmp: TempDir,
}

impl Fixture {
    /// Copies the fixture workspace `name` (e.g. `"ws-basic"`) and the vendor directory.
    /// A `target/` directory left in the source tree by a manual build is not copied.
    pub fn copy(name: &str) -> Fixture {
        let source = fixtures_dir().join(name);
        assert!(
            source.join("Cargo.toml").is_file(),
            "no fixture workspace at `{}`",
            source.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix("nixcache-fixture-")
            .tempdir()
            .expect("create a temporary directory");
        // Canonical, so paths built here compare equal to the ones cargo prints.
        let base = fs::canonicalize(tmp.path()).expect("canonicalize the temporary directory");
        let root = base.join(name);
        copy_tree(&source, &root);
        copy_tree(&fixtures_dir().join("vendor"), &base.join("vendor"));
        let cargo_home = base.join("cargo-home");
        fs::create_dir(&cargo_home).expect("create cargo-home");
        Fixture {
            root,
            cargo_home,
            tmp,
        }
    }

    /// The workspace root (where `Cargo.toml` and, after a build, `target/` are).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root().join(rel)`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The temporary directory holding the workspace, `vendor/` and `cargo-home/`; a place for
    /// scratch directories (a fake store, a second target dir) that are cleaned up with it.
    pub fn base(&self) -> &Path {
        self.root
            .parent()
            .expect("the workspace is inside the temporary directory")
    }

    /// The shared vendor directory of this copy.
    pub fn vendor(&self) -> PathBuf {
        self.base().join("vendor")
    }

    /// Creates (with parents) and returns `base()/<name>`.
    pub fn scratch_dir(&self, name: &str) -> PathBuf {
        let dir = self.base().join(name);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create `{}`: {e}", dir.display()));
        dir
    }

    /// Reads a file below the workspace root.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.path(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()))
    }

    /// Replaces a file below the workspace root (creating parents). The new mtime is "now",
    /// which is after any earlier build finished, so cargo sees a changed path source.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create `{}`: {e}", parent.display()));
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write `{}`: {e}", path.display()));
    }

    /// Sets a file's mtime to now without changing its bytes, like `touch`. `rel` is relative
    /// to the workspace root, so `../vendor/...` reaches the vendored crates.
    pub fn touch(&self, rel: impl AsRef<Path>) {
        let path = self.path(rel);
        filetime::set_file_mtime(&path, filetime::FileTime::now())
            .unwrap_or_else(|e| panic!("touch `{}`: {e}", path.display()));
    }

    /// `TreeSnapshot::capture(path(rel))`.
    pub fn snapshot(&self, rel: impl AsRef<Path>) -> TreeSnapshot {
        TreeSnapshot::capture(self.path(rel))
    }

    /// Runs `cargo <args>` in the workspace and panics unless it succeeds. See [`CargoCommand`]
    /// for the flags and environment it adds.
    pub fn cargo<I, S>(&self, args: I) -> CargoRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cargo_cmd(args).run()
    }

    /// Like [`Fixture::cargo`], with every capability dropped (see [`caps`]), so a write to a
    /// read-only file fails even when the tests run as root.
    pub fn cargo_unprivileged<I, S>(&self, args: I) -> CargoRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cargo_cmd(args).unprivileged().run()
    }

    /// A cargo invocation to adjust (env, unprivileged, expected failure) before running it.
    pub fn cargo_cmd<I, S>(&self, args: I) -> CargoCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        CargoCommand::new(&self.root, &self.cargo_home, args)
    }

    /// A `Command` for `program` running in the workspace root with the same clean environment
    /// cargo gets (see [`cargo::clean_env`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root);
        cargo::clean_env(&mut cmd, &self.cargo_home);
        cmd
    }

    /// Runs `cargo-nixcache <args>` in the workspace root with the clean environment and
    /// returns its output, whatever the exit status.
    pub fn nixcache<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(nixcache_bin());
        cmd.args(args);
        output_of(&mut cmd)
    }

    /// Like [`Fixture::nixcache`], panicking with the command line and stderr unless it succeeds.
    pub fn nixcache_ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(nixcache_bin());
        cmd.args(args);
        let out = output_of(&mut cmd);
        assert_success(&cmd, &out);
        out
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Without CAP_DAC_OVERRIDE (a Nix build, a normal user) TempDir could not delete the
        // contents of directories a test made read-only.
        let _ = caps::try_make_writable(self.tmp.path());
    }
}

/// Runs `cmd`, panicking only if it cannot be started.
pub fn output_of(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("failed to start `{}`: {e}", command_line(cmd)))
}

/// Panics with the command line, status, stdout and stderr unless `out` is a success.
pub fn assert_success(cmd: &Command, out: &Output) {
    assert!(
        out.status.success(),
        "command failed ({}): {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        command_line(cmd),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// A copy-pasteable rendering of `cmd`: changed environment variables, program, arguments.
pub fn command_line(cmd: &Command) -> String {
    let mut parts = Vec::new();
    if let Some(dir) = cmd.get_current_dir() {
        parts.push(format!("cd {} &&", shell_quote(dir.as_os_str())));
    }
    let (removed, set): (Vec<_>, Vec<_>) = cmd.get_envs().partition(|(_, v)| v.is_none());
    if !removed.is_empty() || !set.is_empty() {
        parts.push("env".to_string());
    }
    for (key, _) in removed {
        parts.push(format!("-u {}", shell_quote(key)));
    }
    for (key, value) in set {
        let value = value.expect("partitioned on is_none");
        parts.push(format!("{}={}", shell_quote(key), shell_quote(value)));
    }
    parts.push(shell_quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(shell_quote));
    parts.join(" ")
}

fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,@+%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Copies a directory tree (files, directories, symlinks as symlinks), skipping `target/`.
fn copy_tree(from: &Path, to: &Path) {
    let walk = walkdir::WalkDir::new(from)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !(e.file_type().is_dir() && e.file_name() == "target"));
    for entry in walk {
        let entry = entry.unwrap_or_else(|e| panic!("walk `{}`: {e}", from.display()));
        let rel = entry
            .path()
            .strip_prefix(from)
            .expect("walkdir stays below its root");
        let dest = to.join(rel);
        let file_type = entry.file_type();
        let result = if file_type.is_dir() {
            fs::create_dir_all(&dest)
        } else if file_type.is_symlink() {
            fs::read_link(entry.path()).and_then(|target| std::os::unix::fs::symlink(target, &dest))
        } else {
            fs::copy(entry.path(), &dest).map(drop)
        };
        result.unwrap_or_else(|e| {
            panic!(
                "copy `{}` to `{}`: {e}",
                entry.path().display(),
                dest.display()
            )
        });
    }
}
