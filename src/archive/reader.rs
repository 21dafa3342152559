//! Validating reader for the archive format.
//!
//! Every entry is checked as it streams past: its path is a `RelPath` under a known root, it
//! sorts strictly after the previous one (so duplicates are impossible), its parent is a
//! directory entry already seen, its type is one of the four we write, a symlink points into
//! the store dir without `..`, and a hard link names an executable regular file earlier in the
//! same root. The same stream is scanned for store paths so callers can hold it against the GC
//! anchor. Memory stays O(tree depth) plus the paths of the executable files (what a hard link
//! may name: a handful in a target dir), whatever else the archive holds, unless the caller has
//! a small zstd stream
//! [`ArchiveReader::decompress_once`]: then every later pass reads memory instead of
//! decompressing the file again.

use super::read_ahead::ReadAhead;
use super::stream_buffer::StreamBuffer;
use super::zstd_checked;
use super::{compress, Compression};
use super::{path, ustar, Entry, EntryKind, RelPath, RelPathError};
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, InputFileError};
use crate::store::{RefScanner, Scanned, StoreDir, StorePath};
use filetime::FileTime;
use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use zstd::zstd_safe::compress_bound;

/// The archive root of the target dir.
pub const TARGET_ROOT: &str = "target";
/// The archive root of a separate build dir (`build.build-dir`).
pub const BUILD_ROOT: &str = "build";
/// The root components an archive may hold, in archive order.
pub const ROOTS: [&str; 2] = [BUILD_ROOT, TARGET_ROOT];

/// The longest symlink target Linux stores (`PATH_MAX` less its NUL).
pub const MAX_LINK: usize = 4095;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {0}")]
    File(#[from] InputFileError),
    #[error("failed to open archive `{archive}`")]
    Open { archive: PathBuf, source: io::Error },
    #[error("archive `{archive}` is corrupt or truncated ({detail}); recreate it with `cargo nixcache pack`")]
    Corrupt { archive: PathBuf, detail: String },
    #[error("archive `{archive}`: entry `{entry}` is rejected: {problem}")]
    Entry {
        archive: PathBuf,
        entry: String,
        problem: EntryProblem,
    },
    #[error(
        "archive `{archive}` names `{store_path}`, which its GC anchor `{anchor}` does not list, so \
         `nix-store --gc` may delete it; recreate the artifacts with `cargo nixcache pack`"
    )]
    NotAnchored {
        archive: PathBuf,
        anchor: PathBuf,
        store_path: PathBuf,
    },
    #[error(
        "archive `{archive}` links into `{store_path}`, which does not exist (garbage-collected or \
         never substituted?); realise it, e.g. `nix-store --realise {store_path}`, or rebuild the artifacts"
    )]
    MissingStorePath {
        archive: PathBuf,
        store_path: PathBuf,
    },
    #[error("archive `{archive}` has an uncompressed stream of {found} bytes but its manifest says {expected}: it was damaged or replaced; recreate it with `cargo nixcache pack`")]
    StreamLength {
        archive: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("archive `{archive}` holds {found} entries but its manifest says {expected}: it was truncated; recreate it with `cargo nixcache pack`")]
    Truncated {
        archive: PathBuf,
        expected: u64,
        found: u64,
    },
}

impl HasFault for ArchiveError {
    fn fault(&self) -> Fault {
        match self {
            ArchiveError::File(e) => e.fault(),
            ArchiveError::Open { .. } => Fault::Environment,
            ArchiveError::Entry {
                problem: EntryProblem::Link(link),
                ..
            } if link.is_environment() => Fault::Environment,
            ArchiveError::Corrupt { .. }
            | ArchiveError::Entry { .. }
            | ArchiveError::NotAnchored { .. }
            | ArchiveError::MissingStorePath { .. }
            | ArchiveError::StreamLength { .. }
            | ArchiveError::Truncated { .. } => Fault::Input,
        }
    }
}

