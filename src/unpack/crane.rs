//! crane's artifact formats, read so a chain can switch to cargo-nixcache without losing what it
//! inherited.
//!
//! - `use-zstd`: `target.tar.zst`, a GNU tar of the target dir (first component `target/`,
//!   stripped), possibly only the files changed since the previous derivation, whose archive is
//!   linked as `target.tar.zst.prev`. Archives are applied oldest first, later ones replacing
//!   files of earlier ones, exactly like crane's inherit hook. This is O(bytes) by nature.
//! - `use-symlink`: a plain `target/` directory whose files may be symlinks into earlier
//!   derivations' `target/` dirs (chains crane itself cannot follow past 40 hops). Files cargo
//!   rewrites are copied; everything else becomes a one-hop symlink to its final target.
//!
//! Both are validated completely before the destination is touched, as strictly as ours:
//! every zstd frame must carry a checksum and is read to its end, the tar must end with its
//! end-of-archive marker and nothing but zeros after it, and every link (a symlink member, a
//! linked or copied file) must resolve inside the store dir.

use super::report::UnpackReport;
use crate::archive::{check_tar_end, CheckedZstd, RelPath};
use crate::artifacts::{self, crane::is_bookkeeping};
use crate::classify::{self, Disposition, Place};
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, FsError, InputFileError, IoContext};
use crate::linkcheck::LinkCheck;
use crate::store::StoreDir;
use crate::tree::Tree;
use filetime::FileTime;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Longest `.prev` chain followed before assuming a cycle.
const MAX_CHAIN: usize = 10_000;
/// Buffer for copying members and files: crane archives hold whole rlibs, megabytes each.
const COPY_BUFFER: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum CraneError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("crane archive {0}")]
    File(#[from] InputFileError),
    #[error("crane archive `{archive}` is corrupt or truncated ({detail}); rebuild the derivation that produced it")]
    Corrupt { archive: PathBuf, detail: String },
    #[error("crane archive `{archive}`: entry `{entry}` is rejected: {reason}")]
    Entry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("crane artifacts `{path}`: {reason}")]
    Dir { path: PathBuf, reason: String },
    #[error("the `.prev` chain starting at `{0}` is longer than {MAX_CHAIN} archives (a cycle?)")]
    ChainTooLong(PathBuf),
}

impl HasFault for CraneError {
    fn fault(&self) -> Fault {
        match self {
            CraneError::Fs(e) => e.fault(),
            CraneError::File(e) => e.fault(),
            CraneError::Corrupt { .. }
            | CraneError::Entry { .. }
            | CraneError::Dir { .. }
            | CraneError::ChainTooLong(_) => Fault::Input,
        }
    }
}

/// The archives of a `use-zstd` chain, oldest first, each resolved through its `.prev` link.
pub fn zstd_chain(newest: &Path, store: &StoreDir) -> Result<Vec<PathBuf>, CraneError> {
    let mut chain = vec![newest.to_path_buf()];
    loop {
        let prev = artifacts::crane::prev_of(chain.last().expect("chain is never empty"));
        if fs::symlink_metadata(&prev).is_err() {
            break;
        }
        let resolved = fs::canonicalize(&prev).with_path("resolve", &prev)?;
        if chain.len() >= MAX_CHAIN {
            return Err(CraneError::ChainTooLong(newest.into()));
        }
        chain.push(resolved);
    }
    chain.reverse();
    let mut shape = Shape::default();
    for archive in &chain {
        validate_zstd(archive, store, &mut shape)?;
    }
    Ok(chain)
}

/// What the members of a chain, applied in order, leave at each path: a directory or not.
#[derive(Default)]
struct Shape(HashMap<PathBuf, bool>);

