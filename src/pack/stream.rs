//! The archive stream of a pack, written on a thread of its own.
//!
//! Packing a target dir is two kinds of work of about the same size: the walk's system calls
//! (a `stat` per entry, `open` and `read` per inline file, `readlink` per link) and the stream's
//! user-space work (tar headers, the reference scan, zstd). The walk hands each entry to this
//! thread through a bounded channel, so on two CPUs the two overlap. Small inline files travel
//! as bytes; bigger ones as their open file, read here, so what waits in the channel stays
//! bounded (at most [`QUEUE`] entries of at most [`INLINE_BYTES`] each, or one descriptor each).

use crate::archive::{ArchiveWriter, Compression, Entry, EntryKind};
use crate::store::{RefScanner, StoreDir, StorePath};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Entries that may wait for the stream thread.
const QUEUE: usize = 64;
/// Inline files up to this size are read by the walk and sent as bytes.
pub(super) const INLINE_BYTES: u64 = 16 << 10;

/// An entry's contents, as the walk sends them.
pub(super) enum Contents {
    None,
    Bytes(Vec<u8>),
    /// Read here, `size` bytes (the entry's).
    File(File),
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
    queue: SyncSender<(Entry, Contents)>,
    thread: JoinHandle<io::Result<Finished>>,
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
    ) -> io::Result<Self> {
        let file = io::BufWriter::with_capacity(1 << 16, file);
        let sink = match compression {
            Compression::None => Sink::Plain(file),
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(file, zstd_level)?;
                // Without a checksum some corruption would decode into plausible garbage (and
                // readers refuse frames without one).
                encoder.include_checksum(true)?;
                if zstd_threads > 0 {
                    encoder.multithread(zstd_threads)?;
                }
                Sink::Zstd(encoder)
            }
        };
        let scanning = ScanningWriter {
            inner: sink,
            scanner: RefScanner::distinct(store),
            bytes: 0,
        };
        let (queue, entries) = sync_channel::<(Entry, Contents)>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("pack-stream".into())
            .spawn(move || {
                let mut writer = ArchiveWriter::new(scanning);
                for (entry, contents) in entries {
                    let size = match entry.kind {
                        EntryKind::File { size, .. } => size,
                        _ => 0,
                    };
                    match contents {
                        Contents::None => writer.append(&entry, None)?,
                        Contents::Bytes(bytes) => writer.append(&entry, Some(&mut &bytes[..]))?,
                        Contents::File(file) => {
                            writer.append(&entry, Some(&mut file.take(size)))?
                        }
                    }
                }
                let ScanningWriter {
                    inner,
                    scanner,
                    bytes,
                } = writer.finish()?;
                inner.finish()?;
                Ok(Finished {
                    references: scanner.finish().into_iter().map(|r| r.path).collect(),
                    stream_bytes: bytes,
                })
            })?;
        Ok(ArchiveStream { queue, thread })
    }

    /// Queues an entry, in archive order.
    pub(super) fn append(&self, entry: Entry, contents: Contents) -> Result<(), StreamStopped> {
        self.queue
            .send((entry, contents))
            .map_err(|_| StreamStopped)
    }

    /// Ends the stream: the end-of-archive marker, the zstd frame's end, everything flushed.
    pub(super) fn finish(self) -> io::Result<Finished> {
        drop(self.queue);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Where the tar stream goes: the archive file, directly or through a zstd encoder.
enum Sink<W: Write> {
    Plain(W),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Sink<W> {
    /// Ends the zstd frame (if any) and flushes, reporting errors a drop would swallow.
    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Zstd(encoder) => encoder.finish()?.flush(),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// Feeds everything written through it to a reference scanner.
struct ScanningWriter<W> {
    inner: W,
    scanner: RefScanner,
    /// Length of the uncompressed stream so far.
    bytes: u64,
}

impl<W: Write> Write for ScanningWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.scanner.feed(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