/// What is wrong with one entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("{0}")]
    Path(RelPathError),
    #[error("it is not under `target/` or `build/`")]
    UnknownRoot,
    #[error("a root must be a directory")]
    RootNotDirectory,
    #[error(
        "it is a {0}; archives hold only directories, symlinks, regular files and hard links to them"
    )]
    UnsupportedType(&'static str),
    #[error("it appears twice")]
    Duplicate,
    #[error("it comes after `{0}`; entries must be sorted")]
    OutOfOrder(String),
    #[error("its parent directory has no entry before it")]
    MissingParent,
    #[error("it lies below `{0}`, which is not a directory")]
    BelowNonDirectory(String),
    #[error("it is a symlink without a target")]
    NoLinkTarget,
    #[error("its symlink target has a NUL byte")]
    LinkTargetNul,
    #[error("its symlink target is {0} bytes long, more than the {MAX_LINK} a symlink may hold")]
    LinkTargetTooLong(usize),
    #[error("it is a hard link without a target")]
    NoHardLinkTarget,
    #[error("its hard link target is no path inside the archive: {0}")]
    HardLinkPath(RelPathError),
    #[error(
        "it is a hard link to `{0}`, which is not an executable regular file earlier under the \
         same root"
    )]
    HardLinkNotToFile(String),
    #[error("its symlink target `{target}` is not inside the store dir `{store}`")]
    LinkOutsideStore { target: String, store: String },
    #[error("its pax mtime `{0}` is malformed")]
    BadMtime(String),
    #[error("{0}")]
    Link(crate::linkcheck::LinkProblem),
}

/// What a full pass over an archive found.
#[derive(Debug, Default)]
pub struct StreamSummary {
    pub entries: u64,
    /// Every store path named anywhere in the uncompressed stream.
    pub references: BTreeSet<StorePath>,
    /// The store paths that symlinks point into (a subset of `references`).
    pub link_targets: BTreeSet<StorePath>,
    /// Length of the uncompressed stream, trailing data included.
    pub stream_bytes: u64,
}

/// An archive file on disk, plain or zstd-compressed (detected from its magic bytes).
pub struct ArchiveReader<'a> {
    path: &'a Path,
    store: &'a StoreDir,
    /// The whole uncompressed stream, once `decompress_once` has read it.
    loaded: Option<StreamBuffer>,
}

impl<'a> ArchiveReader<'a> {
    pub fn new(path: &'a Path, store: &'a StoreDir) -> Self {
        ArchiveReader {
            path,
            store,
            loaded: None,
        }
    }

    /// Decompresses a zstd archive whose stream is `len` bytes long (by its manifest) once,
    /// into memory, where every later pass reads it; a second decompression is most of what
    /// a second pass costs. The caller bounds `len`, and so the memory. A stream of any other
    /// length is rejected. A plain archive is left to be streamed: reading it again from the
    /// page cache costs less than filling fresh memory with it.
    pub fn decompress_once(mut self, len: u64) -> Result<Self, ArchiveError> {
        let (mut file, Compression::Zstd) = self.open_file()? else {
            return Ok(self);
        };
        let open_err = |e| self.open_err(e);
        let fits = |n: usize| {
            file.metadata()
                .is_ok_and(|m| m.len() <= compress_bound(n) as u64)
        };
        let len_usize = match usize::try_from(len) {
            Ok(n) if fits(n) => n,
            // No zstd frame of `len` bytes is that big: do not read it into memory.
            _ => return Err(self.stream_error(len, None)),
        };
        let mut compressed = Vec::new();
        file.read_to_end(&mut compressed).map_err(open_err)?;
        // Checksummed frames and nothing else (decompressing verifies the checksums).
        zstd_checked::check_frames(&compressed).map_err(|e| self.corrupt(e))?;
        let mut stream = StreamBuffer::new(len_usize).map_err(open_err)?;
        match zstd::bulk::Decompressor::new()
            .and_then(|mut d| d.decompress_to_buffer(&compressed[..], &mut stream[..]))
        {
            Ok(n) if n == len_usize => {
                self.loaded = Some(stream);
                Ok(self)
            }
            Ok(_) => Err(self.stream_error(len, None)),
            // Longer than `len` (so it did not fit), or damaged: streaming tells which.
            Err(e) => Err(self.stream_error(len, Some(e))),
        }
    }

