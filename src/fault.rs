//! Whose fault an error is: the input's, the environment's, or the caller's. The command line
//! turns this into its exit code (src/main.rs: 3, 1, 2), so the same rejection exits the same
//! way wherever it is detected: while reading the manifest, validating the archive, resolving
//! a link, or only when pass two meets it.
//!
//! - [`Fault::Input`]: what we were given to read is wrong: artifacts (manifest, anchor, archive,
//!   crane's formats), a target dir pack refuses (a fifo, a link out of the store), a workspace
//!   manifest cargo would refuse too. Retrying cannot help; the input must change.
//! - [`Fault::Environment`]: I/O failed, permissions, a busy or non-empty destination, a command
//!   we run failed. The same command may work elsewhere or later.
//! - [`Fault::Usage`]: the command line asks for something that cannot work whatever the files
//!   hold: an output outside the store, overlapping directories, an OUT another pack owns.

use crate::archive::{ArchiveError, EntryProblem};
use crate::artifacts::anchor::AnchorError;
use crate::artifacts::manifest::ManifestError;
use crate::artifacts::ArtifactsError;
use crate::builddir::BuildDirError;
use crate::explain::ExplainError;
use crate::freshen::FreshenError;
use crate::fsutil::{FsError, InputFileError};
use crate::hydrate::HydrateError;
use crate::outdir::OutDirError;
use crate::pack::PackError;
use crate::refs::RefsError;
use crate::store::StoreError;
use crate::unpack::crane::CraneError;
use crate::unpack::UnpackError;
use crate::verify::VerifyError;
use crate::workspace::WorkspaceError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Input,
    Environment,
    Usage,
}

/// An error that knows whose fault it is.
pub(crate) trait Classify {
    fn fault(&self) -> Fault;
}

/// The fault of the outermost error in `err`'s chain that knows it (errors wrap the ones they
/// were caused by, and know their context better); the environment's if none does.
pub fn of(err: &(dyn std::error::Error + 'static)) -> Fault {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(fault) = classify(e) {
            return fault;
        }
        next = e.source();
    }
    Fault::Environment
}

fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Fault> {
    macro_rules! first_of {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = e.downcast_ref::<$t>() {
                return Some(e.fault());
            })*
        };
    }
    first_of!(
        ExplainError,
        HydrateError,
        UnpackError,
        VerifyError,
        PackError,
        OutDirError,
        FreshenError,
        RefsError,
        ArtifactsError,
        ManifestError,
        AnchorError,
        ArchiveError,
        CraneError,
        WorkspaceError,
        BuildDirError,
        InputFileError,
        StoreError,
        FsError,
    );
    None
}

impl Classify for FsError {
    fn fault(&self) -> Fault {
        Fault::Environment
    }
}

impl Classify for InputFileError {
    fn fault(&self) -> Fault {
        match self {
            InputFileError::Fs(e) => e.fault(),
            InputFileError::Missing(_)
            | InputFileError::NotRegular { .. }
            | InputFileError::TooBig { .. }
            | InputFileError::NotUtf8(_) => Fault::Input,
        }
    }
}

impl Classify for StoreError {
    /// Store paths the user typed (`--store-dir`, `--forbid`, `--out`); input that names a bad
    /// one is classified by its own error type.
    fn fault(&self) -> Fault {
        Fault::Usage
    }
}

impl Classify for ArchiveError {
    fn fault(&self) -> Fault {
        match self {
            ArchiveError::File(e) => e.fault(),
            ArchiveError::Open { .. } => Fault::Environment,
            ArchiveError::Entry {
                problem: EntryProblem::Link(link),
                ..
            } if link.is_environment() => Fault::Environment,
            ArchiveError::Corrupt { .. }
            | ArchiveError::Entry { .. }
            | ArchiveError::NotAnchored { .. }
            | ArchiveError::MissingStorePath { .. }
            | ArchiveError::StreamLength { .. }
            | ArchiveError::Truncated { .. } => Fault::Input,
        }
    }
}

impl Classify for ArtifactsError {
    fn fault(&self) -> Fault {
        match self {
            ArtifactsError::Manifest(e) => e.fault(),
            ArtifactsError::Anchor(e) => e.fault(),
            ArtifactsError::Archive(e) => e.fault(),
            ArtifactsError::Unrecognized(_) | ArtifactsError::NotFound(_) => Fault::Input,
        }
    }
}

impl Classify for ManifestError {
    fn fault(&self) -> Fault {
        match self {
            ManifestError::Input(e) => e.fault(),
            ManifestError::Bad { .. }
            | ManifestError::UnsupportedVersion { .. }
            | ManifestError::StoreDirMismatch { .. } => Fault::Input,
        }
    }
}

