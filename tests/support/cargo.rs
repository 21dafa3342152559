//! Running the real cargo on a fixture and reading what it did from its JSON messages.
//!
//! Every invocation gets, right after the subcommand, `--offline --locked` and (for subcommands
//! that compile) `--message-format=json-render-diagnostics`: artifacts arrive on stdout as JSON,
//! diagnostics are rendered to stderr as usual. The environment is cleaned by [`clean_env`].
//!
//! The test matrix (`tests/cargo-matrix.sh`) reruns suites with another cargo and layout:
//! [`ENV_TEST_CARGO`] names the cargo binary to run (its directory also goes first in `PATH`,
//! so `cargo nixcache exec -- cargo` and the `cargo metadata` calls of cargo-nixcache find the
//! same one); [`ENV_TEST_LAYOUT`]` = v2` makes every cargo use `-Zbuild-dir-new-layout`. rustc
//! stays the toolchain's (1.95): a second cargo does not bring its own.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde::Deserialize;

use super::{caps, command_line, output_of};

/// Subcommands (and their aliases) that accept `--message-format`.
const COMPILING_SUBCOMMANDS: &[&str] = &[
    "b", "bench", "build", "c", "check", "d", "doc", "r", "run", "rustc", "rustdoc", "t", "test",
];

/// A cargo binary the tests run instead of the one running them (e.g. cargo 0.98 = 1.97).
pub const ENV_TEST_CARGO: &str = "NIXCACHE_TEST_CARGO";
/// `v2`: every cargo builds with `-Zbuild-dir-new-layout` (a cargo that allows `-Z` flags);
/// `classic` or unset: cargo's default layout.
pub const ENV_TEST_LAYOUT: &str = "NIXCACHE_TEST_LAYOUT";

/// The cargo to run: `$NIXCACHE_TEST_CARGO`, else `$CARGO` (set by the `cargo test` running
/// us), else `cargo` from PATH.
pub fn cargo_program() -> OsString {
    std::env::var_os(ENV_TEST_CARGO)
        .or_else(|| std::env::var_os("CARGO"))
        .unwrap_or_else(|| "cargo".into())
}

/// Whether the tests run with build-dir layout v2 ([`ENV_TEST_LAYOUT`]). Panics on a value
/// other than `v2` or `classic`, so a typo cannot silently test the default layout.
pub fn layout_v2() -> bool {
    match std::env::var(ENV_TEST_LAYOUT).as_deref() {
        Ok("v2") => true,
        Ok("classic") | Ok("") | Err(std::env::VarError::NotPresent) => false,
        other => panic!("{ENV_TEST_LAYOUT} must be `v2` or `classic`, not {other:?}"),
    }
}

/// `PATH` with the directory of [`ENV_TEST_CARGO`] first, when it is set.
fn path_with_test_cargo() -> Option<OsString> {
    let cargo = PathBuf::from(std::env::var_os(ENV_TEST_CARGO)?);
    let dir = cargo.parent()?.to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(dir).chain(std::env::split_paths(&rest));
    Some(std::env::join_paths(paths).expect("PATH entries without `:`"))
}

/// Whether a variable of the test process's environment must not reach the fixture's cargo.
///
/// - `CARGO*` and `__CARGO*`: the outer `cargo test` sets `CARGO`, `CARGO_PKG_*`,
///   `CARGO_MANIFEST_*`, `CARGO_BIN_EXE_*`, `CARGO_MAKEFLAGS` (its jobserver), maybe
///   `CARGO_PRIMARY_PACKAGE`; a developer's shell or CI may set `CARGO_TARGET_DIR`,
///   `CARGO_BUILD_*` (target dir, rustflags, wrapper, jobs), `CARGO_ENCODED_RUSTFLAGS`,
///   `CARGO_PROFILE_*`, `CARGO_INCREMENTAL`, `CARGO_HOME`, `CARGO_NET_*`, `CARGO_LOG`, ...
///   Kept: `CARGO_TARGET_<TRIPLE>_LINKER`, which is toolchain setup (a Nix shell may need it),
///   not something the tests are about.
/// - `RUSTC_WRAPPER`, `RUSTC_WORKSPACE_WRAPPER`, `RUSTFLAGS`, `RUSTDOCFLAGS`: change how units
///   compile and what their fingerprints are.
/// - `MAKEFLAGS`, `MFLAGS`: a jobserver inherited from an outer `make` or `nix-build`.
/// - `OUT_DIR`: visible to `env!` in packages without a build script.
///
/// Kept: `PATH`, `HOME`, `TMPDIR`, `RUSTC`, `RUSTDOC`, `RUSTUP_*` (the same toolchain as the
/// outer build).
pub fn is_leaky(key: &str) -> bool {
    let linker = key
        .strip_prefix("CARGO_TARGET_")
        .and_then(|rest| rest.strip_suffix("_LINKER"))
        .is_some_and(|triple| !triple.is_empty());
    (key.starts_with("CARGO") && !linker)
        || key.starts_with("__CARGO")
        || matches!(
            key,
            "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "MAKEFLAGS"
                | "MFLAGS"
                | "OUT_DIR"
        )
}