    /// Why a stream could not be decompressed to `expected` bytes: measured by streaming it,
    /// its damage or its length, else `failure`, what decompressing it failed with.
    fn stream_error(&self, expected: u64, failure: Option<io::Error>) -> ArchiveError {
        let measured = self
            .open()
            .and_then(|(mut s, _)| io::copy(&mut s, &mut io::sink()).map_err(|e| self.corrupt(e)));
        match (measured, failure) {
            (Err(e), _) => e,
            (Ok(found), Some(e)) if found == expected => self.corrupt(e),
            (Ok(found), _) => ArchiveError::StreamLength {
                archive: self.path.into(),
                expected,
                found,
            },
        }
    }

    /// The uncompressed stream, when it is held in memory (`decompress_once`): the contents a
    /// pass hands out are slices of it.
    pub fn in_memory(&self) -> Option<&[u8]> {
        self.loaded.as_deref()
    }

    /// The archive file.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// Streams every entry, validated, to `visit` together with a reader of its contents.
    ///
    /// The stream is always read to its end, also after a rejected entry: zstd's checksum is
    /// only verified there, and when the stream is damaged that, not the garbage entry it
    /// produced, is the error worth reporting.
    pub fn read<E: From<ArchiveError>>(
        &self,
        visit: impl FnMut(&Entry, &mut dyn BufRead) -> Result<(), E>,
    ) -> Result<StreamSummary, E> {
        self.read_scanning(true, visit)
    }

    /// [`read`](Self::read) without the reference scan (`StreamSummary::references` stays
    /// empty): for a second pass over an archive whose references were already checked, the
    /// one that writes, so a zstd stream is decompressed ahead of it on another thread.
    pub fn read_without_scan<E: From<ArchiveError>>(
        &self,
        visit: impl FnMut(&Entry, &mut dyn BufRead) -> Result<(), E>,
    ) -> Result<StreamSummary, E> {
        self.read_scanning(false, visit)
    }

