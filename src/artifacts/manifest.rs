//! The manifest, `nixcache.json`: what our artifacts directory holds (archive, anchor, store dir,
//! counts, source digests). Read with every check a reader relies on, written atomically; pack
//! writes it last, so its presence means the rest is complete.

use crate::archive::Compression;
use crate::classify::TreeLayout;
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, FsError, InputFileError};
use crate::sources::SourceDigests;
use crate::store::StoreDir;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = "nixcache.json";
/// Value of the manifest's `format` field.
pub const FORMAT_NAME: &str = "cargo-nixcache";
/// The format version this build writes; see docs/format.md.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads: version 2 only added hard-link members, so a version 1
/// archive is a version 2 archive without them.
const OLDEST_READ_VERSION: u32 = 1;
/// The largest manifest read (the biggest holds source digests: about 100 bytes a package).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// `nixcache.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// File name of the archive inside the artifacts directory.
    pub archive: String,
    pub compression: Compression,
    /// File name of the GC anchor.
    pub anchor: String,
    /// The store dir the symlinks point into.
    pub store_dir: PathBuf,
    /// Number of archive entries, so a tar cut at a member boundary is detected.
    pub entries: u64,
    /// Length of the uncompressed archive stream: a further integrity check, and it tells
    /// unpack whether the stream is small enough to decompress once into memory. Optional
    /// (unpack then streams the archive once per pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_bytes: Option<u64>,
    /// The roots present (`target`, and `build` when a separate build dir was packed).
    pub roots: Vec<String>,
    /// The build-dir layout the packed tree showed (`classic`, `v2`, `mixed`); absent when it
    /// held no cargo unit, and in manifests written before the field existed. Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<TreeLayout>,
    /// `cargo-nixcache <version>` that wrote it.
    pub generator: String,
    /// Digests of the local packages' sources the archived units were built from, which
    /// `freshen` compares. Optional: absent when pack found no workspace (freshen then touches
    /// every local package). Boxed: most code handling a manifest never looks at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Box<SourceDigests>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Input(#[from] InputFileError),
    #[error("`{path}` is not a cargo-nixcache manifest ({reason}); recreate the artifacts with `cargo nixcache pack`")]
    Bad { path: PathBuf, reason: String },
    #[error("`{path}` has format version {found}, but this cargo-nixcache reads versions {OLDEST_READ_VERSION} to {FORMAT_VERSION}; use a matching cargo-nixcache or recreate the artifacts")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("`{path}` was packed for the store dir `{packed}`, but the store dir here is `{here}`; pass --store-dir {packed} or repack")]
    StoreDirMismatch {
        path: PathBuf,
        packed: PathBuf,
        here: PathBuf,
    },
}

impl HasFault for ManifestError {
    fn fault(&self) -> Fault {
        match self {
            ManifestError::Input(e) => e.fault(),
            ManifestError::Bad { .. }
            | ManifestError::UnsupportedVersion { .. }
            | ManifestError::StoreDirMismatch { .. } => Fault::Input,
        }
    }
}

/// Reads the manifest at `path`: our format, this version, files named inside its directory,
/// packed for the store dir here.
pub fn read(path: &Path, store: &StoreDir) -> Result<Manifest, ManifestError> {
    let text = fsutil::read_input_to_string(path, MAX_MANIFEST_BYTES, "manifest")?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ManifestError::Bad {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if manifest.format != FORMAT_NAME {
        let reason = format!("its format is `{}`", manifest.format);
        return Err(ManifestError::Bad {
            path: path.into(),
            reason,
        });
    }
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&manifest.version) {
        return Err(ManifestError::UnsupportedVersion {
            path: path.into(),
            found: manifest.version,
        });
    }
    for name in [&manifest.archive, &manifest.anchor] {
        if name.contains('/') || name.starts_with('.') {
            let reason = format!("it names the file `{name}` outside its directory");
            return Err(ManifestError::Bad {
                path: path.into(),
                reason,
            });
        }
    }
    if manifest.store_dir != store.as_path() {
        return Err(ManifestError::StoreDirMismatch {
            path: path.into(),
            packed: manifest.store_dir.clone(),
            here: store.as_path().into(),
        });
    }
    Ok(manifest)
}

/// Writes the manifest into `dir` atomically.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<(), FsError> {
    fsutil::write_atomic(&dir.join(MANIFEST), |w| {
        serde_json::to_writer_pretty(&mut *w, manifest)?;
        w.write_all(b"\n")
    })
}
