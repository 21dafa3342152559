//! The artifacts directory (`$out` of a deps derivation), and its one owner: what its files are
//! called, which format a directory holds (ours or one of crane's), and for ours, everything read
//! from it before anything is written.
//!
//! - this file: the names of our files, [`Artifacts::detect`], the errors of all of it;
//! - [`manifest`]: `nixcache.json`, read with its checks, and written;
//! - [`anchor`]: the GC anchor `nixcache-refs`, rendered and read back;
//! - [`check`]: reading our archive completely and checking it against both (unpack's first
//!   pass, and all of verify);
//! - [`crane`]: crane's names and formats, and the stop sign pack leaves for an unadapted crane.
//!
//! The archive's own file name depends on its compression
//! ([`Compression::archive_file_name`](crate::archive::Compression::archive_file_name)).

pub(crate) mod anchor;
pub(crate) mod check;
pub mod crane;
pub(crate) mod manifest;

pub(crate) use manifest::{Manifest, FORMAT_NAME, FORMAT_VERSION};

use crate::archive::ArchiveError;
use crate::fsutil::{FsError, InputFileError};
use crate::store::StoreDir;
use std::path::{Path, PathBuf};

/// Manifest file name; written last, so its presence means the artifacts are complete.
pub(crate) const MANIFEST: &str = "nixcache.json";
/// GC anchor file name: one absolute store path per line.
pub(crate) const ANCHOR: &str = "nixcache-refs";
/// Directory holding the real bytes of artifacts a build produced.
pub(crate) const BLOBS: &str = "artifacts";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Input(#[from] InputFileError),
    /// Boxed: the other variants are small, and every caller's error holds this one.
    #[error(transparent)]
    Archive(Box<ArchiveError>),
    #[error("`{path}` is not a cargo-nixcache manifest ({reason}); recreate the artifacts with `cargo nixcache pack`")]
    BadManifest { path: PathBuf, reason: String },
    #[error("`{path}` has format version {found}, but this cargo-nixcache reads version {FORMAT_VERSION}; use a matching cargo-nixcache or recreate the artifacts")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("`{path}` was packed for the store dir `{packed}`, but the store dir here is `{here}`; pass --store-dir {packed} or repack")]
    StoreDirMismatch {
        path: PathBuf,
        packed: PathBuf,
        here: PathBuf,
    },
    #[error("`{0}` does not exist; pass the artifacts (the output of a deps derivation)")]
    NotFound(PathBuf),
    #[error(
        "`{0}` holds no cargo artifacts: expected `{MANIFEST}` (cargo-nixcache), `{archive}` or \
         `{dir}/` (crane); is it the output of a deps derivation?",
        archive = crane::ARCHIVE,
        dir = crane::DIR
    )]
    Unrecognized(PathBuf),
    #[error("GC anchor `{path}` line {line}: {reason}")]
    BadAnchor {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl From<ArchiveError> for ArtifactsError {
    fn from(e: ArchiveError) -> Self {
        ArtifactsError::Archive(Box::new(e))
    }
}

/// What an artifacts directory holds.
#[derive(Debug)]
pub(crate) enum Artifacts {
    /// Our format (boxed: the manifest is big, and crane's variants hold a path).
    Nixcache(Box<NixcacheDir>),
    /// crane's `use-zstd` output: `target.tar.zst`, possibly with a `.prev` chain.
    CraneZstd { archive: PathBuf },
    /// crane's `use-symlink` output: a plain `target/` directory.
    CraneDir { target: PathBuf },
}

/// Our artifacts: the manifest, read and checked, and where the files it names are.
#[derive(Debug)]
pub(crate) struct NixcacheDir {
    pub manifest: Manifest,
    pub archive: PathBuf,
    pub anchor: PathBuf,
}

impl Artifacts {
    /// Recognises the format of `path`: an artifacts directory, or directly a crane archive.
    ///
    /// By names, not by file types: a manifest or archive that is there but is no regular file
    /// (a fifo, a device) is refused when read, never mistaken for another format.
    pub fn detect(path: &Path, store: &StoreDir) -> Result<Self, ArtifactsError> {
        // Not "holds no artifacts": the usual cause is a mistyped path or an unset variable.
        if matches!(path.try_exists(), Ok(false)) {
            return Err(ArtifactsError::NotFound(path.to_path_buf()));
        }
        let manifest_path = path.join(MANIFEST);
        if std::fs::symlink_metadata(&manifest_path).is_ok() {
            let manifest = manifest::read(&manifest_path, store)?;
            return Ok(Artifacts::Nixcache(Box::new(NixcacheDir {
                archive: path.join(&manifest.archive),
                anchor: path.join(&manifest.anchor),
                manifest,
            })));
        }
        crane::detect(path).ok_or_else(|| ArtifactsError::Unrecognized(path.to_path_buf()))
    }
}
