//! A directory's names in byte order, in memory bounded by a budget rather than by the size of
//! the directory.
//!
//! pack writes entries sorted, so it needs each directory's names in order; a target dir's
//! `deps/` can hold tens of thousands. A directory whose names fit the [`Budget`] is read once
//! and sorted. A bigger one is produced in batches: each batch is one full scan of the directory
//! that keeps only the smallest names above the last name produced, as many as fit the budget,
//! and the next batch scans again. The cost is one extra scan per batch, and only for
//! directories beyond the budget.
//!
//! The selection ([`Selection`]) is pure; [`SortedNames`] runs it over scans of a [`Scan`]
//! source, a directory read by path with `std::fs::read_dir` at each scan: a directory that fits
//! costs the same system calls as one `read_dir`, and none stays open while pack descends.
//!
//! # A directory that changes between scans
//! pack runs on a quiescent target dir, so every scan sees the same names and the output is
//! exactly a full sort. If the directory changes anyway, each batch still produces only names
//! strictly greater than every name produced before: no name is produced twice, every scan that
//! does not end the listing produces at least one name, and a name added below the last one
//! produced is missed (one removed may already have been produced).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How many names, and how many bytes of names, one batch may hold. While a scan collects, a
/// quarter more is held before the surplus is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub names: usize,
    pub(crate) bytes: usize,
}

impl Budget {
    /// At most ~200 KiB per directory on the current path (160 KiB of names and 8 bytes per
    /// name); with cargo's ~35-byte names the byte budget binds first, and `deps/` of the
    /// 100k-entry benchmark tree (28k names) takes 8 batches, each a scan of `deps/`.
    pub const DEFAULT: Budget = Budget {
        names: 4096,
        bytes: 128 << 10,
    };
}

/// Something that can be scanned from the start for its names, any number of times.
pub(crate) trait Scan {
    /// Calls `each` with every name, in any order (not `.` or `..`).
    fn scan(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<()>;
}

/// The directory at a path, opened anew for each scan.
pub(crate) struct DirAt(PathBuf);

impl Scan for DirAt {
    fn scan(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        for entry in fs::read_dir(&self.0)? {
            each(entry?.file_name().as_bytes());
        }
        Ok(())
    }
}

/// A directory's names in byte order, a batch at a time.
pub(crate) struct SortedNames<S = DirAt> {
    /// `None` once a scan has seen every remaining name.
    source: Option<S>,
    selection: Selection,
}

impl SortedNames<DirAt> {
    /// The names of the directory at `path`, read (following a symlink there) by the first
    /// [`next_batch`](Self::next_batch).
    pub(crate) fn at(path: &Path, budget: Budget) -> Self {
        Self::new(DirAt(path.to_path_buf()), budget)
    }
}

impl<S: Scan> SortedNames<S> {
    pub(crate) fn new(source: S, budget: Budget) -> Self {
        SortedNames {
            source: Some(source),
            selection: Selection::new(budget),
        }
    }

    /// The next names in byte order, each greater than all names of earlier batches; `None`
    /// when there are no more. A directory that fits the budget is scanned once.
    pub(crate) fn next_batch(&mut self) -> io::Result<Option<impl Iterator<Item = &OsStr> + '_>> {
        let Some(source) = self.source.as_mut() else {
            return Ok(None);
        };
        let selection = &mut self.selection;
        selection.begin();
        source.scan(&mut |name| selection.offer(name))?;
        if !selection.end() {
            self.source = None;
        }
        if self.selection.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.selection.names().map(OsStr::from_bytes)))
    }
}

/// One scan's worth of selection: of the names offered, the smallest ones above the last name of
/// the previous batch, as many as fit the budget, in one buffer (8 bytes of overhead per name).
struct Selection {
    budget: Budget,
    bytes: Vec<u8>,
    /// `(start, end)` of each name in `bytes`.
    spans: Vec<(u32, u32)>,
    /// The last name of the previous batch: only greater names are taken.
    after: Option<Vec<u8>>,
    /// The smallest name dropped in this scan: no name at or above it can make the batch.
    cutoff: Option<Vec<u8>>,
}

impl Selection {
    fn new(budget: Budget) -> Self {
        // Spans are u32: the buffer never exceeds the byte budget with its slack plus one name.
        assert!(
            budget.bytes <= u32::MAX as usize / 4,
            "byte budget too large"
        );
        Selection {
            budget,
            bytes: Vec::new(),
            spans: Vec::new(),
            after: None,
            cutoff: None,
        }
    }

