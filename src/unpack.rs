//! `unpack`: restores a target dir from artifacts, in two passes.
//!
//! Pass one reads the whole archive and checks everything (entry paths and types, order, links
//! into the store, the GC anchor, that linked store paths exist) without touching the disk.
//! Only then does pass two create the tree, into a destination that must be absent or empty;
//! if pass two fails anyway (disk full, a race), what it created is removed again, so the
//! destination is left exactly as it was. An archive whose uncompressed stream is at most
//! [`IN_MEMORY_STREAM_LIMIT`] is decompressed once, into memory, for both passes; a bigger one
//! is streamed from the file twice, in constant memory.

use crate::archive::{ArchiveError, ArchiveReader, EntryKind};
use crate::artifacts::{self, Artifacts, ArtifactsError, Manifest};
use crate::builddir::{BuildDir, BuildDirError};
use crate::crane;
use crate::fsutil::FsError;
use crate::store::{StoreDir, CANONICAL_MTIME};
use crate::tree::{self, Existing, Tree};
use filetime::FileTime;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest uncompressed stream unpack holds in memory (the 186-crate corpus of
/// docs/benchmarks.md has 4.9 MB). Bounds unpack's memory whatever the archive's size.
pub const IN_MEMORY_STREAM_LIMIT: u64 = 16 << 20;

/// Which mtimes restored files and directories get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MtimePolicy {
    /// `store` when the linked artifacts carry the store's canonical mtime, else `archive`.
    #[default]
    Auto,
    /// The mtimes recorded in the archive.
    Archive,
    /// The store's canonical mtime (1) for everything: inside a real store the linked
    /// artifacts lost their build-time mtimes to it, and cargo compares the mtimes of inline
    /// files (build-script `output`, fingerprints) with theirs. Giving both the same time keeps
    /// every such comparison "not newer", as it was when the deps were built.
    Store,
}

#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// An artifacts directory (ours or crane's), or a crane `target.tar.zst`.
    pub artifacts: PathBuf,
    pub target_dir: PathBuf,
    /// Where a separately packed build dir (`build.build-dir`) goes; resolved only when the
    /// archive holds one.
    pub build_dir: BuildDir,
    pub store: StoreDir,
    pub mtimes: MtimePolicy,
}

/// What an unpack did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpackReport {
    /// `nixcache`, `crane-zstd` or `crane-dir`.
    pub format: &'static str,
    pub dirs: u64,
    pub links: u64,
    pub files: u64,
    pub file_bytes: u64,
    /// The policy applied (`archive` or `store`; never `auto`).
    pub mtimes: MtimePolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Crane(#[from] crane::CraneError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    BuildDir(#[from] BuildDirError),
    #[error(
        "`{0}` already exists and is not an empty directory; unpack restores a whole tree and will \
         not mix it with another: remove it first"
    )]
    NotEmpty(PathBuf),
    #[error(
        "archive `{0}` holds a separate build dir (build.build-dir) but none is configured here; \
         pass --build-dir, set CARGO_BUILD_BUILD_DIR or build.build-dir in cargo's config"
    )]
    NoBuildDir(PathBuf),
}

impl UnpackError {
    /// Whether the artifacts themselves were rejected (as opposed to an environment problem).
    pub fn is_bad_input(&self) -> bool {
        match self {
            UnpackError::Archive(_) | UnpackError::NoBuildDir(_) => true,
            UnpackError::Crane(e) => !matches!(e, crane::CraneError::Fs(_)),
            UnpackError::Artifacts(e) => !matches!(e, ArtifactsError::Fs(_)),
            UnpackError::Fs(_) | UnpackError::NotEmpty(_) | UnpackError::BuildDir(_) => false,
        }
    }
}

/// Unpacks `opts.artifacts` into the target (and build) dir.
pub fn unpack(opts: &UnpackOptions) -> Result<UnpackReport, UnpackError> {
    match Artifacts::detect(&opts.artifacts, &opts.store)? {
        Artifacts::Nixcache { dir, manifest } => unpack_nixcache(opts, &dir, &manifest),
        Artifacts::CraneZstd { archive } => {
            let chain = crane::zstd_chain(&archive, &opts.store)?;
            into_empty_roots(&[&opts.target_dir], Existing::Replace, |trees| {
                Ok(crane::unpack_zstd_chain(
                    &chain,
                    &opts.store,
                    &mut trees[0],
                )?)
            })
            .map(|r| UnpackReport {
                format: "crane-zstd",
                ..r
            })
        }
        Artifacts::CraneDir { target } => {
            let plan = crane::plan_dir(&target, &opts.store)?;
            into_empty_roots(&[&opts.target_dir], Existing::Fail, |trees| {
                Ok(crane::unpack_dir(&plan, &mut trees[0])?)
            })
            .map(|r| UnpackReport {
                format: "crane-dir",
                ..r
            })
        }
    }
}

