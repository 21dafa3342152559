//! The artifacts directory (`$out` of a deps derivation), and its one owner: what its files are
//! called, which format a directory holds (ours or one of crane's), and for ours, everything read
//! from it before anything is written.
//!
//! - this file: [`Artifacts::detect`], our artifacts as found ([`NixcacheDir`]), opened for
//!   their check ([`NixcacheDir::open`]), the errors of all of it;
//! - [`manifest`]: `nixcache.json`, read with its checks, and written;
//! - [`anchor`]: the GC anchor `nixcache-refs`, rendered and read back;
//! - [`check`]: reading our archive completely and checking it against both (unpack's first
//!   pass, and all of verify);
//! - [`crane`]: crane's names, the `.prev` link of its archive chains, and the stop sign pack
//!   leaves for an unadapted crane;
//! - [`publish`]: the write side, as `check` is the read side: what a pack finds written
//!   (anchor, archive, stop sign, manifest last), older artifacts withdrawn first, and what pack
//!   asks about the directory it writes (where the archive and the moved artifacts go, its
//!   temporary files).
//!
//! The names of our files: [`MANIFEST`], [`ANCHOR`](anchor::ANCHOR), `artifacts/` (the moved artifacts, known
//! only to [`publish`]), and the archive's, which depends on its compression
//! ([`Compression::archive_file_name`](crate::archive::Compression::archive_file_name)).
//! Imports point down: this file uses its submodules, which never use it.

pub(crate) mod anchor;
pub(crate) mod check;
pub mod crane;
pub(crate) mod manifest;
pub(crate) mod publish;

pub(crate) use manifest::{Manifest, MANIFEST};

use crate::archive::ArchiveError;
use crate::fault::{Fault, HasFault};
use crate::store::StoreDir;
use anchor::AnchorError;
use check::Opened;
use manifest::ManifestError;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error("`{0}` does not exist; pass the artifacts (the output of a deps derivation)")]
    NotFound(PathBuf),
    #[error(
        "`{0}` holds no cargo artifacts: expected `{MANIFEST}` (cargo-nixcache), `{archive}` or \
         `{dir}/` (crane); is it the output of a deps derivation?",
        archive = crane::ARCHIVE,
        dir = crane::DIR
    )]
    Unrecognized(PathBuf),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// Boxed: the other variants are small, and every caller's error holds this one.
    #[error(transparent)]
    Archive(Box<ArchiveError>),
}

impl HasFault for ArtifactsError {
    fn fault(&self) -> Fault {
        match self {
            ArtifactsError::Manifest(e) => e.fault(),
            ArtifactsError::Anchor(e) => e.fault(),
            ArtifactsError::Archive(e) => e.fault(),
            ArtifactsError::Unrecognized(_) | ArtifactsError::NotFound(_) => Fault::Input,
        }
    }
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
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        let manifest_path = path.join(MANIFEST);
        if exists(&manifest_path) {
            let manifest = manifest::read(&manifest_path, store)?;
            return Ok(Artifacts::Nixcache(Box::new(NixcacheDir {
                archive: path.join(&manifest.archive),
                anchor: path.join(&manifest.anchor),
                manifest,
            })));
        }
        if exists(path) && !path.is_dir() && crane::is_archive_name(path) {
            return Ok(Artifacts::CraneZstd {
                archive: path.to_path_buf(),
            });
        }
        if exists(&path.join(crane::ARCHIVE)) {
            return Ok(Artifacts::CraneZstd {
                archive: path.join(crane::ARCHIVE),
            });
        }
        if path.join(crane::DIR).is_dir() {
            return Ok(Artifacts::CraneDir {
                target: path.join(crane::DIR),
            });
        }
        Err(ArtifactsError::Unrecognized(path.to_path_buf()))
    }
}

impl NixcacheDir {
    /// Reads the GC anchor and opens the archive, to be checked against both ([`Opened::check`]):
    /// unpack's first pass, and all of verify.
    pub fn open<'a>(&'a self, store: &'a StoreDir) -> Result<Opened<'a>, ArtifactsError> {
        let anchor = anchor::read(&self.anchor, store)?;
        Ok(Opened::new(
            &self.archive,
            &self.manifest,
            &self.anchor,
            anchor,
            store,
        )?)
    }
}
