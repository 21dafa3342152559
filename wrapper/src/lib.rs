//! `nixcache-rustc-wrapper`: a `RUSTC_WRAPPER` that lets rustc rebuild units whose old outputs are
//! read-only symlinks into the Nix store (what `cargo nixcache unpack` leaves in `target/`),
//! while still running the project's own rustc wrapper and keeping cargo's pipelining.
//!
//! - [`args`]: cargo's command line for us (`@argfile`s, the flags we read) and the three-way
//!   outcome: compile / pass through.
//! - [`plan`]: pure decisions: which names are a unit's outputs, the temp out-dir, the rewrite of
//!   rustc's artifact notifications and of `.d` files.
//! - [`strategy`]: the two ways to rebuild (unlink own symlinks then exec; or redirect the out-dir
//!   and publish outputs as rustc announces them).
//! - [`process`]: exec/spawn, signals, exit status pass-through.
//!
//! Finding the user's wrapper for `cargo nixcache env`/`exec` (cargo's config precedence) is not
//! the binary's job and lives in the CLI's crate (`nixcache::userwrapper`).

pub mod args;
pub mod plan;
pub mod process;
pub mod strategy;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use args::Call;
use strategy::Strategy;

/// The user's own rustc wrapper (absolute path or bare name), run by us in front of rustc.
pub const ENV_USER_WRAPPER: &str = "NIXCACHE_USER_WRAPPER";
/// `in-place` or `redirect`; unset means [`Strategy::DEFAULT`].
pub const ENV_STRATEGY: &str = "NIXCACHE_WRAPPER_STRATEGY";
/// Prefix of every message the wrapper prints itself.
pub const PREFIX: &str = "nixcache-rustc-wrapper";

/// Exit code when the wrapper itself fails before or after rustc (rustc's own codes pass through).
pub const EXIT_WRAPPER_ERROR: u8 = 101;
/// Exit code when we are called without a program to run.
pub const EXIT_USAGE: u8 = 2;

/// Errors of the wrapper itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "usage: nixcache-rustc-wrapper [WORKSPACE_WRAPPER] RUSTC ARGS... (set it as RUSTC_WRAPPER)"
    )]
    Usage,
    #[error(transparent)]
    Args(#[from] args::ArgsError),
    #[error("failed to run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    BadStrategy(#[from] strategy::BadStrategy),
}

impl Error {
    /// The one place the wrapper's own failures become exit codes (rustc's own pass through
    /// [`process::exit_like`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage => EXIT_USAGE,
            Error::Args(_) | Error::Spawn { .. } | Error::Io { .. } | Error::BadStrategy(_) => {
                EXIT_WRAPPER_ERROR
            }
        }
    }
}

/// What `main` does: runs one call and returns how to end, or the error to report.
/// `argv` is our whole argv (argv\[0\] is us); `env` reads the environment.
pub fn run(
    argv: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<std::process::ExitStatus, Error> {
    let mut argv = argv.into_iter();
    let me = argv.next();
    let rest: Vec<OsString> = argv.collect();
    if rest.is_empty() {
        return Err(Error::Usage);
    }
    let user_wrapper = env(ENV_USER_WRAPPER).filter(|w| !w.is_empty() && Some(w) != me.as_ref());
    let user_wrapper = user_wrapper.as_deref();
    let words = args::read_words(rest.iter().cloned())?;
    let unit = match args::classify(&words)? {
        Call::PassThrough => return Err(exec(user_wrapper, rest)),
        Call::Compile(unit) => unit,
    };
    let strategy = Strategy::from_env(env(ENV_STRATEGY).as_deref())?;
    // Split debuginfo makes binaries name their `.dwo` files by path: never redirect those;
    // nor a unit whose temporary out-dir could not stay inside its out-dir.
    match (strategy, plan::tmp_dir(&unit)) {
        (Strategy::Redirect, Some(tmp)) if !unit.split_debuginfo => {
            strategy::redirect(&unit, tmp, &words, user_wrapper)
        }
        _ => Err(strategy::in_place(
            &unit,
            &process::Program::new(user_wrapper, rest),
        )),
    }
}

fn exec(user_wrapper: Option<&OsStr>, words: Vec<OsString>) -> Error {
    let program = process::Program::new(user_wrapper, words);
    Error::Spawn {
        program: program.to_string(),
        source: program.exec(),
    }
}

/// Prints `nixcache-rustc-wrapper: error: ...` and the `Caused by:` chain to stderr.
pub fn report(err: &dyn std::error::Error) {
    let mut msg = format!("{PREFIX}: error: {err}\n");
    let mut source = err.source();
    if source.is_some() {
        msg.push_str("\nCaused by:\n");
    }
    while let Some(s) = source {
        msg.push_str(&format!("  {s}\n"));
        source = s.source();
    }
    eprint!("{msg}");
}