fn unpack_nixcache(
    opts: &UnpackOptions,
    dir: &Path,
    manifest: &Manifest,
) -> Result<UnpackReport, UnpackError> {
    let archive = dir.join(&manifest.archive);
    let anchor_path = dir.join(&manifest.anchor);
    let anchor = artifacts::read_anchor(&anchor_path, &opts.store)?;
    let reader = match manifest.stream_bytes {
        Some(len) if len <= IN_MEMORY_STREAM_LIMIT => {
            ArchiveReader::new(&archive, &opts.store).decompress_once(len)?
        }
        _ => ArchiveReader::new(&archive, &opts.store),
    };

    // Pass one: validate everything.
    let mut has_build_root = false;
    let summary = reader.read(|entry, _| {
        has_build_root |= entry.path.root() == "build";
        Ok::<_, UnpackError>(())
    })?;
    // Nix canonicalizes a store path's directories too, so its root tells the store's mtime.
    let canonical_store = !summary.link_targets.is_empty()
        && summary.link_targets.iter().all(|p| {
            std::fs::metadata(opts.store.to_absolute(p)).is_ok_and(|m| {
                FileTime::from_last_modification_time(&m).unix_seconds() <= CANONICAL_MTIME
            })
        });
    let mtimes = match opts.mtimes {
        MtimePolicy::Auto if canonical_store => MtimePolicy::Store,
        MtimePolicy::Auto => MtimePolicy::Archive,
        chosen => chosen,
    };
    let canonical = FileTime::from_unix_time(CANONICAL_MTIME, 0);
    let mtime_of = |entry: &crate::archive::Entry| match mtimes {
        MtimePolicy::Store => canonical,
        _ => entry.mtime,
    };
    if summary.entries != manifest.entries {
        return Err(ArchiveError::Truncated {
            archive,
            expected: manifest.entries,
            found: summary.entries,
        }
        .into());
    }
    if let Some(expected) = manifest.stream_bytes.filter(|&n| n != summary.stream_bytes) {
        return Err(ArchiveError::StreamLength {
            archive,
            expected,
            found: summary.stream_bytes,
        }
        .into());
    }
    // By hash: Nix's scanner matches hashes, and a name read out of binary data may run on.
    let anchored: std::collections::HashSet<_> = anchor.iter().map(|p| *p.digest()).collect();
    if let Some(missing) = summary
        .references
        .iter()
        .find(|p| !anchored.contains(p.digest()))
    {
        let store_path = opts.store.to_absolute(missing);
        return Err(ArchiveError::NotAnchored {
            archive,
            anchor: anchor_path,
            store_path,
        }
        .into());
    }
    for target in &summary.link_targets {
        let store_path = opts.store.to_absolute(target);
        if std::fs::symlink_metadata(&store_path).is_err() {
            return Err(ArchiveError::MissingStorePath {
                archive,
                store_path,
            }
            .into());
        }
    }
    let build_dir = match has_build_root {
        false => None,
        true => match opts.build_dir.resolve()? {
            Some(b) => Some(b),
            None => return Err(UnpackError::NoBuildDir(archive)),
        },
    };

    // Pass two: create the tree.
    let mut roots: Vec<&Path> = vec![&opts.target_dir];
    roots.extend(build_dir.as_deref());
    into_empty_roots(&roots, Existing::Fail, |trees| {
        let mut report = UnpackReport {
            format: "nixcache",
            mtimes,
            ..Default::default()
        };
        reader.without_scan().read(|entry, contents| {
            let tree = if entry.path.root() == "build" {
                &mut trees[1]
            } else {
                &mut trees[0]
            };
            let rel = entry.path.below_root();
            if rel.as_os_str().is_empty() {
                tree.set_root_mtime(mtime_of(entry));
                return Ok(());
            }
            match &entry.kind {
                EntryKind::Dir { mode } => {
                    tree.create_dir(rel, *mode, mtime_of(entry))?;
                    report.dirs += 1;
                }
                EntryKind::Symlink { target } => {
                    tree.create_symlink(rel, target)?;
                    report.links += 1;
                }
                EntryKind::File { mode, .. } => {
                    report.file_bytes += tree.create_file(rel, *mode, mtime_of(entry), contents)?;
                    report.files += 1;
                }
            }
            Ok::<_, UnpackError>(())
        })?;
        Ok(report)
    })
}

/// Runs `fill` on trees opened at `roots`, each of which must be absent or empty; on failure,
/// everything created is removed again.
fn into_empty_roots(
    roots: &[&Path],
    existing: Existing,
    fill: impl FnOnce(&mut [Tree]) -> Result<UnpackReport, UnpackError>,
) -> Result<UnpackReport, UnpackError> {
    let mut created = BTreeMap::new();
    let mut trees = Vec::new();
    let result = (|| {
        for root in roots {
            match tree::prepare_empty_root(root)? {
                Some(was_created) => created.insert(root.to_path_buf(), was_created),
                None => return Err(UnpackError::NotEmpty(root.to_path_buf())),
            };
            trees.push(Tree::open(root, existing)?);
        }
        let report = fill(&mut trees)?;
        for tree in trees.drain(..) {
            tree.finish()?;
        }
        Ok(report)
    })();
    if result.is_err() {
        drop(trees);
        for (root, was_created) in created {
            tree::rollback_root(&root, was_created);
        }
    }
    result
}
