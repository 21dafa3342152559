//! Reading our archive completely and checking everything unpack relies on, without writing
//! anything: pass one of `unpack`, and all of `verify` (both through
//! [`NixcacheDir::open`](super::NixcacheDir::open) and [`Opened::check`]). One function for both, so that verify's
//! "ok" means unpack will succeed (short of the destination and the environment).
//!
//! Checked here: the archive's zstd frames and tar structure, every member (by the archive
//! reader), every link target resolving inside the store dir (`linkcheck`), the member count
//! and stream length against the manifest, and every store path in the stream against the GC
//! anchor. The manifest and the anchor themselves were checked as they were read.

use super::manifest::Manifest;
use crate::archive::{
    ArchiveError, ArchiveReader, Entry, EntryKind, EntryProblem, StreamSummary, BUILD_ROOT,
};
use crate::linkcheck::{LinkCheck, LinkProblem};
use crate::store::{StoreDir, StorePath};
use std::collections::{BTreeSet, HashSet};
use std::io::{self, BufRead};
use std::path::Path;

/// Largest uncompressed stream read into memory once (the 186-crate corpus of
/// docs/benchmarks.md has 4.9 MB); a bigger one is streamed from the file for each pass.
pub const IN_MEMORY_STREAM_LIMIT: u64 = 16 << 20;

/// What a complete check found.
#[derive(Debug)]
pub struct Validated {
    pub summary: StreamSummary,
    /// Symlink members.
    pub links: u64,
    /// Whether the archive holds a separate build dir (a `build` root).
    pub has_build_root: bool,
}

/// Our archive opened, with the GC anchor read: ready to be checked, and then read again.
pub struct Opened<'a> {
    /// The archive's reader: for the check, and a further pass (unpack's second).
    pub reader: ArchiveReader<'a>,
    manifest: &'a Manifest,
    anchor_path: &'a Path,
    anchor: BTreeSet<StorePath>,
    store: &'a StoreDir,
}

impl<'a> Opened<'a> {
    /// Opens the archive at `archive` for checking against `manifest` and the GC anchor
    /// (`anchor`, read from `anchor_path`).
    pub fn new(
        archive: &'a Path,
        manifest: &'a Manifest,
        anchor_path: &'a Path,
        anchor: BTreeSet<StorePath>,
        store: &'a StoreDir,
    ) -> Result<Self, ArchiveError> {
        Ok(Opened {
            reader: open_archive(archive, manifest, store)?,
            manifest,
            anchor_path,
            anchor,
            store,
        })
    }

    /// Reads all of the archive and checks it; `problem` and `each` as in [`validate`].
    pub fn check(
        &self,
        problem: impl FnMut(ArchiveError) -> Result<(), ArchiveError>,
        each: impl FnMut(&Entry, &mut dyn BufRead) -> io::Result<()>,
    ) -> Result<Validated, ArchiveError> {
        validate(
            &self.reader,
            self.manifest,
            self.anchor_path,
            &self.anchor,
            self.store,
            problem,
            each,
        )
    }

    /// Store paths in the GC anchor.
    pub fn anchored(&self) -> u64 {
        self.anchor.len() as u64
    }
}

/// A reader of `archive`: a zstd stream of at most
/// [`IN_MEMORY_STREAM_LIMIT`] bytes is decompressed once, into memory, for every later pass.
fn open_archive<'a>(
    archive: &'a Path,
    manifest: &Manifest,
    store: &'a StoreDir,
) -> Result<ArchiveReader<'a>, ArchiveError> {
    match manifest.stream_bytes {
        Some(len) if len <= IN_MEMORY_STREAM_LIMIT => {
            ArchiveReader::new(archive, store).decompress_once(len)
        }
        _ => Ok(ArchiveReader::new(archive, store)),
    }
}

/// Reads the whole archive through `reader` and checks it against `manifest` and `anchor`.
///
/// A problem that leaves the rest readable (a link, the count, the length, an unanchored store
/// path) goes to `problem`: returning it stops the check (unpack), returning `Ok` goes on
/// (verify lists them all). One that does not (corruption, a bad member) ends it with an error.
/// Every entry that passed the reader's checks also goes to `each`, with its contents (unpack
/// records them, so that it need not read the archive again); what `each` fails with ends the
/// check as corruption.
fn validate(
    reader: &ArchiveReader,
    manifest: &Manifest,
    anchor_path: &Path,
    anchor: &BTreeSet<StorePath>,
    store: &StoreDir,
    mut problem: impl FnMut(ArchiveError) -> Result<(), ArchiveError>,
    mut each: impl FnMut(&Entry, &mut dyn BufRead) -> io::Result<()>,
) -> Result<Validated, ArchiveError> {
    let archive = reader.path();
    let mut links = LinkCheck::new(store);
    let (mut link_count, mut has_build_root) = (0, false);
    let summary = reader.read(|entry, contents| {
        has_build_root |= entry.path.root() == BUILD_ROOT;
        each(entry, contents).map_err(|e| ArchiveError::Corrupt {
            archive: archive.into(),
            detail: e.to_string(),
        })?;
        if let EntryKind::Symlink { target } = &entry.kind {
            link_count += 1;
            if let Err(link) = links.check(target) {
                problem(link_error(
                    archive,
                    store,
                    &entry.path.to_string(),
                    target,
                    link,
                ))?;
            }
        }
        Ok::<_, ArchiveError>(())
    })?;
    if summary.entries != manifest.entries {
        problem(ArchiveError::Truncated {
            archive: archive.into(),
            expected: manifest.entries,
            found: summary.entries,
        })?;
    }
    if let Some(expected) = manifest.stream_bytes.filter(|&n| n != summary.stream_bytes) {
        problem(ArchiveError::StreamLength {
            archive: archive.into(),
            expected,
            found: summary.stream_bytes,
        })?;
    }
    // By hash: Nix's scanner matches hashes, and a name read out of binary data may run on.
    let anchored: HashSet<_> = anchor.iter().map(|p| *p.digest()).collect();
    for missing in summary
        .references
        .iter()
        .filter(|p| !anchored.contains(p.digest()))
    {
        problem(ArchiveError::NotAnchored {
            archive: archive.into(),
            anchor: anchor_path.into(),
            store_path: store.to_absolute(missing),
        })?;
    }
    Ok(Validated {
        summary,
        links: link_count,
        has_build_root,
    })
}

/// A link that does not resolve inside the store: a store path that is gone gets its own,
/// more helpful message (realise it); anything else names the entry.
fn link_error(
    archive: &Path,
    store: &StoreDir,
    entry: &str,
    target: &Path,
    problem: LinkProblem,
) -> ArchiveError {
    if let (LinkProblem::Missing { .. }, Ok((store_path, _))) = (&problem, store.parse(target)) {
        let store_path = store.to_absolute(&store_path);
        if std::fs::symlink_metadata(&store_path).is_err() {
            return ArchiveError::MissingStorePath {
                archive: archive.into(),
                store_path,
            };
        }
    }
    ArchiveError::Entry {
        archive: archive.into(),
        entry: entry.into(),
        problem: EntryProblem::Link(problem),
    }
}
