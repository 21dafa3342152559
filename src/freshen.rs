//! `freshen`: the stale-binary guard.
//!
//! Every file in the Nix store has mtime 1, and so does every source a Nix build copies out of
//! it. When a derivation inherits fingerprints that were built from *other* sources (crane's
//! dummy sources, or an older revision) which also carried mtime 1, cargo finds no source newer
//! than its records and calls the unit Fresh: the build ships the old binary. Giving the local
//! packages' own files (see [`crate::sources`]) the current time makes them newer than anything
//! inherited, so their units rebuild; registry dependencies are fingerprinted by version and are
//! never touched, nor are vendored crates, nor target dirs.
//!
//! A difference is never masked: cargo reads through symlinks, so the digest does too, and what
//! cargo sees of a freshened package changes. Files and directories its links reach inside the
//! workspace get the new mtime through the link; a link that leads out of it (a source file
//! linked into the store, whose mtime is 1 and cannot change) is replaced by a copy of what it
//! points to, which is new to cargo. Nothing outside the workspace is written.
//!
//! Only packages whose sources differ from the ones the inherited target was built from are
//! touched: pack records a digest of each local package's own files in the manifest
//! ([`crate::sources::SourceDigests`]), and a package with the same digest keeps its mtimes, so
//! its inherited units stay Fresh. Everything is touched when there is nothing to compare with
//! (no inherited artifacts given, crane's formats, a pack without digests); a package the
//! inherited digests do not name is touched too. Nothing here resolves dependencies or runs
//! cargo: it works before crane has configured its vendored sources.

use crate::artifacts::{Artifacts, ArtifactsError};
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, FsError, IoContext};
use crate::sources::{self, SourceDigests};
use crate::store::StoreDir;
use crate::workspace::{Workspace, WorkspaceError};
use filetime::FileTime;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct FreshenOptions {
    /// The manifest to start from (cargo's rules find the workspace root from it).
    pub manifest_path: PathBuf,
    /// The artifacts the target dir was unpacked from, whose digests are compared.
    pub inherited: Option<PathBuf>,
    /// Never walked into: the target dir and the build dir.
    pub skip: Vec<PathBuf>,
    pub store: StoreDir,
}

/// What happened to one local package.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PackageReport {
    /// Its directory relative to the workspace root (`.` for the root).
    pub key: String,
    pub name: Option<String>,
    pub action: Action,
    pub reason: Reason,
    /// Files given a fresh mtime (0 when kept).
    pub touched: u64,
    /// Symlinks out of the workspace replaced by copies of what they point to (0 when kept).
    pub copied: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Kept,
    Freshened,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The inherited target was built from exactly these sources.
    SameSources,
    /// The inherited target was built from other sources.
    SourcesDiffer,
    /// The inherited digests do not name this package (new, or moved).
    NotInherited,
    /// The inherited artifacts carry no digests (crane's formats, an older pack).
    NoDigests,
    /// No inherited artifacts were named.
    NoArtifacts,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::SameSources => "same sources",
            Reason::SourcesDiffer => "sources differ",
            Reason::NotInherited => "not in the inherited digests",
            Reason::NoDigests => "inherited artifacts record no digests",
            Reason::NoArtifacts => "no inherited artifacts given",
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FreshenReport {
    /// The workspace root directory.
    pub root: PathBuf,
    pub packages: Vec<PackageReport>,
    pub freshened: u64,
    pub kept: u64,
    /// Files given a fresh mtime.
    pub touched: u64,
    /// Symlinks out of the workspace replaced by copies.
    pub copied: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FreshenError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("cannot read the inherited artifacts")]
    Artifacts(#[from] ArtifactsError),
}

impl HasFault for FreshenError {
    fn fault(&self) -> Fault {
        match self {
            FreshenError::Fs(e) => e.fault(),
            FreshenError::Workspace(e) => e.fault(),
            FreshenError::Artifacts(e) => e.fault(),
        }
    }
}

/// Touches the own files of every local package whose sources differ from the inherited ones.
pub fn freshen(opts: &FreshenOptions) -> Result<FreshenReport, FreshenError> {
    let ws = Workspace::discover(&opts.manifest_path)?;
    let inherited = match &opts.inherited {
        None => Err(Reason::NoArtifacts),
        Some(dir) => match Artifacts::detect(dir, &opts.store)? {
            Artifacts::Nixcache(ours) => ours
                .manifest
                .sources
                .filter(|s| s.hash == sources::HASH)
                .map(|s| *s)
                .ok_or(Reason::NoDigests),
            Artifacts::CraneZstd { .. } | Artifacts::CraneDir { .. } => Err(Reason::NoDigests),
        },
    };
    let now = FileTime::now();
    let store =
        fs::canonicalize(opts.store.as_path()).unwrap_or_else(|_| opts.store.as_path().into());
    let mut report = FreshenReport {
        root: ws.root.clone(),
        ..FreshenReport::default()
    };
    for pkg in sources::scan(&ws, &opts.skip, &opts.store)? {
        let reason = decide(&inherited, &pkg.key, &pkg.digest);
        let (action, touched, copied) = if reason == Reason::SameSources {
            report.kept += 1;
            (Action::Kept, 0, 0)
        } else {
            // Copies first: a fresh mtime then reaches what is below them too.
            for link in &pkg.leave {
                replace_by_copy(link, &store)?;
            }
            for path in &pkg.touch {
                filetime::set_file_mtime(path, now).with_path("set mtime of", path)?;
            }
            report.freshened += 1;
            (Action::Freshened, pkg.files, pkg.leave.len() as u64)
        };
        report.touched += touched;
        report.copied += copied;
        report.packages.push(PackageReport {
            key: pkg.key,
            name: pkg.name,
            action,
            reason,
            touched,
            copied,
        });
    }
    Ok(report)
}

