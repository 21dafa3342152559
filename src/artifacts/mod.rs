//! The artifacts directory (`$out` of a deps derivation): its file names, the manifest, the GC
//! anchor, and recognising which format a directory holds (ours or one of crane's).

pub mod check;

use crate::archive::path::display_bytes;
use crate::archive::Compression;
use crate::classify::TreeLayout;
use crate::fsutil::{self, FsError, InputFileError};
use crate::sources::SourceDigests;
use crate::store::{StoreDir, StorePath};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Manifest file name; written last, so its presence means the artifacts are complete.
pub const MANIFEST: &str = "nixcache.json";
/// GC anchor file name: one absolute store path per line.
pub const ANCHOR: &str = "nixcache-refs";
/// Directory holding the real bytes of artifacts a build produced.
pub const BLOBS: &str = "artifacts";
/// crane's archive name. Our outputs carry a stop sign under it: see [`write_crane_stop_sign`].
pub const CRANE_ARCHIVE: &str = "target.tar.zst";
/// Value of the manifest's `format` field.
pub const FORMAT_NAME: &str = "cargo-nixcache";
/// The format version this build writes and reads; see docs/format.md.
pub const FORMAT_VERSION: u32 = 1;
/// The largest manifest read (the biggest holds source digests: about 100 bytes a package).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The largest GC anchor read (about 100 bytes a store path).
pub const MAX_ANCHOR_BYTES: u64 = 64 << 20;

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
pub enum ArtifactsError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Input(#[from] InputFileError),
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
        "`{0}` holds no cargo artifacts: expected `{MANIFEST}` (cargo-nixcache), `target.tar.zst` or \
         `target/` (crane); is it the output of a deps derivation?"
    )]
    Unrecognized(PathBuf),
    #[error("GC anchor `{path}` line {line}: {reason}")]
    BadAnchor {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What an artifacts directory holds.
#[derive(Debug)]
pub enum Artifacts {
    /// Our format: the directory and its manifest.
    Nixcache { dir: PathBuf, manifest: Manifest },
    /// crane's `use-zstd` output: `target.tar.zst`, possibly with a `.prev` chain.
    CraneZstd { archive: PathBuf },
    /// crane's `use-symlink` output: a plain `target/` directory.
    CraneDir { target: PathBuf },
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
            let manifest = read_manifest(&manifest_path, store)?;
            return Ok(Artifacts::Nixcache {
                dir: path.to_path_buf(),
                manifest,
            });
        }
        if exists(path) && !path.is_dir() && path.to_string_lossy().ends_with(".tar.zst") {
            return Ok(Artifacts::CraneZstd {
                archive: path.to_path_buf(),
            });
        }
        if exists(&path.join(CRANE_ARCHIVE)) {
            return Ok(Artifacts::CraneZstd {
                archive: path.join(CRANE_ARCHIVE),
            });
        }
        if path.join("target").is_dir() {
            return Ok(Artifacts::CraneDir {
                target: path.join("target"),
            });
        }
        Err(ArtifactsError::Unrecognized(path.to_path_buf()))
    }
}

fn read_manifest(path: &Path, store: &StoreDir) -> Result<Manifest, ArtifactsError> {
    let text = fsutil::read_input_to_string(path, MAX_MANIFEST_BYTES, "manifest")?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| ArtifactsError::BadManifest {
            path: path.into(),
            reason: e.to_string(),
        })?;
    if manifest.format != FORMAT_NAME {
        let reason = format!("its format is `{}`", manifest.format);
        return Err(ArtifactsError::BadManifest {
            path: path.into(),
            reason,
        });
    }
    if manifest.version != FORMAT_VERSION {
        return Err(ArtifactsError::UnsupportedVersion {
            path: path.into(),
            found: manifest.version,
        });
    }
    for name in [&manifest.archive, &manifest.anchor] {
        if name.contains('/') || name.starts_with('.') {
            let reason = format!("it names the file `{name}` outside its directory");
            return Err(ArtifactsError::BadManifest {
                path: path.into(),
                reason,
            });
        }
    }
    if manifest.store_dir != store.as_path() {
        return Err(ArtifactsError::StoreDirMismatch {
            path: path.into(),
            packed: manifest.store_dir.clone(),
            here: store.as_path().into(),
        });
    }
    Ok(manifest)
}

