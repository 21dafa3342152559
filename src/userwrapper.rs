//! The user's own rustc wrapper, for `cargo nixcache env` and `cargo nixcache exec` (not used by
//! the wrapper binary, so its config reading stays out of the wrapper crate): finds the rustc
//! wrapper cargo itself would have run and produces the environment that puts
//! `nixcache-rustc-wrapper` in front of it.
//!
//! Cargo's precedence for `build.rustc-wrapper`, reproduced here:
//! 1. env `RUSTC_WRAPPER` (a value with `/` is relative to the current directory);
//! 2. `--config` arguments, the last one winning (`KEY=VALUE`, relative to the current directory;
//!    or a file, relative to the parent of the directory holding it);
//! 3. env `CARGO_BUILD_RUSTC_WRAPPER` (relative to the current directory);
//! 4. `.cargo/config` or `.cargo/config.toml` in the current directory and each parent, nearest
//!    first (relative to the directory containing `.cargo/`), then `$CARGO_HOME/config.toml`.
//!
//! A bare name (no `/`) is looked up in `PATH`; an empty value at any level means "no wrapper" and
//! hides the levels below. `RUSTC_WORKSPACE_WRAPPER` is left to cargo. Config `include`s and
//! `-Zunstable-options` spellings are not read.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fault::{Fault, HasFault};
use nixcache_rustc_wrapper::strategy::{BadStrategy, Strategy};
use nixcache_rustc_wrapper::{ENV_STRATEGY, ENV_USER_WRAPPER};

/// File name of the wrapper binary, installed next to `cargo-nixcache`.
pub const WRAPPER_BIN: &str = "nixcache-rustc-wrapper";

/// Errors resolving the user's wrapper.
#[derive(Debug, thiserror::Error)]
pub enum UserWrapperError {
    #[error("failed to read cargo config `{path}`")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse cargo config `{path}`")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("`--config {arg}` is neither an existing file nor a TOML `KEY=VALUE`")]
    BadCliConfig {
        arg: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("`build.rustc-wrapper` in {origin} must be a string")]
    NotAString { origin: String },
    #[error("rustc wrapper `{name}` (from {origin}) was not found in PATH")]
    NotInPath { name: String, origin: String },
    #[error(transparent)]
    BadStrategy(#[from] BadStrategy),
}

impl HasFault for UserWrapperError {
    fn fault(&self) -> Fault {
        match self {
            // A cargo config cargo would refuse too, like a bad workspace manifest.
            UserWrapperError::ParseConfig { .. } | UserWrapperError::NotAString { .. } => {
                Fault::Input
            }
            UserWrapperError::ReadConfig { .. } | UserWrapperError::NotInPath { .. } => {
                Fault::Environment
            }
            // What `env`/`exec` were given: a `--config` value, NIXCACHE_WRAPPER_STRATEGY.
            UserWrapperError::BadCliConfig { .. } | UserWrapperError::BadStrategy(_) => {
                Fault::Usage
            }
        }
    }
}

/// Where the user's wrapper setting came from (for messages and `cargo nixcache env` comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    EnvRustcWrapper,
    /// `RUSTC_WRAPPER` was already us; the earlier resolution in `NIXCACHE_USER_WRAPPER` is kept.
    Previous,
    CliConfig(String),
    EnvCargoBuild,
    File(PathBuf),
    Nowhere,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::EnvRustcWrapper => f.write_str("env RUSTC_WRAPPER"),
            Origin::Previous => write!(f, "env {ENV_USER_WRAPPER}"),
            Origin::CliConfig(a) => write!(f, "`--config {a}`"),
            Origin::EnvCargoBuild => f.write_str("env CARGO_BUILD_RUSTC_WRAPPER"),
            Origin::File(p) => write!(f, "`{}`", p.display()),
            Origin::Nowhere => f.write_str("nowhere"),
        }
    }
}

/// The wrapper cargo would have run, resolved to a path (`None`: no wrapper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWrapper {
    pub path: Option<PathBuf>,
    pub(crate) origin: Origin,
}