    fn read_scanning<E: From<ArchiveError>>(
        &self,
        scan: bool,
        mut visit: impl FnMut(&Entry, &mut dyn BufRead) -> Result<(), E>,
    ) -> Result<StreamSummary, E> {
        let mut summary = StreamSummary::default();
        let scanner = scan.then(|| RefScanner::distinct(self.store));
        if let Some(data) = &self.loaded {
            // Already decompressed and checked whole (length, checksum): nothing to drain.
            if let Some(mut scanner) = scanner {
                scanner.feed(data);
                summary.references = scanner.finish().into_iter().map(|r| r.path).collect();
            }
            summary.stream_bytes = data.len() as u64;
            let mut members = ustar::Members::new(&data[..]);
            self.read_entries(&mut members, &mut summary, &mut visit)?;
            return Ok(summary);
        }
        let (source, compression) = self.open()?;
        std::thread::scope(|scope| {
            // The pass that writes (unpack's second, which does not scan) decompresses on a
            // thread of its own, beside the writes: 9 % off a 70 MB stream's unpack. A pass that
            // checks and scans is as fast as zstd, so there the read-ahead's copy cost what it
            // saved (verify 1.09x), and a plain archive has nothing to decompress.
            let source: Box<dyn Read + '_> = match compression {
                Compression::Zstd if !scan => Box::new(ReadAhead::spawn(scope, source)),
                _ => source,
            };
            let scanning = Scanned::new(source, scanner);
            let mut members = ustar::Members::new(BufReader::with_capacity(1 << 16, scanning));
            let entries = self.read_entries(&mut members, &mut summary, &mut visit);
            let mut rest = members.into_inner();
            if let Err(e) = io::copy(&mut rest, &mut io::sink()) {
                return Err(self.corrupt(e).into());
            }
            entries?;
            let rest = rest.into_inner();
            summary.stream_bytes = rest.bytes;
            if let Some(scanner) = rest.scanner {
                summary.references = scanner.finish().into_iter().map(|r| r.path).collect();
            }
            Ok(summary)
        })
    }

    fn read_entries<R: BufRead, E: From<ArchiveError>>(
        &self,
        members: &mut ustar::Members<R>,
        summary: &mut StreamSummary,
        visit: &mut impl FnMut(&Entry, &mut dyn BufRead) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut order = OrderCheck::default();
        // The executables so far: what a hard link may name (pack writes them only for cargo's
        // uplifted copy of an executable), kept few so that memory does not grow with the tree.
        let mut executables = HashSet::new();
        while let Some(header) = members.next().map_err(|e| self.corrupt(e))? {
            let entry = convert(header).map_err(|(entry, problem)| self.reject(&entry, problem))?;
            order
                .check(&entry)
                .map_err(|p| self.reject(&entry.path.to_string(), p))?;
            match &entry.kind {
                EntryKind::File { mode, .. } if mode & 0o111 != 0 => {
                    executables.insert(entry.path.clone());
                }
                EntryKind::HardLink { target }
                    if target.root() != entry.path.root() || !executables.contains(target) =>
                {
                    let problem = EntryProblem::HardLinkNotToFile(target.to_string());
                    return Err(self.reject(&entry.path.to_string(), problem).into());
                }
                _ => {}
            }
            if let EntryKind::Symlink { target } = &entry.kind {
                let (store_path, _) = self.store.parse(target).map_err(|_| {
                    self.reject(
                        &entry.path.to_string(),
                        EntryProblem::LinkOutsideStore {
                            target: path::display_bytes(target.as_os_str().as_bytes()),
                            store: self.store.as_path().display().to_string(),
                        },
                    )
                })?;
                summary.link_targets.insert(store_path);
            }
            // Whatever the visitor leaves unread, the next header read skips (through the scanner).
            visit(&entry, &mut members.contents())?;
            summary.entries += 1;
        }
        Ok(())
    }

    fn corrupt(&self, e: io::Error) -> ArchiveError {
        ArchiveError::Corrupt {
            archive: self.path.into(),
            detail: e.to_string(),
        }
    }

    /// The uncompressed stream, unbuffered (callers buffer it as they need), and the
    /// compression it is decoded from.
    fn open(&self) -> Result<(Box<dyn Read + Send + 'a>, Compression), ArchiveError> {
        let (file, compression) = self.open_file()?;
        let stream = compress::decoder(file, compression).map_err(|e| self.open_err(e))?;
        Ok((stream, compression))
    }

    /// The archive file, and its compression (by its magic bytes).
    fn open_file(&self) -> Result<(File, Compression), ArchiveError> {
        let file = fsutil::open_regular(self.path)?;
        let compression = compress::detect(&file).map_err(|e| self.open_err(e))?;
        Ok((file, compression))
    }

    fn open_err(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Open {
            archive: self.path.into(),
            source,
        }
    }

    fn reject(&self, entry: &str, problem: EntryProblem) -> ArchiveError {
        ArchiveError::Entry {
            archive: self.path.into(),
            entry: entry.into(),
            problem,
        }
    }
}

/// Turns a tar member into an `Entry`, or names the member and what is wrong with it.
fn convert(header: ustar::Header) -> Result<Entry, (String, EntryProblem)> {
    let shown = || path::display_bytes(&header.path);
    // The type first: the name of a member we refuse anyway (a GNU long name is `././@LongLink`)
    // says nothing about what is wrong with it.
    if !matches!(header.kind, b'5' | b'0' | 0 | b'7' | b'2' | b'1') {
        return Err((
            shown(),
            EntryProblem::UnsupportedType(type_name(header.kind)),
        ));
    }
    let path = RelPath::new(PathBuf::from(std::ffi::OsStr::from_bytes(&header.path)))
        .map_err(|e| (shown(), EntryProblem::Path(e)))?;
    let mode = header.mode;
    let kind = match header.kind {
        b'5' => EntryKind::Dir { mode },
        b'2' if header.link.is_empty() => return Err((shown(), EntryProblem::NoLinkTarget)),
        b'2' if header.link.contains(&0) => return Err((shown(), EntryProblem::LinkTargetNul)),
        b'2' if header.link.len() > MAX_LINK => {
            let problem = EntryProblem::LinkTargetTooLong(header.link.len());
            return Err((shown(), problem));
        }
        b'2' => EntryKind::Symlink {
            target: PathBuf::from(std::ffi::OsStr::from_bytes(&header.link)),
        },
        b'1' if header.link.is_empty() => return Err((shown(), EntryProblem::NoHardLinkTarget)),
        b'1' => EntryKind::HardLink {
            target: RelPath::new(PathBuf::from(std::ffi::OsStr::from_bytes(&header.link)))
                .map_err(|e| (shown(), EntryProblem::HardLinkPath(e)))?,
        },
        _ => EntryKind::File {
            mode,
            size: header.size,
        },
    };
    let mtime = match header.mtime {
        ustar::Mtime::Seconds(secs) => FileTime::from_unix_time(secs, 0),
        ustar::Mtime::Pax(value) => {
            parse_pax_time(&value).ok_or_else(|| (shown(), EntryProblem::BadMtime(value)))?
        }
    };
    Ok(Entry { path, mtime, kind })
}

