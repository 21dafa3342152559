//! The `symlinks.tar` format: what an archive holds and how it is written and read.
//!
//! An archive describes a whole cargo target tree with four kinds of entries: directories,
//! symlinks to immutable artifacts in the Nix store, regular files stored inline (the ones cargo
//! and build scripts rewrite, and executables nothing links against), and hard links to an
//! earlier inline file. It is a POSIX (pax) tar stream so that GNU tar can
//! list and extract it, written deterministically: entries in component-wise sorted order, fixed
//! owner, no atime/ctime, mtimes with nanoseconds (cargo's freshness checks compare them).
//! The reader validates every entry of the stream before a caller acts on any of them; see
//! `docs/format.md` for the normative description.

mod compress;
pub(crate) mod path;
mod read_ahead;
mod reader;
mod stream_buffer;
mod ustar;
mod writer;
mod zstd_checked;

pub(crate) use compress::Encoder;
pub(crate) use path::{RelPath, RelPathError};
pub(crate) use reader::{
    ArchiveError, ArchiveReader, EntryProblem, StreamSummary, BUILD_ROOT, TARGET_ROOT,
};
pub(crate) use ustar::check_end as check_tar_end;
pub(crate) use writer::ArchiveWriter;
pub(crate) use zstd_checked::CheckedZstd;

use filetime::FileTime;
use std::path::PathBuf;

/// The archive's compression, chosen at pack time and detected from magic bytes at read time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
}

impl Compression {
    /// The archive's file name in an artifacts directory.
    pub(crate) const fn archive_file_name(self) -> &'static str {
        match self {
            Compression::None => "symlinks.tar",
            Compression::Zstd => "symlinks.tar.zst",
        }
    }
}

/// One archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: RelPath,
    pub mtime: FileTime,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir {
        mode: u32,
    },
    /// An absolute symlink; in a valid archive its target is inside the store dir.
    Symlink {
        target: PathBuf,
    },
    /// A regular file whose `size` bytes follow in the stream.
    File {
        mode: u32,
        size: u64,
    },
    /// Another name of `target`, an executable regular file earlier in the archive under the
    /// same root (cargo's uplifted copy of an executable stored inline).
    HardLink {
        target: RelPath,
    },
}

/// The mtime written for symlinks and hard links: their own mtime means nothing to cargo (it
/// follows a symlink; a hard link is its file), so a constant keeps archives of identical trees
/// identical.
pub(crate) const SYMLINK_MTIME: FileTime = FileTime::zero();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreDir;

    fn entry(path: &str, mtime: FileTime, kind: EntryKind) -> Entry {
        Entry {
            path: RelPath::new(path).unwrap(),
            mtime,
            kind,
        }
    }

    /// Writer output read back by the reader: long paths and links, nanosecond mtimes, modes.
    #[test]
    fn written_entries_read_back_identically() {
        let store = StoreDir::new("/tmp/nixcache-test-store").unwrap();
        let long_name = "z".repeat(150);
        let long_target = store
            .as_path()
            .join(format!("{}-deps", "0".repeat(32)))
            .join("artifacts/target/debug/deps")
            .join(&long_name);
        let t = FileTime::from_unix_time(1_700_000_000, 123_456_789);
        let entries = vec![
            entry("target", t, EntryKind::Dir { mode: 0o755 }),
            entry(
                "target/debug",
                FileTime::from_unix_time(5, 0),
                EntryKind::Dir { mode: 0o700 },
            ),
            entry(
                "target/debug/x.d",
                t,
                EntryKind::File {
                    mode: 0o644,
                    size: 5,
                },
            ),
            entry(
                "target/debug/y",
                t,
                EntryKind::File {
                    mode: 0o755,
                    size: 0,
                },
            ),
            entry(
                &format!("target/debug/{long_name}"),
                SYMLINK_MTIME,
                EntryKind::Symlink {
                    target: long_target,
                },
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut w = ArchiveWriter::new(std::fs::File::create(&path).unwrap());
        for e in &entries {
            let data: &[u8] = if e.path.file_name() == "x.d" {
                b"hello"
            } else {
                b""
            };
            w.append(e, Some(&mut &data[..])).unwrap();
        }
        w.finish().unwrap();

        let mut read = Vec::new();
        let summary = ArchiveReader::new(&path, &store)
            .read(|e, contents| {
                let mut data = Vec::new();
                contents.read_to_end(&mut data).unwrap();
                read.push((e.clone(), data));
                Ok::<_, ArchiveError>(())
            })
            .unwrap();
        let got: Vec<Entry> = read.iter().map(|(e, _)| e.clone()).collect();
        assert_eq!(got, entries);
        assert_eq!(read[2].1, b"hello");
        assert_eq!(summary.entries, 5);
        assert_eq!(summary.link_targets.len(), 1);
        assert_eq!(summary.references, summary.link_targets);
    }

    #[test]
    fn writer_refuses_unsorted_entries() {
        let mut w = ArchiveWriter::new(Vec::new());
        let t = FileTime::zero();
        w.append(&entry("target/b", t, EntryKind::Dir { mode: 0o755 }), None)
            .unwrap();
        let err = w
            .append(&entry("target/a", t, EntryKind::Dir { mode: 0o755 }), None)
            .unwrap_err();
        assert!(err.to_string().contains("must be sorted"), "{err}");
    }
}
