//! Deterministic writer for the archive format.

use super::{Entry, EntryKind, RelPath};
use filetime::FileTime;
use std::io::{self, Read, Write};

/// Writes entries as a pax tar stream. Callers add entries in `RelPath` order; the writer
/// refuses anything else so that a bug in a walker cannot produce an archive the reader rejects.
pub struct ArchiveWriter<W: Write> {
    builder: tar::Builder<W>,
    last: Option<RelPath>,
    /// The mtime every directory and file gets instead of its own (see [`Self::fixed_mtime`]).
    fixed_mtime: Option<FileTime>,
}

/// ustar's name and linkname fields hold 100 bytes; longer values go into pax records.
const USTAR_FIELD_LEN: usize = 100;

impl<W: Write> ArchiveWriter<W> {
    pub fn new(out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        ArchiveWriter {
            builder,
            last: None,
            fixed_mtime: None,
        }
    }

    /// Records `mtime` for every directory and file, whatever their own: an archive that depends
    /// on the tree's contents only (symlinks have a fixed mtime anyway).
    pub fn fixed_mtime(mut self, mtime: FileTime) -> Self {
        self.fixed_mtime = Some(mtime);
        self
    }

    /// Appends one entry; `contents` must yield exactly `size` bytes for a `File`: fewer are an
    /// error (`UnexpectedEof`), and what was written of the member is then no valid archive.
    pub fn append(&mut self, entry: &Entry, contents: Option<&mut dyn Read>) -> io::Result<()> {
        if let Some(last) = &self.last {
            if entry.path <= *last {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "archive entry `{}` added after `{last}`: entries must be sorted",
                        entry.path
                    ),
                ));
            }
        }
        let mut header = tar::Header::new_ustar();
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let path_bytes = entry.path.as_path().as_os_str().as_encoded_bytes();
        let (mode, size, entry_type) = match &entry.kind {
            EntryKind::Dir { mode } => (*mode, 0, tar::EntryType::Directory),
            EntryKind::Symlink { target } => {
                let target = target.as_os_str().as_encoded_bytes();
                if target.len() > USTAR_FIELD_LEN {
                    pax.push(("linkpath", target.to_vec()));
                } else {
                    header.set_link_name_literal(target)?;
                }
                (0o777, 0, tar::EntryType::Symlink)
            }
            EntryKind::File { mode, size } => (*mode, *size, tar::EntryType::Regular),
            EntryKind::HardLink { target } => {
                let target = target.bytes();
                if target.len() > USTAR_FIELD_LEN {
                    pax.push(("linkpath", target.to_vec()));
                } else {
                    header.set_link_name_literal(target)?;
                }
                (0o644, 0, tar::EntryType::Link)
            }
        };
        if path_bytes.len() > USTAR_FIELD_LEN {
            pax.push(("path", path_bytes.to_vec()));
            set_truncated_name(&mut header, path_bytes);
        } else {
            header.as_old_mut().name[..path_bytes.len()].copy_from_slice(path_bytes);
        }
        let mtime = match (&entry.kind, self.fixed_mtime) {
            (EntryKind::Symlink { .. } | EntryKind::HardLink { .. }, _) | (_, None) => entry.mtime,
            (_, Some(fixed)) => fixed,
        };
        let (secs, nanos) = (mtime.unix_seconds(), mtime.nanoseconds());
        if nanos != 0 {
            pax.push(("mtime", format!("{secs}.{nanos:09}").into_bytes()));
        }
        header.set_mtime(secs.max(0) as u64);
        header.set_mode(mode & 0o7777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(size);
        header.set_entry_type(entry_type);
        header.set_cksum();
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut pax_header = tar::Header::new_ustar();
            pax_header.as_old_mut().name[..PAX_HEADER_NAME.len()].copy_from_slice(PAX_HEADER_NAME);
            pax_header.set_mode(0o644);
            pax_header.set_size(records.len() as u64);
            pax_header.set_entry_type(tar::EntryType::XHeader);
            pax_header.set_cksum();
            self.builder.append(&pax_header, records.as_slice())?;
        }
        let mut counted = Counted {
            inner: contents.map(|data| data.take(size)),
            read: 0,
        };
        self.builder.append(&header, &mut counted)?;
        if counted.read != size {
            // tar-rs pads what it got: the member would be cut short, and every later header
            // read from inside its data.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "archive entry `{}` promised {size} bytes and got {}",
                    entry.path, counted.read
                ),
            ));
        }
        self.last = Some(entry.path.clone());
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// An entry's contents (none: empty), counting what was read.
struct Counted<R> {
    inner: Option<R>,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Some(r) => r.read(buf)?,
            None => 0,
        };
        self.read += n as u64;
        Ok(n)
    }
}

