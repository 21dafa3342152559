//! The archive's compression, both directions: the encoder pack writes through, and the
//! decoder every reader opens, chosen by the file's magic bytes. zstd frames are written with a
//! content checksum and read back through [`CheckedZstd`](super::zstd_checked::CheckedZstd),
//! which refuses frames without one.

use super::zstd_checked::{self, CheckedZstd};
use super::Compression;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

/// Where a tar stream goes: the archive file, directly or through a zstd encoder.
pub(crate) enum Encoder<W: Write> {
    Plain(W),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// An encoder of `compression` into `out`: zstd at `level` on `threads` worker threads
    /// (0: on the calling thread).
    pub(crate) fn new(
        out: W,
        compression: Compression,
        level: i32,
        threads: u32,
    ) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::Plain(out),
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(out, level)?;
                // Without a checksum some corruption would decode into plausible garbage (and
                // readers refuse frames without one).
                encoder.include_checksum(true)?;
                if threads > 0 {
                    encoder.multithread(threads)?;
                }
                Encoder::Zstd(encoder)
            }
        })
    }

    /// Ends the zstd frame (if any) and flushes, reporting errors a drop would swallow; returns
    /// the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        let mut out = match self {
            Encoder::Plain(w) => w,
            Encoder::Zstd(encoder) => encoder.finish()?,
        };
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

/// The compression of an archive file, by its magic bytes (anything but zstd's is plain).
pub(crate) fn detect(file: &File) -> io::Result<Compression> {
    let mut magic = [0; zstd_checked::MAGIC.len()];
    let n = file.read_at(&mut magic, 0)?;
    Ok(if magic[..n] == zstd_checked::MAGIC {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// The uncompressed stream of `file`, holding `compression`; unbuffered (callers buffer it).
pub(crate) fn decoder<'a>(
    file: File,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::Zstd => Box::new(CheckedZstd::new(file)?),
        Compression::None => Box::new(file),
    })
}
