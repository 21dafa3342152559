//! The local packages' own sources: which files belong to each, a digest of them, their newest
//! mtime, and the digests a manifest records.
//!
//! A package's *own files* are everything below its directory except what belongs to someone
//! else or is no source at all:
//! - another local package's directory (it is digested on its own);
//! - a vendored crate: a directory holding `.cargo-checksum.json`, which cargo requires of every
//!   crate of a directory source (`cargo vendor`'s `vendor/`): cargo checks those by version,
//!   and touching them would rerun their build scripts that watch files;
//! - target and build dirs: the ones given, any directory holding `CACHEDIR.TAG` (cargo writes
//!   one into each), and a `target` next to a `Cargo.toml` (cargo's default);
//! - version-control metadata (`.git`, `.hg`, `.svn`, `.jj`);
//! - `$CARGO_HOME`, and what crane's hooks write into the source root while building (crane
//!   2c71e194: its CARGO_HOME default `.cargo-home`, `cargoBuildLogXXXX.json`,
//!   `linkCandidatesXXXX.txt`, `postBuildInstallFromCargoBuildLogOutTempXXX`): they appear
//!   between `freshen` and `pack` and are no sources. Anything else a build writes into the
//!   sources only makes pack conservative (the package's digest differs next time, and the new
//!   mtime leaves local units out), never wrong.
//!
//! Symlinks are not followed (a linked file is digested as its target path, and never touched).
//! A nested `Cargo.toml` that is no local package (a test fixture, a `fuzz/` workspace) stays
//! part of the package around it: cargo never builds it, but a build may read its files.
//!
//! The directory of the workspace root is a package of its own (key `.`) even when the root
//! manifest is virtual: its files (a shared `README.md`, `proto/`) can be read by members'
//! units, and touching them when they change is what makes cargo rebuild those units.
//!
//! The digest is BLAKE3 over the sorted own files: for each, its kind, its path relative to the
//! package directory, and the BLAKE3 of its contents (or link target). Modes and mtimes are left
//! out: Nix changes both without changing what is built.

use crate::fsutil::{self, FsError, IoContext};
use crate::workspace::Workspace;
use filetime::FileTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The hash function of the digests this build writes and compares.
pub const HASH: &str = "blake3";

/// Directories of version-control metadata, never sources.
const VCS_DIRS: [&str; 4] = [".git", ".hg", ".jj", ".svn"];

/// What crane's hooks create in the source root during a build, as (prefix, suffix) of the name
/// (`mktemp` fills in the rest): see the module doc.
const CRANE_BY_PRODUCTS: [(&str, &str); 4] = [
    (".cargo-home", ""),
    ("cargoBuildLog", ".json"),
    ("linkCandidates", ".txt"),
    ("postBuildInstallFromCargoBuildLogOutTemp", ""),
];

fn by_product(name: &std::ffi::OsStr) -> bool {
    let name = name.as_bytes();
    CRANE_BY_PRODUCTS.iter().any(|(prefix, suffix)| {
        name.starts_with(prefix.as_bytes()) && name.ends_with(suffix.as_bytes())
    })
}

/// What a manifest records about the sources a target dir was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDigests {
    /// The hash function ([`HASH`]); digests made with another are never equal to ours.
    pub hash: String,
    /// The digest of each local package's own files, by [`crate::workspace::LocalPackage::key`].
    pub packages: BTreeMap<String, String>,
}

/// One local package's own files, as found now.
#[derive(Clone, Debug)]
pub struct PackageSources {
    pub key: String,
    pub name: Option<String>,
    /// Regular files (symlinks excluded), in digest order.
    pub files: Vec<PathBuf>,
    /// Hex BLAKE3 digest.
    pub digest: String,
    /// The newest mtime among `files`.
    pub newest: Option<FileTime>,
}

/// Finds and digests every local package's own files. `skip` holds target and build dirs;
/// `$CARGO_HOME` is skipped too.
pub fn scan(ws: &Workspace, skip: &[PathBuf]) -> Result<Vec<PackageSources>, FsError> {
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from);
    let skip: HashSet<PathBuf> = skip
        .iter()
        .chain(&cargo_home)
        .filter_map(|d| fs::canonicalize(d).ok())
        .collect();
    let mut dirs = Vec::new();
    for pkg in ws.packages.values() {
        dirs.push(fs::canonicalize(&pkg.dir).with_path("resolve", &pkg.dir)?);
    }
    let packages: HashSet<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let mut out = Vec::with_capacity(dirs.len());
    for (pkg, dir) in ws.packages.values().zip(&dirs) {
        let mut walk = Walk {
            dir,
            packages: &packages,
            skip: &skip,
        }
        .files()?;
        walk.key = pkg.key.clone();
        walk.name = pkg.name.clone();
        out.push(walk);
    }
    Ok(out)
}

