//! `pack`: turns a cargo target dir into an artifacts directory.
//!
//! Each file of the tree gets one of three fates (see `classify`): immutable artifacts this build
//! produced are moved into `$out/artifacts/` and become symlinks; artifacts that already are
//! symlinks into the store stay symlinks, re-pointed at their final target so chains never grow;
//! files cargo rewrites are stored inline. The archive stream is scanned for store paths while it
//! is written, and those become the GC anchor. The archive, the anchor and last the manifest are
//! renamed into place only after everything succeeded.
//!
//! When it finds the workspace, pack also records a digest of each local package's sources
//! (`sources`), and leaves out the fingerprints of local units that are older than the newest
//! local source file: units this derivation did not rebuild after `freshen` gave changed sources
//! a new mtime (crane's `check --all-targets` and test units of the dummy sources, say). Their
//! outputs stay; without a fingerprint cargo rebuilds them, so what is packed is all built from
//! the recorded sources, and a later derivation with the same digests may trust it.
//!
//! # Security
//! What pack promises (docs/format.md, Security):
//! - it writes only into OUT, which it holds locked and which holds no other tree's artifacts
//!   ([`outdir`]); in the target dir it only replaces artifacts by links to
//!   their moved bytes;
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
pub(crate) mod outdir;
mod stream;

pub use deterministic::{in_nix_build, ArchiveMtimes};

