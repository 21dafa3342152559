//! `pack`: turns a cargo target dir into an artifacts directory.
//!
//! Each file of the tree gets one of three fates (see `classify`): immutable artifacts this build
//! produced are moved into `$out/artifacts/` and become symlinks; artifacts that already are
//! symlinks into the store stay symlinks, re-pointed at their final target so chains never grow;
//! files cargo rewrites are stored inline. The archive stream is scanned for store paths while it
//! is written, and those become the GC anchor. The archive, the anchor and last the manifest are
//! renamed into place only after everything succeeded
//! ([`artifacts::publish`](crate::artifacts::publish)).
//!
//! When it finds the workspace, pack also records a digest of each local package's sources
//! (`sources`), and leaves out the fingerprints of local units that are older than the newest
//! local source file: units this derivation did not rebuild after `freshen` gave changed sources
//! a new mtime (crane's `check --all-targets` and test units of the dummy sources, say). Their
//! outputs stay; without a fingerprint cargo rebuilds them, so what is packed is all built from
//! the recorded sources, and a later derivation with the same digests may trust it.
//!
//! One file a step, top to bottom:
//! - this file: options, report, errors, and [`pack`]: the roots and OUT checked, the sources
//!   digested, OUT claimed, the walk run into the stream, what they found published, all of it
//!   undone when it fails;
//! - [`outdir`]: OUT, one pack at a time, only the packs of one tree;
//! - [`fingerprints`]: the sources' digests and the rule that leaves stale fingerprints out;
//! - [`walk`]: the depth-first walk, each file classified into an entry, going down only;
//! - [`undo`]: new artifacts moved into OUT and replaced by links, and the log that moves them
//!   back;
//! - [`stream`]: the archive stream (tar, reference scan, zstd) on a thread of its own;
//! - [`deterministic`]: the same build packs to the same bytes (mtimes, `.rustc_info.json`);
//! - [`dirlist`]: a directory's names in byte order, in bounded memory.
//!
//! # Security
//! What pack promises (docs/format.md, Security):
//! - it writes only into OUT, which it holds locked and which holds no other tree's artifacts
//!   ([`outdir`]); in the target dir it only replaces artifacts by links to their moved bytes;
//! - a pack that fails leaves the target dir as it was (an undo log moves every artifact back)
//!   and removes what it created in OUT; a killed pack's temporary files go with the next pack;
//! - an inherited link must resolve inside the store dir ([`linkcheck`](crate::linkcheck));
//!   fifos, sockets and devices are refused before they are opened; the files it writes are
//!   readable.
//!
//! Not promised: anything about a tree another process changes during the walk; a SIGKILLed
//! pack leaves the target dir linking into an OUT without manifest until the next pack.

mod deterministic;
pub mod dirlist;
mod fingerprints;
pub(crate) mod outdir;
mod stream;
mod undo;
mod walk;

pub use crate::classify::InlineExecutables;
pub use deterministic::{in_nix_build, ArchiveMtimes};

use crate::archive::{Compression, BUILD_ROOT, TARGET_ROOT};
use crate::artifacts::publish::{self, Packed};
use crate::builddir::{BuildDir, BuildDirError};
use crate::fsutil::{self, FsError, IoContext};
use crate::linkcheck::LinkProblem;
use crate::sources::SourceDigests;
use crate::store::{StoreDir, StoreError};
use crate::workspace::WorkspaceError;
use filetime::FileTime;
use fingerprints::StaleUnits;
use outdir::{OutDir, OutDirError};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use stream::Finished;
use undo::Undo;
use walk::Packer;

#[derive(Clone, Debug)]
pub struct PackOptions {
    pub target_dir: PathBuf,
    /// A separate `build.build-dir`: given (`--build-dir`, `CARGO_BUILD_BUILD_DIR`), it must be
    /// a directory; as cargo resolves it, one that does not exist holds nothing to pack.
    pub build_dir: BuildDir,
    /// The artifacts directory to create; must be a store path (`$out`).
    pub out: PathBuf,
    pub compression: Compression,
    pub zstd_level: i32,
    /// zstd worker threads; 0 compresses on the calling thread.
    pub zstd_threads: u32,
    pub store: StoreDir,
    /// The workspace manifest whose local packages' sources are digested; `None` records none.
    pub workspace: Option<PathBuf>,
    /// The mtime the archive records for every directory and file, instead of theirs
    /// ([`ArchiveMtimes`]); `None` records their own.
    pub archive_mtime: Option<FileTime>,
    /// Which executables go inside the archive (`classify`'s module doc).
    pub inline_executables: InlineExecutables,
}

