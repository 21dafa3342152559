//! A fake Nix store for tests: store paths with valid, distinct hash parts, and what Nix does
//! to a path it registers ([`canonicalize`]), so tests see the store as a real build would.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use super::Fixture;

/// The mtime Nix gives every file it registers.
pub const CANONICAL_MTIME: i64 = 1;

/// A store directory inside a fixture's temp dir.
pub struct Store {
    pub dir: PathBuf,
    next: Cell<u32>,
}

impl Store {
    /// `<fixture base>/store`.
    pub fn new(fx: &Fixture) -> Store {
        Store {
            dir: fx.scratch_dir("store"),
            next: Cell::new(1),
        }
    }

    /// A fresh (not yet existing) store path `<dir>/<hash>-<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        let n = self.next.get();
        self.next.set(n + 1);
        // 32 nixbase32 characters (the alphabet has no e, o, u, t).
        let alphabet = b"0123456789abcdfghijklmnpqrsvwxyz";
        let hash: String = (0..32)
            .map(|i| alphabet[(n as usize * 7 + i * 3) % 32] as char)
            .collect();
        self.dir.join(format!("{hash}-{name}"))
    }

    /// `--store-dir=<dir>`, for cargo-nixcache's command line.
    pub fn arg(&self) -> String {
        format!("--store-dir={}", self.dir.display())
    }

    /// Moves the fixture's vendored sources into a canonical store path, as crane's
    /// vendorCargoDeps does, and points the workspace's source replacement at it.
    pub fn vendor(&self, fx: &Fixture) -> PathBuf {
        let vendor = self.path("vendor-cargo-deps");
        fs::rename(fx.vendor(), &vendor).unwrap();
        let config = fx.read(".cargo/config.toml");
        let moved = config.replace("\"../vendor\"", &format!("{vendor:?}"));
        assert_ne!(
            config, moved,
            "no `../vendor` in the fixture's .cargo/config.toml"
        );
        fx.write(".cargo/config.toml", moved);
        canonicalize(&vendor);
        vendor
    }
}

/// What Nix does to a path it registers: every mtime becomes 1 and nothing is writable.
pub fn canonicalize(path: &Path) {
    set_mtimes(path, CANONICAL_MTIME);
    super::make_read_only(path);
}

/// Sets the mtime of every file and directory below `dir` (symlinks are left alone); a missing
/// `dir` is a test bug.
pub fn set_mtimes(dir: &Path, secs: i64) {
    set_mtimes_except(dir, secs, "")
}

/// [`set_mtimes`], skipping the entry `skip` directly below `dir` (and all below it).
fn set_mtimes_except(dir: &Path, secs: i64, skip: &str) {
    let time = filetime::FileTime::from_unix_time(secs, 0);
    let walk = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == skip));
    for e in walk {
        let e = e.unwrap_or_else(|e| panic!("walk `{}`: {e}", dir.display()));
        if !e.path_is_symlink() {
            filetime::set_file_mtime(e.path(), time)
                .unwrap_or_else(|err| panic!("set mtime of `{}`: {err}", e.path().display()));
        }
    }
}

/// A Nix build copies its sources out of the store with their mtime: 1 (the target dir, if
/// any, is not a source).
pub fn sources_from_store(fx: &Fixture) {
    set_mtimes_except(fx.root(), CANONICAL_MTIME, "target");
}
