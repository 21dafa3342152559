//! `verify`: checks that artifacts are still whole: every symlink in the archive resolves and
//! every store path in the archive stream is kept alive by the GC anchor.
//!
//! Unlike unpack, which stops at the first problem, verify reports all of them.

use crate::archive::{ArchiveError, ArchiveReader, EntryKind};
use crate::artifacts::{self, Artifacts, ArtifactsError};
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
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("`{0}` holds crane artifacts; verify checks cargo-nixcache artifacts only")]
    NotNixcache(PathBuf),
}

pub fn verify(path: &Path, store: &StoreDir) -> Result<VerifyReport, VerifyError> {
    let (dir, manifest) = match Artifacts::detect(path, store)? {
        Artifacts::Nixcache { dir, manifest } => (dir, manifest),
        _ => return Err(VerifyError::NotNixcache(path.into())),
    };
    let anchor = artifacts::read_anchor(&dir.join(&manifest.anchor), store)?;
    let mut report = VerifyReport {
        anchored: anchor.len() as u64,
        ..Default::default()
    };
    let archive = dir.join(&manifest.archive);
    let summary = ArchiveReader::new(&archive, store).read(|entry, _| {
        if let EntryKind::Symlink { target } = &entry.kind {
            report.links += 1;
            if std::fs::metadata(target).is_err() {
                report.problems.push(format!(
                    "`{}` -> `{}` does not resolve",
                    entry.path,
                    target.display()
                ));
            }
        }
        Ok::<_, VerifyError>(())
    })?;
    report.entries = summary.entries;
    if summary.entries != manifest.entries {
        report.problems.push(format!(
            "the archive holds {} entries but the manifest says {}: truncated",
            summary.entries, manifest.entries
        ));
    }
    if let Some(expected) = manifest.stream_bytes.filter(|&n| n != summary.stream_bytes) {
        report.problems.push(format!(
            "the archive's uncompressed stream holds {} bytes but the manifest says {expected}",
            summary.stream_bytes
        ));
    }
    let anchored: std::collections::HashSet<_> = anchor.iter().map(|p| *p.digest()).collect();
    for missing in summary
        .references
        .iter()
        .filter(|p| !anchored.contains(p.digest()))
    {
        report.problems.push(format!(
            "`{}` is named in the archive but not in the GC anchor",
            store.to_absolute(missing).display()
        ));
    }
    Ok(report)
}