/// The environment for a build behind our wrapper: `RUSTC_WRAPPER` (`wrapper_bin`),
/// `NIXCACHE_USER_WRAPPER` (the resolved user wrapper, empty for none) and
/// `NIXCACHE_WRAPPER_STRATEGY` (kept if set and valid). `env` reads the current environment;
/// `cli_config` are the `--config` values of the cargo command line (see [`cargo_config_args`]).
/// Idempotent: run under its own output it yields the same variables.
pub fn plan_env(
    wrapper_bin: &Path,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    cli_config: &[String],
) -> Result<Vec<(String, OsString)>, UserWrapperError> {
    let user = resolve_user_wrapper(wrapper_bin, cwd, env, cli_config)?;
    let strategy = Strategy::from_env(env(ENV_STRATEGY).as_deref())?;
    Ok(vec![
        ("RUSTC_WRAPPER".into(), wrapper_bin.as_os_str().to_owned()),
        (
            ENV_USER_WRAPPER.into(),
            user.path.map(PathBuf::into_os_string).unwrap_or_default(),
        ),
        (ENV_STRATEGY.into(), strategy.name().into()),
    ])
}

/// `export K=V` lines for a shell (`cargo nixcache env`), values quoted when needed.
pub fn shell_exports(vars: &[(String, OsString)]) -> String {
    vars.iter()
        .map(|(k, v)| {
            format!(
                "export {k}={}\n",
                nixcache_rustc_wrapper::process::shell_quote(v)
            )
        })
        .collect()
}

/// The wrapper binary installed beside `exe` (the running `cargo-nixcache`).
pub fn wrapper_next_to(exe: &Path) -> PathBuf {
    exe.with_file_name(WRAPPER_BIN)
}

/// The `--config` values of a cargo command line (`--config X`, `--config=X`), up to `--`.
pub fn cargo_config_args(cargo_args: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = cargo_args.iter().map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        } else if a == "--config" {
            out.extend(it.next().map(|v| v.into_owned()));
        } else if let Some(v) = a.strip_prefix("--config=") {
            out.push(v.to_owned());
        }
    }
    out
}

/// Resolves the user's rustc wrapper with cargo's precedence (see the module docs). A setting
/// naming `wrapper_bin` itself counts as none, so we never chain to ourselves.
pub fn resolve_user_wrapper(
    wrapper_bin: &Path,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    cli_config: &[String],
) -> Result<UserWrapper, UserWrapperError> {
    let (value, root, origin) = match find_setting(cwd, env, cli_config)? {
        Some(found) => found,
        None => {
            return Ok(UserWrapper {
                path: None,
                origin: Origin::Nowhere,
            })
        }
    };
    let path = resolve_program(&value, &root, cwd, env, &origin)?;
    let is_us = |p: &Path| same_file(p, wrapper_bin);
    let user = match path {
        Some(p) if is_us(&p) && origin == Origin::EnvRustcWrapper => {
            let prev = env(ENV_USER_WRAPPER)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
            UserWrapper {
                path: prev.filter(|p| !is_us(p)),
                origin: Origin::Previous,
            }
        }
        Some(p) if is_us(&p) => UserWrapper { path: None, origin },
        path => UserWrapper { path, origin },
    };
    Ok(user)
}

/// The raw setting, the directory a `/`-containing value is relative to, and where it came from.
fn find_setting(
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    cli_config: &[String],
) -> Result<Option<(OsString, PathBuf, Origin)>, UserWrapperError> {
    if let Some(v) = env("RUSTC_WRAPPER") {
        return Ok(Some((v, cwd.to_owned(), Origin::EnvRustcWrapper)));
    }
    for arg in cli_config.iter().rev() {
        let origin = Origin::CliConfig(arg.clone());
        let as_path = cwd.join(arg);
        let (table, root) = if !arg.is_empty() && as_path.exists() {
            (read_config(&as_path)?, config_root(&as_path))
        } else {
            let table = arg
                .parse::<toml::Table>()
                .map_err(|e| UserWrapperError::BadCliConfig {
                    arg: arg.clone(),
                    source: Box::new(e),
                })?;
            (table, cwd.to_owned())
        };
        if let Some(v) = wrapper_value(&table, &origin)? {
            return Ok(Some((v.into(), root, origin)));
        }
    }
    if let Some(v) = env("CARGO_BUILD_RUSTC_WRAPPER") {
        return Ok(Some((v, cwd.to_owned(), Origin::EnvCargoBuild)));
    }
    for file in config_files(cwd, env) {
        let origin = Origin::File(file.clone());
        if let Some(v) = wrapper_value(&read_config(&file)?, &origin)? {
            return Ok(Some((v.into(), config_root(&file), origin)));
        }
    }
    Ok(None)
}