/// Removes the [`is_leaky`] variables present in this process from `cmd`'s environment and sets
/// `CARGO_HOME` (a private one, so no user config or registry cache leaks in),
/// `CARGO_INCREMENTAL=0` (as in Nix builds) and `CARGO_TERM_COLOR=never`; and the test matrix's
/// cargo first in `PATH` and its layout (see the module doc).
pub fn clean_env(cmd: &mut Command, cargo_home: &Path) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_leaky) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_HOME", cargo_home)
        .env("CARGO_INCREMENTAL", "0")
        .env("CARGO_TERM_COLOR", "never");
    if let Some(path) = path_with_test_cargo() {
        cmd.env("PATH", path);
    }
    if layout_v2() {
        cmd.env("CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT", "true");
    }
}

/// One cargo invocation in a fixture, configured before it runs. Made by
/// [`Fixture::cargo_cmd`](super::Fixture::cargo_cmd).
#[derive(Clone, Debug)]
pub struct CargoCommand {
    dir: PathBuf,
    cargo_home: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    unprivileged: bool,
}

impl CargoCommand {
    pub(crate) fn new<I, S>(dir: &Path, cargo_home: &Path, args: I) -> CargoCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        CargoCommand {
            dir: dir.to_path_buf(),
            cargo_home: cargo_home.to_path_buf(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            envs: Vec::new(),
            unprivileged: false,
        }
    }

