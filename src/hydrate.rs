//! `hydrate`: fill a dev shell's target dir from a deps output, once, and never over the user's
//! own work.
//!
//! `nix develop` / `nix-shell` start with whatever target dir the checkout has; without this the
//! first `cargo build` in the shell recompiles every dependency the deps derivation already built.
//! The shell hook (nix/hooks/nixcache-shell-hook.sh) runs `cargo nixcache hydrate` on entry: it
//! unpacks the deps output when the target dir is absent or empty. Entering again with the same
//! output does nothing. A target dir of the user's own is never touched.
//!
//! The rule: hydrate never deletes what it did not write. Its record in the target dir
//! ([`RECORD`]) is written first, saying a fill is under way, and again last, saying it is done,
//! with an identity of every entry it wrote (path, kind, inode, size, mtime, link target: see
//! [`identity`]). With another output, the target dir is refilled only when it is exactly as
//! hydrate left it; anything built, added (a file moved in keeps its old mtime, so mtimes cannot
//! tell), moved or removed since keeps it, and the user is told why and how to refill it
//! (`cargo clean`). A fill that did not finish (killed, or failed and not rolled back) is
//! recognised by its record and done again, provided everything in the tree is an entry of the
//! archive it was filling from, as unpack writes it; else it is kept too. `cargo clean` removes
//! the record with the rest, so the next entry fills again. A one-line [`MARKER`] (the artifacts
//! path, as older versions wrote it alone) is written beside the record for people and scripts;
//! a target dir with that marker and no record was filled by an older version, which recorded
//! nothing to tell the user's files from its own: it is kept.
//!
//! A refill never leaves a half-deleted tree: the old one is renamed aside (a sibling
//! `.<name>.nixcache-old.<random>`), the new one filled, and only then the old one removed (its
//! read-only directories made writable first: it is hydrate's own); a fill that fails puts the
//! old one back. An old tree that cannot be removed is reported and removed by a later run.
//! cargo's locks are respected: while cargo holds one of the target dir's lock files
//! (`<profile>/.cargo-lock`, ...), hydrate keeps the dir, and it holds them itself while it
//! replaces the tree; two hydrates of one target dir take turns (a `flock` on the directory that
//! holds it). A
//! target dir that is a symlink (to another disk, say) is followed: the directory it leads to is
//! filled, the link stays.

use crate::archive::{EntryKind, BUILD_ROOT, TARGET_ROOT};
use crate::artifacts::Artifacts;
use crate::builddir::BuildDir;
use crate::classify;
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, FsError, IoContext};
use crate::store::{StoreDir, CANONICAL_MTIME};
use crate::tree;
use crate::unpack::{self, UnpackError, UnpackOptions, UnpackReport};
use filetime::FileTime;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The marker, in the target dir: one line, the artifacts path the dir was filled from.
pub const MARKER: &str = ".nixcache-hydrated";
/// hydrate's record, in the target dir: what it is filling or filled, and the identity of what
/// it wrote ([`Record`]).
pub const RECORD: &str = ".nixcache-hydrate.json";
/// The infix of an old tree renamed aside during a refill.
const ASIDE: &str = ".nixcache-old.";

/// The record's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    phase: Phase,
    artifacts: PathBuf,
    /// A separate build dir filled too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    build_dir: Option<PathBuf>,
    /// Done: how many entries hydrate left, and their identity ([`identity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Filling,
    Done,
}

/// What the target dir holds before hydrating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TargetState {
    /// No target dir, or an empty one.
    Empty,
    /// Entries, but no marker: the user's own build.
    Own,
    /// Filled by hydrate from `from`; `changed`: why it is no longer exactly as hydrate left it
    /// (a clause naming `from`, see [`Action::KeepChanged`]).
    Filled {
        from: PathBuf,
        changed: Option<String>,
    },
    /// A fill from `from` that did not finish; `changed`: why it is not hydrate's alone (as
    /// above).
    Interrupted {
        from: PathBuf,
        changed: Option<String>,
    },
}

