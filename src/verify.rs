//! `verify`: checks that artifacts are whole, with exactly the checks unpack makes before it
//! writes anything (`artifacts::check`): integrity of every byte, every member, every link
//! resolving inside the store, the member count and stream length, the GC anchor.
//!
//! Unlike unpack, which stops at the first problem, verify lists every problem that leaves the
//! rest of the archive readable; one that does not (corruption, a bad member) ends it as an
//! error. Either way "ok" means unpack will restore the archive, given an empty destination.
//!
//! # Security
//! verify reads only the artifacts and the store paths their links name, writes nothing, and
//! refuses what unpack refuses: special files, unbounded manifests and anchors, unchecksummed
//! zstd frames, links leading out of the store. It does not look at what linked files contain.

use crate::artifacts::{Artifacts, ArtifactsError};
use crate::fault::{Fault, HasFault};
use crate::store::StoreDir;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub links: u64,
    pub anchored: u64,
    /// One line per problem; empty when the artifacts are sound.
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    #[error("`{0}` holds crane artifacts; verify checks cargo-nixcache artifacts only")]
    NotNixcache(PathBuf),
}

impl HasFault for VerifyError {
    fn fault(&self) -> Fault {
        match self {
            VerifyError::Artifacts(e) => e.fault(),
            VerifyError::NotNixcache(_) => Fault::Usage,
        }
    }
}

pub fn verify(path: &Path, store: &StoreDir) -> Result<VerifyReport, VerifyError> {
    let Artifacts::Nixcache(ours) = Artifacts::detect(path, store)? else {
        return Err(VerifyError::NotNixcache(path.into()));
    };
    let mut problems = Vec::new();
    let opened = ours.open(store)?;
    let checked = opened
        .check(
            |e| {
                problems.push(e.to_string());
                Ok(())
            },
            |_, _| Ok(()),
        )
        .map_err(ArtifactsError::from)?;
    Ok(VerifyReport {
        entries: checked.summary.entries,
        links: checked.links,
        anchored: opened.anchored(),
        problems,
    })
}
