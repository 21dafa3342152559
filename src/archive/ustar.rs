//! A minimal reader of tar members: ustar headers plus the pax records our writer emits.
//!
//! Hand-rolled because it is unpack's hot path (every entry is read twice, once to validate and
//! once to create): tar-rs zeroes a 32 KiB buffer for every header it skips to and parses pax
//! records several times per member, which made unpack measurably slower than GNU tar. Our
//! archives use a small, fixed subset of the format, so the reader is small too; everything it
//! does not understand is reported, never guessed at. crane's archives, written by GNU tar with
//! all its extensions, still go through tar-rs (see `crane`).

use std::io::{self, BufRead, Read};

const BLOCK: usize = 512;

/// One member's header, with pax records applied.
#[derive(Debug)]
pub struct Header {
    /// The typeflag byte (`0`, `5`, `2`, ...).
    pub kind: u8,
    pub path: Vec<u8>,
    /// The link target, for symlinks and hard links.
    pub link: Vec<u8>,
    pub mode: u32,
    pub size: u64,
    /// Whole seconds from the header, or the pax `mtime` record verbatim.
    pub mtime: Mtime,
}

#[derive(Debug)]
pub enum Mtime {
    Seconds(i64),
    Pax(String),
}

/// Reads members one after the other; after [`Members::next`], the member's contents are
/// read through [`Members::contents`] (whatever is left unread is skipped by the next call).
///
/// Buffered input lets contents and skipped data pass without copying: from an in-memory
/// stream, a member's contents come out as one slice.
pub struct Members<R> {
    inner: R,
    /// Bytes of the current member's contents (plus padding) not yet consumed.
    pending: u64,
    /// Contents of the current member still readable through `contents`.
    remaining: u64,
    /// The last pax header's records, kept to reuse the allocation.
    pax: Vec<u8>,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl<R: BufRead> Members<R> {
    pub fn new(inner: R) -> Self {
        Members {
            inner,
            pending: 0,
            remaining: 0,
            pax: Vec::new(),
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next member, or `None` after the end-of-archive marker (two zero blocks), once the
    /// rest of the input has been read and found to be zeros (GNU tar pads to its record size).
    /// Input that ends without the marker is an error: a tar cut at a member boundary reads
    /// like a complete one up to there.
    pub fn next(&mut self) -> io::Result<Option<Header>> {
        self.skip_pending()?;
        let mut pax_path = None;
        let mut pax_link = None;
        let mut pax_mtime = None;
        loop {
            let mut block = [0u8; BLOCK];
            if !self.read_block(&mut block)? {
                return Err(bad(NO_END_MARKER));
            }
            if block.iter().all(|&b| b == 0) {
                if pax_path.is_some() || pax_link.is_some() || pax_mtime.is_some() {
                    return Err(bad("a pax header without a member after it"));
                }
                check_end(&mut self.inner, BLOCK as u64)?;
                return Ok(None);
            }
            verify_checksum(&block)?;
            let kind = block[156];
            let size = octal(&block[124..136]).ok_or_else(|| bad("malformed size field"))?;
            if kind == b'x' {
                self.read_pax(size)?;
                for (key, value) in pax_records(&self.pax)? {
                    match key {
                        b"path" => pax_path = Some(value.to_vec()),
                        b"linkpath" => pax_link = Some(value.to_vec()),
                        b"mtime" => pax_mtime = Some(String::from_utf8_lossy(value).into_owned()),
                        _ => {}
                    }
                }
                continue;
            }
            let path = pax_path.take().unwrap_or_else(|| header_path(&block));
            let link = pax_link
                .take()
                .unwrap_or_else(|| until_nul(&block[157..257]).to_vec());
            let mode = octal(&block[100..108]).ok_or_else(|| bad("malformed mode field"))? as u32;
            let mtime = match pax_mtime.take() {
                Some(m) => Mtime::Pax(m),
                None => Mtime::Seconds(
                    octal(&block[136..148]).ok_or_else(|| bad("malformed mtime field"))? as i64,
                ),
            };
            // Only regular files carry contents in our format; any other size is data to skip.
            self.pending = padded(size);
            self.remaining = if matches!(kind, b'0' | 0 | b'7') {
                size
            } else {
                0
            };
            return Ok(Some(Header {
                kind,
                path,
                link,
                mode,
                size,
                mtime,
            }));
        }
    }

    /// A reader of the current member's contents.
    pub fn contents(&mut self) -> impl BufRead + '_ {
        Contents { members: self }
    }

    /// Reads one block; false at a clean end of input.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(bad("unexpected end of archive inside a header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads a pax header's `size` bytes of records (and their padding) into `self.pax`.
    fn read_pax(&mut self, size: u64) -> io::Result<()> {
        const MAX_PAX: u64 = 1 << 20;
        if size > MAX_PAX {
            return Err(bad(format!("a pax header of {size} bytes")));
        }
        self.pax.clear();
        self.pax.resize(padded(size) as usize, 0);
        self.inner.read_exact(&mut self.pax).map_err(truncated)?;
        self.pax.truncate(size as usize);
        Ok(())
    }

    fn skip_pending(&mut self) -> io::Result<()> {
        while self.pending > 0 {
            let available = self.inner.fill_buf()?.len();
            if available == 0 {
                return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
            }
            let n = self.pending.min(available as u64);
            self.inner.consume(n as usize);
            self.pending -= n;
        }
        self.remaining = 0;
        Ok(())
    }
}

struct Contents<'a, R> {
    members: &'a mut Members<R>,
}

impl<R: BufRead> Read for Contents<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Contents<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let remaining = self.members.remaining;
        if remaining == 0 {
            return Ok(&[]);
        }
        let available = self.members.inner.fill_buf()?;
        if available.is_empty() {
            return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
        }
        let n = available
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        Ok(&available[..n])
    }

    fn consume(&mut self, n: usize) {
        let m = &mut *self.members;
        m.inner.consume(n);
        m.remaining -= n as u64;
        m.pending -= n as u64;
    }
}

