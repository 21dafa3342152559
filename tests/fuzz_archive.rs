//! A property test over generated tar streams, run through the real reader, unpack and verify:
//! whatever the stream, unpack either refuses it, leaving no target dir, or restores exactly
//! what a second, independent tar parser (tar-rs) reads from it; it never panics, never hangs,
//! never writes outside the target dir; and verify says "ok" exactly when unpack succeeds.
//!
//! Streams are valid trees (random directories, files and links into a real store dir), then
//! often made hostile: an entry of a kind, path or link target we refuse inserted anywhere,
//! entries swapped or repeated, a byte flipped, the stream cut, data appended. Every stream
//! gets a CONSISTENT manifest and anchor, so the checks inside the archive are the ones tested.
//!
//! Bounded for CI: `PROPTEST_CASES` cases (default 256, a few seconds); a run of its own with
//! a bigger budget: `PROPTEST_CASES=20000 cargo test --test fuzz_archive`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nixcache::builddir::BuildDir;
use nixcache::store::StoreDir;
use nixcache::unpack::{self, MtimePolicy, UnpackOptions};
use proptest::prelude::*;
use support::hostile::*;
use support::{Store, TreeSnapshot};

/// Where a generated symlink points.
#[derive(Clone, Copy, Debug)]
enum LinkTo {
    // Valid: a file in a store path, a store path (a directory), one through a store path
    // that is a symlink to another store path.
    Blob,
    StoreDirPath,
    Alias,
    // Refused.
    Escape,
    Outside,
    Relative,
    DotDot,
    Missing,
    Nul,
    TooLong,
}

#[derive(Clone, Debug)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Link(LinkTo),
    /// A hard link to this member path; in a valid tree, empty until the tree is made: then the
    /// first regular file before it (or it becomes a file when there is none).
    HardLink(String),
    /// A tar type we refuse: hard link, char device, fifo, GNU long name, global header, ...
    Other(u8),
}

/// What is done to a valid tree.
#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, String, Kind, bool),
    /// An entry in place gets another kind (or link target): the tree's order stays valid, so
    /// the checks behind it are reached.
    Retype(usize, Kind),
    /// An entry's last component gets another name.
    Rename(usize, String),
    Swap(usize, usize),
    Repeat(usize),
    Flip(usize, u8),
    Cut(usize),
    Append(Vec<u8>),
}

/// Names for tree paths: mostly plain, sometimes ones no file system or archive allows.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "c", "deps", "x.rlib"]).prop_map(String::from),
        1 => prop::sample::select(vec![
            "..", ".", "", "n\0ul", "with space", "\u{1b}[2J", "ü"
        ])
        .prop_map(String::from),
        1 => Just("z".repeat(255)),
        1 => Just("z".repeat(256)),
    ]
}

/// Link targets unpack accepts, then all of them.
const VALID_LINKS: usize = 3;
const LINKS: [LinkTo; 10] = [
    LinkTo::Blob,
    LinkTo::StoreDirPath,
    LinkTo::Alias,
    LinkTo::Escape,
    LinkTo::Outside,
    LinkTo::Relative,
    LinkTo::DotDot,
    LinkTo::Missing,
    LinkTo::Nul,
    LinkTo::TooLong,
];

fn link_to(valid_only: bool) -> impl Strategy<Value = LinkTo> {
    let n = if valid_only { VALID_LINKS } else { LINKS.len() };
    prop::sample::select(LINKS[..n].to_vec())
}

