//! The archive stream of a pack, written on a thread of its own.
//!
//! Packing a target dir is two kinds of work of about the same size: the walk's system calls
//! (a `stat` per entry, `open` and `read` per inline file, `readlink` per link) and the stream's
//! user-space work (tar headers, the reference scan, zstd). The walk hands the entries to this
//! thread through a bounded channel, so on two CPUs the two overlap; an inline file goes as its
//! path, and this thread opens and reads it, which balances the system calls between the two.
//! Entries go in batches ([`BATCH_ENTRIES`], at most [`QUEUE`] waiting): one message per entry
//! cost two futex calls on each side, as much as the overlap saved. Nothing but paths waits, and
//! one file is open here at a time.

use crate::archive::{ArchiveWriter, Compression, Encoder, Entry, EntryKind};
use crate::fsutil::FsError;
use crate::store::{RefScanner, Scanned, StoreDir, StorePath};
use filetime::FileTime;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Batches that may wait for the stream thread.
const QUEUE: usize = 4;
/// Entries in a batch.
const BATCH_ENTRIES: usize = 128;

/// An entry's contents, as the walk sends them.
pub(super) enum Contents {
    None,
    /// A file, opened and read here: `size` bytes (the entry's).
    File(PathBuf),
    /// Contents the walk made (the entry's size is their length).
    Bytes(Vec<u8>),
}

/// What the stream thread made.
pub(super) struct Finished {
    /// Every store path the stream names.
    pub references: BTreeSet<StorePath>,
    /// Length of the uncompressed stream.
    pub stream_bytes: u64,
}

/// The stream thread; dropping it without [`ArchiveStream::finish`] abandons the stream.
pub(super) struct ArchiveStream {
    queue: SyncSender<Vec<(Entry, Contents)>>,
    batch: Vec<(Entry, Contents)>,
    thread: JoinHandle<Result<Finished, StreamError>>,
}

/// Why the stream thread failed.
#[derive(Debug)]
pub(super) enum StreamError {
    /// An inline file could not be opened.
    Read(FsError),
    /// An inline file was not what the walk saw when it was read: another length or mtime.
    Changed(FileChanged),
    /// The archive could not be written (or a file read into it).
    Write(io::Error),
}

/// An inline file that changed between the walk's `stat` and the end of its reading.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{path}` changed while pack read it ({listed} bytes when listed, {read} read, {now} now{mtime}): \
     something is writing into the target dir; pack once the build is done"
)]
pub struct FileChanged {
    pub path: PathBuf,
    pub listed: u64,
    pub read: u64,
    pub now: u64,
    /// `, modified since` when the mtime changed.
    mtime: &'static str,
}

/// The walk stopped sending because the stream thread failed: [`ArchiveStream::finish`] says why.
#[derive(Debug)]
pub(super) struct StreamStopped;

impl ArchiveStream {
    /// Starts writing an archive into `file`.
    pub(super) fn start(
        file: File,
        compression: Compression,
        zstd_level: i32,
        zstd_threads: u32,
        store: &StoreDir,
        fixed_mtime: Option<FileTime>,
    ) -> io::Result<Self> {
        let file = io::BufWriter::with_capacity(1 << 16, file);
        let encoder = Encoder::new(file, compression, zstd_level, zstd_threads)?;
        let scanning = Scanned::new(encoder, Some(RefScanner::distinct(store)));
        let (queue, batches) = sync_channel::<Vec<(Entry, Contents)>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("pack-stream".into())
            .spawn(move || {
                let write = StreamError::Write;
                let mut writer = ArchiveWriter::new(scanning);
                if let Some(mtime) = fixed_mtime {
                    writer = writer.fixed_mtime(mtime);
                }
                for (entry, contents) in batches.into_iter().flatten() {
                    let size = match entry.kind {
                        EntryKind::File { size, .. } => size,
                        _ => 0,
                    };
                    match contents {
                        Contents::None => writer.append(&entry, None).map_err(write)?,
                        Contents::File(path) => append_file(&mut writer, &entry, size, path)?,
                        Contents::Bytes(bytes) => writer
                            .append(&entry, Some(&mut bytes.as_slice()))
                            .map_err(write)?,
                    }
                }
                let Scanned {
                    inner,
                    scanner,
                    bytes,
                } = writer.finish().map_err(write)?;
                inner.finish().map_err(write)?;
                let scanner = scanner.expect("made with a scanner");
                Ok(Finished {
                    references: scanner.finish().into_iter().map(|r| r.path).collect(),
                    stream_bytes: bytes,
                })
            })?;
        Ok(ArchiveStream {
            queue,
            batch: Vec::with_capacity(BATCH_ENTRIES),
            thread,
        })
    }

    /// Queues an entry, in archive order.
    pub(super) fn append(&mut self, entry: Entry, contents: Contents) -> Result<(), StreamStopped> {
        self.batch.push((entry, contents));
        if self.batch.len() >= BATCH_ENTRIES {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<(), StreamStopped> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_ENTRIES));
        self.queue.send(batch).map_err(|_| StreamStopped)
    }

    /// Ends the stream: the end-of-archive marker, the zstd frame's end, everything flushed.
    pub(super) fn finish(mut self) -> Result<Finished, StreamError> {
        // A send that fails means the thread failed: its result says why.
        let _ = self.send_batch();
        drop(self.queue);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Appends an inline file, read from `path`, and checks that it is what the walk listed: `size`
/// bytes (the entry's header says so) and the entry's mtime, still after the last byte was read.
fn append_file<W: Write>(
    writer: &mut ArchiveWriter<W>,
    entry: &Entry,
    size: u64,
    path: PathBuf,
) -> Result<(), StreamError> {
    let mut file =
        File::open(&path).map_err(|e| StreamError::Read(FsError::new("open", &path, e)))?;
    let mut read = 0;
    let appended = writer.append(
        entry,
        Some(&mut Tally {
            inner: (&mut file).take(size),
            read: &mut read,
        }),
    );
    let meta = file
        .metadata()
        .map_err(|e| StreamError::Read(FsError::new("stat", &path, e)))?;
    let mtime = FileTime::from_last_modification_time(&meta);
    // The writer stops at a write error too (the file then reads as it was listed).
    let ended_early = read != size
        && appended
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::UnexpectedEof);
    if ended_early || meta.len() != size || mtime != entry.mtime {
        return Err(StreamError::Changed(FileChanged {
            path,
            listed: size,
            read,
            now: meta.len(),
            mtime: if mtime != entry.mtime {
                ", modified since"
            } else {
                ""
            },
        }));
    }
    appended.map_err(StreamError::Write)
}

/// Counts what is read through it.
struct Tally<'a, R> {
    inner: R,
    read: &'a mut u64,
}

impl<R: Read> Read for Tally<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.read += n as u64;
        Ok(n)
    }
}