/// What a tar typeflag we do not accept is, for the error message.
fn type_name(kind: u8) -> &'static str {
    match kind {
        b'3' => "character device",
        b'4' => "block device",
        b'6' => "fifo",
        b'S' => "sparse file",
        b'g' => "pax global header",
        b'L' => "GNU long name",
        b'K' => "GNU long link name",
        _ => "non-standard tar member",
    }
}

/// Parses `SECS[.FRACTION]` as written in pax records (fraction of up to 9 digits kept).
pub(crate) fn parse_pax_time(s: &str) -> Option<FileTime> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Nanoseconds: the first nine digits, right-padded with zeros.
    let nanos = (0..9).fold(0u32, |n, i| {
        n * 10 + frac.as_bytes().get(i).map_or(0, |d| u32::from(d - b'0'))
    });
    Some(FileTime::from_unix_time(secs, nanos))
}

/// Checks order and parenthood with the chain of the last entry's ancestors.
#[derive(Default)]
struct OrderCheck {
    /// The last entry's path.
    last: Vec<u8>,
    /// The entries from a root down to the last one, as the length of their path (a prefix
    /// of `last`) and whether they are directories.
    chain: Vec<(usize, bool)>,
}

impl OrderCheck {
    fn check(&mut self, entry: &Entry) -> Result<(), EntryProblem> {
        let path = entry.path.bytes();
        let shown = path::display_bytes;
        if !self.chain.is_empty() {
            match path::cmp(path, &self.last) {
                std::cmp::Ordering::Equal => return Err(EntryProblem::Duplicate),
                std::cmp::Ordering::Less => {
                    return Err(EntryProblem::OutOfOrder(shown(&self.last)))
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        let is_dir = matches!(entry.kind, EntryKind::Dir { .. });
        while self
            .chain
            .last()
            .is_some_and(|&(len, _)| !path::starts_with(path, &self.last[..len]))
        {
            self.chain.pop();
        }
        if entry.path.is_root() {
            if !ROOTS.iter().any(|r| entry.path.root() == *r) {
                return Err(EntryProblem::UnknownRoot);
            }
            if !is_dir {
                return Err(EntryProblem::RootNotDirectory);
            }
        } else {
            match self.chain.last() {
                Some(&(len, false)) => {
                    return Err(EntryProblem::BelowNonDirectory(shown(&self.last[..len])))
                }
                Some(&(len, true)) if path::is_parent_of(&self.last[..len], path) => {}
                _ => return Err(EntryProblem::MissingParent),
            }
        }
        // The remaining chain holds prefixes of `path` too, so their lengths stay valid.
        self.last.clear();
        self.last.extend_from_slice(path);
        self.chain.push((path.len(), is_dir));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, dir: bool) -> Entry {
        let kind = if dir {
            EntryKind::Dir { mode: 0o755 }
        } else {
            EntryKind::File {
                mode: 0o644,
                size: 0,
            }
        };
        Entry {
            path: RelPath::new(path).unwrap(),
            mtime: FileTime::zero(),
            kind,
        }
    }

    fn run(entries: &[(&str, bool)]) -> Result<(), (usize, EntryProblem)> {
        let mut check = OrderCheck::default();
        for (i, (p, d)) in entries.iter().enumerate() {
            check.check(&entry(p, *d)).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    #[test]
    fn accepts_a_sorted_tree() {
        run(&[
            ("build", true),
            ("target", true),
            ("target/a", true),
            ("target/a/f", false),
            ("target/b", false),
        ])
        .unwrap();
    }

    #[test]
    fn rejects_structural_problems() {
        type Case<'a> = (&'a [(&'a str, bool)], usize, EntryProblem);
        let cases: &[Case] = &[
            (&[("etc", true)], 0, EntryProblem::UnknownRoot),
            (&[("target", false)], 0, EntryProblem::RootNotDirectory),
            (
                &[("target", true), ("target", true)],
                1,
                EntryProblem::Duplicate,
            ),
            (
                &[("target", true), ("target/b", false), ("target/a", false)],
                2,
                EntryProblem::OutOfOrder("target/b".into()),
            ),
            (
                &[("target", true), ("target/x/y", false)],
                1,
                EntryProblem::MissingParent,
            ),
            (
                &[("target", true), ("target/x", false), ("target/x/y", false)],
                2,
                EntryProblem::BelowNonDirectory("target/x".into()),
            ),
        ];
        for (entries, at, problem) in cases {
            assert_eq!(run(entries), Err((*at, problem.clone())), "{entries:?}");
        }
    }

    /// A small archive of a root, a directory and a file, plain and as one zstd frame.
    fn small_archive() -> (Vec<u8>, Vec<u8>) {
        let mut w = super::super::ArchiveWriter::new(Vec::new());
        let mut file = entry("target/a/f", false);
        file.kind = EntryKind::File {
            mode: 0o644,
            size: 5,
        };
        w.append(&entry("target", true), None).unwrap();
        w.append(&entry("target/a", true), None).unwrap();
        w.append(&file, Some(&mut &b"hello"[..])).unwrap();
        let plain = w.finish().unwrap();
        let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(true).unwrap();
        std::io::Write::write_all(&mut encoder, &plain).unwrap();
        let zstd = encoder.finish().unwrap();
        (plain, zstd)
    }

    fn entries_of(reader: &ArchiveReader) -> Vec<(String, Vec<u8>)> {
        let mut seen = Vec::new();
        reader
            .read(|e, contents| {
                let mut data = Vec::new();
                contents.read_to_end(&mut data).unwrap();
                seen.push((e.path.to_string(), data));
                Ok::<_, ArchiveError>(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn decompresses_zstd_once_into_memory_and_reads_the_same_entries() {
        let store = StoreDir::new("/tmp/nixcache-test-store").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (plain, zstd) = small_archive();
        let (plain_path, zstd_path) = (dir.path().join("a.tar"), dir.path().join("a.tar.zst"));
        std::fs::write(&plain_path, &plain).unwrap();
        std::fs::write(&zstd_path, &zstd).unwrap();
        let len = plain.len() as u64;

        let streamed = entries_of(&ArchiveReader::new(&zstd_path, &store));
        let in_memory = ArchiveReader::new(&zstd_path, &store)
            .decompress_once(len)
            .unwrap();
        assert!(
            in_memory.loaded.is_some(),
            "a zstd stream is held in memory"
        );
        assert_eq!(entries_of(&in_memory), streamed);
        assert_eq!(streamed[2], ("target/a/f".to_string(), b"hello".to_vec()));
        // Read twice, as unpack does: the second pass sees the same entries.
        assert_eq!(entries_of(&in_memory), streamed);

        let plain_reader = ArchiveReader::new(&plain_path, &store)
            .decompress_once(len)
            .unwrap();
        assert!(
            plain_reader.loaded.is_none(),
            "a plain archive stays streamed"
        );

        for wrong in [len - 1, len + 1] {
            let err = ArchiveReader::new(&zstd_path, &store)
                .decompress_once(wrong)
                .err()
                .unwrap();
            assert!(
                matches!(err, ArchiveError::StreamLength { expected, found, .. }
                    if expected == wrong && found == len),
                "{err}"
            );
        }
    }

    #[test]
    fn parses_pax_times() {
        assert_eq!(
            parse_pax_time("12.5"),
            Some(FileTime::from_unix_time(12, 500_000_000))
        );
        assert_eq!(
            parse_pax_time("12.000000001"),
            Some(FileTime::from_unix_time(12, 1))
        );
        assert_eq!(parse_pax_time("7"), Some(FileTime::from_unix_time(7, 0)));
        assert_eq!(parse_pax_time("x.1"), None);
        assert_eq!(parse_pax_time("1.-1"), None);
    }
}