const NO_END_MARKER: &str = "the archive ends without its end-of-archive marker";

/// Reads `rest`, what follows the first zero block of an end-of-archive marker (or, from a reader
/// that does not tell, the marker's first block too), to its end: it must hold `zeros` more zero
/// bytes to complete the marker, and nothing but zeros.
pub(crate) fn check_end(rest: &mut impl Read, zeros: u64) -> io::Result<()> {
    let mut buf = [0u8; 8192];
    let mut seen = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(bad("data after the end-of-archive marker"));
        }
        seen += n as u64;
    }
    if seen < zeros {
        return Err(bad(NO_END_MARKER));
    }
    Ok(())
}

fn truncated(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        bad("unexpected end of archive inside a member")
    } else {
        e
    }
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// `prefix/name` for ustar headers (magic `ustar\0`), the name field alone otherwise (GNU's
/// `ustar  ` headers use the prefix area for other things).
fn header_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(&block[0..100]);
    let prefix = until_nul(&block[345..500]);
    if &block[257..263] == b"ustar\0" && !prefix.is_empty() {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        path
    } else {
        name.to_vec()
    }
}

/// An octal numeric field: optional spaces, digits, then NUL or space; an empty field is 0.
fn octal(field: &[u8]) -> Option<u64> {
    let field = until_nul(field);
    let digits = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != b' ');
    let mut value: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

fn verify_checksum(block: &[u8; BLOCK]) -> io::Result<()> {
    let stored = octal(&block[148..156]).ok_or_else(|| bad("malformed header checksum"))?;
    // The checksum counts its own field as spaces. Summing every byte and then correcting for
    // that field lets the compiler vectorize the loop (this runs twice per entry and pass).
    // u32 cannot overflow (512 * 255) and vectorizes better than u64.
    let all: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
    let sum = u64::from(all - field + 8 * u32::from(b' '));
    if sum != stored {
        return Err(bad("header checksum mismatch"));
    }
    Ok(())
}

/// Splits pax records `"<len> <key>=<value>\n"`.
fn pax_records(mut data: &[u8]) -> io::Result<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("malformed pax record"))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&len| len > space + 1 && len <= data.len())
            .ok_or_else(|| bad("malformed pax record length"))?;
        let record = &data[space + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("pax record without newline"))?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("pax record without `=`"))?;
        out.push((&record[..eq], &record[eq + 1..]));
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_tar_rs_writes_including_pax_and_contents() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("a/b.txt").unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(5);
        h.set_mode(0o640);
        h.set_mtime(42);
        h.set_cksum();
        b.append(&h, &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "a/link", "/some/target").unwrap();
        let bytes = b.into_inner().unwrap();

        let mut m = Members::new(&bytes[..]);
        let first = m.next().unwrap().unwrap();
        assert_eq!(
            (first.kind, first.path.as_slice(), first.mode, first.size),
            (b'0', &b"a/b.txt"[..], 0o640, 5)
        );
        assert!(matches!(first.mtime, Mtime::Seconds(42)));
        let mut data = Vec::new();
        m.contents().read_to_end(&mut data).unwrap();
        assert_eq!(data, b"hello");
        let second = m.next().unwrap().unwrap();
        assert_eq!(
            (second.kind, second.link.as_slice()),
            (b'2', &b"/some/target"[..])
        );
        assert!(m.next().unwrap().is_none());
    }

    #[test]
    fn skips_unread_contents_and_rejects_damage() {
        let mut b = tar::Builder::new(Vec::new());
        for name in ["x", "y"] {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_size(600);
            h.set_cksum();
            b.append(&h, &[7u8; 600][..]).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let mut m = Members::new(&bytes[..]);
        assert_eq!(m.next().unwrap().unwrap().path, b"x");
        assert_eq!(
            m.next().unwrap().unwrap().path,
            b"y",
            "unread contents are skipped"
        );

        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        let err = Members::new(&damaged[..]).next().unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let cut = &bytes[..512 + 100];
        let mut m = Members::new(cut);
        m.next().unwrap();
        assert!(m.next().is_err(), "a member cut short is an error");
    }

    #[test]
    fn requires_the_end_marker_and_only_zeros_after_it() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("x").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let ends = |stream: &[u8]| {
            let mut m = Members::new(stream);
            m.next()?;
            m.next().map(|end| assert!(end.is_none()))
        };
        ends(&bytes).unwrap();
        let mut padded = bytes.clone();
        padded.resize(10240, 0);
        ends(&padded).unwrap();
        for (cut, needle) in [(512, NO_END_MARKER), (1024, NO_END_MARKER)] {
            let err = ends(&bytes[..bytes.len() - cut]).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        let mut trailing = padded;
        trailing[5000] = 1;
        let err = ends(&trailing).unwrap_err();
        assert!(err
            .to_string()
            .contains("data after the end-of-archive marker"));
    }

    #[test]
    fn parses_octal_and_pax_fields() {
        assert_eq!(octal(b"0000644\0"), Some(0o644));
        assert_eq!(octal(b"   17 \0"), Some(0o17));
        assert_eq!(octal(b"\0\0\0"), Some(0));
        assert_eq!(octal(b"0009\0"), None);
        assert_eq!(
            pax_records(b"12 a=bcdefg\n").unwrap(),
            [(&b"a"[..], &b"bcdefg"[..])]
        );
        assert!(pax_records(b"99 a=b\n").is_err());
    }
}
