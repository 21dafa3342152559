//! The local packages' own sources: which files belong to each, a digest of them, their newest
//! mtime, and the digests a manifest records.
//!
//! A package's *own files* are everything below its directory that cargo or rustc could read,
//! except what belongs to someone else or is no source at all:
//! - another local package's directory (it is digested on its own);
//! - a vendored crate: a directory holding `.cargo-checksum.json`, which cargo requires of every
//!   crate of a directory source (`cargo vendor`'s `vendor/`): cargo checks those by version,
//!   and touching them would rerun their build scripts that watch files;
//! - target and build dirs: the ones given, and any directory cargo made one of (a
//!   `CACHEDIR.TAG` beside a profile dir or `.rustc_info.json`, see
//!   [`classify::is_cargo_root`]). A directory holding `CACHEDIR.TAG` and sources is sources;
//! - version-control metadata (`.git`, `.hg`, `.svn`, `.jj`);
//! - `$CARGO_HOME`, and what crane's hooks write into the source root while building (crane
//!   2c71e194: its CARGO_HOME default `.cargo-home`, `cargoBuildLogXXXX.json`,
//!   `linkCandidatesXXXX.txt`, `postBuildInstallFromCargoBuildLogOutTempXXX`): they appear
//!   between `freshen` and `pack` and are no sources. Anything else a build writes into the
//!   sources only makes pack conservative (the package's digest differs next time, and the new
//!   mtime leaves local units out), never wrong.
//!
//! Symlinks are followed, as cargo and rustc follow them: a link to a file is digested as that
//! file, a link to a directory as the files below it, wherever they are (the store included).
//! So the digest changes whenever what cargo reads changes, and a link replaced by a copy of
//! what it points to keeps it. Not followed (digested as the link's text): dangling links,
//! links to something that is neither file nor directory, links to a directory that holds the
//! package (`/`, an ancestor: a loop) or the store dir, or to a directory skipped above.
//! For `freshen`, the walk sorts what it found into what gets a fresh mtime (the package's own
//! files and directories, and what its links reach inside the workspace, touched through the
//! link) and the links that lead out of the workspace (into the store, say), which it replaces
//! by copies: it never writes outside the workspace.
//!
//! A nested `Cargo.toml` that is no local package (a test fixture, a `fuzz/` workspace) stays
//! part of the package around it: cargo never builds it, but a build may read its files.
//!
//! The directory of the workspace root is a package of its own (key `.`) even when the root
//! manifest is virtual: its files (a shared `README.md`, `proto/`) can be read by members'
//! units, and touching them when they change is what makes cargo rebuild those units.
//!
//! The digest is BLAKE3 over the sorted own files: for each, its kind, its path relative to the
//! package directory (through links), and the BLAKE3 of its contents (or, for a link not
//! followed, of its target). Modes and mtimes are left out: Nix changes both without changing
//! what is built.

use crate::classify;
use crate::fsutil::{self, FsError, IoContext};
use crate::store::StoreDir;
use crate::workspace::Workspace;
use filetime::FileTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
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
    /// What a fresh mtime goes to (through links): the files and directories of the package,
    /// and those its links reach inside the workspace; in digest order.
    pub touch: Vec<PathBuf>,
    /// How many of `touch` are files.
    pub files: u64,
    /// Links (to a file or a directory) leading out of the workspace: the store, say.
    pub leave: Vec<PathBuf>,
    /// Hex BLAKE3 digest.
    pub digest: String,
    /// The newest mtime among the files read (through links).
    pub newest: Option<FileTime>,
}

/// Finds and digests every local package's own files. `skip` holds target and build dirs;
/// `$CARGO_HOME` is skipped too.
pub fn scan(
    ws: &Workspace,
    skip: &[PathBuf],
    store: &StoreDir,
) -> Result<Vec<PackageSources>, FsError> {
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
    let root = fs::canonicalize(&ws.root).with_path("resolve", &ws.root)?;
    let store = fs::canonicalize(store.as_path()).unwrap_or_else(|_| store.as_path().into());
    let packages: HashSet<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let mut out = Vec::with_capacity(dirs.len());
    for (pkg, dir) in ws.packages.values().zip(&dirs) {
        let mut walk = Walk {
            dir,
            root: &root,
            store: &store,
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
    touch: Vec<PathBuf>,
    files: u64,
    leave: Vec<PathBuf>,
    newest: Option<FileTime>,
    /// The directories being walked, from the package down (device, inode): a link to one of
    /// them is a loop.
    open: Vec<(u64, u64)>,
}

/// How the walk reached a directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Through the package's own directories: its path is where it is.
    Own,
    /// Through a link that stays in the workspace: what is found gets a fresh mtime too.
    Inside,
    /// Through a link out of the workspace, which freshen replaces by a copy as a whole.
    Outside,
}

struct Walk<'a> {
    dir: &'a Path,
    /// The workspace root, canonical.
    root: &'a Path,
    /// The store dir, canonical.
    store: &'a Path,
    packages: &'a HashSet<&'a Path>,
    skip: &'a HashSet<PathBuf>,
}