impl Classify for AnchorError {
    fn fault(&self) -> Fault {
        match self {
            AnchorError::Input(e) => e.fault(),
            AnchorError::Bad { .. } => Fault::Input,
        }
    }
}

impl Classify for CraneError {
    fn fault(&self) -> Fault {
        match self {
            CraneError::Fs(e) => e.fault(),
            CraneError::File(e) => e.fault(),
            CraneError::Corrupt { .. }
            | CraneError::Entry { .. }
            | CraneError::Dir { .. }
            | CraneError::ChainTooLong(_) => Fault::Input,
        }
    }
}

impl Classify for BuildDirError {
    fn fault(&self) -> Fault {
        Fault::Environment
    }
}

impl Classify for WorkspaceError {
    fn fault(&self) -> Fault {
        match self {
            WorkspaceError::NotFound(_)
            | WorkspaceError::NoManifest(_)
            | WorkspaceError::ManifestIsDir(_) => Fault::Usage,
            WorkspaceError::Fs(e) => e.fault(),
            WorkspaceError::BadManifest { .. }
            | WorkspaceError::Missing { .. }
            | WorkspaceError::Pattern { .. } => Fault::Input,
        }
    }
}

impl Classify for ExplainError {
    fn fault(&self) -> Fault {
        match self {
            ExplainError::Log(e) => e.fault(),
            ExplainError::Spawn { .. }
            | ExplainError::ReadOutput(_)
            | ExplainError::ReadLog { .. } => Fault::Environment,
        }
    }
}

impl Classify for HydrateError {
    fn fault(&self) -> Fault {
        match self {
            HydrateError::Unpack(e) => e.fault(),
            HydrateError::Fs(e) => e.fault(),
            HydrateError::BadRecord(_) => Fault::Input,
            HydrateError::NotUtf8(_) => Fault::Usage,
            HydrateError::DanglingTarget { .. }
            | HydrateError::MoveAside { .. }
            | HydrateError::Restore { .. } => Fault::Environment,
        }
    }
}

impl Classify for UnpackError {
    fn fault(&self) -> Fault {
        match self {
            UnpackError::Artifacts(e) => e.fault(),
            UnpackError::Archive(e) => e.fault(),
            UnpackError::Crane(e) => e.fault(),
            UnpackError::Fs(e) => e.fault(),
            UnpackError::BuildDir(e) => e.fault(),
            UnpackError::NoBuildDir(_) | UnpackError::SameBuildDir { .. } => Fault::Usage,
            UnpackError::NotEmpty(_)
            | UnpackError::SymlinkRoot(_)
            | UnpackError::RollbackFailed { .. } => Fault::Environment,
        }
    }
}

impl Classify for VerifyError {
    fn fault(&self) -> Fault {
        match self {
            VerifyError::Artifacts(e) => e.fault(),
            VerifyError::NotNixcache(_) => Fault::Usage,
        }
    }
}

impl Classify for FreshenError {
    fn fault(&self) -> Fault {
        match self {
            FreshenError::Fs(e) => e.fault(),
            FreshenError::Workspace(e) => e.fault(),
            FreshenError::Artifacts(e) => e.fault(),
        }
    }
}

impl Classify for RefsError {
    fn fault(&self) -> Fault {
        match self {
            RefsError::RootNotFound { .. } => Fault::Usage,
            RefsError::Walk { .. } | RefsError::Read { .. } | RefsError::ReadLink { .. } => {
                Fault::Environment
            }
        }
    }
}

impl Classify for OutDirError {
    fn fault(&self) -> Fault {
        match self {
            OutDirError::Fs(e) => e.fault(),
            OutDirError::Busy(_) => Fault::Environment,
            OutDirError::ForeignOut { .. } | OutDirError::CraneOut { .. } => Fault::Usage,
        }
    }
}

impl Classify for PackError {
    fn fault(&self) -> Fault {
        match self {
            PackError::Fs(e) => e.fault(),
            PackError::Workspace(e) => e.fault(),
            PackError::OutDir(e) => e.fault(),
            PackError::Write { .. } | PackError::Undo { .. } | PackError::Changed(_) => {
                Fault::Environment
            }
            PackError::BuildDir(e) => e.fault(),
            PackError::NoTargetDir(_)
            | PackError::NoBuildDir(_)
            | PackError::OutNotStorePath { .. }
            | PackError::Overlap { .. } => Fault::Usage,
            PackError::Link { problem, .. } if problem.is_environment() => Fault::Environment,
            PackError::LinkOutsideStore { .. }
            | PackError::BadLink { .. }
            | PackError::Link { .. }
            | PackError::Unsupported { .. } => Fault::Input,
        }
    }
}