/// Config files in cargo's order of precedence, nearest first, `$CARGO_HOME` last (once).
fn config_files(cwd: &Path, env: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let home = env("CARGO_HOME")
        .map(|h| cwd.join(h))
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cargo")));
    let dot_cargo_dirs = cwd.ancestors().map(|d| d.join(".cargo"));
    let mut dirs: Vec<PathBuf> = dot_cargo_dirs.collect();
    if let Some(home) = home {
        if !dirs.contains(&home) {
            dirs.push(home);
        }
    }
    // Cargo reads the extension-less `config` when both exist.
    dirs.iter()
        .filter_map(|d| {
            ["config", "config.toml"]
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.is_file())
        })
        .collect()
}

/// `a/.cargo/config.toml` -> `a`: what `/`-containing values in that file are relative to.
fn config_root(file: &Path) -> PathBuf {
    file.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"))
        .to_owned()
}

fn read_config(path: &Path) -> Result<toml::Table, UserWrapperError> {
    let text = std::fs::read_to_string(path).map_err(|source| UserWrapperError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| UserWrapperError::ParseConfig {
            path: path.to_owned(),
            source: Box::new(e),
        })
}

fn wrapper_value(table: &toml::Table, origin: &Origin) -> Result<Option<String>, UserWrapperError> {
    let Some(v) = table.get("build").and_then(|b| b.get("rustc-wrapper")) else {
        return Ok(None);
    };
    v.as_str()
        .map(|s| Some(s.to_owned()))
        .ok_or_else(|| UserWrapperError::NotAString {
            origin: origin.to_string(),
        })
}