impl Shape {
    /// Notes a member (`dir`: a directory); why it cannot be applied over the earlier ones, if
    /// it cannot: a member below a file, or a directory and a file at one path.
    fn add(&mut self, rel: &Path, dir: bool) -> Result<(), String> {
        for parent in rel.ancestors().skip(1) {
            if self.0.get(parent) == Some(&false) {
                return Err(format!(
                    "it is below `{}`, which an earlier member made a file",
                    parent.display()
                ));
            }
        }
        match (self.0.get(rel), dir) {
            (Some(false), true) => {
                Err("it is a directory where an earlier member made a file".into())
            }
            (Some(true), false) => {
                Err("it would replace the directory an earlier member made".into())
            }
            _ => {
                self.0.insert(rel.to_path_buf(), dir);
                Ok(())
            }
        }
    }
}

/// One member of a crane tar, with its path below the target dir.
enum Member {
    Dir,
    File,
    Symlink(PathBuf),
    HardLink(PathBuf),
    Ignored,
}

/// Reads every member of a crane archive, calling `visit` with its path below the target dir
/// (None for the target dir itself) and its checked kind.
fn for_each_member(
    archive: &Path,
    store: &StoreDir,
    mut visit: impl FnMut(
        Option<&RelPath>,
        Member,
        &mut dyn Read,
        &tar::Header,
    ) -> Result<(), CraneError>,
) -> Result<(), CraneError> {
    let corrupt = |e: io::Error| CraneError::Corrupt {
        archive: archive.into(),
        detail: e.to_string(),
    };
    let file = fsutil::open_regular(archive)?;
    // Every frame checksummed and read to its end, nothing after the tar's end-of-archive marker
    // but zeros: crane archives are read as strictly as ours.
    let decoder = CheckedZstd::new(file).map_err(corrupt)?;
    let mut tar = tar::Archive::new(decoder);
    for item in tar.entries().map_err(corrupt)? {
        let mut item = item.map_err(corrupt)?;
        let raw = item.path_bytes().into_owned();
        let shown = crate::archive::path::display_bytes(&raw);
        let reject = |reason: String| CraneError::Entry {
            archive: archive.into(),
            entry: shown.clone(),
            reason,
        };
        let below = strip_first_component(&raw);
        let rel = match below {
            None => None,
            Some(b) => Some(
                RelPath::new(Path::new(OsStr::from_bytes(b))).map_err(|e| reject(e.to_string()))?,
            ),
        };
        let name_ignored = rel
            .as_ref()
            .is_some_and(|r| classify::never_carried(r.as_path()) || is_bookkeeping(r.file_name()));
        let member = match item.header().entry_type() {
            _ if name_ignored => Member::Ignored,
            tar::EntryType::Directory => Member::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Member::File,
            tar::EntryType::Symlink => {
                let target = item
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| reject("symlink without a target".into()))?;
                if store.parse(&target).is_err() {
                    return Err(reject(format!(
                        "its symlink target `{}` is not inside the store dir `{store}`",
                        target.display()
                    )));
                }
                Member::Symlink(target.into_owned())
            }
            tar::EntryType::Link => {
                let target = item
                    .link_name_bytes()
                    .ok_or_else(|| reject("hard link without a target".into()))?
                    .into_owned();
                let below = strip_first_component(&target)
                    .ok_or_else(|| reject("hard link to the root".into()))?;
                let rel = RelPath::new(Path::new(OsStr::from_bytes(below)))
                    .map_err(|e| reject(format!("hard link target: {e}")))?;
                Member::HardLink(rel.as_path().to_path_buf())
            }
            tar::EntryType::XGlobalHeader => Member::Ignored,
            other => return Err(reject(format!("unsupported member type {other:?}"))),
        };
        if rel.is_none() && !matches!(member, Member::Dir | Member::Ignored) {
            return Err(reject(
                "the archive's top entry must be the target directory".into(),
            ));
        }
        let header = item.header().clone();
        visit(rel.as_ref(), member, &mut item, &header)?;
    }
    // tar-rs stops at the first zero block, or at the end of input: what is left must complete
    // the end-of-archive marker and be zeros (which also drains the zstd frames to their ends).
    check_tar_end(&mut tar.into_inner(), 512).map_err(corrupt)
}