fn kind(valid_only: bool) -> impl Strategy<Value = Kind> {
    let others = prop::sample::select(vec![b'1', b'3', b'4', b'6', b'L', b'K', b'g', b'S', b'V']);
    let hard_targets = if valid_only {
        vec![""]
    } else {
        vec![
            "",
            "target/a",
            "target/b/x.rlib",
            "target/deps",
            "build/a",
            "target/../a",
            "/a",
        ]
    };
    let hard = prop::sample::select(hard_targets).prop_map(|t| Kind::HardLink(t.to_string()));
    prop_oneof![
        2 => Just(Kind::Dir),
        3 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Kind::File),
        2 => link_to(valid_only).prop_map(Kind::Link),
        1 => hard,
        if valid_only { 0 } else { 1 } => others.prop_map(Kind::Other),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let path = (
        prop::sample::select(vec!["target", "build", "etc", "/abs", ""]),
        prop::collection::vec(name(), 0..3),
    )
        .prop_map(|(root, rest)| {
            let mut p = root.to_string();
            for n in rest {
                p.push('/');
                p.push_str(&n);
            }
            p
        });
    prop_oneof![
        2 => (any::<usize>(), path, kind(false), any::<bool>())
            .prop_map(|(i, p, k, pax)| Mutation::Insert(i, p, k, pax)),
        4 => (any::<usize>(), kind(false)).prop_map(|(i, k)| Mutation::Retype(i, k)),
        1 => (any::<usize>(), name()).prop_map(|(i, n)| Mutation::Rename(i, n)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        1 => any::<usize>().prop_map(Mutation::Repeat),
        2 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => prop::collection::vec(any::<u8>(), 1..600).prop_map(Mutation::Append),
    ]
}

/// A valid tree: random paths below `target/` with every ancestor a directory, sorted.
fn valid_tree() -> impl Strategy<Value = Vec<(String, Kind)>> {
    let comp = prop::sample::select(vec!["a", "b", "c", "deps", "x.rlib"]);
    prop::collection::vec((prop::collection::vec(comp, 1..4), kind(true)), 0..12).prop_map(|raw| {
        // Vec<String> order is component order, which is the archive's.
        let mut tree: BTreeMap<Vec<String>, Kind> = BTreeMap::new();
        tree.insert(vec!["target".into()], Kind::Dir);
        for (comps, kind) in raw {
            let mut path = vec!["target".to_string()];
            for c in comps {
                path.push(c.to_string());
                tree.insert(path.clone(), Kind::Dir);
            }
            tree.insert(path, kind);
        }
        // A non-directory with entries below it becomes a directory.
        let dirs: Vec<Vec<String>> = tree
            .keys()
            .filter(|p| p.len() > 1)
            .map(|p| p[..p.len() - 1].to_vec())
            .collect();
        for d in dirs {
            tree.insert(d, Kind::Dir);
        }
        let mut first_file: Option<String> = None;
        tree.into_iter()
            .map(|(p, k)| {
                let p = p.join("/");
                let k = match (k, &first_file) {
                    (Kind::HardLink(_), Some(file)) => Kind::HardLink(file.clone()),
                    (Kind::HardLink(_), None) => Kind::File(b"was a hard link".to_vec()),
                    (k, _) => k,
                };
                if matches!(k, Kind::File(_)) && first_file.is_none() {
                    first_file = Some(p.clone());
                }
                (p, k)
            })
            .collect()
    })
}

/// The sandbox every case runs in: a store with real store paths, a directory outside it.
struct Sandbox {
    _fx: support::Fixture,
    store: Store,
    base: PathBuf,
    blob: PathBuf,
    store_dir_path: PathBuf,
    alias: PathBuf,
    escape: PathBuf,
    outside: PathBuf,
    next: AtomicU64,
}

impl Sandbox {
    fn new() -> Sandbox {
        let fx = support::Fixture::copy("ws-basic");
        let store = Store::new(&fx);
        let base = fx.base().to_path_buf();
        let outside = fx.scratch_dir("outside");
        fs::write(outside.join("x.rlib"), "outside").unwrap();
        let real = store.path("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("x.rlib"), "rlib").unwrap();
        let alias = store.path("alias");
        symlink(&real, &alias).unwrap();
        let escape = store.path("escape");
        symlink(&outside, &escape).unwrap();
        Sandbox {
            blob: real.join("x.rlib"),
            store_dir_path: real,
            alias: alias.join("x.rlib"),
            escape: escape.join("x.rlib"),
            outside,
            base,
            store,
            _fx: fx,
            next: AtomicU64::new(0),
        }
    }

    fn target(&self, to: LinkTo) -> Vec<u8> {
        let p = |p: &Path| p.as_os_str().as_encoded_bytes().to_vec();
        match to {
            LinkTo::Blob => p(&self.blob),
            LinkTo::StoreDirPath => p(&self.store_dir_path),
            LinkTo::Alias => p(&self.alias),
            LinkTo::Escape => p(&self.escape),
            LinkTo::Outside => p(&self.outside.join("x.rlib")),
            LinkTo::Relative => b"../x.rlib".to_vec(),
            LinkTo::DotDot => p(&self.store_dir_path.join("../../outside/x.rlib")),
            LinkTo::Missing => p(&self.store.path("missing").join("x")),
            LinkTo::Nul => [p(&self.blob), b"\0x".to_vec()].concat(),
            LinkTo::TooLong => [p(&self.store_dir_path), vec![b'/'], vec![b'l'; 4096]].concat(),
        }
    }

    /// The tar stream of `entries` (path, kind, pax) and how many members it has.
    fn stream(&self, entries: &[(String, Kind, bool)]) -> (Vec<u8>, u64) {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, pax) in entries {
            let long = path.len() > 99 || path.contains('\0');
            let (ty, data, link): (tar::EntryType, &[u8], Option<Vec<u8>>) = match kind {
                Kind::Dir => (tar::EntryType::Directory, &[], None),
                Kind::File(d) => (tar::EntryType::Regular, d, None),
                Kind::Link(to) => (tar::EntryType::Symlink, &[], Some(self.target(*to))),
                Kind::HardLink(to) => (tar::EntryType::Link, &[], Some(to.as_bytes().to_vec())),
                Kind::Other(t) => (tar::EntryType::new(*t), &[], None),
            };
            let mut records: Vec<(&str, Vec<u8>)> = Vec::new();
            if *pax || long {
                records.push(("path", path.as_bytes().to_vec()));
            }
            let mut h = header(ty, data.len() as u64);
            if let Some(link) = &link {
                let hard = matches!(kind, Kind::HardLink(_));
                if *pax || hard || link.len() > 99 || link.contains(&0) {
                    records.push(("linkpath", link.clone()));
                } else {
                    h.set_link_name(Path::new(std::str::from_utf8(link).unwrap()))
                        .unwrap();
                }
            }
            if !records.is_empty() {
                let r: Vec<(&str, &[u8])> = records.iter().map(|(k, v)| (*k, &v[..])).collect();
                append_pax(&mut b, &r);
            }
            let raw = if records.iter().any(|(k, _)| *k == "path") {
                "p"
            } else {
                path.as_str()
            };
            append_raw(&mut b, raw, h, data);
        }
        (b.into_inner().unwrap(), entries.len() as u64)
    }

    fn case_dir(&self, what: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.store.path(&format!("{what}-{n}"))
    }

    /// The store (but the cases' artifacts), what is outside it, and the names in the sandbox
    /// (but the cases' destinations): what no case may change.
    fn snapshot(&self) -> (TreeSnapshot, TreeSnapshot, Vec<std::ffi::OsString>) {
        let store = TreeSnapshot::capture(&self.store.dir)
            .filter(|p, _| !p.to_string_lossy().contains("-case-"));
        let mut names: Vec<_> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().starts_with("dest-"))
            .collect();
        names.sort();
        (store, TreeSnapshot::capture(&self.outside), names)
    }
}

