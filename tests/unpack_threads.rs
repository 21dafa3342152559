//! unpack's pass two on several threads (src/unpack/create.rs): the tree is the one a single
//! thread makes, down to every directory's mtime (set after the other threads filled it), and a
//! failure in any thread leaves nothing behind.
//!
//! The archive is built by hand (tests/support/hostile.rs: a consistent manifest and anchor):
//! 40 directories of 40 files and 5 links each, far above the threshold for threads, with a
//! distinct mtime and mode per member. `NIXCACHE_UNPACK_THREADS` picks the number of threads.

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;

use support::hostile::*;
use support::{Compare, Fixture, Mtime, Store, TreeSnapshot};

const DIRS: usize = 40;
const FILES: usize = 40;
const LINKS: usize = 5;

/// `target/`, then DIRS directories each holding FILES files and LINKS links to `blob`, with
/// mtimes and modes that differ per member; a file of `big` bytes last, when asked.
fn wide_tar(blob: &Path, big: Option<usize>) -> (Vec<u8>, u64) {
    let mut b = tar::Builder::new(Vec::new());
    let mut entries = 0;
    let mut add = |b: &mut Builder, path: &str, mut h: tar::Header, data: &[u8]| {
        h.set_mtime(1_000_000 + entries);
        append_raw(b, path, h, data);
        entries += 1;
    };
    add(&mut b, "target/", header(tar::EntryType::Directory, 0), &[]);
    for d in 0..DIRS {
        let mut h = header(tar::EntryType::Directory, 0);
        h.set_mode(if d % 2 == 0 { 0o755 } else { 0o700 });
        add(&mut b, &format!("target/d{d:02}/"), h, &[]);
        for f in 0..FILES {
            let data = format!("{d}/{f}").repeat(f + 1);
            let mut h = header(tar::EntryType::Regular, data.len() as u64);
            h.set_mode(if f % 3 == 0 { 0o755 } else { 0o644 });
            add(
                &mut b,
                &format!("target/d{d:02}/f{f:02}"),
                h,
                data.as_bytes(),
            );
        }
        for l in 0..LINKS {
            let mut h = header(tar::EntryType::Symlink, 0);
            h.set_link_name(blob).unwrap();
            add(&mut b, &format!("target/d{d:02}/l{l}"), h, &[]);
        }
    }
    if let Some(size) = big {
        let h = header(tar::EntryType::Regular, size as u64);
        add(&mut b, "target/zz", h, &vec![7; size]);
    }
    (b.into_inner().unwrap(), entries)
}

fn unpack(fx: &Fixture, store: &Store, out: &Path, dest: &Path, threads: u32) -> Output {
    // Files beyond 1 MiB fail to be written (EFBIG), not kill the process.
    let limits = format!("export NIXCACHE_UNPACK_THREADS={threads}; ulimit -f 2048; trap '' XFSZ");
    limited(
        fx,
        store,
        &limits,
        &["unpack", s(out), "--target-dir", s(dest)],
    )
}

#[test]
fn threads_make_the_tree_one_thread_makes_with_every_mtime() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let blob = store_blob(&store);
    let (tar, entries) = wide_tar(&blob, None);
    // In memory (zstd with its length), as pack writes: only such an archive is recorded.
    let out = store.path("wide");
    write_artifacts_as(Stored::InMemory, &store, &out, &tar, entries, None);

    let snapshot = |threads| {
        let dest = fx.base().join(format!("dest-{threads}"));
        let res = unpack(&fx, &store, &out, &dest, threads);
        assert!(res.status.success(), "{}", stderr(&res));
        TreeSnapshot::capture(&dest)
    };
    let one = snapshot(1);
    assert_eq!(one.len(), DIRS * (1 + FILES + LINKS));
    // Every directory got its archived mtime after its files were made (the policy is
    // `archive`: the blob is not in a canonical store), and the same on four threads.
    let expected_dir_mtime = |d: usize| 1_000_000 + 1 + (d * (1 + FILES + LINKS)) as i64;
    for d in [0, DIRS / 2, DIRS - 1] {
        let node = one.get(format!("d{d:02}")).unwrap();
        let want = Mtime {
            secs: expected_dir_mtime(d),
            nanos: 0,
        };
        assert_eq!(node.mtime, Some(want), "d{d:02}");
    }
    let four = snapshot(4);
    assert_eq!(one.diff_with(&four, Compare::ALL), Vec::<String>::new());
}

#[test]
fn a_failure_in_a_thread_leaves_no_tree_behind() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let blob = store_blob(&store);
    // The last member, in the last thread's run, is more than the process may write.
    let (tar, entries) = wide_tar(&blob, Some(4 << 20));
    let out = store.path("wide-big");
    write_artifacts_as(Stored::InMemory, &store, &out, &tar, entries, None);

    for threads in [1, 4] {
        let dest = fx.base().join(format!("dest-{threads}"));
        let res = unpack(&fx, &store, &out, &dest, threads);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(1), "{threads} threads: {err}");
        assert!(err.contains("File too large"), "{threads} threads: {err}");
        assert!(!dest.exists(), "{threads} threads left a tree behind");
        // Into an existing empty directory: emptied again, kept.
        fs::create_dir(&dest).unwrap();
        let res = unpack(&fx, &store, &out, &dest, threads);
        assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
    }
}