/// The name of every pax extended header; readers ignore it, so a constant keeps output stable.
const PAX_HEADER_NAME: &[u8] = b"PaxHeader";

/// Encodes pax records: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record,
/// its own digits included.
fn pax_records(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in pairs {
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Fills the ustar name field with a prefix of a long path; readers use the pax `path` record.
fn set_truncated_name(header: &mut tar::Header, path: &[u8]) {
    header
        .as_old_mut()
        .name
        .copy_from_slice(&path[..USTAR_FIELD_LEN]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        // 9 bytes of "a=bcdefg\n", the space, and the 2 digits of "12" itself.
        assert_eq!(pax_records(&[("a", b"bcdefg".to_vec())]), b"12 a=bcdefg\n");
        // 98 bytes without the length: 2 digits would make 100, which needs 3, so 101.
        let rec = pax_records(&[("k", vec![b'x'; 94])]);
        assert_eq!(rec.len(), 101);
        assert!(rec.starts_with(b"101 k="));
    }

    /// A file whose contents end before its header's size (it shrank while read) is an error,
    /// never a member cut short.
    #[test]
    fn contents_shorter_than_the_header_are_refused() {
        let entry = |size| Entry {
            path: RelPath::new("target/x").unwrap(),
            mtime: filetime::FileTime::from_unix_time(1, 0),
            kind: super::super::EntryKind::File { mode: 0o644, size },
        };
        let mut w = ArchiveWriter::new(Vec::new());
        let err = w.append(&entry(10), Some(&mut &b"short"[..])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            err.to_string(),
            "archive entry `target/x` promised 10 bytes and got 5"
        );
        // The control: as many bytes as promised (more are not read).
        let mut w = ArchiveWriter::new(Vec::new());
        w.append(&entry(5), Some(&mut &b"short and more"[..]))
            .unwrap();
        assert_eq!(w.finish().unwrap().len(), 512 * 4);
    }

    /// With a fixed mtime, two trees that differ only in their mtimes (nanoseconds included)
    /// write the same bytes; links keep theirs. The control: without it they differ.
    #[test]
    fn a_fixed_mtime_replaces_every_dir_and_file_mtime() {
        let tree = |secs: i64, nanos: u32| {
            let at = FileTime::from_unix_time(secs, nanos);
            vec![
                Entry {
                    path: RelPath::new("target").unwrap(),
                    mtime: at,
                    kind: EntryKind::Dir { mode: 0o755 },
                },
                Entry {
                    path: RelPath::new("target/f").unwrap(),
                    mtime: at,
                    kind: EntryKind::File {
                        mode: 0o644,
                        size: 2,
                    },
                },
                Entry {
                    path: RelPath::new("target/l").unwrap(),
                    mtime: crate::archive::SYMLINK_MTIME,
                    kind: EntryKind::Symlink {
                        target: "/s/x".into(),
                    },
                },
            ]
        };
        let write = |entries: Vec<Entry>, fixed: Option<FileTime>| {
            let mut w = ArchiveWriter::new(Vec::new());
            if let Some(fixed) = fixed {
                w = w.fixed_mtime(fixed);
            }
            for e in &entries {
                let data: &[u8] = b"hi";
                let contents: Option<&mut dyn Read> = match e.kind {
                    EntryKind::File { .. } => Some(&mut &data[..]),
                    _ => None,
                };
                w.append(e, contents).unwrap();
            }
            w.finish().unwrap()
        };
        let one = FileTime::from_unix_time(1, 0);
        let a = write(tree(1_700_000_000, 123), Some(one));
        assert_eq!(a, write(tree(1_800_000_000, 0), Some(one)));
        assert_ne!(
            write(tree(1_700_000_000, 123), None),
            write(tree(1_800_000_000, 0), None)
        );
        let mut archive = tar::Archive::new(a.as_slice());
        let mtimes: Vec<u64> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().mtime().unwrap())
            .collect();
        assert_eq!(mtimes, [1, 1, 0]);
    }
}
