//! zstd decoding that accounts for every byte: each frame must carry a content checksum, nothing
//! but such frames may be in the file, and the file may not end inside one.
//!
//! libzstd verifies a frame's checksum only if the frame has one, and only when it is read to its
//! end. A tar reader stops at the end-of-archive marker, before that end, and a decoder that reads
//! concatenated frames also skips "skippable" frames and accepts frames without a checksum. So
//! whoever reads an archive here reads every frame to its end through [`CheckedZstd`] (or checks
//! an in-memory copy with [`check_frames`] before decompressing it), and a flipped byte, a cut
//! checksum, a frame written with `--no-check` or bytes after the last frame are refused.

use std::io::{self, Read};
use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer};

/// The magic number every zstd frame starts with (RFC 8878), little-endian.
pub const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Magic number and frame header descriptor: what decides whether a frame is acceptable.
const HEADER_START: usize = 5;
/// `Content_Checksum_flag` in the frame header descriptor.
const CHECKSUM_FLAG: u8 = 0x04;
const BUFFER: usize = 1 << 16;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Whether `header` (the start of what should be a frame) starts an acceptable one.
fn check_header(header: &[u8]) -> io::Result<()> {
    if header.len() < MAGIC.len() || header[..MAGIC.len()] != MAGIC {
        let what = if header.len() < MAGIC.len() && MAGIC.starts_with(header) {
            "the file ends inside a zstd frame"
        } else {
            "what follows the last zstd frame is not a zstd frame"
        };
        return Err(bad(what));
    }
    match header.get(MAGIC.len()) {
        None => Err(bad("the file ends inside a zstd frame")),
        Some(descriptor) if descriptor & CHECKSUM_FLAG == 0 => Err(bad(
            "a zstd frame without a content checksum (written with `--no-check`?), so its \
             contents cannot be verified",
        )),
        Some(_) => Ok(()),
    }
}

fn zstd_error(code: zstd_safe::ErrorCode) -> io::Error {
    bad(zstd_safe::get_error_name(code))
}

/// Checks a whole compressed file held in memory: acceptable frames and nothing else. The
/// checksums themselves are verified by decompressing it.
pub fn check_frames(mut data: &[u8]) -> io::Result<()> {
    loop {
        check_header(data)?;
        let len = zstd_safe::find_frame_compressed_size(data)
            .map_err(|_| bad("the file ends inside a zstd frame, or a frame is damaged"))?;
        data = &data[len..];
        if data.is_empty() {
            return Ok(());
        }
    }
}

/// Decompresses one or more zstd frames from `input`, refusing what [`check_frames`] refuses and
/// verifying every frame's checksum; reading it to its end (`Ok(0)`) has checked everything.
pub struct CheckedZstd<R> {
    input: R,
    buf: Box<[u8]>,
    /// The unconsumed input is `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    dctx: DCtx<'static>,
    in_frame: bool,
}

impl<R: Read> CheckedZstd<R> {
    pub fn new(input: R) -> io::Result<Self> {
        let dctx = DCtx::try_create().ok_or_else(|| io::Error::other("out of memory for zstd"))?;
        Ok(CheckedZstd {
            input,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            dctx,
            in_frame: false,
        })
    }

    /// Reads until at least `want` unconsumed bytes are buffered, or the input ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.end - self.start >= want || self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < want && !self.eof {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for CheckedZstd<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                self.fill(HEADER_START)?;
                if self.start == self.end {
                    return Ok(0);
                }
                check_header(&self.buf[self.start..self.end])?;
                self.in_frame = true;
            }
            if self.start == self.end {
                self.fill(1)?;
                if self.start == self.end {
                    return Err(bad("the file ends inside a zstd frame"));
                }
            }
            let mut input = InBuffer::around(&self.buf[self.start..self.end]);
            let mut output = OutBuffer::around(&mut *out);
            // 0: the frame is decoded, its checksum verified, and everything flushed.
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut input)
                .map_err(zstd_error)?;
            self.start += input.pos();
            let n = output.pos();
            if hint == 0 {
                self.in_frame = false;
            }
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn frame(data: &[u8], checksum: bool) -> Vec<u8> {
        let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(checksum).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Reads through `CheckedZstd` one byte at a time (frame boundaries and refills land
    /// everywhere) and with a big buffer; both must agree.
    fn decode(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut big = Vec::new();
        let big_result = CheckedZstd::new(bytes)?.read_to_end(&mut big).map(|_| big);
        let mut small = Vec::new();
        let mut reader = CheckedZstd::new(io::BufReader::with_capacity(1, bytes))?;
        let mut byte = [0u8; 1];
        let small_result = loop {
            match reader.read(&mut byte) {
                Ok(0) => break Ok(small),
                Ok(_) => small.push(byte[0]),
                Err(e) => break Err(e),
            }
        };
        match (&big_result, &small_result) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("{big_result:?} vs {small_result:?}"),
        }
        // The in-memory check refuses no less (checksums are left to decompression).
        if check_frames(bytes).is_err() && !bytes.is_empty() {
            assert!(big_result.is_err(), "check_frames refused what decodes");
        }
        big_result
    }

    #[test]
    fn reads_checksummed_frames_one_after_the_other() {
        let mut two = frame(b"hello ", true);
        two.extend(frame(&[b'w'; 100_000], true));
        let mut want = b"hello ".to_vec();
        want.extend([b'w'; 100_000]);
        assert_eq!(decode(&two).unwrap(), want);
    }

    #[test]
    fn refuses_what_cannot_be_verified() {
        let good = frame(&[7u8; 5000], true);
        let mut flipped = frame(b"some text that zstd stores as literals", true);
        let at = flipped.len() - 10;
        flipped[at] ^= 1;
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        let mut second_unchecked = good.clone();
        second_unchecked.extend(frame(b"x", false));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (frame(b"x", false), "without a content checksum"),
            (good[..good.len() - 1].to_vec(), "ends inside a zstd frame"),
            (good[..3].to_vec(), "ends inside a zstd frame"),
            (trailing, "is not a zstd frame"),
            (second_unchecked, "without a content checksum"),
            (flipped, "checksum"),
            (b"plain".to_vec(), "is not a zstd frame"),
        ];
        for (bytes, needle) in cases {
            let err = decode(&bytes).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
}