/// What a pack did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PackReport {
    pub archive: PathBuf,
    pub entries: u64,
    /// Symlinks written (to inherited artifacts and to moved ones).
    pub linked: u64,
    /// Files stored inside the archive.
    pub inlined: u64,
    pub inlined_bytes: u64,
    /// Hard links to a file stored inside the archive (cargo's uplifted executables).
    pub hard_links: u64,
    /// Artifacts moved (or copied, across filesystems) into `$out/artifacts`.
    pub moved: u64,
    pub moved_bytes: u64,
    pub skipped: u64,
    pub archive_bytes: u64,
    /// Store paths listed in the GC anchor.
    pub anchored: u64,
    /// Local packages whose source digests were recorded.
    pub digested: u64,
    /// Fingerprint directories of local units older than the local sources, left out.
    pub left_out: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(
        "target dir `{0}` does not exist or is not a directory; build first, or pass --target-dir"
    )]
    NoTargetDir(PathBuf),
    #[error(
        "build dir `{0}` (--build-dir or CARGO_BUILD_BUILD_DIR) does not exist or is not a \
         directory; pass the build dir cargo built in, or leave both unset to use cargo's"
    )]
    NoBuildDir(PathBuf),
    #[error(transparent)]
    BuildDir(#[from] BuildDirError),
    #[error(
        "output `{out}` is not a store path, so links into it would not survive in the store; pass \
         the derivation's `$out` (or --store-dir if the store lives elsewhere)"
    )]
    OutNotStorePath { out: PathBuf, source: StoreError },
    #[error("output `{out}` and target dir `{target}` overlap; pack into a separate directory")]
    Overlap { out: PathBuf, target: PathBuf },
    #[error(
        "`{path}` is a symlink to `{target}`, outside the store dir `{store}`; pack keeps only links \
         into the store: replace it with a real file or delete it"
    )]
    LinkOutsideStore {
        path: PathBuf,
        target: PathBuf,
        store: PathBuf,
    },
    #[error("`{path}` cannot be packed: {source}; the store path it names may be gone: rebuild it or delete the link")]
    BadLink {
        path: PathBuf,
        source: fsutil::ResolveError,
    },
    #[error("`{path}` is a {kind}; a target dir should hold only files, directories and symlinks: delete it")]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("failed to write archive `{archive}`")]
    Write { archive: PathBuf, source: io::Error },
    #[error("cannot digest the local packages' sources (for `freshen`); pass the workspace's Cargo.toml with --manifest-path")]
    Workspace(#[from] WorkspaceError),
    #[error("`{path}` cannot be packed: {problem}")]
    Link { path: PathBuf, problem: LinkProblem },
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    #[error(transparent)]
    Changed(stream::FileChanged),
    #[error("{cause}; and then moving the artifacts back into the target dir failed too ({failed}): the target dir may link into the output")]
    Undo {
        cause: Box<PackError>,
        failed: FsError,
    },
}

impl crate::fault::HasFault for PackError {
    fn fault(&self) -> crate::fault::Fault {
        use crate::fault::Fault;
        match self {
            PackError::Fs(e) => e.fault(),
            PackError::Workspace(e) => e.fault(),
            PackError::OutDir(e) => e.fault(),
            PackError::Write { .. } | PackError::Undo { .. } | PackError::Changed(_) => {
                Fault::Environment
            }
            PackError::BuildDir(e) => e.fault(),
            PackError::NoTargetDir(_)
            | PackError::NoBuildDir(_)
            | PackError::OutNotStorePath { .. }
            | PackError::Overlap { .. } => Fault::Usage,
            PackError::Link { problem, .. } if problem.is_environment() => Fault::Environment,
            PackError::LinkOutsideStore { .. }
            | PackError::BadLink { .. }
            | PackError::Link { .. }
            | PackError::Unsupported { .. } => Fault::Input,
        }
    }
}

/// Packs `opts.target_dir` (and the build dir) into `opts.out`.
pub fn pack(opts: &PackOptions) -> Result<PackReport, PackError> {
    let roots = roots(opts)?;
    check_out(opts)?;
    check_overlap(opts, &roots)?;
    let (digests, stale) = match &opts.workspace {
        Some(manifest) => {
            let (digests, stale) = fingerprints::local_sources(manifest, &roots, &opts.store)?;
            (Some(Box::new(digests)), stale)
        }
        None => (None, None),
    };
    let out = OutDir::claim(&opts.out, &roots)?;
    let mut undo = Undo::default();
    match pack_into(opts, &roots, digests, stale.as_ref(), &mut undo) {
        Ok(report) => Ok(report),
        Err(cause) => {
            // The target dir as it was, and OUT as it was (the temporary archive is gone with
            // its handle); only then release the lock.
            let undone = undo.run();
            out.abandon();
            match undone {
                Ok(()) => Err(cause),
                Err(failed) => Err(PackError::Undo {
                    cause: Box::new(cause),
                    failed,
                }),
            }
        }
    }
}

