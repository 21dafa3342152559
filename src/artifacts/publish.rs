//! Writing our artifacts directory, as [`check`](super::check) reads it: the write side's one
//! owner of what lies in it.
//!
//! - before a pack moves anything, what describes older artifacts goes ([`withdraw`]), so that
//!   until the new manifest lands the directory holds none that lie;
//! - at the end, [`publish`] writes what pack found: the GC anchor, the archive renamed into
//!   place from its temporary file, crane's stop sign, and last the manifest, whose presence
//!   means the rest is complete; a step that fails ends it, before the manifest;
//! - what pack asks about the directory it writes ([`super::pack::outdir`] among it): where the
//!   archive and the moved artifacts go, whether it already holds ours, which names a killed
//!   pack's temporary files have.
//!
//! [`super::pack::outdir`]: crate::pack::outdir

use super::anchor::{self, ANCHOR};
use super::crane;
use super::manifest::{self, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST};
use crate::archive::Compression;
use crate::classify::TreeLayout;
use crate::fsutil::{self, FsError};
use crate::sources::SourceDigests;
use crate::store::{StoreDir, StorePath};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Directory holding the real bytes of artifacts a build produced.
const BLOBS: &str = "artifacts";

/// Both archive names: a repack may change the compression.
const ARCHIVES: [&str; 2] = [
    Compression::None.archive_file_name(),
    Compression::Zstd.archive_file_name(),
];

/// What a pack found, to be published.
pub(crate) struct Packed {
    /// The archive, complete, in its temporary file beside [`archive_path`].
    pub archive: tempfile::NamedTempFile,
    pub compression: Compression,
    /// Every store path the archive names: the GC anchor.
    pub references: BTreeSet<StorePath>,
    pub entries: u64,
    pub stream_bytes: u64,
    /// The archive's roots, by name.
    pub roots: Vec<String>,
    pub layout: Option<TreeLayout>,
    pub sources: Option<Box<SourceDigests>>,
}

/// Where the archive with `compression` lies in the artifacts directory `dir`.
pub(crate) fn archive_path(dir: &Path, compression: Compression) -> PathBuf {
    dir.join(compression.archive_file_name())
}

/// Where the artifacts moved out of a target dir lie in `dir` (`artifacts/<root>/<path>`).
pub(crate) fn blobs_dir(dir: &Path) -> PathBuf {
    dir.join(BLOBS)
}

/// Whether `dir` holds something of our artifacts (a manifest, moved artifacts, an archive),
/// complete or not.
pub(crate) fn holds_ours(dir: &Path) -> bool {
    [MANIFEST, BLOBS]
        .iter()
        .chain(&ARCHIVES)
        .any(|name| fs::symlink_metadata(dir.join(name)).is_ok())
}

/// Whether `name` is a temporary file of one of the files [`publish`] writes (a killed pack's
/// leftover, if no pack holds the directory).
pub(crate) fn is_temp_leftover(name: &OsStr) -> bool {
    [MANIFEST, ANCHOR, crane::ARCHIVE]
        .iter()
        .chain(&ARCHIVES)
        .any(|written| fsutil::is_temp_name_for(name, written))
}