    /// Starts a scan.
    fn begin(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.cutoff = None;
    }

    fn offer(&mut self, name: &[u8]) {
        if self.after.as_deref().is_some_and(|after| name <= after)
            || self.cutoff.as_deref().is_some_and(|cutoff| name >= cutoff)
        {
            return;
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        self.spans.push((start, self.bytes.len() as u32));
        if self.spans.len() >= with_slack(self.budget.names)
            || self.bytes.len() >= with_slack(self.budget.bytes)
        {
            self.fit();
        }
    }

    /// Ends a scan: the batch is sorted, and becomes what the next scan must exceed. Returns
    /// whether names were dropped, that is whether another scan is needed.
    fn end(&mut self) -> bool {
        self.fit();
        // `fit` leaves the spans in buffer order if it dropped names; otherwise already sorted,
        // which the sort detects in linear time.
        self.sort();
        if let Some(&(start, end)) = self.spans.last() {
            let after = self.after.get_or_insert_with(Vec::new);
            after.clear();
            after.extend_from_slice(&self.bytes[start as usize..end as usize]);
        }
        self.cutoff.is_some()
    }

    /// Keeps the smallest names that fit the budget (at least one) and records the first one
    /// dropped as the cutoff.
    fn fit(&mut self) {
        self.sort();
        let bytes = &self.bytes;
        self.spans.dedup_by(|a, b| {
            bytes[a.0 as usize..a.1 as usize] == bytes[b.0 as usize..b.1 as usize]
        });
        let mut keep = 0;
        let mut used = 0;
        for &(start, end) in &self.spans {
            let len = (end - start) as usize;
            if keep > 0 && (keep == self.budget.names || used + len > self.budget.bytes) {
                break;
            }
            keep += 1;
            used += len;
        }
        let Some(&(start, end)) = self.spans.get(keep) else {
            return;
        };
        let cutoff = self.cutoff.get_or_insert_with(Vec::new);
        cutoff.clear();
        cutoff.extend_from_slice(&self.bytes[start as usize..end as usize]);
        // Compact the kept names to the front of the buffer, in buffer order so that each one
        // moves towards the start.
        self.spans.truncate(keep);
        self.spans.sort_unstable_by_key(|&(start, _)| start);
        let mut to = 0;
        for span in &mut self.spans {
            let len = span.1 - span.0;
            self.bytes
                .copy_within(span.0 as usize..span.1 as usize, to as usize);
            *span = (to, to + len);
            to += len;
        }
        self.bytes.truncate(to as usize);
    }

    fn sort(&mut self) {
        let bytes = &self.bytes;
        self.spans.sort_unstable_by(|a, b| {
            bytes[a.0 as usize..a.1 as usize].cmp(&bytes[b.0 as usize..b.1 as usize])
        });
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn names(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans
            .iter()
            .map(|&(start, end)| &self.bytes[start as usize..end as usize])
    }
}

/// How far a scan may collect beyond the budget before it drops the surplus: a quarter more, so
/// that each drop (a sort) comes after many offers, while memory stays close to the budget.
fn with_slack(limit: usize) -> usize {
    limit + (limit / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A directory in memory; `scans` counts how often it was read.
    struct Fake {
        names: Vec<Vec<u8>>,
        scans: Rc<Cell<usize>>,
    }

    impl Scan for Fake {
        fn scan(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
            self.scans.set(self.scans.get() + 1);
            self.names.iter().for_each(|n| each(n));
            Ok(())
        }
    }

    const SMALL: Budget = Budget {
        names: 4,
        bytes: 1 << 20,
    };

    fn collect<S: Scan>(mut listing: SortedNames<S>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(batch) = listing.next_batch().unwrap() {
            out.extend(batch.map(|n| n.as_bytes().to_vec()));
        }
        out
    }

    /// The listing of `names` (in the order given) and the number of scans it took.
    fn list(names: &[Vec<u8>], budget: Budget) -> (Vec<Vec<u8>>, usize) {
        let scans = Rc::new(Cell::new(0));
        let fake = Fake {
            names: names.to_vec(),
            scans: scans.clone(),
        };
        let out = collect(SortedNames::new(fake, budget));
        (out, scans.get())
    }

    fn sorted(names: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut v = names.to_vec();
        v.sort();
        v
    }

    /// `n` distinct names in a scrambled order, of varied lengths.
    fn scrambled(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let j = (i * 7919 + 13) % n.max(1);
                format!("n{}{}", j, "x".repeat(j % 5)).into_bytes()
            })
            .collect()
    }

    #[test]
    fn order_is_a_full_byte_sort_at_the_budget_boundaries() {
        // One scan per batch of `k`; the last one sees that nothing was left out.
        let k = SMALL.names;
        for (n, want_scans) in [(0, 1), (1, 1), (k, 1), (k + 1, 2), (3 * k + 5, 5)] {
            let names = scrambled(n);
            let (got, scans) = list(&names, SMALL);
            assert_eq!(got, sorted(&names), "{n} names");
            assert_eq!(scans, want_scans, "{n} names");
        }
    }

    #[test]
    fn bytes_not_utf8_and_names_differing_only_in_length() {
        let names: Vec<Vec<u8>> = [
            &b"a"[..],
            b"aa",
            b"aaa",
            b"a\xff",
            b"\xff",
            b"\xfe\x80",
            b"a\x01",
            b"B",
            b"b",
            b"\x01",
            b"aaaa",
            b"a.d",
            b"a-d",
        ]
        .iter()
        .map(|n| n.to_vec())
        .collect();
        for names_budget in [1, 2, 3, 100] {
            let budget = Budget {
                names: names_budget,
                bytes: 1 << 20,
            };
            assert_eq!(list(&names, budget).0, sorted(&names), "{names_budget}");
        }
    }

    #[test]
    fn the_byte_budget_bounds_a_batch_and_a_longer_name_still_passes() {
        let names: Vec<Vec<u8>> = (0..50u8)
            .map(|i| vec![b'a' + i % 26; 1 + (i as usize * 37) % 255])
            .enumerate()
            .map(|(i, mut n)| {
                n.extend_from_slice(format!("{i:02}").as_bytes());
                n
            })
            .collect();
        // A budget smaller than some names: each batch still takes at least one name.
        for bytes in [1, 100, 300, 1000] {
            let budget = Budget { names: 1000, bytes };
            let mut listing = SortedNames::new(
                Fake {
                    names: names.clone(),
                    scans: Rc::default(),
                },
                budget,
            );
            let mut got = Vec::new();
            while let Some(batch) = listing.next_batch().unwrap() {
                let batch: Vec<Vec<u8>> = batch.map(|n| n.as_bytes().to_vec()).collect();
                let size: usize = batch.iter().map(Vec::len).sum();
                assert!(batch.len() == 1 || size <= bytes, "{size} > {bytes}");
                got.extend(batch);
            }
            assert_eq!(got, sorted(&names), "{bytes}");
        }
    }

    #[test]
    fn memory_stays_within_the_budget_and_its_slack_while_scanning() {
        let names = scrambled(10_000);
        let mut selection = Selection::new(SMALL);
        selection.begin();
        for name in &names {
            selection.offer(name);
            assert!(selection.spans.len() < with_slack(SMALL.names));
        }
        assert!(selection.end());
        let got: Vec<&[u8]> = selection.names().collect();
        let want = sorted(&names);
        assert_eq!(
            got,
            want[..SMALL.names]
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>()
        );
    }

    /// Names that appear, vanish or repeat between scans: never produced twice, never out of
    /// order, and the listing ends.
    #[test]
    fn a_changing_directory_never_repeats_a_name_and_ends() {
        struct Shifting {
            scan: usize,
        }
        impl Scan for Shifting {
            fn scan(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
                self.scan += 1;
                for i in 0..20 {
                    // Every scan renames a few names and repeats one (as a racing rename can).
                    let name = format!("{:02}-{}", i, if i % 3 == 0 { self.scan } else { 0 });
                    each(name.as_bytes());
                    if i == 7 {
                        each(name.as_bytes());
                    }
                }
                Ok(())
            }
        }
        let got = collect(SortedNames::new(Shifting { scan: 0 }, SMALL));
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(got.len() >= 20 - 7, "{got:?}");
    }

    #[test]
    fn lists_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let names = scrambled(300);
        for name in &names {
            std::fs::write(dir.path().join(OsStr::from_bytes(name)), b"").unwrap();
        }
        std::fs::write(dir.path().join(OsStr::from_bytes(b"\xff\xfe")), b"").unwrap();
        let mut want = sorted(&names);
        want.push(b"\xff\xfe".to_vec());
        for budget in [SMALL, Budget::DEFAULT] {
            let got = collect(SortedNames::at(dir.path(), budget));
            assert_eq!(got, want);
        }
    }
}