impl Walk<'_> {
    fn files(&self) -> Result<PackageSources, FsError> {
        let mut found = Found {
            digest: blake3::Hasher::new(),
            touch: Vec::new(),
            files: 0,
            leave: Vec::new(),
            newest: None,
            open: Vec::new(),
        };
        let meta = fsutil::symlink_metadata(self.dir)?;
        found.touch.push(self.dir.to_path_buf());
        self.walk(self.dir, &meta, Reached::Own, &mut found)?;
        Ok(PackageSources {
            key: String::new(),
            name: None,
            touch: found.touch,
            files: found.files,
            leave: found.leave,
            digest: found.digest.finalize().to_hex().to_string(),
            newest: found.newest,
        })
    }

    /// Depth-first, each directory's entries in byte order of their names. A directory is judged
    /// ([`Walk::foreign`]) before it is opened: walkdir would open and list every vendored
    /// crate first. `meta` is the directory's own (followed, for a link).
    fn walk(
        &self,
        dir: &Path,
        meta: &fs::Metadata,
        reached: Reached,
        found: &mut Found,
    ) -> Result<(), FsError> {
        found.open.push((meta.dev(), meta.ino()));
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
            if file_type.is_dir() {
                let real = match reached {
                    Reached::Own => path.clone(),
                    _ => fs::canonicalize(&path).with_path("resolve", &path)?,
                };
                if !self.foreign(&path, &real) {
                    let meta = fsutil::symlink_metadata(&path)?;
                    if reached != Reached::Outside {
                        found.touch.push(path.clone());
                    }
                    self.walk(&path, &meta, reached, found)?;
                }
            } else if file_type.is_file() {
                self.file(&path, reached, found)?;
            } else if file_type.is_symlink() {
                self.symlink(&path, reached, found)?;
            } // fifos and sockets are no sources
        }
        found.open.pop();
        Ok(())
    }

    /// A regular file, or a link to one (`path` then leads through the link).
    fn file(&self, path: &Path, reached: Reached, found: &mut Found) -> Result<(), FsError> {
        let mut file = fs::File::open(path).with_path("open", path)?;
        let meta = file.metadata().with_path("stat", path)?;
        found.newest = found
            .newest
            .max(Some(FileTime::from_last_modification_time(&meta)));
        let mut h = blake3::Hasher::new();
        h.update_reader(&mut file).with_path("read", path)?;
        self.record(found, b'f', path, h.finalize());
        if reached != Reached::Outside {
            found.touch.push(path.to_path_buf());
            found.files += 1;
        }
        Ok(())
    }

    /// A symlink: followed to a file or a directory (see the module doc).
    fn symlink(&self, path: &Path, reached: Reached, found: &mut Found) -> Result<(), FsError> {
        let followed = fs::metadata(path)
            .ok()
            .filter(|m| m.is_file() || m.is_dir());
        let real = followed.as_ref().and_then(|_| fs::canonicalize(path).ok());
        let (Some(meta), Some(real)) = (followed, real) else {
            return self.link_text(path, found);
        };
        if meta.is_dir() {
            let loops = found.open.contains(&(meta.dev(), meta.ino()))
                || self.dir.starts_with(&real)
                || self.store.starts_with(&real);
            if loops || self.foreign(path, &real) {
                return self.link_text(path, found);
            }
        }
        let inside = (real.starts_with(self.root)
            || self.packages.iter().any(|p| real.starts_with(p)))
            && !real.starts_with(self.store);
        let reached = match reached {
            Reached::Outside => Reached::Outside,
            _ if inside => Reached::Inside,
            _ => {
                found.leave.push(path.to_path_buf());
                Reached::Outside
            }
        };
        if meta.is_file() {
            return self.file(path, reached, found);
        }
        if reached != Reached::Outside {
            found.touch.push(path.to_path_buf());
        }
        self.walk(path, &meta, reached, found)
    }

    /// A link that is not followed, digested as its target's text.
    fn link_text(&self, path: &Path, found: &mut Found) -> Result<(), FsError> {
        let target = fsutil::read_link(path)?;
        self.record(
            found,
            b'l',
            path,
            blake3::hash(target.as_os_str().as_bytes()),
        );
        Ok(())
    }

    fn record(&self, found: &mut Found, kind: u8, path: &Path, contents: blake3::Hash) {
        let rel = path
            .strip_prefix(self.dir)
            .expect("below the package")
            .as_os_str()
            .as_bytes();
        found.digest.update(&[kind]);
        found.digest.update(&(rel.len() as u64).to_le_bytes());
        found.digest.update(rel);
        found.digest.update(contents.as_bytes());
    }

    /// Whether a directory below the package belongs to someone else or holds no sources;
    /// `real` is where it is (through links).
    fn foreign(&self, dir: &Path, real: &Path) -> bool {
        let name = dir.file_name().unwrap_or_default();
        VCS_DIRS.iter().any(|v| name == *v)
            || self.packages.contains(real)
            || self.skip.contains(real)
            || dir.join(".cargo-checksum.json").symlink_metadata().is_ok()
            || classify::is_cargo_root(dir)
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
        // Target dirs cargo made (tag, and a profile dir or its rustc probe) are no sources...
        write(root, "target/CACHEDIR.TAG", "");
        write(
            root,
            "target/debug/.fingerprint/app-0123456789abcdef/bin-app",
            "",
        );
        write(root, "app/target/CACHEDIR.TAG", "");
        write(root, "app/target/.rustc_info.json", "");
        write(root, "app/target/x", "");
        write(root, "out/CACHEDIR.TAG", "");
        write(root, "out/x86_64-unknown-linux-gnu/release/deps/x", "");
        // ... a tag beside sources does not make them none, nor does a name.
        write(
            root,
            "app/src/cache/CACHEDIR.TAG",
            "Signature: 8a477f597d28d172789f06886806bc55",
        );
        write(root, "app/src/cache/mod.rs", "pub const X: u8 = 1;");
        write(root, "app/lib/target/x.rs", "read through #[path]");
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
        let store = StoreDir::new(root.join("store")).unwrap();
        scan(&ws, &[root.join("elsewhere")], &store)
            .unwrap()
            .into_iter()
            .map(|p| (p.key.clone(), p))
            .collect()
    }

    /// The files freshen touches below the package's directory (`key` is its path relative to
    /// `root`), directories left out.
    fn rel_files(root: &Path, key: &str, p: &PackageSources) -> Vec<String> {
        let dir = fs::canonicalize(root.join(key)).unwrap();
        let files: Vec<String> = p
            .touch
            .iter()
            .filter(|f| f.is_file())
            .map(|f| f.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(files.len() as u64, p.files, "{key}");
        files
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
                    "main-link.rs",
                    "src/cache/CACHEDIR.TAG",
                    "src/cache/mod.rs",
                    "src/main.rs",
                    "tests/fixture/Cargo.toml",
                    "tests/fixture/src/main.rs",
                ],
            ),
            ("app/lib", vec!["Cargo.toml", "src/lib.rs", "target/x.rs"]),
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
        let changes: [Change; 6] = [
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
            ("beside a tag", &|r| {
                write(r, "app/src/cache/mod.rs", "pub const X: u8 = 2;")
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
            for f in p.touch.iter().filter(|f| f.is_file()) {
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

    #[test]
    fn links_are_followed_wherever_they_lead() {
        let t = tempfile::tempdir().unwrap();
        let ws = t.path().join("ws");
        workspace(&ws);
        let src = t.path().join("store/0000000000000000000000000000000a-src");
        write(&src, "lib.rs", "pub fn f() {}");
        write(&src, "dir/m.rs", "pub const M: u8 = 1;");
        let app = ws.join("app/src");
        symlink(src.join("lib.rs"), app.join("linked.rs")).unwrap();
        symlink(src.join("dir"), app.join("gen")).unwrap();
        symlink("../../README.md", app.join("readme.md")).unwrap();
        symlink(".", app.join("loop")).unwrap();
        symlink("/", app.join("slash")).unwrap();
        symlink("nowhere", app.join("dangling")).unwrap();
        let scan = scan_of(&ws);
        let rel = |paths: &[PathBuf]| -> Vec<String> {
            let dir = fs::canonicalize(ws.join("app")).unwrap();
            paths
                .iter()
                .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
                .collect()
        };
        // Out of the workspace: replaced by copies, never touched through.
        assert_eq!(rel(&scan["app"].leave), ["src/gen", "src/linked.rs"]);
        let files = rel_files(&ws, "app", &scan["app"]);
        assert!(files.contains(&"src/readme.md".to_string()), "{files:?}");
        assert!(!files.iter().any(|f| f.starts_with("src/gen")), "{files:?}");
        let before = scan["app"].digest.clone();
        let digest = || scan_of(&ws)["app"].digest.clone();

        // What the links lead to is digested: its contents, not the link.
        fs::remove_file(app.join("linked.rs")).unwrap();
        fs::copy(src.join("lib.rs"), app.join("linked.rs")).unwrap();
        assert_eq!(digest(), before, "a copy of the linked file");
        fs::remove_file(app.join("linked.rs")).unwrap();
        symlink(src.join("lib.rs"), app.join("linked.rs")).unwrap();
        for (what, path, text) in [
            ("linked file", src.join("lib.rs"), "pub fn g() {}"),
            (
                "file below a linked dir",
                src.join("dir/m.rs"),
                "pub const M: u8 = 2;",
            ),
            ("linked file inside", ws.join("README.md"), "changed"),
        ] {
            let old = fs::read_to_string(&path).unwrap();
            fs::remove_file(&path).unwrap();
            fs::write(&path, text).unwrap();
            assert_ne!(digest(), before, "{what}");
            fs::write(&path, old).unwrap();
            assert_eq!(digest(), before, "{what}, restored");
        }
    }
}
