//! A stream read on another thread, a few chunks ahead of its consumer.
//!
//! A streamed pass over a big archive does two things per byte: zstd decompresses it, and the
//! pass parses, scans and checks it (pass one) or writes it out (pass two). On one thread they
//! add up; with [`ReadAhead`] decompression runs beside the writes of pass two, a bounded
//! number of chunks ahead, so memory stays constant. The bytes, their order and the errors the
//! consumer sees are the source's: an error arrives after every byte read before it, and then
//! again at every read.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::Scope;

/// Bytes per chunk: big enough that handing chunks over costs little next to decompressing
/// them (64 KiB chunks made an unpack of a 70 MB stream 10-20 % slower; 1 MiB ones were no
/// faster than these and cost 3 MiB more RSS); their buffers are reused, so they are allocated
/// and zeroed once.
const CHUNK: usize = 256 << 10;
/// Chunks read ahead at most: what the consumer may lag behind before the reader waits.
const CHUNKS_AHEAD: usize = 2;

/// The consumer's end: reads the chunks the reader thread sends, in order.
pub(crate) struct ReadAhead {
    chunks: Receiver<Chunk>,
    /// Consumed chunks go back to the reader thread to be filled again.
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// The source's error, once it came: every later read fails with it.
    failed: Option<(io::ErrorKind, String)>,
}

enum Chunk {
    Bytes(Vec<u8>),
    Failed(io::Error),
}

impl ReadAhead {
    /// Reads `source` on a thread of `scope`, which ends when the source does or when the
    /// returned reader is dropped.
    pub(crate) fn spawn<'scope, R: Read + Send + 'scope>(
        scope: &'scope Scope<'scope, '_>,
        mut source: R,
    ) -> ReadAhead {
        let (send, chunks) = sync_channel(CHUNKS_AHEAD);
        let (spare, spares) = sync_channel::<Vec<u8>>(CHUNKS_AHEAD + 2);
        scope.spawn(move || loop {
            let mut buf = spares.try_recv().unwrap_or_default();
            // A reused buffer is full length already: only a new one is zeroed.
            buf.resize(CHUNK, 0);
            let (filled, failure) = fill(&mut source, &mut buf);
            buf.truncate(filled);
            if filled > 0 && send.send(Chunk::Bytes(buf)).is_err() {
                return; // The consumer is gone.
            }
            match failure {
                Some(e) => {
                    let _ = send.send(Chunk::Failed(e));
                    return;
                }
                None if filled < CHUNK => return, // The end: dropping `send` says so.
                None => {}
            }
        });
        ReadAhead {
            chunks,
            spare,
            current: Vec::new(),
            pos: 0,
            failed: None,
        }
    }
}

/// Reads from `source` until `buf` is full, the source ends or fails: the bytes read, and the
/// failure if there was one.
fn fill(source: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if let Some((kind, message)) = &self.failed {
                return Err(io::Error::new(*kind, message.clone()));
            }
            // A full channel of spares only means the reader has enough: drop this one.
            let _ = self.spare.try_send(std::mem::take(&mut self.current));
            self.pos = 0;
            match self.chunks.recv() {
                Ok(Chunk::Bytes(chunk)) => self.current = chunk,
                Ok(Chunk::Failed(e)) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                Err(_) => return Ok(0), // The reader thread ended without a failure.
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of `len` bytes, handed out in reads of at most `step`, that fails after them
    /// if `fail` is set.
    struct Source {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
        fail: bool,
    }

    impl Source {
        fn new(len: usize, step: usize, fail: bool) -> Self {
            let bytes = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            Source {
                bytes,
                at: 0,
                step,
                fail,
            }
        }
    }

    impl Read for Source {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.bytes.len() && self.fail {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "checksum"));
            }
            let n = out.len().min(self.step).min(self.bytes.len() - self.at);
            out[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn hands_on_every_byte_in_order() {
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            5 * CHUNK + 17,
            40 * CHUNK,
        ] {
            let want = Source::new(len, 1000, false).bytes;
            let got = std::thread::scope(|s| {
                let mut got = Vec::new();
                ReadAhead::spawn(s, Source::new(len, 1000, false))
                    .read_to_end(&mut got)
                    .unwrap();
                got
            });
            assert!(got == want, "{len} bytes");
        }
    }

    #[test]
    fn a_failure_comes_after_the_bytes_before_it_and_stays() {
        let len = 3 * CHUNK + 5;
        std::thread::scope(|s| {
            let mut ahead = ReadAhead::spawn(s, Source::new(len, 4096, true));
            let mut got = Vec::new();
            let e = ahead.read_to_end(&mut got).unwrap_err();
            assert_eq!(
                (e.kind(), e.to_string()),
                (io::ErrorKind::InvalidData, "checksum".into())
            );
            assert_eq!(got, Source::new(len, 1, false).bytes);
            let again = ahead.read(&mut [0; 8]).unwrap_err();
            assert_eq!(again.to_string(), "checksum");
        });
    }

    #[test]
    fn a_consumer_that_stops_early_ends_the_reader() {
        // The scope returns only once the reader thread has ended.
        std::thread::scope(|s| {
            let mut ahead = ReadAhead::spawn(s, Source::new(100 * CHUNK, 1 << 20, false));
            let mut first = [0; 10];
            ahead.read_exact(&mut first).unwrap();
            drop(ahead);
        });
    }
}