/// One case: artifacts around `stream`, verify, then unpack under a watchdog.
fn check(
    sb: &Sandbox,
    stream: &[u8],
    entries: u64,
    zstd: bool,
    valid: bool,
) -> Result<(), TestCaseError> {
    let out = sb.case_dir("artifacts-case");
    if zstd {
        let len = Some(stream.len() as u64);
        write_artifacts_with(
            &sb.store,
            &out,
            stream,
            zstd_with_checksum(stream),
            len,
            entries,
            None,
        );
    } else {
        write_artifacts_with(
            &sb.store,
            &out,
            stream,
            stream.to_vec(),
            None,
            entries,
            None,
        );
    }
    let store = StoreDir::new(&sb.store.dir).unwrap();
    let n = sb.next.fetch_add(1, Ordering::Relaxed);
    let dest = sb.base.join(format!("dest-{n}"));
    let build = sb.base.join(format!("dest-build-{n}"));
    let before = sb.snapshot();

    let verified = watchdog({
        let (out, store) = (out.clone(), store.clone());
        move || nixcache::verify::verify(&out, &store).map_err(|e| e.to_string())
    })?;
    let opts = UnpackOptions {
        artifacts: out.clone(),
        target_dir: dest.clone(),
        build_dir: BuildDir::Given(build.clone()),
        store,
        mtimes: MtimePolicy::Archive,
    };
    let unpacked = watchdog(move || unpack::unpack(&opts).map_err(|e| e.to_string()))?;

    let after = sb.snapshot();
    prop_assert!(before.0.diff(&after.0).is_empty(), "wrote into the store");
    prop_assert!(
        before.1.diff(&after.1).is_empty(),
        "wrote outside the store"
    );
    prop_assert_eq!(&before.2, &after.2, "made something beside the target dir");
    let verify_ok = matches!(&verified, Ok(r) if r.problems.is_empty());
    prop_assert_eq!(
        verify_ok,
        unpacked.is_ok(),
        "verify {:?} but unpack {:?}",
        verified,
        unpacked
    );
    match unpacked {
        Err(e) => {
            prop_assert!(!valid, "a valid tree was refused: {e}");
            prop_assert!(
                !dest.exists() && !build.exists(),
                "a refusal left {}",
                dest.display()
            );
        }
        Ok(_) => {
            let want = expected(stream, &dest, &build)?;
            let got = restored(&dest, &build);
            prop_assert_eq!(got, want);
            for d in [&dest, &build] {
                if d.exists() {
                    support::make_writable(d);
                    fs::remove_dir_all(d).unwrap();
                }
            }
        }
    }
    fs::remove_dir_all(&out).unwrap();
    Ok(())
}

/// Runs `f` on a thread of its own; a case that takes more than 20 s is a hang.
fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, TestCaseError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(TestCaseError::fail("panicked")),
        Err(_) => Err(TestCaseError::fail("hung for 20 s")),
    }
}

type Tree = BTreeMap<PathBuf, String>;

