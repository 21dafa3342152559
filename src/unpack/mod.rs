//! `unpack`: restores a target dir from artifacts, in two passes.
//!
//! Pass one ([`check`](crate::artifacts::check)) reads the whole archive and checks everything
//! (entry paths and types, order, zstd checksums and the tar's end, links resolving inside the
//! store, the GC anchor, the member count and stream length) without touching the disk. Only then
//! does pass two create the tree, into a destination that must be absent or empty; if pass two
//! fails anyway (disk full, a race), what it created is removed again, so the destination is left
//! exactly as it was. An archive whose uncompressed stream is at most
//! [`IN_MEMORY_STREAM_LIMIT`](crate::artifacts::check::IN_MEMORY_STREAM_LIMIT) is decompressed
//! once, into memory, where pass one also records its entries and pass two creates them from
//! that recording, on several threads ([`create`]); a bigger one is streamed from the file
//! twice, in constant memory (in pass two decompressed on a thread beside the writes), and
//! created on one thread.
//!
//! # Security
//! What unpack promises for any input, however hostile (docs/format.md lists the rules):
//! - nothing is written before the whole input was checked, and nothing outside the target and
//!   build dirs, whose paths are taken as given (after `..`-free archive paths, parents opened
//!   without following symlinks, see [`tree`]);
//! - every byte read is integrity-checked: the manifest, anchor and archive are regular files of
//!   bounded size (archive: read in constant memory), opened without blocking; zstd frames carry
//!   checksums, the tar its end-of-archive marker, nothing follows it but zeros;
//! - every restored symlink points at an existing file or directory that resolves inside the
//!   store dir, and every store path the archive names is in its GC anchor;
//! - a failure leaves the destination as it was, with a bounded number of file descriptors
//!   whatever the tree's depth; bad input exits 3, a failing environment 1.
//!
//! Not promised: that the linked store paths hold what the build that packed them made (the
//! store and its closure are trusted); anything about a destination another process changes
//! while unpack works in it; protection from a target or build dir path that itself leads
//! somewhere unexpected (a symlinked target dir is refused, its parents are not checked).

pub(crate) mod crane;
mod create;
mod report;

use crate::archive::{ArchiveError, EntryKind, BUILD_ROOT};
use crate::artifacts::{Artifacts, ArtifactsError, NixcacheDir};
use crate::builddir::{BuildDir, BuildDirError};
use crate::fault::{Fault, HasFault};
use crate::fsutil::FsError;
use crate::store::{StoreDir, CANONICAL_MTIME};
use crate::tree::{self, Destination, Existing, Tree};
use filetime::FileTime;
pub use report::{MtimePolicy, UnpackReport};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

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
    #[error(
        "`{0}` is a symlink; unpack restores into a real directory: pass the directory it \
         points to, or remove the link"
    )]
    SymlinkRoot(PathBuf),
    #[error(
        "archive `{archive}` holds a target dir and a separate build dir, but the build dir given \
         (`{dir}`) is the target dir; pass the build dir cargo is configured with \
         (build.build-dir), or a --build-dir of its own"
    )]
    SameBuildDir { archive: PathBuf, dir: PathBuf },
    #[error(
        "{cause}; and then undoing what was created in `{root}` failed too ({failed}): remove \
         what is left there by hand"
    )]
    RollbackFailed {
        cause: Box<UnpackError>,
        root: PathBuf,
        failed: FsError,
    },
}