/// Before a repack: removes what describes the old artifacts (the manifest, the stop sign, an
/// archive of the other compression), so until [`publish`] ends, `dir` holds no artifacts, and
/// a failed repack leaves none that lie. The archive of `keep` is replaced when it is published.
pub(crate) fn withdraw(dir: &Path, keep: Compression) -> Result<(), FsError> {
    let mut stale = vec![MANIFEST, crane::ARCHIVE];
    for other in [Compression::None, Compression::Zstd] {
        if other != keep {
            stale.push(other.archive_file_name());
        }
    }
    for name in stale {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(FsError::new("remove", &path, e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes what a pack found into the artifacts directory `dir`: the GC anchor, the archive
/// (renamed into place), crane's stop sign, and last the manifest. Each is written atomically;
/// the first that fails ends it, and the files before it stay (a repack withdraws them).
pub(crate) fn publish(dir: &Path, store: &StoreDir, packed: Packed) -> Result<(), FsError> {
    anchor::write(dir, store, &packed.references)?;
    fsutil::persist(packed.archive, &archive_path(dir, packed.compression))?;
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        archive: packed.compression.archive_file_name().into(),
        compression: packed.compression,
        anchor: ANCHOR.into(),
        store_dir: store.as_path().into(),
        entries: packed.entries,
        stream_bytes: Some(packed.stream_bytes),
        roots: packed.roots,
        layout: packed.layout,
        generator: concat!("cargo-nixcache ", env!("CARGO_PKG_VERSION")).into(),
        sources: packed.sources,
    };
    crane::write_stop_sign(dir)?;
    manifest::write(dir, &manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn packed(dir: &Path, store: &StoreDir) -> Packed {
        let mut archive = fsutil::new_temp_beside(&archive_path(dir, Compression::None)).unwrap();
        archive.write_all(b"the archive").unwrap();
        let link = store.as_path().join("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-dep");
        let (reference, _) = store.parse(&link).unwrap();
        Packed {
            archive,
            compression: Compression::None,
            references: BTreeSet::from([reference]),
            entries: 3,
            stream_bytes: 3072,
            roots: vec!["target".into()],
            layout: None,
            sources: None,
        }
    }

    fn names(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn publish_writes_anchor_archive_stop_sign_and_the_manifest() {
        let store_dir = tempfile::tempdir().unwrap();
        let store = StoreDir::new(store_dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        publish(out.path(), &store, packed(out.path(), &store)).unwrap();
        assert_eq!(
            names(out.path()),
            BTreeSet::from([
                ANCHOR.into(),
                MANIFEST.into(),
                crane::ARCHIVE.into(),
                Compression::None.archive_file_name().into()
            ])
        );
        let manifest = manifest::read(&out.path().join(MANIFEST), &store).unwrap();
        assert_eq!((manifest.entries, manifest.stream_bytes), (3, Some(3072)));
        assert_eq!(manifest.archive, Compression::None.archive_file_name());
        let anchor = anchor::read(&out.path().join(ANCHOR), &store).unwrap();
        assert_eq!(anchor.len(), 1);
        let archive = fs::read(archive_path(out.path(), Compression::None)).unwrap();
        assert_eq!(archive, b"the archive");
    }

    /// A step that fails stops the ones after it; the manifest, last, is never written.
    #[test]
    fn a_failed_step_writes_no_manifest() {
        let store_dir = tempfile::tempdir().unwrap();
        let store = StoreDir::new(store_dir.path()).unwrap();
        // The anchor cannot be renamed over a directory that is not empty: nothing else lands.
        let out = tempfile::tempdir().unwrap();
        fs::create_dir_all(out.path().join(ANCHOR).join("x")).unwrap();
        publish(out.path(), &store, packed(out.path(), &store)).unwrap_err();
        assert_eq!(names(out.path()), BTreeSet::from([ANCHOR.into()]));
        // The stop sign fails: anchor and archive are there, the manifest is not.
        let out = tempfile::tempdir().unwrap();
        fs::create_dir_all(out.path().join(crane::ARCHIVE).join("x")).unwrap();
        publish(out.path(), &store, packed(out.path(), &store)).unwrap_err();
        let found = names(out.path());
        assert!(found.contains(ANCHOR) && found.contains(Compression::None.archive_file_name()));
        assert!(!found.contains(MANIFEST), "{found:?}");
    }

    #[test]
    fn withdraw_removes_what_describes_old_artifacts_and_keeps_the_rest() {
        let out = tempfile::tempdir().unwrap();
        let all = [
            MANIFEST,
            ANCHOR,
            crane::ARCHIVE,
            Compression::None.archive_file_name(),
            Compression::Zstd.archive_file_name(),
        ];
        for name in all {
            fs::write(out.path().join(name), "old").unwrap();
        }
        fs::create_dir(blobs_dir(out.path())).unwrap();
        withdraw(out.path(), Compression::Zstd).unwrap();
        assert_eq!(
            names(out.path()),
            BTreeSet::from([
                ANCHOR.into(),
                BLOBS.into(),
                Compression::Zstd.archive_file_name().into()
            ])
        );
        // Nothing to remove is no error.
        withdraw(out.path(), Compression::Zstd).unwrap();
    }

    #[test]
    fn ours_and_leftovers_are_known_by_name() {
        let out = tempfile::tempdir().unwrap();
        assert!(!holds_ours(out.path()));
        fs::create_dir(blobs_dir(out.path())).unwrap();
        assert!(holds_ours(out.path()));
        let temp = fsutil::new_temp_beside(&out.path().join(MANIFEST)).unwrap();
        assert!(is_temp_leftover(temp.path().file_name().unwrap()));
        let other = fsutil::new_temp_beside(&out.path().join("Cargo.toml")).unwrap();
        assert!(!is_temp_leftover(other.path().file_name().unwrap()));
        assert!(!is_temp_leftover(OsStr::new(MANIFEST)));
    }
}