/// `target/debug/x` -> `debug/x`, as GNU tar's `--strip-components=1` (None for the top entry).
fn strip_first_component(raw: &[u8]) -> Option<&[u8]> {
    let raw = raw.strip_suffix(b"/").unwrap_or(raw);
    let slash = raw.iter().position(|&b| b == b'/')?;
    Some(&raw[slash + 1..]).filter(|r| !r.is_empty())
}

/// Checks one archive completely: every member, also against what the chain's earlier members
/// made (`shape`), and that the zstd and tar streams end cleanly.
fn validate_zstd(archive: &Path, store: &StoreDir, shape: &mut Shape) -> Result<(), CraneError> {
    let mut files = HashSet::new();
    let mut links = LinkCheck::new(store);
    for_each_member(archive, store, |rel, member, contents, _| {
        if let (Some(r), false) = (rel, matches!(member, Member::Ignored)) {
            shape
                .add(r.as_path(), matches!(member, Member::Dir))
                .map_err(|reason| CraneError::Entry {
                    archive: archive.into(),
                    entry: r.to_string(),
                    reason,
                })?;
        }
        match (&member, rel) {
            (Member::Symlink(target), Some(r)) => {
                links.check(target).map_err(|problem| CraneError::Entry {
                    archive: archive.into(),
                    entry: r.to_string(),
                    reason: problem.to_string(),
                })?;
            }
            (Member::File, Some(r)) => {
                io::copy(contents, &mut io::sink()).map_err(|e| CraneError::Corrupt {
                    archive: archive.into(),
                    detail: e.to_string(),
                })?;
                files.insert(r.as_path().to_path_buf());
            }
            (Member::HardLink(target), Some(r)) if !files.contains(target) => {
                return Err(CraneError::Entry {
                    archive: archive.into(),
                    entry: r.to_string(),
                    reason: format!(
                        "hard link to `{}`, which is not an earlier file of this archive",
                        target.display()
                    ),
                });
            }
            _ => {}
        }
        Ok(())
    })
}

/// Extracts a validated chain, oldest first, later archives replacing earlier files.
pub fn unpack_zstd_chain(
    chain: &[PathBuf],
    store: &StoreDir,
    tree: &mut Tree,
) -> Result<UnpackReport, CraneError> {
    let mut report = UnpackReport::default();
    for archive in chain {
        for_each_member(archive, store, |rel, member, contents, header| {
            let mtime = FileTime::from_unix_time(header.mtime().unwrap_or(1) as i64, 0);
            let mode = header.mode().unwrap_or(0o644);
            let Some(rel) = rel else {
                tree.set_root_mtime(mtime);
                return Ok(());
            };
            let rel = rel.as_path();
            match member {
                Member::Dir => {
                    tree.create_dir(rel, mode, mtime)?;
                    report.dirs += 1;
                }
                Member::File => {
                    let mut contents = BufReader::with_capacity(COPY_BUFFER, contents);
                    report.file_bytes += tree.create_file(rel, mode, mtime, &mut contents)?;
                    report.files += 1;
                }
                Member::Symlink(target) => {
                    tree.create_symlink(rel, &target)?;
                    report.links += 1;
                }
                Member::HardLink(existing) => {
                    tree.hard_link(rel, &existing)?;
                    report.files += 1;
                }
                Member::Ignored => {}
            }
            Ok(())
        })?;
    }
    Ok(report)
}

/// A validated `use-symlink` target dir, ready to materialize.
pub struct DirPlan {
    root_mtime: FileTime,
    items: Vec<DirItem>,
}

enum DirItem {
    Dir {
        rel: PathBuf,
        mode: u32,
        mtime: FileTime,
    },
    Link {
        rel: PathBuf,
        target: PathBuf,
    },
    Copy {
        rel: PathBuf,
        source: PathBuf,
        mode: u32,
        mtime: FileTime,
    },
}