/// OUT must be a store path of its own (`$out`), not one below another.
fn check_out(opts: &PackOptions) -> Result<(), PackError> {
    let (_, rest) = opts
        .store
        .parse(&opts.out)
        .map_err(|source| PackError::OutNotStorePath {
            out: opts.out.clone(),
            source,
        })?;
    if !rest.as_os_str().is_empty() {
        let source = StoreError::NotInStore {
            path: opts.out.clone(),
            store_dir: opts.store.as_path().into(),
        };
        return Err(PackError::OutNotStorePath {
            out: opts.out.clone(),
            source,
        });
    }
    Ok(())
}

/// OUT and the roots must not lie in each other.
fn check_overlap(opts: &PackOptions, roots: &[(&'static str, PathBuf)]) -> Result<(), PackError> {
    // OUT may not exist yet: judge where it would be.
    let out_real = match (opts.out.parent(), opts.out.file_name()) {
        (Some(parent), Some(name)) if !opts.out.exists() => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            fs::canonicalize(parent)
                .with_path("resolve", parent)?
                .join(name)
        }
        _ => fs::canonicalize(&opts.out).with_path("resolve", &opts.out)?,
    };
    for (_, root) in roots {
        let root_real = fs::canonicalize(root).with_path("resolve", root)?;
        if out_real.starts_with(&root_real) || root_real.starts_with(&out_real) {
            return Err(PackError::Overlap {
                out: opts.out.clone(),
                target: root.clone(),
            });
        }
    }
    Ok(())
}

/// The pack itself, into a claimed OUT: the walk feeding the stream, then what they found
/// published; every artifact moved out of the target dir is noted in `undo`.
fn pack_into(
    opts: &PackOptions,
    roots: &[(&'static str, PathBuf)],
    digests: Option<Box<SourceDigests>>,
    stale: Option<&StaleUnits>,
    undo: &mut Undo,
) -> Result<PackReport, PackError> {
    publish::withdraw(&opts.out, opts.compression)?;
    let archive_path = publish::archive_path(&opts.out, opts.compression);
    let tmp = fsutil::new_temp_beside(&archive_path)?;
    let write_err = |source| PackError::Write {
        archive: archive_path.clone(),
        source,
    };
    let stream = stream::ArchiveStream::start(
        tmp.as_file().try_clone().map_err(write_err)?,
        opts.compression,
        opts.zstd_level,
        opts.zstd_threads,
        &opts.store,
        opts.archive_mtime,
    )
    .map_err(write_err)?;
    let mut packer = Packer::new(opts, stream, archive_path.clone(), stale, undo);
    let walked = roots.iter().try_for_each(|(name, root)| {
        let skip: Vec<&Path> = roots
            .iter()
            .map(|(_, p)| p.as_path())
            .filter(|p| *p != root)
            .collect();
        packer.walk(name, root, &skip)
    });
    // Ended either way, so that its thread is gone before pack returns.
    let finished = packer.finish_stream();
    walked?;
    let Finished {
        references,
        stream_bytes,
    } = finished?;
    let (mut report, layouts) = packer.into_report();
    report.archive_bytes = tmp.as_file().metadata().map_err(write_err)?.len();
    report.anchored = references.len() as u64;
    report.archive = archive_path.clone();
    report.digested = digests.as_ref().map_or(0, |d| d.packages.len() as u64);
    report.left_out.sort();

    let packed = Packed {
        archive: tmp,
        compression: opts.compression,
        references,
        entries: report.entries,
        stream_bytes,
        roots: roots.iter().map(|(n, _)| n.to_string()).collect(),
        layout: layouts.summary(),
        sources: digests,
    };
    publish::publish(&opts.out, &opts.store, packed)?;
    Ok(report)
}

/// The directories to pack under their archive root names, sorted by name.
fn roots(opts: &PackOptions) -> Result<Vec<(&'static str, PathBuf)>, PackError> {
    if !opts.target_dir.is_dir() {
        return Err(PackError::NoTargetDir(opts.target_dir.clone()));
    }
    if let BuildDir::Given(build) = &opts.build_dir {
        if !build.is_dir() {
            return Err(PackError::NoBuildDir(build.clone()));
        }
    }
    let mut roots = vec![(TARGET_ROOT, opts.target_dir.clone())];
    if let Some(build) = opts.build_dir.resolve()? {
        let same = fs::canonicalize(&build).ok() == fs::canonicalize(&opts.target_dir).ok();
        if build.is_dir() && !same {
            roots.insert(0, (BUILD_ROOT, build));
        }
    }
    Ok(roots)
}