/// Replaces the symlink `link` by a copy of what it points to (a directory copied whole, links
/// below it followed), so that what cargo reads there is new to it, without writing where the
/// link leads (the store, another tree). The copy is made beside the link, then moved over it.
fn replace_by_copy(link: &Path, store: &Path) -> Result<(), FsError> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let name = link.file_name().unwrap_or_default().to_string_lossy();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.nixcache-copy."))
        .tempdir_in(dir)
        .with_path("create a temporary directory in", dir)?;
    let into = fs::canonicalize(tmp.path()).with_path("resolve", tmp.path())?;
    let copy = into.join("copy");
    let mut copying = Copying {
        open: Vec::new(),
        never: [store, &into],
    };
    copying.copy(link, &copy)?;
    if copy.is_dir() {
        // rename(2) puts a directory only where nothing (or an empty directory) is.
        fs::remove_file(link).with_path("remove the symlink", link)?;
    }
    fs::rename(&copy, link).with_path("replace the symlink", link)
}

/// A copy that follows links, as the digest does (`sources`).
struct Copying<'a> {
    /// The directories being copied (device, inode).
    open: Vec<(u64, u64)>,
    /// Where a link that leads to a directory holding one of these stays a link: the store
    /// dir, and where the copy goes.
    never: [&'a Path; 2],
}

impl Copying<'_> {
    /// Copies `from` (followed, whatever it is: a file, or a directory with everything below it
    /// followed) to the new path `to`, writable by its owner. A link below it the digest does not
    /// follow (dangling, to no file or directory, to a directory being copied or holding the
    /// store or the copy) is copied as the link it is, so the copy digests as the link did.
    fn copy(&mut self, from: &Path, to: &Path) -> Result<(), FsError> {
        let meta = fs::metadata(from).with_path("stat", from)?;
        if meta.is_file() {
            fsutil::copy_new(from, to)?;
            let mode = meta.permissions().mode() | 0o200;
            return fs::set_permissions(to, fs::Permissions::from_mode(mode))
                .with_path("set permissions of", to);
        }
        if !meta.is_dir() {
            return Ok(()); // no source, and not digested
        }
        fs::create_dir(to).with_path("create directory", to)?;
        self.open.push((meta.dev(), meta.ino()));
        for entry in fs::read_dir(from).with_path("read directory", from)? {
            let entry = entry.with_path("read directory", from)?;
            let (path, to) = (entry.path(), to.join(entry.file_name()));
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            let followed = fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file() || m.is_dir());
            let kept = match &followed {
                _ if !is_link => false,
                None => true, // dangling, or to no source
                Some(m) if m.is_dir() => {
                    let real = fs::canonicalize(&path).with_path("resolve", &path)?;
                    self.open.contains(&(m.dev(), m.ino()))
                        || self.never.iter().any(|n| n.starts_with(&real))
                }
                Some(_) => false,
            };
            if kept {
                let target = fsutil::read_link(&path)?;
                std::os::unix::fs::symlink(&target, &to).with_path("create symlink", &to)?;
            } else if followed.is_some() {
                self.copy(&path, &to)?;
            }
        }
        self.open.pop();
        let mode = meta.permissions().mode() | 0o700;
        fs::set_permissions(to, fs::Permissions::from_mode(mode))
            .with_path("set permissions of", to)
    }
}

fn decide(inherited: &Result<SourceDigests, Reason>, key: &str, digest: &str) -> Reason {
    match inherited {
        Err(reason) => *reason,
        Ok(d) => match d.packages.get(key) {
            None => Reason::NotInherited,
            Some(old) if old == digest => Reason::SameSources,
            Some(_) => Reason::SourcesDiffer,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A link to a store directory becomes a copy of what the digest reads through it: links
    /// below it followed into other store paths, but not back up (the store dir, `/`, itself).
    #[test]
    fn a_linked_directory_is_copied_as_the_digest_reads_it() {
        let t = tempfile::tempdir().unwrap();
        let t = fs::canonicalize(t.path()).unwrap();
        let (s1, s2) = (t.join("store/s1"), t.join("store/s2"));
        fs::create_dir_all(&s1).unwrap();
        fs::create_dir_all(&s2).unwrap();
        fs::write(s1.join("a.rs"), "a").unwrap();
        fs::write(s2.join("b.rs"), "b").unwrap();
        symlink("../s2", s1.join("sub")).unwrap();
        symlink("..", s1.join("up")).unwrap();
        symlink("/", s1.join("root")).unwrap();
        symlink(".", s1.join("itself")).unwrap();
        symlink("nowhere", s1.join("dangling")).unwrap();
        let src = t.join("ws/src");
        fs::create_dir_all(&src).unwrap();
        symlink(&s1, src.join("gen")).unwrap();

        replace_by_copy(&src.join("gen"), &t.join("store")).unwrap();
        let gen = src.join("gen");
        let kind = |rel: &str| {
            let m = fs::symlink_metadata(gen.join(rel)).unwrap();
            (m.is_symlink(), m.is_dir(), m.is_file())
        };
        assert_eq!(
            kind(""),
            (false, true, false),
            "the link is a directory now"
        );
        assert_eq!(fs::read_to_string(gen.join("a.rs")).unwrap(), "a");
        assert_eq!(
            kind("sub"),
            (false, true, false),
            "followed into another store path"
        );
        assert_eq!(fs::read_to_string(gen.join("sub/b.rs")).unwrap(), "b");
        for link in ["up", "root", "itself", "dangling"] {
            assert_eq!(kind(link), (true, false, false), "{link} stays a link");
        }
        let left: Vec<_> = fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["gen"], "no temporary directory left");
        assert!(s1.join("sub").is_symlink(), "the store is as it was");
    }
}