use crate::archive::{
    Compression, Entry, EntryKind, RelPath, BUILD_ROOT, SYMLINK_MTIME, TARGET_ROOT,
};
use crate::artifacts::publish::{self, Packed};
use crate::builddir::{BuildDir, BuildDirError};
use crate::classify::{self, Disposition, LayoutsSeen, Place};
use crate::fsutil::{self, FsError, IoContext};
use crate::linkcheck::{LinkCheck, LinkProblem};
use crate::sources::{self, SourceDigests};
use crate::store::{StoreDir, StoreError};
use crate::workspace::{Workspace, WorkspaceError};
use dirlist::{Budget, SortedNames};
use filetime::FileTime;
use outdir::{OutDir, OutDirError};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use stream::{ArchiveStream, Contents, Finished, StreamError, StreamStopped};

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
    for (_, root) in &roots {
        let root_real = fs::canonicalize(root).with_path("resolve", root)?;
        if out_real.starts_with(&root_real) || root_real.starts_with(&out_real) {
            return Err(PackError::Overlap {
                out: opts.out.clone(),
                target: root.clone(),
            });
        }
    }
    let (digests, left_out) = match &opts.workspace {
        Some(manifest) => {
            let (digests, left_out) = local_sources(manifest, &roots, &opts.store)?;
            (Some(Box::new(digests)), left_out)
        }
        None => (None, HashSet::new()),
    };
    let out = OutDir::claim(&opts.out, &roots)?;
    let mut undo = Undo::default();
    match pack_into(opts, &roots, digests, left_out, &mut undo) {
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

/// The pack itself, into a claimed OUT; every artifact moved out of the target dir is noted
/// in `undo`.
fn pack_into(
    opts: &PackOptions,
    roots: &[(&'static str, PathBuf)],
    digests: Option<Box<SourceDigests>>,
    left_out: HashSet<PathBuf>,
    undo: &mut Undo,
) -> Result<PackReport, PackError> {
    publish::withdraw(&opts.out, opts.compression)?;
    let archive_path = publish::archive_path(&opts.out, opts.compression);
    let tmp = fsutil::new_temp_beside(&archive_path)?;
    let write_err = |source| PackError::Write {
        archive: archive_path.clone(),
        source,
    };
    let stream = ArchiveStream::start(
        tmp.as_file().try_clone().map_err(write_err)?,
        opts.compression,
        opts.zstd_level,
        opts.zstd_threads,
        &opts.store,
        opts.archive_mtime,
    )
    .map_err(write_err)?;
    let mut packer = Packer {
        opts,
        stream: Some(stream),
        archive_path: archive_path.clone(),
        report: PackReport::default(),
        moved_inodes: HashMap::new(),
        made_blob_dir: None,
        layouts: LayoutsSeen::default(),
        left_out: &left_out,
        links: LinkCheck::new(&opts.store),
        undo,
    };
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
    let Packer {
        mut report,
        layouts,
        ..
    } = packer;
    report.archive_bytes = tmp.as_file().metadata().map_err(write_err)?.len();
    report.anchored = references.len() as u64;
    report.archive = archive_path.clone();
    report.digested = digests.as_ref().map_or(0, |d| d.packages.len() as u64);
    report.left_out = left_out.into_iter().collect();
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

struct Packer<'a, 'u> {
    opts: &'a PackOptions,
    /// Where the entries go, in archive order; taken when it ends.
    stream: Option<ArchiveStream>,
    archive_path: PathBuf,
    report: PackReport,
    /// Hard-linked files (cargo's uplifted binaries) already moved, by (device, inode): where to
    /// and from where.
    moved_inodes: HashMap<(u64, u64), (PathBuf, PathBuf)>,
    /// The last blob directory created, to skip most `create_dir_all` calls.
    made_blob_dir: Option<PathBuf>,
    /// The build-dir layouts the walk recognised, for the manifest.
    layouts: LayoutsSeen,
    /// Archive paths of fingerprint directories not to pack (see the module doc).
    left_out: &'a HashSet<PathBuf>,
    /// Inherited links must resolve inside the store.
    links: LinkCheck<'a>,
    /// What was moved out of the target dir, to put back if the pack fails.
    undo: &'u mut Undo,
}

impl Packer<'_, '_> {
    /// Packs `root` under the archive root `name`, skipping the other roots (a build dir
    /// inside the target dir) and what `classify` leaves out.
    fn walk(&mut self, name: &str, root: &Path, skip: &[&Path]) -> Result<(), PackError> {
        let meta = fsutil::symlink_metadata(root)?;
        let rel = RelPath::new(name).expect("root names are normal");
        self.entry(rel, root, Place::Root, &meta)?;
        self.walk_dir(name, root, &mut PathBuf::new(), Place::Root, skip)
    }

    /// A depth-first walk in archive order. Each directory on the current path holds at most
    /// one batch of its names (`dirlist`), so memory does not grow with the size of a directory
    /// or with the number of entries.
    fn walk_dir(
        &mut self,
        name: &str,
        root: &Path,
        below: &mut PathBuf,
        place: Place,
        skip: &[&Path],
    ) -> Result<(), PackError> {
        let dir = root.join(&*below);
        let mut listing = SortedNames::at(&dir, Budget::DEFAULT);
        // Byte order of names: with a depth-first walk, exactly `RelPath`'s order.
        while let Some(names) = listing.next_batch().with_path("read directory", &dir)? {
            for file_name in names {
                below.push(file_name);
                let path = root.join(&*below);
                let meta = fsutil::symlink_metadata(&path)?;
                let rel = || {
                    RelPath::new(Path::new(name).join(&*below))
                        .expect("names read from a directory are normal components")
                };
                if !meta.is_dir() {
                    self.entry(rel(), &path, place, &meta)?;
                } else if !skip.contains(&path.as_path()) && !self.is_left_out(name, below) {
                    let has = |entry: &str| fs::symlink_metadata(path.join(entry)).is_ok();
                    if let Some(child) = place.child_dir(file_name, has) {
                        self.layouts.note(child);
                        self.entry(rel(), &path, child, &meta)?;
                        self.walk_dir(name, root, below, child, skip)?;
                    }
                }
                below.pop();
            }
        }
        Ok(())
    }

    /// Whether `below` (in the root `root_name`) is a stale local unit's fingerprint directory
    /// that pack leaves out (see the module doc).
    fn is_left_out(&self, root_name: &str, below: &Path) -> bool {
        !self.left_out.is_empty() && self.left_out.contains(&Path::new(root_name).join(below))
    }

    /// Archives one entry; `place` is its parent directory's (its own, for a directory).
    fn entry(
        &mut self,
        rel: RelPath,
        path: &Path,
        place: Place,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        let file_type = meta.file_type();
        if file_type.is_dir() {
            let entry = Entry {
                path: rel,
                mtime: FileTime::from_last_modification_time(meta),
                kind: EntryKind::Dir {
                    mode: meta.mode() & 0o7777,
                },
            };
            self.append(entry, Contents::None)
        } else if file_type.is_symlink() {
            self.symlink(rel, path, place)
        } else if file_type.is_file() {
            self.file(rel, path, place, meta)
        } else {
            Err(PackError::Unsupported {
                path: path.into(),
                kind: fsutil::kind_name(&file_type),
            })
        }
    }

    fn symlink(&mut self, rel: RelPath, path: &Path, place: Place) -> Result<(), PackError> {
        if classify::never_carried_name(rel.file_name()) {
            self.report.skipped += 1;
            return Ok(());
        }
        let target = fsutil::resolve_link(path).map_err(|source| PackError::BadLink {
            path: path.into(),
            source,
        })?;
        if self.opts.store.parse(&target).is_err() {
            return Err(PackError::LinkOutsideStore {
                path: path.into(),
                target,
                store: self.opts.store.as_path().into(),
            });
        }
        // A killed pack's half-made link (see `replace_with_symlink`): not part of the tree.
        if is_link_leftover(&rel, &target, &self.opts.out) {
            fs::remove_file(path).with_path("remove the leftover", path)?;
            self.report.skipped += 1;
            return Ok(());
        }
        self.links
            .check(&target)
            .map_err(|problem| PackError::Link {
                path: path.into(),
                problem,
            })?;
        let meta = fs::metadata(&target).with_path("stat", &target)?;
        match place.file(rel.file_name(), is_executable(&meta)) {
            Disposition::Link => self.link(rel, target),
            _ => self.inline(rel, &target, &meta),
        }
    }

    fn file(
        &mut self,
        rel: RelPath,
        path: &Path,
        place: Place,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        match place.file(rel.file_name(), is_executable(meta)) {
            Disposition::Skip => {
                self.report.skipped += 1;
                Ok(())
            }
            Disposition::Inline => self.inline(rel, path, meta),
            Disposition::Link => {
                let blob = self.move_to_blobs(&rel, path, meta)?;
                replace_with_symlink(path, &blob)?;
                self.link(rel, blob)
            }
        }
    }

    fn inline(
        &mut self,
        rel: RelPath,
        source: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        let (size, contents) = match rustc_info(&rel, source)? {
            Some(bytes) => (bytes.len() as u64, Contents::Bytes(bytes)),
            None => (meta.len(), Contents::File(source.to_path_buf())),
        };
        let entry = Entry {
            path: rel,
            mtime: FileTime::from_last_modification_time(meta),
            kind: EntryKind::File {
                mode: meta.permissions().mode() & 0o7777,
                size,
            },
        };
        self.append(entry, contents)?;
        self.report.inlined += 1;
        self.report.inlined_bytes += size;
        Ok(())
    }

    fn link(&mut self, rel: RelPath, target: PathBuf) -> Result<(), PackError> {
        let entry = Entry {
            path: rel,
            mtime: SYMLINK_MTIME,
            kind: EntryKind::Symlink { target },
        };
        self.append(entry, Contents::None)?;
        self.report.linked += 1;
        Ok(())
    }

    /// Moves a freshly built artifact into `$out/artifacts/<root>/...`, once per inode.
    fn move_to_blobs(
        &mut self,
        rel: &RelPath,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<PathBuf, PackError> {
        let inode = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some((blob, first)) = self.moved_inodes.get(&inode) {
                self.undo.0.push(Moved::Alias {
                    original: path.into(),
                    of: first.clone(),
                });
                return Ok(blob.clone());
            }
        }
        let blob = publish::blobs_dir(&self.opts.out).join(rel.as_path());
        let dir = blob.parent().expect("blob paths have a parent");
        if self.made_blob_dir.as_deref() != Some(dir) {
            fsutil::create_dir_all(dir)?;
            self.made_blob_dir = Some(dir.to_path_buf());
        }
        match fs::rename(path, &blob) {
            Ok(()) => self.undo.0.push(Moved::Artifact {
                original: path.into(),
                blob: blob.clone(),
                copied: false,
            }),
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
                fsutil::copy_new(path, &blob)?;
                self.undo.0.push(Moved::Artifact {
                    original: path.into(),
                    blob: blob.clone(),
                    copied: true,
                });
                let mtime = FileTime::from_last_modification_time(meta);
                filetime::set_file_mtime(&blob, mtime).with_path("set mtime of", &blob)?;
                fs::remove_file(path).with_path("remove", path)?;
            }
            Err(e) => {
                return Err(FsError::new("move into the artifacts directory", &blob, e).into())
            }
        }
        if meta.nlink() > 1 {
            self.moved_inodes
                .insert(inode, (blob.clone(), path.to_path_buf()));
        }
        self.report.moved += 1;
        self.report.moved_bytes += meta.len();
        Ok(blob)
    }

    fn append(&mut self, entry: Entry, contents: Contents) -> Result<(), PackError> {
        let sent = match &mut self.stream {
            Some(stream) => stream.append(entry, contents),
            None => Err(StreamStopped),
        };
        if let Err(StreamStopped) = sent {
            // The stream thread failed: its error is the cause.
            return Err(self.finish_stream().err().unwrap_or_else(|| {
                self.write_error(io::Error::other("the archive stream ended early"))
            }));
        }
        self.report.entries += 1;
        Ok(())
    }

    /// Ends the archive stream and returns what it found, or why it failed.
    fn finish_stream(&mut self) -> Result<Finished, PackError> {
        match self.stream.take() {
            Some(stream) => stream.finish().map_err(|e| match e {
                StreamError::Read(e) => PackError::Fs(e),
                StreamError::Changed(e) => PackError::Changed(e),
                StreamError::Write(e) => self.write_error(e),
            }),
            None => Err(self.write_error(io::Error::other("the archive stream ended early"))),
        }
    }

    fn write_error(&self, source: io::Error) -> PackError {
        PackError::Write {
            archive: self.archive_path.clone(),
            source,
        }
    }
}

/// cargo's rustc probe cache at the top of a root, read and sorted
/// ([`deterministic::sorted_rustc_info`]); `None` for any other file, or one that is no JSON.
fn rustc_info(rel: &RelPath, source: &Path) -> Result<Option<Vec<u8>>, FsError> {
    if rel.file_name() != deterministic::RUSTC_INFO || rel.as_path().components().count() != 2 {
        return Ok(None);
    }
    let bytes = fs::read(source).with_path("read", source)?;
    Ok(deterministic::sorted_rustc_info(&bytes))
}

fn is_executable(meta: &fs::Metadata) -> bool {
    meta.mode() & 0o111 != 0
}

/// cargo's directory of unit fingerprints in the classic layout, in each
/// `<root>/[<triple>/]<profile>/`; its entries are `<package>-<16 hex digits>/`.
const FINGERPRINT: &str = ".fingerprint";
/// Build-dir layout v2: each unit is `<root>/[<triple>/]<profile>/build/<package>/<hash>/`, its
/// fingerprint in `fingerprint/` there.
const V2_UNITS: &str = "build";
const V2_FINGERPRINT: &str = "fingerprint";

/// Digests the local packages' sources, and finds the fingerprint directories of local units
/// older than the newest local source file (archive paths).
fn local_sources(
    manifest: &Path,
    roots: &[(&'static str, PathBuf)],
    store: &StoreDir,
) -> Result<(SourceDigests, HashSet<PathBuf>), PackError> {
    let ws = Workspace::discover(manifest)?;
    let dirs: Vec<PathBuf> = roots.iter().map(|(_, d)| d.clone()).collect();
    let scan = sources::scan(&ws, &dirs, store)?;
    let names: HashSet<&str> = scan.iter().filter_map(|p| p.name.as_deref()).collect();
    let mut left_out = HashSet::new();
    if let Some(newest) = scan.iter().filter_map(|p| p.newest).max() {
        for (name, root) in roots {
            for unit in unit_fingerprints(root, &names)? {
                if unit_time(&unit)?.is_some_and(|t| t < newest) {
                    let below = unit.strip_prefix(root).expect("found below the root");
                    left_out.insert(Path::new(name).join(below));
                }
            }
        }
    }
    Ok((sources::digests(&scan), left_out))
}

/// The fingerprint directories of the named packages' units, in both layouts, under
/// `root/<profile>/` and `root/<triple>/<profile>/`.
fn unit_fingerprints(root: &Path, names: &HashSet<&str>) -> Result<Vec<PathBuf>, FsError> {
    let mut profiles = Vec::new();
    for level1 in subdirs(root)? {
        profiles.extend(subdirs(&level1)?);
        profiles.push(level1);
    }
    let mut units = Vec::new();
    for profile in &profiles {
        let classic = profile.join(FINGERPRINT);
        if classic.is_dir() {
            for unit in subdirs(&classic)? {
                let file_name = unit.file_name().unwrap_or_default().to_string_lossy();
                let local = file_name.rsplit_once('-').is_some_and(|(package, hash)| {
                    hash.len() == 16
                        && hash.bytes().all(|b| b.is_ascii_hexdigit())
                        && names.contains(package)
                });
                if local {
                    units.push(unit);
                }
            }
        }
        let v2 = profile.join(V2_UNITS);
        if v2.is_dir() && !classic.is_dir() {
            for package in subdirs(&v2)? {
                let local = package
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| names.contains(n));
                if local {
                    for unit in subdirs(&package)? {
                        let fingerprint = unit.join(V2_FINGERPRINT);
                        if fingerprint.is_dir() {
                            units.push(fingerprint);
                        }
                    }
                }
            }
        }
    }
    Ok(units)
}

/// The real subdirectories of `dir` (symlinks are not followed).
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_path("read directory", dir)? {
        let entry = entry.with_path("read directory", dir)?;
        if entry.file_type().with_path("stat", &entry.path())?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// When cargo last wrote a unit's fingerprint: the newest mtime of its files.
fn unit_time(unit: &Path) -> Result<Option<FileTime>, FsError> {
    let mut newest = None;
    for entry in fs::read_dir(unit).with_path("read directory", unit)? {
        let path = entry.with_path("read directory", unit)?.path();
        let meta = fsutil::symlink_metadata(&path)?;
        newest = newest.max(Some(FileTime::from_last_modification_time(&meta)));
    }
    Ok(newest)
}

/// Suffix of the name a symlink is made under before it replaces an artifact.
const LINK_SUFFIX: &str = ".nixcache-link";

/// Leaves a symlink to the moved artifact where it was, so the target dir stays usable.
fn replace_with_symlink(path: &Path, target: &Path) -> Result<(), FsError> {
    replace_atomically(path, LINK_SUFFIX, |tmp| {
        std::os::unix::fs::symlink(target, tmp)
    })
}

/// Makes `path` anew under `path<suffix>` with `make`, then renames it over `path`.
fn replace_atomically(
    path: &Path,
    suffix: &str,
    make: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), FsError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(suffix);
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    make(&tmp).with_path("create", &tmp)?;
    fs::rename(&tmp, path).with_path("replace", path)
}

/// Whether the symlink `rel` to `target` is one a killed pack made and never renamed into place.
fn is_link_leftover(rel: &RelPath, target: &Path, out: &Path) -> bool {
    rel.file_name()
        .as_encoded_bytes()
        .ends_with(LINK_SUFFIX.as_bytes())
        && target.starts_with(publish::blobs_dir(out))
}

/// What a pack changed in the target dir, in order, so a failed pack can put it back.
#[derive(Default)]
struct Undo(Vec<Moved>);

enum Moved {
    /// `original` was renamed (or, across file systems, copied) to `blob`, then replaced by a
    /// symlink to it.
    Artifact {
        original: PathBuf,
        blob: PathBuf,
        copied: bool,
    },
    /// `original` was another name (a hard link) of the file first found at `of`, and was
    /// replaced by a symlink to the same blob.
    Alias { original: PathBuf, of: PathBuf },
}

impl Undo {
    /// Moves every artifact back to where it was (renaming over the symlink left there), then
    /// restores the hard links. Goes on after a failure, and reports the first.
    fn run(self) -> Result<(), FsError> {
        let mut first = Ok(());
        let mut note = |r: Result<(), FsError>| {
            if first.is_ok() {
                first = r;
            }
        };
        for moved in &self.0 {
            if let Moved::Artifact {
                original,
                blob,
                copied,
            } = moved
            {
                note(if *copied {
                    copy_back(blob, original)
                } else {
                    fs::rename(blob, original).with_path("move back", original)
                });
            }
        }
        for moved in &self.0 {
            if let Moved::Alias { original, of } = moved {
                note(replace_atomically(original, ".nixcache-undo", |tmp| {
                    fs::hard_link(of, tmp)
                }));
            }
        }
        first
    }
}

/// Undoes a move across file systems: a copy back (unless the original was never removed).
fn copy_back(blob: &Path, original: &Path) -> Result<(), FsError> {
    match fs::symlink_metadata(original) {
        Ok(m) if m.is_file() => return Ok(()),
        Ok(_) => fs::remove_file(original).with_path("remove", original)?,
        Err(_) => {}
    }
    fsutil::copy_new(blob, original)?;
    let meta = fsutil::symlink_metadata(blob)?;
    let mtime = FileTime::from_last_modification_time(&meta);
    filetime::set_file_mtime(original, mtime).with_path("set mtime of", original)?;
    fs::remove_file(blob).with_path("remove", blob)
}