    /// Appends an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Sets a variable, after the clean-up (so `CARGO_TARGET_DIR`, `RUSTC_WRAPPER` etc. can be
    /// set on purpose).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let value = Some(value.as_ref().to_owned());
        self.envs.push((key.as_ref().to_owned(), value));
        self
    }

    /// Removes a variable, after the clean-up.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs in `dir` instead of the workspace root.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = dir.as_ref().to_path_buf();
        self
    }

    /// Runs cargo (and so rustc and build scripts) with every capability dropped; see
    /// [`caps`](super::caps).
    pub fn unprivileged(mut self) -> Self {
        self.unprivileged = true;
        self
    }

    /// The exact `Command` [`run`](Self::run) executes.
    pub fn command(&self) -> Command {
        let mut cmd = if self.unprivileged {
            caps::unprivileged_command(cargo_program())
        } else {
            Command::new(cargo_program())
        };
        cmd.current_dir(&self.dir).args(self.full_args());
        clean_env(&mut cmd, &self.cargo_home);
        for (key, value) in &self.envs {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Runs cargo and panics, with the command line and cargo's whole stderr, unless it
    /// succeeds.
    pub fn run(self) -> CargoRun {
        let run = self.run_unchecked();
        assert!(run.status.success(), "cargo failed\n{run}");
        run
    }

    /// Runs cargo and panics, with the command line and cargo's stderr, if it succeeds.
    pub fn run_failing(self) -> CargoRun {
        let run = self.run_unchecked();
        assert!(!run.status.success(), "cargo unexpectedly succeeded\n{run}");
        run
    }

    /// Runs cargo, whatever its exit status.
    pub fn run_unchecked(self) -> CargoRun {
        let mut cmd = self.command();
        let output = output_of(&mut cmd);
        CargoRun::parse(
            command_line(&cmd),
            output.status,
            &String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The arguments with the subcommand's flags inserted right after the subcommand, so they
    /// stay in front of any `--` the caller passes.
    fn full_args(&self) -> Vec<OsString> {
        let Some(at) = self.args.iter().position(|a| {
            let a = a.to_string_lossy();
            !a.starts_with('-') && !a.starts_with('+')
        }) else {
            return self.args.clone();
        };
        let subcommand = self.args[at].to_string_lossy();
        let mut extra: Vec<OsString> = vec!["--offline".into(), "--locked".into()];
        let has_format = self
            .args
            .iter()
            .any(|a| a.to_string_lossy().starts_with("--message-format"));
        if COMPILING_SUBCOMMANDS.contains(&&*subcommand) && !has_format {
            extra.push("--message-format=json-render-diagnostics".into());
        }
        let mut args = self.args.clone();
        args.splice(at + 1..at + 1, extra);
        args
    }
}

/// What a finished cargo invocation reported.
#[derive(Clone, Debug)]
pub struct CargoRun {
    /// Copy-pasteable command line, including the environment changes.
    pub command_line: String,
    pub status: ExitStatus,
    /// `compiler-artifact` messages, in cargo's order.
    pub artifacts: Vec<CompilerArtifact>,
    /// `build-script-executed` messages. Cargo sends these for Fresh build-script runs too, so
    /// they say nothing about whether a script ran.
    pub build_scripts: Vec<BuildScriptRun>,
    /// `success` of the `build-finished` message, if there was one.
    pub build_finished: Option<bool>,
    /// Stdout lines that are not cargo messages: test output, or the program's under `cargo run`.
    pub stdout: String,
    /// Cargo's stderr: progress lines and rendered diagnostics.
    pub stderr: String,
}

/// One `compiler-artifact` message: a unit cargo compiled (`fresh: false`) or found up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompilerArtifact {
    /// Cargo's package id spec, e.g.
    /// `registry+https://github.com/rust-lang/crates.io-index#nc-alpha@0.1.0`.
    pub package_id: String,
    /// The package name taken from `package_id`, e.g. `nc-alpha`.
    pub package: String,
    /// The target name, e.g. `nc_alpha`, `app`, `build-script-build`.
    pub target_name: String,
    /// The target kind: `lib`, `proc-macro`, `bin`, `test`, `example`, `custom-build`, ...
    pub kind: String,
    /// Compiled with the test harness: `test` and `bench` targets, and the second unit `cargo test`
    /// makes of a lib or bin.
    pub test: bool,
    pub fresh: bool,
    pub filenames: Vec<PathBuf>,
    pub executable: Option<PathBuf>,
}

/// One `build-script-executed` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildScriptRun {
    pub package_id: String,
    pub package: String,
    pub out_dir: PathBuf,
}

impl CompilerArtifact {
    /// `"<package> <kind>:<target>"`, plus `" (test)"` for the test-harness build of a lib or
    /// bin; e.g. `app bin:app`, `applib lib:applib (test)`, `app test:cli`,
    /// `nc-alpha custom-build:build-script-build`.
    pub fn unit(&self) -> String {
        let harness = self.test && !matches!(self.kind.as_str(), "test" | "bench");
        let test = if harness { " (test)" } else { "" };
        format!("{} {}:{}{test}", self.package, self.kind, self.target_name)
    }
}

impl CargoRun {
    fn parse(command_line: String, status: ExitStatus, stdout: &str, stderr: String) -> CargoRun {
        let mut run = CargoRun {
            command_line,
            status,
            artifacts: Vec::new(),
            build_scripts: Vec::new(),
            build_finished: None,
            stdout: String::new(),
            stderr,
        };
        for line in stdout.lines() {
            if !run.take_message(line) {
                run.stdout.push_str(line);
                run.stdout.push('\n');
            }
        }
        run
    }

    /// Records `line` if it is a cargo JSON message; false if it is not one.
    fn take_message(&mut self, line: &str) -> bool {
        if !line.starts_with('{') {
            return false;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        match value.get("reason").and_then(|r| r.as_str()) {
            Some("compiler-artifact") => {
                let raw: RawArtifact = decode(value, line, &self.command_line);
                self.artifacts.push(CompilerArtifact {
                    package: package_name(&raw.package_id),
                    package_id: raw.package_id,
                    target_name: raw.target.name,
                    kind: raw.target.kind.join(","),
                    test: raw.profile.test,
                    fresh: raw.fresh,
                    filenames: raw.filenames,
                    executable: raw.executable,
                });
            }
            Some("build-script-executed") => {
                let raw: RawBuildScript = decode(value, line, &self.command_line);
                self.build_scripts.push(BuildScriptRun {
                    package: package_name(&raw.package_id),
                    package_id: raw.package_id,
                    out_dir: raw.out_dir,
                });
            }
            Some("build-finished") => {
                self.build_finished = value.get("success").and_then(|s| s.as_bool());
            }
            Some(_) => {} // compiler-message (rendered to stderr instead), future kinds
            None => return false,
        }
        true
    }

    /// Whether every compiled unit was Fresh (vacuously true when there were none).
    pub fn all_fresh(&self) -> bool {
        self.artifacts.iter().all(|a| a.fresh)
    }

    /// [`CompilerArtifact::unit`] of every unit cargo (re)compiled, sorted.
    pub fn dirty_units(&self) -> Vec<String> {
        self.units_where(|a| !a.fresh)
    }

    /// [`CompilerArtifact::unit`] of every Fresh unit, sorted.
    pub fn fresh_units(&self) -> Vec<String> {
        self.units_where(|a| a.fresh)
    }

    /// Names of the packages with at least one recompiled unit, sorted, without duplicates.
    pub fn dirty_packages(&self) -> Vec<String> {
        let mut packages: Vec<String> = self
            .artifacts
            .iter()
            .filter(|a| !a.fresh)
            .map(|a| a.package.clone())
            .collect();
        packages.sort();
        packages.dedup();
        packages
    }

    /// The only artifact of `package` whose target is `target_name` and which is not a test
    /// harness unit. Panics if there is none or more than one.
    pub fn artifact(&self, package: &str, target_name: &str) -> &CompilerArtifact {
        let found: Vec<_> = self
            .artifacts
            .iter()
            .filter(|a| a.package == package && a.target_name == target_name && !a.test)
            .collect();
        match found.as_slice() {
            [one] => one,
            _ => panic!(
                "expected one non-test artifact `{package}` `{target_name}`, found {}\n{self}",
                found.len()
            ),
        }
    }

    /// The executable of the `bin` target `name` (e.g. `target/debug/app`). Panics if absent.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.artifacts
            .iter()
            .find(|a| a.kind == "bin" && a.target_name == name && !a.test)
            .and_then(|a| a.executable.clone())
            .unwrap_or_else(|| panic!("no executable for bin `{name}`\n{self}"))
    }

    fn units_where(&self, pred: impl Fn(&CompilerArtifact) -> bool) -> Vec<String> {
        let mut units: Vec<String> = self
            .artifacts
            .iter()
            .filter(|a| pred(a))
            .map(CompilerArtifact::unit)
            .collect();
        units.sort();
        units
    }
}

/// For assertion messages: the command, the outcome, the units, and all of stderr.
impl fmt::Display for CargoRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command_line)?;
        writeln!(f, "status: {}", self.status)?;
        writeln!(f, "dirty units: {:?}", self.dirty_units())?;
        writeln!(f, "fresh units: {:?}", self.fresh_units())?;
        if !self.stdout.is_empty() {
            writeln!(
                f,
                "--- stdout (not cargo messages)\n{}",
                self.stdout.trim_end()
            )?;
        }
        write!(f, "--- stderr\n{}", self.stderr.trim_end())
    }
}

/// The package name in a package id spec: `<source>#<name>@<version>`, or `<url>#<version>` when
/// the name is the URL's last path segment (cargo's usual form for path packages).
pub fn package_name(package_id: &str) -> String {
    let (url, fragment) = package_id
        .rsplit_once('#')
        .unwrap_or_else(|| panic!("package id without `#`: {package_id}"));
    if let Some((name, _version)) = fragment.split_once('@') {
        return name.to_string();
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_else(|| panic!("package id without a name: {package_id}"))
        .to_string()
}

fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value, line: &str, cmd: &str) -> T {
    serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("cannot read cargo message ({e}): {line}\ncommand: {cmd}"))
}

#[derive(Deserialize)]
struct RawArtifact {
    package_id: String,
    target: RawTarget,
    profile: RawProfile,
    filenames: Vec<PathBuf>,
    executable: Option<PathBuf>,
    fresh: bool,
}

#[derive(Deserialize)]
struct RawTarget {
    kind: Vec<String>,
    name: String,
}

#[derive(Deserialize)]
struct RawProfile {
    test: bool,
}

#[derive(Deserialize)]
struct RawBuildScript {
    package_id: String,
    out_dir: PathBuf,
}