/// What tar-rs, an independent parser, reads from the stream, as restored below the roots.
fn expected(stream: &[u8], dest: &Path, build: &Path) -> Result<Tree, TestCaseError> {
    let mut tree = Tree::new();
    let mut archive = tar::Archive::new(stream);
    for entry in archive
        .entries()
        .map_err(|e| TestCaseError::fail(e.to_string()))?
    {
        let mut entry = entry.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(&entry.path_bytes()));
        let mut comps = path.components();
        let root = match comps.next().map(|c| c.as_os_str().to_owned()) {
            Some(r) if r == "target" => dest,
            Some(r) if r == "build" => build,
            other => return Err(TestCaseError::fail(format!("accepted a root {other:?}"))),
        };
        let at = root.join(comps.as_path());
        let mode = entry.header().mode().unwrap_or(0);
        let what = match entry.header().entry_type() {
            tar::EntryType::Directory => "dir".to_string(),
            tar::EntryType::Symlink => {
                let link = entry.link_name_bytes().unwrap_or_default();
                format!("link {}", String::from_utf8_lossy(&link))
            }
            // Another name of an earlier file (under the same root: the rest was refused).
            tar::EntryType::Link => {
                let link = entry.link_name_bytes().unwrap_or_default();
                let link = Path::new(std::ffi::OsStr::from_bytes(&link));
                let below = link
                    .strip_prefix(path.components().next().unwrap())
                    .unwrap();
                match tree.get(&root.join(below)) {
                    Some(file) => file.clone(),
                    None => return Err(TestCaseError::fail("accepted a hard link to nothing")),
                }
            }
            _ => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                format!("file {:o} {:?}", (mode & 0o777) | 0o200, data)
            }
        };
        tree.insert(at, what);
    }
    Ok(tree)
}

/// What is below the roots, in the same terms.
fn restored(dest: &Path, build: &Path) -> Tree {
    let mut tree = Tree::new();
    for root in [dest, build] {
        if !root.exists() {
            continue;
        }
        for e in walkdir::WalkDir::new(root) {
            let e = e.unwrap();
            let meta = e.path().symlink_metadata().unwrap();
            let what = if meta.file_type().is_symlink() {
                let link = fs::read_link(e.path()).unwrap();
                format!("link {}", link.display())
            } else if meta.is_dir() {
                "dir".to_string()
            } else {
                let mode = meta.permissions().mode() & 0o777;
                format!("file {mode:o} {:?}", fs::read(e.path()).unwrap())
            };
            tree.insert(e.path().to_path_buf(), what);
        }
    }
    tree
}

/// Applies `m` to the entries (structural) or to the stream (bytes); says whether the entries
/// may still be a valid tree.
fn mutate(entries: &mut Vec<(String, Kind, bool)>, m: &Mutation) -> bool {
    match m {
        Mutation::Insert(i, path, kind, pax) => {
            let at = i % (entries.len() + 1);
            entries.insert(at, (path.clone(), kind.clone(), *pax));
        }
        Mutation::Retype(i, kind) if !entries.is_empty() => {
            let n = entries.len();
            entries[i % n].1 = kind.clone();
        }
        Mutation::Rename(i, name) if !entries.is_empty() => {
            let n = entries.len();
            let path = &mut entries[i % n].0;
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p).to_string();
            *path = format!("{parent}/{name}");
        }
        Mutation::Swap(i, j) if !entries.is_empty() => {
            let n = entries.len();
            entries.swap(i % n, j % n);
        }
        Mutation::Repeat(i) if !entries.is_empty() => {
            let e = entries[i % entries.len()].clone();
            entries.insert(i % entries.len(), e);
        }
        _ => return true,
    }
    false
}

fn mutate_bytes(stream: &mut Vec<u8>, m: &Mutation) -> bool {
    match m {
        Mutation::Flip(at, bit) if !stream.is_empty() => {
            let at = at % stream.len();
            stream[at] ^= 1 << bit;
        }
        Mutation::Cut(at) => stream.truncate(at % (stream.len() + 1)),
        Mutation::Append(data) => stream.extend_from_slice(data),
        _ => return true,
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn unpack_refuses_or_restores_exactly(
        tree in valid_tree(),
        pax in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 0..3),
        zstd in any::<bool>(),
    ) {
        thread_local! {
            static SANDBOX: Sandbox = Sandbox::new();
        }
        SANDBOX.with(|sb| {
            let mut entries: Vec<(String, Kind, bool)> =
                tree.into_iter().map(|(p, k)| (p, k, pax)).collect();
            let mut untouched = true;
            for m in &mutations {
                untouched &= mutate(&mut entries, m);
            }
            let (mut stream, count) = sb.stream(&entries);
            for m in &mutations {
                untouched &= mutate_bytes(&mut stream, m);
            }
            check(sb, &stream, count, zstd, untouched)
        })?;
    }
}