/// Renders the anchor: sorted absolute store paths, one per line.
pub fn render_anchor(store: &StoreDir, paths: &BTreeSet<StorePath>) -> String {
    let mut text = String::new();
    for p in paths {
        text.push_str(&store.to_absolute(p).to_string_lossy());
        text.push('\n');
    }
    text
}

/// Reads an anchor back into the set of store paths it keeps alive.
pub fn read_anchor(path: &Path, store: &StoreDir) -> Result<BTreeSet<StorePath>, ArtifactsError> {
    let text = fsutil::read_input_to_string(path, MAX_ANCHOR_BYTES, "GC anchor")?;
    let mut set = BTreeSet::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let (store_path, rest) =
            store
                .parse(Path::new(line))
                .map_err(|e| ArtifactsError::BadAnchor {
                    path: path.into(),
                    line: i + 1,
                    reason: display_bytes(e.to_string().as_bytes()),
                })?;
        if !rest.as_os_str().is_empty() {
            let reason = format!(
                "`{}` is not a bare store path",
                display_bytes(line.as_bytes())
            );
            return Err(ArtifactsError::BadAnchor {
                path: path.into(),
                line: i + 1,
                reason,
            });
        }
        set.insert(store_path);
    }
    Ok(set)
}

/// The one member of the stop sign: a hard link whose names tell what happened and what to do.
const STOP_SIGN_NAME: &str =
    "this-is-a-cargo-nixcache-output.inherit-it-through-the-cargo-nixcache-crane-adapter";
const STOP_SIGN_LINK: &str = "see-docs-nix.md-of-cargo-nixcache";

/// Writes `target.tar.zst` into an artifacts directory: a zstd frame holding a tar whose only
/// member is a hard link to a file that does not exist. crane's stock inheritCargoArtifacts
/// (lib/setupHooks/inheritCargoArtifactsHook.sh) copies any directory WITHOUT such a file into
/// `target/` with rsync, so a derivation of an unadapted crane lib would silently inherit our
/// manifest and archive as junk and rebuild everything. With it, crane runs
/// `zstd -d | tar -x`, GNU tar fails ("Cannot hard link to ..."), naming this member, and the
/// build stops (crane's hooks run under errexit and pipefail). Our own readers never look at it:
/// the manifest comes first. 144 bytes, always the same.
pub fn write_crane_stop_sign(dir: &Path) -> Result<(), FsError> {
    let path = dir.join(CRANE_ARCHIVE);
    fsutil::write_atomic(&path, |w| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Link);
        header.set_path(STOP_SIGN_NAME)?;
        header.set_link_name(STOP_SIGN_LINK)?;
        header.set_size(0);
        header.set_mode(0o644);
        header.set_mtime(1);
        header.set_cksum();
        let mut tar = tar::Builder::new(Vec::new());
        tar.append(&header, std::io::empty())?;
        // With a checksum, like every zstd frame cargo-nixcache writes or reads.
        let mut encoder = zstd::Encoder::new(Vec::new(), 3)?;
        encoder.include_checksum(true)?;
        std::io::Write::write_all(&mut encoder, &tar.into_inner()?)?;
        w.write_all(&encoder.finish()?)
    })
}

/// Writes the manifest atomically.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), FsError> {
    fsutil::write_atomic(&dir.join(MANIFEST), |w| {
        serde_json::to_writer_pretty(&mut *w, manifest)?;
        w.write_all(b"\n")
    })
}
