//! `StreamBuffer`: memory for a whole uncompressed archive stream.
//!
//! unpack reads a small archive twice (validate, then create), so it decompresses it once into
//! memory. Filling fresh memory costs page faults, and on the VMs we measured a fault costs
//! more than decompressing the page it maps (~1.4 µs per 4 KiB page, docs/benchmarks.md): the
//! 4.9 MB stream of the benchmark corpus took 1200 faults, more time than a second
//! decompression. So the buffer is an anonymous mapping advised to use transparent huge pages,
//! which maps the same stream in 3 faults; where THP is off it is an ordinary mapping.

use memmap2::MmapMut;
use std::io;
use std::ops::{Deref, DerefMut};

/// A zero-filled buffer of a fixed length.
pub struct StreamBuffer {
    map: MmapMut,
    /// Where the buffer starts in `map`: the first huge-page boundary.
    start: usize,
    len: usize,
}

const HUGE_PAGE: usize = 2 << 20;

impl StreamBuffer {
    pub fn new(len: usize) -> io::Result<Self> {
        // THP only backs aligned 2 MiB ranges; one huge page of slack lets the buffer start on
        // a boundary. The slack is never touched, so it costs address space, not memory.
        let map = MmapMut::map_anon(len.next_multiple_of(HUGE_PAGE) + HUGE_PAGE)?;
        let address = map.as_ptr() as usize;
        let start = address.next_multiple_of(HUGE_PAGE) - address;
        // Best effort: without THP (or outside Linux) the mapping just uses small pages.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(StreamBuffer { map, start, len })
    }
}

impl Deref for StreamBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }
}

impl DerefMut for StreamBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_zeroed_writable_and_exactly_as_long_as_asked() {
        for len in [0, 1, 4096, HUGE_PAGE, HUGE_PAGE + 1] {
            let mut buf = StreamBuffer::new(len).unwrap();
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&b| b == 0));
            if len > 0 {
                buf[len - 1] = 7;
                assert_eq!(buf[len - 1], 7);
            }
        }
    }
}