/// Empty: none; with `/`: relative to `root`; bare: looked up in `PATH` (relative entries from `cwd`).
fn resolve_program(
    value: &OsStr,
    root: &Path,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    origin: &Origin,
) -> Result<Option<PathBuf>, UserWrapperError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.to_string_lossy().contains('/') {
        return Ok(Some(root.join(value)));
    }
    let path_var = env("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| cwd.join(dir).join(value))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(Some)
        .ok_or_else(|| UserWrapperError::NotInPath {
            name: value.to_string_lossy().into_owned(),
            origin: origin.to_string(),
        })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fx {
        dir: tempfile::TempDir,
        env: HashMap<String, OsString>,
    }

    impl Fx {
        /// `root/ws/sub` is the cwd; `root/home` is CARGO_HOME; `root/bin` is PATH.
        fn new() -> Fx {
            let dir = tempfile::tempdir().unwrap();
            for d in ["ws/sub", "home", "bin", "ws/.cargo", "ws/sub/.cargo"] {
                std::fs::create_dir_all(dir.path().join(d)).unwrap();
            }
            let mut env = HashMap::new();
            env.insert("CARGO_HOME".into(), dir.path().join("home").into());
            env.insert("PATH".into(), dir.path().join("bin").into());
            Fx { dir, env }
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn write(&self, rel: &str, text: &str) {
            std::fs::write(self.p(rel), text).unwrap();
        }
        fn exe(&self, rel: &str) {
            self.write(rel, "#!/bin/sh\n");
            std::fs::set_permissions(self.p(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        fn set(&mut self, k: &str, v: impl Into<OsString>) {
            self.env.insert(k.into(), v.into());
        }
        fn resolve(&self, cli: &[&str]) -> Result<UserWrapper, UserWrapperError> {
            let cli: Vec<String> = cli.iter().map(|s| s.to_string()).collect();
            let env = |k: &str| self.env.get(k).cloned();
            resolve_user_wrapper(
                &self.p("us/nixcache-rustc-wrapper"),
                &self.p("ws/sub"),
                &env,
                &cli,
            )
        }
        fn path(&self, cli: &[&str]) -> Option<PathBuf> {
            self.resolve(cli).unwrap().path
        }
    }

    #[test]
    fn precedence_each_level_beats_the_ones_below() {
        let mut fx = Fx::new();
        fx.write(
            "home/config.toml",
            "[build]\nrustc-wrapper = \"/from/home\"\n",
        );
        assert_eq!(fx.path(&[]), Some("/from/home".into()));
        fx.write(
            "ws/.cargo/config.toml",
            "build.rustc-wrapper = \"/from/ws\"\n",
        );
        assert_eq!(fx.path(&[]), Some("/from/ws".into()));
        fx.write(
            "ws/sub/.cargo/config.toml",
            "[build]\nrustc-wrapper = \"/from/sub\"\n",
        );
        assert_eq!(fx.path(&[]), Some("/from/sub".into()));
        fx.set("CARGO_BUILD_RUSTC_WRAPPER", "/from/cargo-build-env");
        assert_eq!(fx.path(&[]), Some("/from/cargo-build-env".into()));
        assert_eq!(
            fx.path(&[
                "build.rustc-wrapper='/cli/1'",
                "build.jobs=2",
                "build.rustc-wrapper='/cli/2'"
            ]),
            Some("/cli/2".into()),
            "last --config wins, others are skipped"
        );
        fx.set("RUSTC_WRAPPER", "/from/env");
        let got = fx.resolve(&["build.rustc-wrapper='/cli/1'"]).unwrap();
        assert_eq!(
            got,
            UserWrapper {
                path: Some("/from/env".into()),
                origin: Origin::EnvRustcWrapper
            }
        );
    }

    #[test]
    fn empty_value_means_none_and_hides_lower_levels() {
        let mut fx = Fx::new();
        fx.write(
            "ws/.cargo/config.toml",
            "build.rustc-wrapper = \"/from/ws\"\n",
        );
        fx.write("ws/sub/.cargo/config.toml", "build.rustc-wrapper = \"\"\n");
        assert_eq!(fx.path(&[]), None);
        fx.set("RUSTC_WRAPPER", "");
        fx.set("CARGO_BUILD_RUSTC_WRAPPER", "/x");
        assert_eq!(
            fx.resolve(&[]).unwrap(),
            UserWrapper {
                path: None,
                origin: Origin::EnvRustcWrapper
            }
        );
    }

    #[test]
    fn relative_values_and_path_lookup() {
        let mut fx = Fx::new();
        fx.write(
            "ws/.cargo/config.toml",
            "build.rustc-wrapper = \"tools/w.sh\"\n",
        );
        assert_eq!(
            fx.path(&[]),
            Some(fx.p("ws/tools/w.sh")),
            "relative to the dir containing .cargo/"
        );
        fx.write("ws/cli.toml", "build.rustc-wrapper = \"t/w\"\n");
        let cli_file = fx.p("ws/cli.toml").display().to_string();
        assert_eq!(
            fx.path(&[&cli_file]),
            Some(fx.p("t/w")),
            "--config file: parent of its dir"
        );
        fx.set("CARGO_BUILD_RUSTC_WRAPPER", "./e/w");
        assert_eq!(
            fx.path(&[]),
            Some(fx.p("ws/sub/./e/w")),
            "env: relative to cwd"
        );
        fx.set("RUSTC_WRAPPER", "sccache-like");
        let err = fx.resolve(&[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rustc wrapper `sccache-like` (from env RUSTC_WRAPPER) was not found in PATH"
        );
        fx.write("bin/sccache-like", "not executable");
        assert!(matches!(
            fx.resolve(&[]),
            Err(UserWrapperError::NotInPath { .. })
        ));
        fx.exe("bin/sccache-like");
        assert_eq!(fx.path(&[]), Some(fx.p("bin/sccache-like")));
    }

    #[test]
    fn legacy_config_without_extension_wins_in_its_dir() {
        let fx = Fx::new();
        fx.write("ws/.cargo/config.toml", "build.rustc-wrapper = \"/toml\"\n");
        fx.write("ws/.cargo/config", "build.rustc-wrapper = \"/legacy\"\n");
        assert_eq!(fx.path(&[]), Some("/legacy".into()));
    }

    #[test]
    fn never_chains_to_itself_and_is_idempotent() {
        let mut fx = Fx::new();
        std::fs::create_dir_all(fx.p("us")).unwrap();
        fx.exe("us/nixcache-rustc-wrapper");
        fx.exe("bin/real-wrapper");
        fx.write(
            "ws/.cargo/config.toml",
            "build.rustc-wrapper = \"real-wrapper\"\n",
        );
        let us = fx.p("us/nixcache-rustc-wrapper");
        let env = |m: &HashMap<String, OsString>| {
            let m = m.clone();
            move |k: &str| m.get(k).cloned()
        };
        let first = plan_env(&us, &fx.p("ws/sub"), &env(&fx.env), &[]).unwrap();
        assert_eq!(
            first[1],
            (ENV_USER_WRAPPER.into(), fx.p("bin/real-wrapper").into())
        );
        for (k, v) in &first {
            fx.set(k, v.clone());
        }
        let second = plan_env(&us, &fx.p("ws/sub"), &env(&fx.env), &[]).unwrap();
        assert_eq!(first, second);
        // Our own binary configured as the user's wrapper would recurse: it counts as none.
        let mut fx2 = Fx::new();
        std::fs::create_dir_all(fx2.p("us")).unwrap();
        fx2.exe("us/nixcache-rustc-wrapper");
        fx2.set(
            "CARGO_BUILD_RUSTC_WRAPPER",
            fx2.p("us/nixcache-rustc-wrapper"),
        );
        assert_eq!(fx2.path(&[]), None);
    }

    #[test]
    fn errors_name_their_source() {
        let fx = Fx::new();
        fx.write("ws/.cargo/config.toml", "build.rustc-wrapper = 3\n");
        let err = fx.resolve(&[]).unwrap_err().to_string();
        assert!(
            err.contains("ws/.cargo/config.toml") && err.ends_with("must be a string"),
            "{err}"
        );
        fx.write("ws/.cargo/config.toml", "[build\n");
        let err = fx.resolve(&[]).unwrap_err().to_string();
        assert!(
            err.starts_with("failed to parse cargo config `")
                && err.contains("ws/.cargo/config.toml"),
            "{err}"
        );
        assert!(matches!(
            fx.resolve(&["no-such-file"]),
            Err(UserWrapperError::BadCliConfig { .. })
        ));
    }

    #[test]
    fn strategy_and_exports() {
        let mut fx = Fx::new();
        fx.set("NIXCACHE_WRAPPER_STRATEGY", "bogus");
        let env = |k: &str| fx.env.get(k).cloned();
        let err = plan_env(Path::new("/w"), &fx.p("ws"), &env, &[]).unwrap_err();
        assert!(matches!(err, UserWrapperError::BadStrategy { .. }));
        let vars = vec![
            ("A".to_string(), OsString::from("/x y")),
            ("B".to_string(), OsString::new()),
        ];
        assert_eq!(shell_exports(&vars), "export A='/x y'\nexport B=''\n");
        let args: Vec<OsString> = [
            "build",
            "--config",
            "a=1",
            "--config=b=2",
            "--",
            "--config",
            "c",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(cargo_config_args(&args), ["a=1", "b=2"]);
        assert_eq!(
            wrapper_next_to(Path::new("/o/bin/cargo-nixcache")),
            Path::new("/o/bin/nixcache-rustc-wrapper")
        );
    }
}
