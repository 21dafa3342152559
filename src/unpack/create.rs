//! Pass two of unpack for an archive held in memory: the entries pass one recorded, created on
//! several threads.
//!
//! Creating a target dir is system-call bound: on ext4 the kernel's work per file is most of an
//! unpack (docs/benchmarks.md). Entries in different directories can be created at once, so
//! with a recording of the whole archive, pass two runs in three steps:
//! 1. the directories, in archive order, on this thread;
//! 2. files and symlinks, the archive cut into contiguous runs, one per thread (each with its
//!    own [`Tree`], so every creation still goes through descriptors opened without following
//!    symlinks);
//! 3. hard links, on this thread: the file each one names may have been another thread's;
//! 4. the directories' mtimes, now that nothing is created in them any more.
//!
//! Validation stays whole and first: nothing here runs before pass one accepted everything.

use super::{UnpackError, UnpackReport};
use crate::archive::{Entry, EntryKind};
use crate::fsutil::FsError;
use crate::tree::{Existing, Tree};
use filetime::FileTime;
use std::borrow::Cow;
use std::io::{self, BufRead};
use std::path::Path;

/// Below this many files and symlinks one thread creates them: starting threads would cost
/// more than they save.
const PARALLEL_MIN_ENTRIES: usize = 256;
/// Threads at most by default; the kernel's per-directory locks limit what more could bring.
const MAX_THREADS: usize = 4;
/// Overrides the number of threads (`1`: create everything on one thread).
pub const THREADS_ENV: &str = "NIXCACHE_UNPACK_THREADS";

/// The threads to create with: [`THREADS_ENV`] if set to a number, else the CPUs this process
/// may run on, at most [`MAX_THREADS`].
fn threads_wanted() -> usize {
    match std::env::var(THREADS_ENV).ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS)),
    }
}

/// Every entry of an archive held in memory, in order, with the contents of its files.
pub(super) struct Recording<'s> {
    stream: &'s [u8],
    entries: Vec<(Entry, Cow<'s, [u8]>)>,
}

impl<'s> Recording<'s> {
    /// A recording of entries read from `stream`.
    pub(super) fn new(stream: &'s [u8]) -> Self {
        Recording {
            stream,
            entries: Vec::new(),
        }
    }

    /// Records `entry`. A file's contents are the slice of the stream the reader hands out, not
    /// a copy (copying the corpus's 2.6 MiB cost more in page faults than a second parse).
    pub(super) fn push(&mut self, entry: &Entry, contents: &mut dyn BufRead) -> io::Result<()> {
        let bytes = match entry.kind {
            EntryKind::File { size, .. } => {
                let buf = contents.fill_buf()?;
                match self.slice_of_stream(buf) {
                    Some(slice) if slice.len() as u64 == size => Cow::Borrowed(slice),
                    _ => {
                        let mut copy = Vec::new();
                        contents.read_to_end(&mut copy)?;
                        Cow::Owned(copy)
                    }
                }
            }
            _ => Cow::Borrowed(&[][..]),
        };
        self.entries.push((entry.clone(), bytes));
        Ok(())
    }

    /// `buf` as a slice of the stream, if it lies in it.
    fn slice_of_stream(&self, buf: &[u8]) -> Option<&'s [u8]> {
        let offset = (buf.as_ptr() as usize).checked_sub(self.stream.as_ptr() as usize)?;
        self.stream.get(offset..offset.checked_add(buf.len())?)
    }
}