/// What hydrate does about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Unpack into the empty target dir.
    Hydrate,
    /// Already filled from these artifacts: nothing to do.
    UpToDate,
    /// Filled from other artifacts and exactly as hydrate left it: replace it.
    Replace { previous: PathBuf },
    /// A fill that did not finish, holding nothing but what it wrote: fill it again.
    Resume { previous: PathBuf },
    /// Filled (or being filled) by hydrate, but changed since: keep the user's work. `why` says
    /// it in a clause (`filled from /nix/store/... and built in since, ...`).
    KeepChanged { previous: PathBuf, why: String },
    /// The user's own target dir: never touched.
    KeepOwn,
    /// cargo holds one of the target dir's locks: building there now.
    KeepBusy { lock: PathBuf },
}

/// The decision, pure: see the module doc.
pub(crate) fn decide(state: &TargetState, wanted: &Path) -> Action {
    match state {
        TargetState::Empty => Action::Hydrate,
        TargetState::Own => Action::KeepOwn,
        TargetState::Filled { from, .. } if from == wanted => Action::UpToDate,
        TargetState::Filled {
            from,
            changed: None,
        } => Action::Replace {
            previous: from.clone(),
        },
        TargetState::Interrupted {
            from,
            changed: None,
        } => Action::Resume {
            previous: from.clone(),
        },
        TargetState::Filled {
            from,
            changed: Some(why),
        }
        | TargetState::Interrupted {
            from,
            changed: Some(why),
        } => Action::KeepChanged {
            previous: from.clone(),
            why: why.clone(),
        },
    }
}