/// Walks a crane `target/` dir and decides, per file, link or copy; fails on anything that
/// would not resolve into the store.
pub fn plan_dir(target: &Path, store: &StoreDir) -> Result<DirPlan, CraneError> {
    let target = std::path::absolute(target).with_path("resolve", target)?;
    let bad = |path: &Path, reason: String| CraneError::Dir {
        path: path.into(),
        reason,
    };
    let root_meta = fsutil::symlink_metadata(&target)?;
    let mut links = LinkCheck::new(store);
    let mut items = Vec::new();
    // The place of each directory on the current path, the root's first (see `classify`).
    let mut places = vec![Place::Root];
    let mut walk = walkdir::WalkDir::new(&target)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(item) = walk.next() {
        let item = item.map_err(|e| fsutil::walk_error(&target, e))?;
        let path = item.path();
        let rel = path
            .strip_prefix(&target)
            .expect("walkdir yields paths below its root")
            .to_path_buf();
        places.truncate(item.depth());
        let place = *places.last().expect("the root's place stays");
        let meta = fsutil::symlink_metadata(path)?;
        if meta.is_dir() {
            let has = |entry: &str| fs::symlink_metadata(path.join(entry)).is_ok();
            let Some(child) = place.child_dir(item.file_name(), has) else {
                walk.skip_current_dir();
                continue;
            };
            places.push(child);
            let mtime = FileTime::from_last_modification_time(&meta);
            items.push(DirItem::Dir {
                rel,
                mode: meta.mode(),
                mtime,
            });
            continue;
        }
        if classify::never_carried_name(item.file_name()) || is_bookkeeping(item.file_name()) {
            continue;
        }
        let source = if meta.file_type().is_symlink() {
            fsutil::resolve_link(path).map_err(|e| bad(path, e.to_string()))?
        } else if meta.is_file() {
            path.to_path_buf()
        } else {
            return Err(bad(path, "not a regular file, directory or symlink".into()));
        };
        if store.parse(&source).is_err() {
            return Err(bad(
                path,
                format!(
                    "`{}` is not inside the store dir `{store}`",
                    source.display()
                ),
            ));
        }
        links
            .check(&source)
            .map_err(|problem| bad(path, problem.to_string()))?;
        let source_meta = fs::metadata(&source).with_path("stat", &source)?;
        if !source_meta.is_file() {
            return Err(bad(
                path,
                format!("`{}` is not a regular file", source.display()),
            ));
        }
        let executable = source_meta.permissions().mode() & 0o111 != 0;
        items.push(match place.file(item.file_name(), executable) {
            Disposition::Link => DirItem::Link {
                rel,
                target: source,
            },
            _ => DirItem::Copy {
                rel,
                source,
                mode: source_meta.permissions().mode(),
                mtime: FileTime::from_last_modification_time(&source_meta),
            },
        });
    }
    Ok(DirPlan {
        root_mtime: FileTime::from_last_modification_time(&root_meta),
        items,
    })
}

/// Materializes a planned `use-symlink` dir: links stay links, rewritable files become copies.
pub fn unpack_dir(plan: &DirPlan, tree: &mut Tree) -> Result<UnpackReport, CraneError> {
    let mut report = UnpackReport::default();
    for item in &plan.items {
        match item {
            DirItem::Dir { rel, mode, mtime } => {
                tree.create_dir(rel, *mode, *mtime)?;
                report.dirs += 1;
            }
            DirItem::Link { rel, target } => {
                tree.create_symlink(rel, target)?;
                report.links += 1;
            }
            DirItem::Copy {
                rel,
                source,
                mode,
                mtime,
            } => {
                let file = File::open(source).with_path("open", source)?;
                let mut file = BufReader::with_capacity(COPY_BUFFER, file);
                report.file_bytes += tree.create_file(rel, *mode, *mtime, &mut file)?;
                report.files += 1;
            }
        }
    }
    tree.set_root_mtime(plan.root_mtime);
    Ok(report)
}