/// Creates `recording` in `trees`, opened at the roots, counting into `report`; `tree_of`
/// picks an entry's tree, `mtime_of` the mtime it gets.
pub(super) fn create(
    recording: &Recording<'_>,
    trees: &mut [Tree],
    tree_of: impl Fn(&Entry) -> usize + Sync,
    mtime_of: impl Fn(&Entry) -> FileTime + Sync,
    report: &mut UnpackReport,
) -> Result<(), UnpackError> {
    let (mut leaves, mut hard_links) = (Vec::new(), Vec::new());
    for (entry, contents) in &recording.entries {
        let tree = &mut trees[tree_of(entry)];
        let rel = entry.path.below_root();
        match &entry.kind {
            _ if rel.as_os_str().is_empty() => tree.set_root_mtime(mtime_of(entry)),
            EntryKind::Dir { mode } => {
                tree.create_dir_untimed(rel, *mode)?;
                report.dirs += 1;
            }
            EntryKind::HardLink { .. } => hard_links.push((entry, &[][..])),
            _ => leaves.push((entry, &contents[..])),
        }
    }

    let threads = threads_wanted()
        .min(leaves.len() / PARALLEL_MIN_ENTRIES)
        .max(1);
    if threads == 1 {
        create_leaves(&leaves, trees, &tree_of, &mtime_of, report)?;
    } else {
        let roots: Vec<&Path> = trees.iter().map(Tree::root).collect();
        let chunk = leaves.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = leaves
                .chunks(chunk)
                .map(|run| {
                    let (roots, tree_of, mtime_of) = (&roots, &tree_of, &mtime_of);
                    scope.spawn(move || -> Result<UnpackReport, UnpackError> {
                        let mut trees = roots
                            .iter()
                            .map(|root| Tree::open(root, Existing::Fail))
                            .collect::<Result<Vec<_>, FsError>>()?;
                        let mut counts = UnpackReport::default();
                        create_leaves(run, &mut trees, tree_of, mtime_of, &mut counts)?;
                        for tree in trees {
                            tree.finish()?;
                        }
                        Ok(counts)
                    })
                })
                .collect();
            let mut failed = None;
            for worker in workers {
                match worker.join().expect("an unpack thread panicked") {
                    Ok(counts) => report.add_counts(&counts),
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            failed.map_or(Ok(()), Err)
        })?;
    }
    create_leaves(&hard_links, trees, &tree_of, &mtime_of, report)?;

    for (entry, _) in &recording.entries {
        let rel = entry.path.below_root();
        if matches!(entry.kind, EntryKind::Dir { .. }) && !rel.as_os_str().is_empty() {
            trees[tree_of(entry)].set_dir_mtime(rel, mtime_of(entry))?;
        }
    }
    Ok(())
}

/// Creates files, symlinks and hard links, in order, in `trees`.
fn create_leaves(
    leaves: &[(&Entry, &[u8])],
    trees: &mut [Tree],
    tree_of: &impl Fn(&Entry) -> usize,
    mtime_of: &impl Fn(&Entry) -> FileTime,
    report: &mut UnpackReport,
) -> Result<(), UnpackError> {
    for (entry, mut contents) in leaves.iter().copied() {
        create_leaf(
            &mut trees[tree_of(entry)],
            entry,
            &mut contents,
            mtime_of(entry),
            report,
        )?;
    }
    Ok(())
}

/// Creates a file, symlink or hard link (`entry` is no directory) in `tree`, counting it into
/// `report`: for both ways of pass two, from a recording and from the stream (in archive
/// order, where the file a hard link names comes first).
pub(super) fn create_leaf(
    tree: &mut Tree,
    entry: &Entry,
    contents: &mut dyn BufRead,
    mtime: FileTime,
    report: &mut UnpackReport,
) -> Result<(), UnpackError> {
    let rel = entry.path.below_root();
    match &entry.kind {
        EntryKind::Symlink { target } => {
            tree.create_symlink(rel, target)?;
            report.links += 1;
        }
        EntryKind::File { mode, .. } => {
            report.file_bytes += tree.create_file(rel, *mode, mtime, contents)?;
            report.files += 1;
        }
        EntryKind::HardLink { target } => {
            tree.hard_link(rel, target.below_root())?;
            report.files += 1;
        }
        EntryKind::Dir { .. } => unreachable!("directories are created apart from the leaves"),
    }
    Ok(())
}