#[derive(Debug, serde::Serialize)]
pub struct HydrateReport {
    #[serde(flatten)]
    pub action: Action,
    pub artifacts: PathBuf,
    pub target_dir: PathBuf,
    /// The unpack, when there was one.
    pub unpacked: Option<UnpackReport>,
    /// Old trees of earlier refills that could not be removed (yet).
    pub leftovers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HydrateError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("`{0}` is not a record of cargo-nixcache's hydrate; remove the target dir, or the file if the target dir is your own")]
    BadRecord(PathBuf),
    #[error("target dir `{link}` is a symlink to `{to}`, which is not a directory; create the directory, or remove the link")]
    DanglingTarget { link: PathBuf, to: PathBuf },
    #[error("cannot move `{path}` aside to refill it; `cargo clean` and enter the shell again")]
    MoveAside {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{0}` is not UTF-8, which hydrate's record (JSON) cannot hold")]
    NotUtf8(PathBuf),
    #[error("{cause}; and then putting the previous tree back failed too ({failed}): it is at `{aside}`")]
    Restore {
        cause: Box<HydrateError>,
        aside: PathBuf,
        failed: FsError,
    },
}

impl HasFault for HydrateError {
    fn fault(&self) -> Fault {
        match self {
            HydrateError::Unpack(e) => e.fault(),
            HydrateError::Fs(e) => e.fault(),
            HydrateError::BadRecord(_) => Fault::Input,
            HydrateError::NotUtf8(_) => Fault::Usage,
            HydrateError::DanglingTarget { .. }
            | HydrateError::MoveAside { .. }
            | HydrateError::Restore { .. } => Fault::Environment,
        }
    }
}

/// Hydrates `opts.target_dir` from `opts.artifacts` (see the module doc).
pub fn hydrate(opts: &UnpackOptions) -> Result<HydrateReport, HydrateError> {
    let target = follow(&opts.target_dir)?;
    let created = fs::symlink_metadata(&target).is_err();
    if created {
        fsutil::create_dir_all(&target)?;
    }
    // Two hydrates of one dir take turns (the second then finds it filled), on the directory
    // around it: the target dir itself is renamed aside by a refill.
    let parent = parent_of(&target);
    let dir = File::open(parent).with_path("open", parent)?;
    let _turn = Flock::lock(dir, FlockArg::LockExclusive)
        .map_err(|(_, e)| FsError::new("lock", parent, io::Error::from(e)))?;
    let mut leftovers = remove_asides(&target);
    let (state, record) = target_state(&target, &opts.artifacts, &opts.store)?;
    let mut action = decide(&state, &opts.artifacts);
    let mut unpacked = None;
    match &action {
        Action::Hydrate => match fill(opts, &target) {
            Ok(report) => unpacked = Some(report),
            Err(e) => {
                if created {
                    let _ = fs::remove_dir(&target);
                }
                return Err(e);
            }
        },
        Action::Replace { .. } | Action::Resume { .. } => {
            let mut roots = vec![target.clone()];
            roots.extend(record.and_then(|r| r.build_dir));
            match cargo_locks(&roots)? {
                Err(lock) => action = Action::KeepBusy { lock },
                Ok(_held) => {
                    let (report, left) = refill(opts, &roots)?;
                    unpacked = Some(report);
                    leftovers.extend(left);
                }
            }
        }
        Action::UpToDate
        | Action::KeepChanged { .. }
        | Action::KeepOwn
        | Action::KeepBusy { .. } => {}
    }
    Ok(HydrateReport {
        action,
        artifacts: opts.artifacts.clone(),
        target_dir: opts.target_dir.clone(),
        unpacked,
        leftovers,
    })
}

/// The directory a target (or build) dir path names: a symlink is followed to the directory it
/// leads to; a path that does not exist is taken as it is.
fn follow(path: &Path) -> Result<PathBuf, HydrateError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(real) if real.is_dir() => Ok(real),
            _ => Err(HydrateError::DanglingTarget {
                link: path.into(),
                to: fsutil::read_link(path)?,
            }),
        },
        _ => Ok(path.into()),
    }
}

/// Fills the empty `target` (its record written first and last, see the module doc).
fn fill(opts: &UnpackOptions, target: &Path) -> Result<UnpackReport, HydrateError> {
    let build_dir = build_dir_of(opts, target)?;
    let mut record = Record {
        phase: Phase::Filling,
        artifacts: opts.artifacts.clone(),
        build_dir: build_dir.clone(),
        entries: None,
        identity: None,
    };
    write_record(target, &record)?;
    let into = UnpackOptions {
        target_dir: target.into(),
        build_dir: build_dir.clone().map_or(BuildDir::None, BuildDir::Given),
        ..opts.clone()
    };
    // A failed unpack leaves the target dir as it was, or empties it, the record included. A
    // record left with nothing to describe goes too (a failed rollback keeps it: that tree is
    // an unfinished fill).
    let report = match unpack::unpack_beside(&into, Some(OsStr::new(RECORD))) {
        Ok(report) => report,
        Err(e) => {
            if !matches!(e, UnpackError::RollbackFailed { .. }) {
                let _ = fs::remove_file(target.join(RECORD));
            }
            return Err(e.into());
        }
    };
    let mut line = opts.artifacts.clone().into_os_string().into_vec();
    line.push(b'\n');
    fsutil::write_atomic(&target.join(MARKER), |w| w.write_all(&line))?;
    let mut roots = vec![target.to_path_buf()];
    roots.extend(build_dir);
    let (entries, id) = identity(&roots)?;
    record.phase = Phase::Done;
    record.entries = Some(entries);
    record.identity = Some(id);
    write_record(target, &record)?;
    Ok(report)
}

/// The separate build dir the artifacts fill, if they hold one (resolved as unpack does, a
/// symlink followed).
fn build_dir_of(opts: &UnpackOptions, target: &Path) -> Result<Option<PathBuf>, HydrateError> {
    let has_build = match Artifacts::detect(&opts.artifacts, &opts.store) {
        Ok(Artifacts::Nixcache(ours)) => ours.manifest.roots.iter().any(|r| r == BUILD_ROOT),
        _ => false, // crane's formats hold none; unpack reports bad artifacts
    };
    if !has_build {
        return Ok(None);
    }
    let build = opts.build_dir.resolve().map_err(UnpackError::from)?;
    match build {
        Some(b) if follow(&b)? != target => Ok(Some(follow(&b)?)),
        _ => Ok(None),
    }
}

/// Replaces hydrate's own trees at `roots` (the target dir first) by a fill: each renamed aside,
/// the fill made, the old ones removed; a fill that fails puts them back. Returns the fill and
/// what could not be removed.
fn refill(
    opts: &UnpackOptions,
    roots: &[PathBuf],
) -> Result<(UnpackReport, Vec<String>), HydrateError> {
    let mut aside = Vec::new();
    let moved = roots
        .iter()
        .filter(|r| fs::symlink_metadata(r).is_ok())
        .try_for_each(|root| {
            let to = aside_name(root)?;
            let mode = fsutil::symlink_metadata(root)?.permissions().mode();
            fs::rename(root, &to).map_err(|source| HydrateError::MoveAside {
                path: root.clone(),
                source,
            })?;
            aside.push((root.clone(), to));
            fsutil::create_dir_all(root)?;
            fs::set_permissions(root, fs::Permissions::from_mode(mode))
                .with_path("set permissions of", root)?;
            Ok(())
        });
    let filled = moved.and_then(|()| fill(opts, &roots[0]));
    match filled {
        Ok(report) => {
            let left = aside
                .iter()
                .filter_map(|(_, old)| remove_ours(old).err())
                .map(|e| leftover_message(&e))
                .collect();
            Ok((report, left))
        }
        Err(cause) => {
            for (root, old) in aside.into_iter().rev() {
                let back = tree::remove_tree(&root, true)
                    .and_then(|()| fs::rename(&old, &root).with_path("move back", &root));
                if let Err(failed) = back {
                    return Err(HydrateError::Restore {
                        cause: Box::new(cause),
                        aside: old,
                        failed,
                    });
                }
            }
            Err(cause)
        }
    }
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `<parent>/.<name>.nixcache-old.<random>`, beside `root` (a rename stays on its file system).
fn aside_name(root: &Path) -> Result<PathBuf, FsError> {
    let parent = parent_of(root);
    let name = root.file_name().unwrap_or_default().to_string_lossy();
    // A directory made and removed again: only its unique name is wanted.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}{ASIDE}"))
        .tempdir_in(parent)
        .with_path("create a temporary directory in", parent)?;
    let path = tmp.path().to_path_buf();
    tmp.close().with_path("remove", &path)?;
    Ok(path)
}

/// Removes the old trees earlier refills left beside `target` (they were hydrate's own when
/// renamed aside); says what is still there.
fn remove_asides(target: &Path) -> Vec<String> {
    let parent = parent_of(target);
    let prefix = format!(
        ".{}{ASIDE}",
        target.file_name().unwrap_or_default().to_string_lossy()
    );
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(prefix.as_bytes()))
        .filter_map(|e| remove_ours(&e.path()).err())
        .map(|e| leftover_message(&e))
        .collect()
}

fn leftover_message(e: &FsError) -> String {
    format!(
        "{e} ({}): an old tree of an earlier fill; remove it by hand",
        e.source
    )
}

/// Removes a tree of hydrate's own; a directory it cannot empty is made writable first (a build
/// script may leave read-only ones, Go's module cache does).
fn remove_ours(path: &Path) -> Result<(), FsError> {
    if tree::remove_tree(path, true).is_ok() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let mode = entry
                .metadata()
                .map(|m| m.permissions().mode())
                .unwrap_or(0o700);
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode | 0o700));
        }
    }
    tree::remove_tree(path, true)
}

/// Takes every cargo lock file in `roots` (`<root>/[<triple>/]<profile>/.cargo-lock` and cargo's
/// other `.cargo*lock` files), to hold while the trees are replaced; `Err` names one cargo holds.
fn cargo_locks(roots: &[PathBuf]) -> Result<Result<Vec<Flock<File>>, PathBuf>, HydrateError> {
    let mut held = Vec::new();
    for root in roots {
        let walk = walkdir::WalkDir::new(root).min_depth(1).max_depth(3);
        for entry in walk.into_iter().flatten() {
            if !(entry.file_type().is_file() && is_cargo_lock(entry.file_name())) {
                continue;
            }
            let file = File::open(entry.path()).with_path("open", entry.path())?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => held.push(lock),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(Err(entry.into_path())),
                Err((_, e)) => return Err(FsError::new("lock", entry.path(), e.into()).into()),
            }
        }
    }
    Ok(Ok(held))
}

fn write_record(target: &Path, record: &Record) -> Result<(), HydrateError> {
    for path in [Some(&record.artifacts), record.build_dir.as_ref()]
        .into_iter()
        .flatten()
    {
        if path.to_str().is_none() {
            return Err(HydrateError::NotUtf8(path.clone()));
        }
    }
    let json = serde_json::to_vec_pretty(record).expect("paths checked to be UTF-8");
    let path = target.join(RECORD);
    Ok(fsutil::write_atomic(&path, |w| w.write_all(&json))?)
}

/// What `target` holds, and hydrate's record of it (if any). The trees are checked only when
/// that could change the decision (not for a fill from `wanted` that is done).
fn target_state(
    target: &Path,
    wanted: &Path,
    store: &StoreDir,
) -> Result<(TargetState, Option<Record>), HydrateError> {
    let mut entries = fs::read_dir(target).with_path("read directory", target)?;
    if entries.next().is_none() {
        return Ok((TargetState::Empty, None));
    }
    let record_path = target.join(RECORD);
    let record: Record = match fs::read(&record_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|_| HydrateError::BadRecord(record_path.clone()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return old_marker(target),
        Err(e) => return Err(FsError::new("read", &record_path, e).into()),
    };
    let from = record.artifacts.clone();
    let mut roots = vec![target.to_path_buf()];
    roots.extend(record.build_dir.clone());
    let state = match record.phase {
        Phase::Done if from == wanted => TargetState::Filled {
            from,
            changed: None,
        },
        Phase::Done => {
            let (entries, id) = identity(&roots)?;
            let changed = (Some(&id) != record.identity.as_ref()).then(|| {
                let how = match record.entries {
                    Some(left) if left != entries => format!(
                        "files were added or removed ({entries} entries where hydrate left {left})"
                    ),
                    _ => "files were moved in or replaced (as many entries as hydrate left, but \
                          not all the same)"
                        .into(),
                };
                format!(
                    "filled from {} and built in since, or {how}",
                    from.display()
                )
            });
            TargetState::Filled { from, changed }
        }
        Phase::Filling => TargetState::Interrupted {
            changed: only_entries_of(&from, &roots, store)?,
            from,
        },
    };
    Ok((state, Some(record)))
}

/// A target dir with no record: the user's own, or filled by an older cargo-nixcache (a marker).
fn old_marker(target: &Path) -> Result<(TargetState, Option<Record>), HydrateError> {
    let marker = target.join(MARKER);
    let text = match fs::read(&marker) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((TargetState::Own, None)),
        Err(e) => return Err(FsError::new("read", &marker, e).into()),
    };
    let from = text
        .strip_suffix(b"\n")
        .filter(|line| !line.is_empty() && !line.contains(&b'\n'))
        .map(|line| PathBuf::from(OsStr::from_bytes(line)))
        .ok_or_else(|| HydrateError::BadRecord(marker.clone()))?;
    let why = format!(
        "filled from {} by an older cargo-nixcache, which recorded nothing to tell your files \
         from its own",
        from.display()
    );
    Ok((
        TargetState::Filled {
            from,
            changed: Some(why),
        },
        None,
    ))
}

/// The number of entries below `roots` (hydrate's own files left out) and their identity: a
/// BLAKE3 digest, in sorted order, of each entry's root, path, kind, inode and, for a file, size
/// and mtime, for a symlink, its target. Directory mtimes are left out (they change with their
/// entries, which are in it).
fn identity(roots: &[PathBuf]) -> Result<(u64, String), FsError> {
    let mut digest = blake3::Hasher::new();
    let mut entries = 0;
    walk_trees(roots, |i, rel, path, meta| {
        let rel = rel.as_os_str().as_bytes();
        entries += 1;
        digest.update(&[i as u8]);
        digest.update(&(rel.len() as u64).to_le_bytes());
        digest.update(rel);
        digest.update(&meta.ino().to_le_bytes());
        let t = meta.file_type();
        if t.is_file() {
            let mtime = FileTime::from_last_modification_time(meta);
            digest.update(b"f");
            digest.update(&meta.len().to_le_bytes());
            digest.update(&mtime.unix_seconds().to_le_bytes());
            digest.update(&mtime.nanoseconds().to_le_bytes());
        } else if t.is_symlink() {
            let target = fsutil::read_link(path)?;
            digest.update(b"l");
            digest.update(target.as_os_str().as_bytes());
        } else {
            digest.update(if t.is_dir() { b"d" } else { b"?" });
        }
        Ok(true)
    })?;
    Ok((entries, digest.finalize().to_hex().to_string()))
}

/// Calls `each` with every entry below `roots` (the target dir first) but hydrate's own files and
/// cargo's lock files (which cargo makes and takes, see [`cargo_locks`]): the root's index, the
/// path below it and from here, and its metadata (symlinks not followed). `each` returns whether
/// to go on.
fn walk_trees(
    roots: &[PathBuf],
    mut each: impl FnMut(usize, &Path, &Path, &fs::Metadata) -> Result<bool, FsError>,
) -> Result<(), FsError> {
    for (i, root) in roots.iter().enumerate() {
        if i > 0 && fs::symlink_metadata(root).is_err() {
            continue; // a build dir removed since: nothing of it left
        }
        for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| fsutil::walk_error(root, e))?;
            let name = entry.file_name();
            if (i == 0 && entry.depth() == 1 && (name == RECORD || name == MARKER))
                || is_cargo_lock(name)
            {
                continue;
            }
            let meta = entry.metadata().map_err(|e| fsutil::walk_error(root, e))?;
            let rel = entry.path().strip_prefix(root).expect("below the root");
            if !each(i, rel, entry.path(), &meta)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// cargo's lock files: `.cargo-lock`, `.cargo-build-lock`, `.cargo-artifact-lock`.
fn is_cargo_lock(name: &OsStr) -> bool {
    name.as_bytes().starts_with(b".cargo") && classify::never_carried_name(name)
}

/// An entry found in a tree [`only_entries_of`] checks.
struct Found {
    path: PathBuf,
    meta: fs::Metadata,
}

/// Whether the trees at `roots` (the target dir first) hold nothing but entries of the archive
/// at `artifacts` as unpack writes them: directories, links to its targets, files of its size
/// with its mtime or the store's, or else whose bytes begin its contents (the file being written
/// when the fill stopped, or not yet given its mtime). `None` if so, else why not.
fn only_entries_of(
    artifacts: &Path,
    roots: &[PathBuf],
    store: &StoreDir,
) -> Result<Option<String>, HydrateError> {
    let unfinished = format!("filling it from {} did not finish", artifacts.display());
    let unknown = |why: String| Ok(Some(format!("{unfinished}, and {why}")));
    let ours = match Artifacts::detect(artifacts, store) {
        Ok(Artifacts::Nixcache(ours)) => ours,
        Ok(_) => return unknown("crane's formats cannot be checked entry by entry".into()),
        Err(e) => return unknown(format!("those artifacts cannot be read to check it ({e})")),
    };
    let mut found = HashMap::new();
    walk_trees(roots, |i, rel, path, meta| {
        let root = if i == 0 { TARGET_ROOT } else { BUILD_ROOT };
        let found_entry = Found {
            path: path.into(),
            meta: meta.clone(),
        };
        found.insert(Path::new(root).join(rel), found_entry);
        Ok(true)
    })?;
    let canonical = FileTime::from_unix_time(CANONICAL_MTIME, 0);
    let mut foreign: Option<PathBuf> = None;
    // The files found as written, by archive path: a hard link must be another name of one.
    let mut inodes = HashMap::new();
    let checked = ours
        .open(store)
        .map_err(|e| e.to_string())
        .and_then(|opened| {
            opened
                .check(Err, |entry, contents| {
                    let Some(f) = found.remove(entry.path.as_path()) else {
                        return Ok(());
                    };
                    let ok = match &entry.kind {
                        EntryKind::Dir { .. } => f.meta.is_dir(),
                        EntryKind::Symlink { target } => {
                            f.meta.file_type().is_symlink()
                                && fs::read_link(&f.path).is_ok_and(|t| t == *target)
                        }
                        EntryKind::File { size, .. } => {
                            let m = FileTime::from_last_modification_time(&f.meta);
                            let ours = f.meta.is_file()
                                && f.meta.len() <= *size
                                && ((f.meta.len() == *size
                                    && (m == entry.mtime || m == canonical))
                                    || begins(&f.path, f.meta.len(), contents)?);
                            if ours {
                                inodes.insert(entry.path.clone(), (f.meta.dev(), f.meta.ino()));
                            }
                            ours
                        }
                        EntryKind::HardLink { target } => {
                            f.meta.is_file()
                                && inodes.get(target) == Some(&(f.meta.dev(), f.meta.ino()))
                        }
                    };
                    if !ok && foreign.is_none() {
                        foreign = Some(f.path);
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())
        });
    if let Err(e) = checked {
        return unknown(format!("those artifacts cannot be read to check it ({e})"));
    }
    let foreign = foreign.or_else(|| found.into_values().map(|f| f.path).min());
    Ok(foreign.map(|path| {
        format!(
            "{unfinished}, and `{}` is not what it wrote",
            path.display()
        )
    }))
}

/// Whether the `len` bytes of the file at `path` are the first `len` of `contents` (a file that
/// cannot be read as long is not).
fn begins(path: &Path, len: u64, contents: &mut dyn io::BufRead) -> io::Result<bool> {
    use io::Read;
    let Ok(mut file) = File::open(path) else {
        return Ok(false);
    };
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut rest = len;
    while rest > 0 {
        let n = a.len().min(rest as usize);
        if file.read_exact(&mut a[..n]).is_err() {
            return Ok(false);
        }
        contents.read_exact(&mut b[..n])?;
        if a[..n] != b[..n] {
            return Ok(false);
        }
        rest -= n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(from: &str, changed: Option<&str>) -> TargetState {
        TargetState::Filled {
            from: from.into(),
            changed: changed.map(String::from),
        }
    }

    #[test]
    fn decisions() {
        let deps = Path::new("/s/aaa-deps");
        assert_eq!(decide(&TargetState::Empty, deps), Action::Hydrate);
        assert_eq!(decide(&TargetState::Own, deps), Action::KeepOwn);
        assert_eq!(
            decide(&filled("/s/aaa-deps", Some("built")), deps),
            Action::UpToDate
        );
        assert_eq!(
            decide(&filled("/s/bbb-deps", None), deps),
            Action::Replace {
                previous: "/s/bbb-deps".into()
            }
        );
        assert_eq!(
            decide(&filled("/s/bbb-deps", Some("built")), deps),
            Action::KeepChanged {
                previous: "/s/bbb-deps".into(),
                why: "built".into()
            }
        );
        let interrupted = |changed: Option<&str>| TargetState::Interrupted {
            from: "/s/aaa-deps".into(),
            changed: changed.map(String::from),
        };
        assert_eq!(
            decide(&interrupted(None), deps),
            Action::Resume {
                previous: "/s/aaa-deps".into()
            }
        );
        assert_eq!(
            decide(&interrupted(Some("moved in")), deps),
            Action::KeepChanged {
                previous: "/s/aaa-deps".into(),
                why: "moved in".into()
            }
        );
    }
}
