//! Whose fault an error is: the input's, the environment's, or the caller's. The command line
//! turns this into its exit code in one exhaustive `match` (src/error.rs: 3, 1, 2), so the same
//! rejection exits the same way wherever it is detected: while reading the manifest, validating
//! the archive, resolving a link, or only when pass two meets it.
//!
//! - [`Fault::Input`]: what we were given to read is wrong: artifacts (manifest, anchor, archive,
//!   crane's formats), a target dir pack refuses (a fifo, a link out of the store), a workspace
//!   manifest or cargo config cargo would refuse too. Retrying cannot help; the input must change.
//! - [`Fault::Environment`]: I/O failed, permissions, a busy or non-empty destination, a command
//!   we run failed. The same command may work elsewhere or later.
//! - [`Fault::Usage`]: the command line asks for something that cannot work whatever the files
//!   hold: an output outside the store, overlapping directories, an OUT another pack owns, a
//!   `--config` that is not TOML.
//!
//! Each error type declares its fault beside its definition (`impl HasFault for PackError` in
//! src/pack/mod.rs), in a `match` over its variants with no catch-all: a variant added without a
//! fault does not compile. An error that wraps another asks it (`PackError::Fs(e) =>
//! e.fault()`) unless it knows its context better.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Input,
    Environment,
    Usage,
}