/// The digests of a scan, for a manifest.
pub fn digests(scan: &[PackageSources]) -> SourceDigests {
    SourceDigests {
        hash: HASH.into(),
        packages: scan
            .iter()
            .map(|p| (p.key.clone(), p.digest.clone()))
            .collect(),
    }
}

/// What a walk accumulates.
struct Found {
    digest: blake3::Hasher,
    files: Vec<PathBuf>,
    newest: Option<FileTime>,
}

struct Walk<'a> {
    dir: &'a Path,
    packages: &'a HashSet<&'a Path>,
    skip: &'a HashSet<PathBuf>,
}

impl Walk<'_> {
    fn files(&self) -> Result<PackageSources, FsError> {
        let mut found = Found {
            digest: blake3::Hasher::new(),
            files: Vec::new(),
            newest: None,
        };
        self.walk(self.dir, &mut found)?;
        Ok(PackageSources {
            key: String::new(),
            name: None,
            files: found.files,
            digest: found.digest.finalize().to_hex().to_string(),
            newest: found.newest,
        })
    }

    /// Depth-first, each directory's entries in byte order of their names. A directory is judged
    /// ([`Walk::foreign`]) before it is opened: walkdir would open and list every vendored
    /// crate first.
    fn walk(&self, dir: &Path, found: &mut Found) -> Result<(), FsError> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).with_path("read directory", dir)? {
            let entry = entry.with_path("read directory", dir)?;
            let file_type = entry.file_type().with_path("stat", &entry.path())?;
            entries.push((entry.file_name(), file_type));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in entries {
            if by_product(&name) {
                continue;
            }
            let path = dir.join(&name);
            let (kind, contents) = if file_type.is_dir() {
                if !self.foreign(&path) {
                    self.walk(&path, found)?;
                }
                continue;
            } else if file_type.is_file() {
                let mut file = fs::File::open(&path).with_path("open", &path)?;
                let meta = file.metadata().with_path("stat", &path)?;
                found.newest = found
                    .newest
                    .max(Some(FileTime::from_last_modification_time(&meta)));
                let mut h = blake3::Hasher::new();
                h.update_reader(&mut file).with_path("read", &path)?;
                (b'f', h.finalize())
            } else if file_type.is_symlink() {
                let target = fsutil::read_link(&path)?;
                (b'l', blake3::hash(target.as_os_str().as_bytes()))
            } else {
                continue; // fifos and sockets are no sources
            };
            let rel = path
                .strip_prefix(self.dir)
                .expect("below the package")
                .as_os_str()
                .as_bytes();
            found.digest.update(&[kind]);
            found.digest.update(&(rel.len() as u64).to_le_bytes());
            found.digest.update(rel);
            found.digest.update(contents.as_bytes());
            if kind == b'f' {
                found.files.push(path);
            }
        }
        Ok(())
    }

    /// Whether a directory below the package belongs to someone else or holds no sources.
    fn foreign(&self, dir: &Path) -> bool {
        let name = dir.file_name().unwrap_or_default();
        let has = |file: &str| dir.join(file).symlink_metadata().is_ok();
        VCS_DIRS.iter().any(|v| name == *v)
            || self.packages.contains(dir)
            || self.skip.contains(dir)
            || has(".cargo-checksum.json")
            || has("CACHEDIR.TAG")
            || (name == "target" && dir.parent().is_some_and(|p| p.join("Cargo.toml").is_file()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Workspace;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// A virtual root with members `app` and `lib`, and everything a package dir can hold
    /// besides its own files.
    fn workspace(root: &Path) {
        let pkg = |n: &str| format!("[package]\nname = \"{n}\"\nversion = \"0.1.0\"\n");
        write(
            root,
            "Cargo.toml",
            "[workspace]\nmembers = [\"app\", \"app/lib\"]\n",
        );
        write(root, "README.md", "shared");
        write(root, ".cargo/config.toml", "[build]\n");
        write(root, "app/Cargo.toml", &pkg("app"));
        write(root, "app/src/main.rs", "fn main() {}");
        write(root, "app/.hidden", "dotfiles are sources too");
        write(root, "app/lib/Cargo.toml", &pkg("lib"));
        write(root, "app/lib/src/lib.rs", "");
        write(root, "app/tests/fixture/Cargo.toml", &pkg("fixture"));
        write(root, "app/tests/fixture/src/main.rs", "read by a test");
        write(root, "vendor/serde/Cargo.toml", &pkg("serde"));
        write(root, "vendor/serde/.cargo-checksum.json", "{}");
        write(root, "vendor/serde/src/lib.rs", "");
        write(root, "target/debug/app", "");
        write(root, "app/target/x", "");
        write(root, "out/CACHEDIR.TAG", "");
        write(root, "out/debug/x", "");
        write(root, "elsewhere/y", "the target dir given");
        write(root, ".git/HEAD", "");
        write(root, ".cargo-home/config.toml", "crane's CARGO_HOME");
        write(root, "cargoBuildLogAb3x.json", "crane's build log");
        write(root, "linkCandidatesQ9zz.txt", "");
        write(root, "postBuildInstallFromCargoBuildLogOutTempXy1/app", "");
        write(root, "cargoBuildLog.txt", "not crane's: a source");
        symlink("src/main.rs", root.join("app/main-link.rs")).unwrap();
    }

    fn scan_of(root: &Path) -> BTreeMap<String, PackageSources> {
        let ws = Workspace::discover(&root.join("Cargo.toml")).unwrap();
        scan(&ws, &[root.join("elsewhere")])
            .unwrap()
            .into_iter()
            .map(|p| (p.key.clone(), p))
            .collect()
    }

    /// The package's files below its directory (`key` is its path relative to `root`).
    fn rel_files(root: &Path, key: &str, p: &PackageSources) -> Vec<String> {
        let dir = fs::canonicalize(root.join(key)).unwrap();
        p.files
            .iter()
            .map(|f| f.strip_prefix(&dir).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn own_files_leave_out_other_packages_vendor_targets_and_vcs() {
        let t = tempfile::tempdir().unwrap();
        workspace(t.path());
        let scan = scan_of(t.path());
        let files: BTreeMap<&str, Vec<String>> = scan
            .iter()
            .map(|(k, p)| (k.as_str(), rel_files(t.path(), k, p)))
            .collect();
        let expected: BTreeMap<&str, Vec<String>> = [
            (
                ".",
                vec![
                    ".cargo/config.toml",
                    "Cargo.toml",
                    "README.md",
                    "cargoBuildLog.txt",
                ],
            ),
            (
                "app",
                vec![
                    ".hidden",
                    "Cargo.toml",
                    "src/main.rs",
                    "tests/fixture/Cargo.toml",
                    "tests/fixture/src/main.rs",
                ],
            ),
            ("app/lib", vec!["Cargo.toml", "src/lib.rs"]),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(files, expected);
        assert_eq!(scan["app"].name.as_deref(), Some("app"));
        assert_eq!(scan["."].name, None);
    }

    #[test]
    fn digest_follows_paths_and_contents_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        workspace(a.path());
        workspace(b.path());
        let digest = |root: &Path, key: &str| scan_of(root)[key].digest.clone();
        // Another location, other mtimes and modes: the same digests.
        filetime::set_file_mtime(
            b.path().join("app/src/main.rs"),
            FileTime::from_unix_time(1, 0),
        )
        .unwrap();
        fs::set_permissions(
            b.path().join("app/Cargo.toml"),
            fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        for key in [".", "app", "app/lib"] {
            assert_eq!(digest(a.path(), key), digest(b.path(), key), "{key}");
        }
        let before = digest(b.path(), "app");
        type Change<'a> = (&'a str, &'a dyn Fn(&Path));
        let changes: [Change; 5] = [
            ("content", &|r| write(r, "app/src/main.rs", "fn main() { }")),
            ("rename", &|r| {
                fs::rename(r.join("app/src/main.rs"), r.join("app/src/mian.rs")).unwrap()
            }),
            ("new file", &|r| write(r, "app/src/extra.rs", "")),
            ("link target", &|r| {
                fs::remove_file(r.join("app/main-link.rs")).unwrap();
                symlink("src/other.rs", r.join("app/main-link.rs")).unwrap();
            }),
            ("nested non-package", &|r| {
                write(r, "app/tests/fixture/src/main.rs", "x")
            }),
        ];
        for (what, change) in changes {
            let c = tempfile::tempdir().unwrap();
            workspace(c.path());
            change(c.path());
            assert_ne!(digest(c.path(), "app"), before, "{what}");
            assert_eq!(
                digest(c.path(), "app/lib"),
                digest(b.path(), "app/lib"),
                "{what}"
            );
        }
        // Files that are not the package's own never change its digest.
        write(b.path(), "vendor/serde/src/lib.rs", "changed");
        write(b.path(), "app/target/x", "changed");
        write(b.path(), "elsewhere/y", "changed");
        assert_eq!(digest(b.path(), "app"), before);
        assert_eq!(digest(b.path(), "."), digest(a.path(), "."));
    }

    #[test]
    fn newest_mtime_is_the_newest_own_file() {
        let t = tempfile::tempdir().unwrap();
        workspace(t.path());
        for p in scan_of(t.path()).values() {
            for f in &p.files {
                filetime::set_file_mtime(f, FileTime::from_unix_time(1, 0)).unwrap();
            }
        }
        filetime::set_file_mtime(
            t.path().join("app/src/main.rs"),
            FileTime::from_unix_time(7, 0),
        )
        .unwrap();
        filetime::set_file_mtime(
            t.path().join("vendor/serde/src/lib.rs"),
            FileTime::from_unix_time(9, 0),
        )
        .unwrap();
        let scan = scan_of(t.path());
        assert_eq!(scan["app"].newest, Some(FileTime::from_unix_time(7, 0)));
        assert_eq!(scan["."].newest, Some(FileTime::from_unix_time(1, 0)));
    }
}