impl HasFault for UnpackError {
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

/// Unpacks `opts.artifacts` into the target (and build) dir.
pub fn unpack(opts: &UnpackOptions) -> Result<UnpackReport, UnpackError> {
    unpack_beside(opts, None)
}

/// [`unpack`] into a target dir that may hold one entry named `beside` (hydrate's record of
/// what it is doing): it is neither refused nor overwritten; a failed unpack empties the target
/// dir, that entry included.
pub fn unpack_beside(
    opts: &UnpackOptions,
    beside: Option<&OsStr>,
) -> Result<UnpackReport, UnpackError> {
    let root = Root {
        path: &opts.target_dir,
        beside,
    };
    match Artifacts::detect(&opts.artifacts, &opts.store)? {
        Artifacts::Nixcache(ours) => unpack_nixcache(opts, root, &ours),
        Artifacts::CraneZstd { archive } => {
            let chain = crane::zstd_chain(&archive, &opts.store)?;
            into_empty_roots(&[root], Existing::Replace, |trees| {
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
            into_empty_roots(&[root], Existing::Fail, |trees| {
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
    target: Root,
    ours: &NixcacheDir,
) -> Result<UnpackReport, UnpackError> {
    // Pass one: validate everything; the first problem stops it. A stream held in memory is
    // recorded on the way, so that pass two creates the tree without reading it again.
    let opened = ours.open(&opts.store)?;
    let mut recording = opened.reader.in_memory().map(create::Recording::new);
    let validated = opened.check(Err, |entry, contents| match &mut recording {
        Some(recording) => recording.push(entry, contents),
        None => Ok(()),
    })?;
    let (summary, has_build_root) = (validated.summary, validated.has_build_root);
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
    let tree_of = |entry: &crate::archive::Entry| usize::from(entry.path.root() == BUILD_ROOT);
    let build_dir = match has_build_root {
        false => None,
        true => match opts.build_dir.resolve()? {
            Some(b) if same_dir(&b, &opts.target_dir) => {
                return Err(UnpackError::SameBuildDir {
                    archive: ours.archive.clone(),
                    dir: b,
                })
            }
            Some(b) => Some(b),
            None => return Err(UnpackError::NoBuildDir(ours.archive.clone())),
        },
    };

    // Pass two: create the tree.
    let mut roots = vec![target];
    roots.extend(build_dir.as_deref().map(|path| Root { path, beside: None }));
    into_empty_roots(&roots, Existing::Fail, |trees| {
        let mut report = UnpackReport {
            format: "nixcache",
            mtimes,
            ..Default::default()
        };
        if let Some(recording) = &recording {
            create::create(recording, trees, tree_of, mtime_of, &mut report)?;
            return Ok(report);
        }
        opened.reader.read_without_scan(|entry, contents| {
            let tree = &mut trees[tree_of(entry)];
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
                _ => create::create_leaf(tree, entry, contents, mtime_of(entry), &mut report)?,
            }
            Ok::<_, UnpackError>(())
        })?;
        Ok(report)
    })
}

/// Whether `a` and `b` name one directory: the same path once absolute, or (existing) the same
/// directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    let lexical = |p: &Path| std::path::absolute(p).map(|p| p.components().collect::<PathBuf>());
    matches!((lexical(a), lexical(b)), (Ok(x), Ok(y)) if x == y)
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// A directory an unpack fills, and the one entry it may already hold.
#[derive(Clone, Copy)]
struct Root<'a> {
    path: &'a Path,
    beside: Option<&'a OsStr>,
}

/// Runs `fill` on trees opened at `roots`, each of which must be absent or empty; on failure,
/// everything created is removed again.
fn into_empty_roots(
    roots: &[Root],
    existing: Existing,
    fill: impl FnOnce(&mut [Tree]) -> Result<UnpackReport, UnpackError>,
) -> Result<UnpackReport, UnpackError> {
    // `dir/` and `dir/.` name what `dir` names, a symlink's target included: drop them, so the
    // checks below see the path itself.
    let roots: Vec<(PathBuf, Option<&OsStr>)> = roots
        .iter()
        .map(|r| (r.path.components().collect(), r.beside))
        .collect();
    let mut prepared = BTreeMap::new();
    let mut trees = Vec::new();
    let result = (|| {
        for (root, beside) in &roots {
            if std::fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(UnpackError::SymlinkRoot(root.clone()));
            }
            match tree::prepare_empty_root(root, *beside)? {
                Destination::Occupied => return Err(UnpackError::NotEmpty(root.clone())),
                was => prepared.insert(root.clone(), was),
            };
            trees.push(Tree::open(root, existing)?);
        }
        let report = fill(&mut trees)?;
        for tree in trees.drain(..) {
            tree.finish()?;
        }
        Ok(report)
    })();
    let Err(cause) = result else {
        return result;
    };
    drop(trees);
    for (root, was) in prepared {
        if let Err(failed) = tree::rollback_root(&root, was) {
            return Err(UnpackError::RollbackFailed {
                cause: Box::new(cause),
                root,
                failed,
            });
        }
    }
    Err(cause)
}
