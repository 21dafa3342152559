//! Every way a command ends, and the one place that turns it into an exit code ([`exit_code`]).
//!
//! A command returns [`Done`] or an [`Error`]. [`Error`] has a variant per error type the
//! library returns to the command line and one per failure of the command line's own; its
//! [`fault`](Error::fault) is one `match` with no catch-all, asking each library error for the
//! fault declared beside its type ([`nixcache::fault`]). So an error type cannot reach the top
//! without a fault: `?` converts only the types listed here, and a variant added here or in a
//! library error without one does not compile. (`demo` keeps `anyhow` for its one-off steps:
//! whatever stops it is the environment's.)
//!
//! Exit codes: 0 ok; 3 the input was rejected (wherever that was found); 1 the environment
//! failed; 2 usage (clap's own errors included). `explain` ends with cargo's code.

use nixcache::explain::ExplainError;
use nixcache::fault::{Fault, HasFault};
use nixcache::freshen::FreshenError;
use nixcache::hydrate::HydrateError;
use nixcache::pack::PackError;
use nixcache::refs::RefsError;
use nixcache::store::StoreError;
use nixcache::unpack::UnpackError;
use nixcache::userwrapper::UserWrapperError;
use nixcache::verify::VerifyError;
use nixcache::workspace::WorkspaceError;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};

/// Exit code: the command did what it was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the environment failed (I/O, permissions, a busy output, a command we ran).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the command line cannot work (clap exits 2 for its own usage errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the input was rejected (bad artifacts, a target dir pack refuses, a forbidden
/// reference, a failed verification).
pub const EXIT_REJECTED: u8 = 3;