/// An error that knows whose fault it is.
pub trait HasFault {
    fn fault(&self) -> Fault;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveError, EntryProblem};
    use crate::artifacts::anchor::AnchorError;
    use crate::artifacts::manifest::ManifestError;
    use crate::artifacts::ArtifactsError;
    use crate::builddir::BuildDirError;
    use crate::explain::ExplainError;
    use crate::freshen::FreshenError;
    use crate::fsutil::{FsError, InputFileError};
    use crate::hydrate::HydrateError;
    use crate::linkcheck::LinkProblem;
    use crate::pack::outdir::OutDirError;
    use crate::pack::PackError;
    use crate::refs::RefsError;
    use crate::store::StoreError;
    use crate::unpack::crane::CraneError;
    use crate::unpack::UnpackError;
    use crate::userwrapper::UserWrapperError;
    use crate::verify::VerifyError;
    use crate::workspace::WorkspaceError;
    use nixcache_rustc_wrapper::strategy::BadStrategy;
    use std::io;
    use std::path::PathBuf;
    use Fault::{Environment as Env, Input, Usage};

    fn p() -> PathBuf {
        PathBuf::from("/x")
    }
    fn io() -> io::Error {
        io::Error::from(io::ErrorKind::PermissionDenied)
    }
    fn fs() -> FsError {
        FsError {
            op: "read",
            path: p(),
            source: io(),
        }
    }
    fn toml() -> Box<toml::de::Error> {
        Box::new("bad[".parse::<toml::Table>().unwrap_err())
    }
    fn corrupt() -> ArchiveError {
        ArchiveError::Corrupt {
            archive: p(),
            detail: String::new(),
        }
    }
    fn reason() -> String {
        "r".into()
    }

    /// Representative variants of every error type, each with the fault declared beside it;
    /// a wrapping variant takes the fault of what it wraps.
    #[test]
    fn every_error_type_declares_its_fault() {
        let unresolvable = LinkProblem::Unresolvable {
            target: p(),
            reason: reason(),
        };
        let missing_link = LinkProblem::Missing { target: p() };
        let cases: Vec<(&str, Fault, Fault)> = vec![
            ("fs", fs().fault(), Env),
            (
                "input file missing",
                InputFileError::Missing(p()).fault(),
                Input,
            ),
            ("input file I/O", InputFileError::Fs(fs()).fault(), Env),
            ("store dir /", StoreError::StoreDirIsRoot.fault(), Usage),
            ("archive corrupt", corrupt().fault(), Input),
            (
                "archive open",
                ArchiveError::Open {
                    archive: p(),
                    source: io(),
                }
                .fault(),
                Env,
            ),
            (
                "archive link unresolvable",
                ArchiveError::Entry {
                    archive: p(),
                    entry: "e".into(),
                    problem: EntryProblem::Link(unresolvable.clone()),
                }
                .fault(),
                Env,
            ),
            (
                "archive link missing",
                ArchiveError::Entry {
                    archive: p(),
                    entry: "e".into(),
                    problem: EntryProblem::Link(missing_link.clone()),
                }
                .fault(),
                Input,
            ),
            (
                "artifacts not found",
                ArtifactsError::NotFound(p()).fault(),
                Input,
            ),
            (
                "artifacts' archive",
                ArtifactsError::Archive(Box::new(corrupt())).fault(),
                Input,
            ),
            (
                "manifest bad",
                ManifestError::Bad {
                    path: p(),
                    reason: reason(),
                }
                .fault(),
                Input,
            ),
            (
                "manifest unreadable",
                ManifestError::Input(InputFileError::Fs(fs())).fault(),
                Env,
            ),
            (
                "anchor bad",
                AnchorError::Bad {
                    path: p(),
                    line: 1,
                    reason: reason(),
                }
                .fault(),
                Input,
            ),
            ("crane chain", CraneError::ChainTooLong(p()).fault(), Input),
            ("crane I/O", CraneError::Fs(fs()).fault(), Env),
            (
                "cargo metadata",
                BuildDirError::Failed {
                    manifest: p(),
                    stderr: String::new(),
                }
                .fault(),
                Env,
            ),
            (
                "no manifest",
                WorkspaceError::NoManifest(p()).fault(),
                Usage,
            ),
            (
                "bad manifest",
                WorkspaceError::BadManifest {
                    path: p(),
                    reason: reason(),
                }
                .fault(),
                Input,
            ),
            (
                "explain output",
                ExplainError::ReadOutput(io()).fault(),
                Env,
            ),
            (
                "explain log missing",
                ExplainError::Log(InputFileError::Missing(p())).fault(),
                Input,
            ),
            (
                "hydrate record",
                HydrateError::BadRecord(p()).fault(),
                Input,
            ),
            (
                "hydrate not UTF-8",
                HydrateError::NotUtf8(p()).fault(),
                Usage,
            ),
            (
                "hydrate's unpack",
                HydrateError::Unpack(UnpackError::NotEmpty(p())).fault(),
                Env,
            ),
            (
                "unpack same build dir",
                UnpackError::SameBuildDir {
                    archive: p(),
                    dir: p(),
                }
                .fault(),
                Usage,
            ),
            (
                "unpack archive",
                UnpackError::Archive(corrupt()).fault(),
                Input,
            ),
            ("verify crane", VerifyError::NotNixcache(p()).fault(), Usage),
            (
                "verify artifacts",
                VerifyError::Artifacts(ArtifactsError::NotFound(p())).fault(),
                Input,
            ),
            (
                "freshen workspace",
                FreshenError::Workspace(WorkspaceError::Missing {
                    missing: p(),
                    by: p(),
                    what: "a member",
                })
                .fault(),
                Input,
            ),
            (
                "refs root",
                RefsError::RootNotFound { path: p() }.fault(),
                Usage,
            ),
            (
                "refs read",
                RefsError::Read {
                    path: p(),
                    source: io(),
                }
                .fault(),
                Env,
            ),
            ("out busy", OutDirError::Busy(p()).fault(), Env),
            (
                "out foreign",
                OutDirError::ForeignOut {
                    out: p(),
                    owner: String::new(),
                }
                .fault(),
                Usage,
            ),
            (
                "pack overlap",
                PackError::Overlap {
                    out: p(),
                    target: p(),
                }
                .fault(),
                Usage,
            ),
            (
                "pack fifo",
                PackError::Unsupported {
                    path: p(),
                    kind: "fifo",
                }
                .fault(),
                Input,
            ),
            (
                "pack write",
                PackError::Write {
                    archive: p(),
                    source: io(),
                }
                .fault(),
                Env,
            ),
            (
                "pack link unresolvable",
                PackError::Link {
                    path: p(),
                    problem: unresolvable,
                }
                .fault(),
                Env,
            ),
            (
                "pack link missing",
                PackError::Link {
                    path: p(),
                    problem: missing_link,
                }
                .fault(),
                Input,
            ),
            (
                "pack's out",
                PackError::OutDir(OutDirError::Busy(p())).fault(),
                Env,
            ),
            (
                "--config not TOML",
                UserWrapperError::BadCliConfig {
                    arg: "bad[".into(),
                    source: toml(),
                }
                .fault(),
                Usage,
            ),
            (
                "cargo config not TOML",
                UserWrapperError::ParseConfig {
                    path: p(),
                    source: toml(),
                }
                .fault(),
                Input,
            ),
            (
                "wrapper not in PATH",
                UserWrapperError::NotInPath {
                    name: "w".into(),
                    origin: String::new(),
                }
                .fault(),
                Env,
            ),
            (
                "bad strategy",
                UserWrapperError::BadStrategy(BadStrategy {
                    value: "sideways".into(),
                })
                .fault(),
                Usage,
            ),
        ];
        let wrong: Vec<_> = cases.iter().filter(|(_, got, want)| got != want).collect();
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}
