//! `freshen`: the stale-binary guard.
//!
//! Every file in the Nix store has mtime 1, and so does every source a Nix build copies out of
//! it. When a derivation inherits fingerprints that were built from *other* sources (crane's
//! dummy sources, or an older revision) which also carried mtime 1, cargo finds no source newer
//! than its records and calls the unit Fresh: the build ships the old binary. Giving the local
//! packages' own files (see [`crate::sources`]) the current time makes them newer than anything
//! inherited, so their units rebuild; registry dependencies are fingerprinted by version and are
//! never touched, nor are vendored crates, nor target dirs.
//!
//! Only packages whose sources differ from the ones the inherited target was built from are
//! touched: pack records a digest of each local package's own files in the manifest
//! ([`crate::sources::SourceDigests`]), and a package with the same digest keeps its mtimes, so
//! its inherited units stay Fresh. Everything is touched when there is nothing to compare with
//! (no inherited artifacts given, crane's formats, a pack without digests); a package the
//! inherited digests do not name is touched too. Nothing here resolves dependencies or runs
//! cargo: it works before crane has configured its vendored sources.

use crate::artifacts::{Artifacts, ArtifactsError};
use crate::fsutil::{FsError, IoContext};
use crate::sources::{self, SourceDigests};
use crate::store::StoreDir;
use crate::workspace::{Workspace, WorkspaceError};
use filetime::FileTime;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct FreshenOptions {
    /// The manifest to start from (cargo's rules find the workspace root from it).
    pub manifest_path: PathBuf,
    /// The artifacts the target dir was unpacked from, whose digests are compared.
    pub inherited: Option<PathBuf>,
    /// Never walked into: the target dir and the build dir.
    pub skip: Vec<PathBuf>,
    pub store: StoreDir,
}

/// What happened to one local package.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PackageReport {
    /// Its directory relative to the workspace root (`.` for the root).
    pub key: String,
    pub name: Option<String>,
    pub action: Action,
    pub reason: Reason,
    /// Files given a fresh mtime (0 when kept).
    pub touched: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Kept,
    Freshened,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The inherited target was built from exactly these sources.
    SameSources,
    /// The inherited target was built from other sources.
    SourcesDiffer,
    /// The inherited digests do not name this package (new, or moved).
    NotInherited,
    /// The inherited artifacts carry no digests (crane's formats, an older pack).
    NoDigests,
    /// No inherited artifacts were named.
    NoArtifacts,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::SameSources => "same sources",
            Reason::SourcesDiffer => "sources differ",
            Reason::NotInherited => "not in the inherited digests",
            Reason::NoDigests => "inherited artifacts record no digests",
            Reason::NoArtifacts => "no inherited artifacts given",
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FreshenReport {
    /// The workspace root directory.
    pub root: PathBuf,
    pub packages: Vec<PackageReport>,
    pub freshened: u64,
    pub kept: u64,
    /// Files given a fresh mtime.
    pub touched: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FreshenError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("cannot read the inherited artifacts")]
    Artifacts(#[from] ArtifactsError),
}

/// Touches the own files of every local package whose sources differ from the inherited ones.
pub fn freshen(opts: &FreshenOptions) -> Result<FreshenReport, FreshenError> {
    let ws = Workspace::discover(&opts.manifest_path)?;
    let inherited = match &opts.inherited {
        None => Err(Reason::NoArtifacts),
        Some(dir) => match Artifacts::detect(dir, &opts.store)? {
            Artifacts::Nixcache(ours) => ours
                .manifest
                .sources
                .filter(|s| s.hash == sources::HASH)
                .map(|s| *s)
                .ok_or(Reason::NoDigests),
            Artifacts::CraneZstd { .. } | Artifacts::CraneDir { .. } => Err(Reason::NoDigests),
        },
    };
    let now = FileTime::now();
    let mut report = FreshenReport {
        root: ws.root.clone(),
        ..FreshenReport::default()
    };
    for pkg in sources::scan(&ws, &opts.skip)? {
        let reason = decide(&inherited, &pkg.key, &pkg.digest);
        let action = if reason == Reason::SameSources {
            report.kept += 1;
            Action::Kept
        } else {
            for file in &pkg.files {
                filetime::set_file_mtime(file, now).with_path("set mtime of", file)?;
            }
            report.freshened += 1;
            report.touched += pkg.files.len() as u64;
            Action::Freshened
        };
        report.packages.push(PackageReport {
            key: pkg.key,
            name: pkg.name,
            action,
            reason,
            touched: if action == Action::Kept {
                0
            } else {
                pkg.files.len() as u64
            },
        });
    }
    Ok(report)
}

fn decide(inherited: &Result<SourceDigests, Reason>, key: &str, digest: &str) -> Reason {
    match inherited {
        Err(reason) => *reason,
        Ok(d) => match d.packages.get(key) {
            None => Reason::NotInherited,
            Some(old) if old == digest => Reason::SameSources,
            Some(_) => Reason::SourcesDiffer,
        },
    }
}