/// How a command that did not fail ends.
#[derive(Debug)]
pub enum Done {
    Ok,
    /// `explain` ran cargo: its status is ours.
    Cargo(ExitStatus),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A usage error clap found (printed as clap formats it).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Hydrate(#[from] HydrateError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Refs(#[from] RefsError),
    #[error(transparent)]
    Freshen(#[from] FreshenError),
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    UserWrapper(#[from] UserWrapperError),
    #[error("invalid --forbid `{arg}`")]
    Forbid {
        arg: String,
        #[source]
        source: StoreError,
    },
    /// `refs` found references to forbidden store paths, and reported each (stderr or JSON).
    #[error("{0} forbidden reference(s) found")]
    ForbiddenReferences(usize),
    /// `verify` found problems, and reported each (stderr or JSON).
    #[error("{0} problem(s) found")]
    VerifyProblems(usize),
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
    #[error("cannot locate the cargo-nixcache binary")]
    CurrentExe(#[source] std::io::Error),
    #[error(
        "`{}` is missing: install nixcache-rustc-wrapper beside cargo-nixcache \
         (`cargo install --path .` installs both; in a checkout, `cargo build` builds both)",
        .0.display()
    )]
    WrapperMissing(PathBuf),
    #[error("failed to run `{program}`")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{var} is not UTF-8 ({lossy}), which JSON cannot hold; use the shell form")]
    NotUtf8Json { var: String, lossy: String },
    #[error("failed to write to stdout")]
    Stdout(#[source] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Demo(anyhow::Error),
}

impl Error {
    /// Whose fault it is: each library error's own answer, and the command line's for its own.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Pack(e) => e.fault(),
            Error::Unpack(e) => e.fault(),
            Error::Hydrate(e) => e.fault(),
            Error::Verify(e) => e.fault(),
            Error::Refs(e) => e.fault(),
            Error::Freshen(e) => e.fault(),
            Error::Explain(e) => e.fault(),
            Error::Workspace(e) => e.fault(),
            Error::Store(e) | Error::Forbid { source: e, .. } => e.fault(),
            Error::UserWrapper(e) => e.fault(),
            Error::Clap(_) => Fault::Usage,
            Error::ForbiddenReferences(_) | Error::VerifyProblems(_) => Fault::Input,
            // The JSON of a report fails on a path that is not UTF-8.
            Error::CurrentDir(_)
            | Error::CurrentExe(_)
            | Error::WrapperMissing(_)
            | Error::Exec { .. }
            | Error::NotUtf8Json { .. }
            | Error::Stdout(_)
            | Error::Json(_)
            | Error::Demo(_) => Fault::Environment,
        }
    }

    /// Printed already by the command itself (each forbidden reference, each problem).
    pub fn is_reported(&self) -> bool {
        matches!(
            self,
            Error::ForbiddenReferences(_) | Error::VerifyProblems(_)
        )
    }

    /// A closed stdout (`cargo nixcache refs ... | head`) is a normal way to stop.
    pub fn is_broken_pipe(&self) -> bool {
        let is_pipe = |e: &(dyn std::error::Error + 'static)| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        };
        match self {
            Error::Demo(e) => e.chain().any(is_pipe),
            _ => std::iter::successors(Some(self as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(is_pipe),
        }
    }
}

/// The process exit code of a command's end ([`code`]).
pub fn exit_code(end: &Result<Done, Error>) -> ExitCode {
    ExitCode::from(code(end))
}

/// The one place a command's end becomes an exit code.
pub fn code(end: &Result<Done, Error>) -> u8 {
    match end {
        Ok(Done::Ok) => EXIT_OK,
        // Truncated as the OS does; a cargo killed by a signal failed in the environment.
        Ok(Done::Cargo(status)) => status.code().map_or(EXIT_FAILED, |c| c as u8),
        Err(e) if e.is_broken_pipe() => EXIT_OK,
        Err(e) => match e.fault() {
            Fault::Input => EXIT_REJECTED,
            Fault::Environment => EXIT_FAILED,
            Fault::Usage => EXIT_USAGE,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::os::unix::process::ExitStatusExt;

    /// Which variant `e` is; a match with no catch-all, so a new variant does not compile until
    /// it gets a number here, and then [`every_variant_has_its_exit_code`] fails until it has a
    /// case of its own.
    fn variant(e: &Error) -> usize {
        match e {
            Error::Clap(_) => 0,
            Error::Pack(_) => 1,
            Error::Unpack(_) => 2,
            Error::Hydrate(_) => 3,
            Error::Verify(_) => 4,
            Error::Refs(_) => 5,
            Error::Freshen(_) => 6,
            Error::Explain(_) => 7,
            Error::Workspace(_) => 8,
            Error::Store(_) => 9,
            Error::UserWrapper(_) => 10,
            Error::Forbid { .. } => 11,
            Error::ForbiddenReferences(_) => 12,
            Error::VerifyProblems(_) => 13,
            Error::CurrentDir(_) => 14,
            Error::CurrentExe(_) => 15,
            Error::WrapperMissing(_) => 16,
            Error::Exec { .. } => 17,
            Error::NotUtf8Json { .. } => 18,
            Error::Stdout(_) => 19,
            Error::Json(_) => 20,
            Error::Demo(_) => 21,
        }
    }
    const VARIANTS: usize = 22;

    fn p() -> PathBuf {
        PathBuf::from("/x")
    }
    fn io() -> io::Error {
        io::Error::from(io::ErrorKind::PermissionDenied)
    }

    /// Representative errors of every variant, and the exit code each ends with (library errors
    /// reach theirs through the fault declared beside their type).
    #[test]
    fn every_variant_has_its_exit_code() {
        let cases: Vec<(Error, u8)> = vec![
            (
                clap::Error::new(clap::error::ErrorKind::UnknownArgument).into(),
                EXIT_USAGE,
            ),
            (
                PackError::Overlap {
                    out: p(),
                    target: p(),
                }
                .into(),
                EXIT_USAGE,
            ),
            (
                PackError::Unsupported {
                    path: p(),
                    kind: "fifo",
                }
                .into(),
                EXIT_REJECTED,
            ),
            (UnpackError::NotEmpty(p()).into(), EXIT_FAILED),
            (HydrateError::BadRecord(p()).into(), EXIT_REJECTED),
            (VerifyError::NotNixcache(p()).into(), EXIT_USAGE),
            (
                RefsError::Read {
                    path: p(),
                    source: io(),
                }
                .into(),
                EXIT_FAILED,
            ),
            (
                FreshenError::Workspace(WorkspaceError::BadManifest {
                    path: p(),
                    reason: String::new(),
                })
                .into(),
                EXIT_REJECTED,
            ),
            (ExplainError::ReadOutput(io()).into(), EXIT_FAILED),
            (WorkspaceError::NotFound(p()).into(), EXIT_USAGE),
            (
                nixcache::store::StoreDir::resolve(Some("/".as_ref()))
                    .unwrap_err()
                    .into(),
                EXIT_USAGE,
            ),
            // `cargo nixcache env --config 'bad['` exited 1: the type was missing from a table.
            (
                UserWrapperError::BadCliConfig {
                    arg: "bad[".into(),
                    source: Box::new("bad[".parse::<toml::Table>().unwrap_err()),
                }
                .into(),
                EXIT_USAGE,
            ),
            (
                UserWrapperError::NotInPath {
                    name: "w".into(),
                    origin: String::new(),
                }
                .into(),
                EXIT_FAILED,
            ),
            (
                Error::Forbid {
                    arg: "x".into(),
                    source: nixcache::store::StoreDir::resolve(Some("/".as_ref())).unwrap_err(),
                },
                EXIT_USAGE,
            ),
            (Error::ForbiddenReferences(1), EXIT_REJECTED),
            (Error::VerifyProblems(2), EXIT_REJECTED),
            (Error::CurrentDir(io()), EXIT_FAILED),
            (Error::CurrentExe(io()), EXIT_FAILED),
            (Error::WrapperMissing(p()), EXIT_FAILED),
            (
                Error::Exec {
                    program: "x".into(),
                    source: io(),
                },
                EXIT_FAILED,
            ),
            (
                Error::NotUtf8Json {
                    var: "V".into(),
                    lossy: String::new(),
                },
                EXIT_FAILED,
            ),
            (Error::Stdout(io()), EXIT_FAILED),
            (
                serde_json::from_str::<u8>("x").unwrap_err().into(),
                EXIT_FAILED,
            ),
            (Error::Demo(anyhow::anyhow!("demo")), EXIT_FAILED),
            // A closed stdout is a normal way to stop.
            (Error::Stdout(io::ErrorKind::BrokenPipe.into()), EXIT_OK),
            (
                Error::Demo(io::Error::from(io::ErrorKind::BrokenPipe).into()),
                EXIT_OK,
            ),
        ];
        let mut seen = [false; VARIANTS];
        for (err, want) in cases {
            seen[variant(&err)] = true;
            let label = format!("{err:?}");
            assert_eq!(code(&Err(err)), want, "{label}");
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|&v| !seen[v]).collect();
        assert!(missing.is_empty(), "variants without a case: {missing:?}");
    }

    #[test]
    fn done_ends_with_zero_or_cargos_code() {
        assert_eq!(code(&Ok(Done::Ok)), EXIT_OK);
        let cargo = |raw| code(&Ok(Done::Cargo(ExitStatus::from_raw(raw))));
        assert_eq!(cargo(101 << 8), 101);
        assert_eq!(cargo(0), EXIT_OK);
        // Killed by SIGKILL: no code.
        assert_eq!(cargo(9), EXIT_FAILED);
    }
}
