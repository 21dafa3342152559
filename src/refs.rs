//! The library side of `cargo nixcache refs PATH... [--forbid STORE_PATH]...`: which store paths
//! do these files mention, and where do they mention a forbidden one?
//!
//! Files are read the way Nix reads an output when it computes references: every regular file's
//! bytes, and the target string of every symlink (a symlink is never followed, so a tree that
//! links to a large store path is not scanned through the link). The scan rule itself lives in
//! `store::refscan`; this module only walks, reads, and attributes hits to files.

use crate::fault::{Fault, HasFault};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::store::{scan_bytes, scan_reader, StoreDir, StoreError, StorePath};

/// What [`find_references`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefsReport {
    /// Every store path mentioned anywhere, sorted by base name.
    pub references: BTreeSet<StorePath>,
    /// Every mention of a forbidden store path, in walk order (roots as given, then by file name)
    /// and by offset within a file.
    pub forbidden_hits: Vec<ForbiddenHit>,
}

/// One mention of a forbidden store path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForbiddenHit {
    /// The regular file or symlink containing the mention (as reached from the root given).
    pub file: PathBuf,
    /// Byte offset of the mention in the file's contents, or in the symlink's target string.
    pub offset: u64,
    /// The store path as written in the file; its hash matches a forbidden one, its name may not.
    pub path: StorePath,
}

/// Why a scan could not finish. Every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum RefsError {
    #[error("`{path}` does not exist; pass existing files or directories to scan")]
    RootNotFound { path: PathBuf },

    #[error("failed to walk `{path}`")]
    Walk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to read symlink `{path}`")]
    ReadLink {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl HasFault for RefsError {
    fn fault(&self) -> Fault {
        match self {
            RefsError::RootNotFound { .. } => Fault::Usage,
            RefsError::Walk { .. } | RefsError::Read { .. } | RefsError::ReadLink { .. } => {
                Fault::Environment
            }
        }
    }
}

/// Scans every file and symlink under each of `roots` (files and symlinks may be roots too) for
/// store paths under `store`, and records each mention whose hash matches one in `forbid`.
///
/// Forbidden paths are matched by hash part only, as Nix does: the hash is what identifies a store
/// path, so `<hash>-foo` mentioned as `<hash>-foo/bin/x` or with a garbled name still counts.
pub fn find_references(
    store: &StoreDir,
    roots: &[PathBuf],
    forbid: &[StorePath],
) -> Result<RefsReport, RefsError> {
    let mut report = RefsReport::default();
    for root in roots {
        // Not even a root symlink is followed: its target string is what gets scanned.
        let walk = WalkDir::new(root)
            .follow_links(false)
            .follow_root_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|err| walk_error(root, err))?;
            let file_type = entry.file_type();
            let found = if file_type.is_symlink() {
                let target = fs::read_link(entry.path()).map_err(|source| RefsError::ReadLink {
                    path: entry.path().to_owned(),
                    source,
                })?;
                scan_bytes(store, target.as_os_str().as_bytes())
            } else if file_type.is_file() {
                let read_error = |source| RefsError::Read {
                    path: entry.path().to_owned(),
                    source,
                };
                let file = File::open(entry.path()).map_err(read_error)?;
                scan_reader(store, file).map_err(read_error)?
            } else {
                // Directories are walked into; fifos, sockets and devices have no contents to
                // scan (and opening a fifo would block).
                continue;
            };
            for reference in found {
                if forbid.iter().any(|f| f.digest() == reference.path.digest()) {
                    report.forbidden_hits.push(ForbiddenHit {
                        file: entry.path().to_owned(),
                        offset: reference.offset,
                        path: reference.path.clone(),
                    });
                }
                report.references.insert(reference.path);
            }
        }
    }
    Ok(report)
}

fn walk_error(root: &Path, err: walkdir::Error) -> RefsError {
    let path = err.path().unwrap_or(root).to_owned();
    // With links never followed walkdir cannot detect a loop, so this is always an I/O error.
    let source = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("file system loop"));
    if path == root && source.kind() == io::ErrorKind::NotFound {
        RefsError::RootNotFound { path }
    } else {
        RefsError::Walk { path, source }
    }
}

/// Parses a `--forbid` argument: an absolute path into the store (a sub-path, as in
/// `<store>/<hash>-foo/bin/foo`, is allowed and ignored) or a bare base name `<hash>-<name>`.
pub fn parse_forbid(store: &StoreDir, arg: &str) -> Result<StorePath, StoreError> {
    if arg.starts_with('/') {
        store.parse(Path::new(arg)).map(|(path, _sub_path)| path)
    } else {
        StorePath::from_base_name(arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const H1: &str = "00bgd045z0d4icpbc2yyz4gx48ak44la";
    const H2: &str = "0mdqa9w1p6cmli6976v4wi0sw9r4p5pr";
    const H3: &str = "2h9i448h1w70s30b184hh1q60l2060h1";

    fn nix_store() -> StoreDir {
        StoreDir::new("/nix/store").unwrap()
    }

    fn sp(base_name: &str) -> StorePath {
        StorePath::from_base_name(base_name).unwrap()
    }

    fn write(path: &Path, contents: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn names(report: &RefsReport) -> Vec<String> {
        report.references.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn finds_references_in_nested_files_and_symlink_targets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        write(
            &root.join("a/b/deep.rlib"),
            &format!("\0\0/nix/store/{H1}-serde-1.0/lib\0"),
        );
        write(
            &root.join("top.d"),
            &format!("x: /nix/store/{H2}-glibc-2.39/include/stdio.h\n"),
        );
        // Dangling on this machine; only its target string matters.
        symlink(
            format!("/nix/store/{H3}-dep/lib/libdep.rlib"),
            root.join("a/link.rlib"),
        )
        .unwrap();

        let report = find_references(&nix_store(), &[root], &[]).unwrap();
        assert_eq!(
            names(&report),
            [
                format!("{H1}-serde-1.0"),
                format!("{H2}-glibc-2.39"),
                format!("{H3}-dep")
            ]
        );
        assert!(report.forbidden_hits.is_empty());
    }

    #[test]
    fn does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        write(&outside.join("f"), &format!("/nix/store/{H1}-only-outside"));
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        symlink(&outside, root.join("dir-link")).unwrap();
        symlink(outside.join("f"), root.join("file-link")).unwrap();

        let report = find_references(&nix_store(), &[root], &[]).unwrap();
        assert!(report.references.is_empty(), "{:?}", report.references);
        // Negative control: scanning the target directly does find it.
        let report = find_references(&nix_store(), &[outside], &[]).unwrap();
        assert_eq!(names(&report), [format!("{H1}-only-outside")]);
    }

    #[test]
    fn a_symlink_root_is_scanned_as_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        write(&real.join("f"), &format!("/nix/store/{H1}-behind-the-link"));
        symlink(
            format!("/nix/store/{H2}-link-target"),
            dir.path().join("link"),
        )
        .unwrap();
        let report = find_references(&nix_store(), &[dir.path().join("link")], &[]).unwrap();
        assert_eq!(names(&report), [format!("{H2}-link-target")]);
    }

    #[test]
    fn forbid_reports_file_and_offset_matching_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        write(&root.join("ok.txt"), &format!("/nix/store/{H1}-fine"));
        write(
            &root.join("sub/bad.bin"),
            &format!("ab/nix/store/{H2}-rustc-src/x\n/nix/store/{H2}-rustc-src"),
        );
        symlink(
            format!("/nix/store/{H2}-other-name"),
            root.join("sub/bad-link"),
        )
        .unwrap();

        // Named differently from the mentions: only the hash has to match.
        let forbid = [sp(&format!("{H2}-whatever"))];
        let report = find_references(&nix_store(), std::slice::from_ref(&root), &forbid).unwrap();
        let hits: Vec<(PathBuf, u64, String)> = report
            .forbidden_hits
            .iter()
            .map(|h| (h.file.clone(), h.offset, h.path.to_string()))
            .collect();
        assert_eq!(
            hits,
            [
                (root.join("sub/bad-link"), 0, format!("{H2}-other-name")),
                (root.join("sub/bad.bin"), 2, format!("{H2}-rustc-src")),
                (root.join("sub/bad.bin"), 58, format!("{H2}-rustc-src")),
            ]
        );
        assert_eq!(
            report.references.len(),
            3,
            "forbidden mentions are references too"
        );
    }

    #[test]
    fn other_store_dirs() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("f"),
            &format!("/nix/store/{H1}-a /tmp/store/{H2}-b"),
        );
        let store = StoreDir::new("/tmp/store").unwrap();
        let report = find_references(&store, &[dir.path().to_owned()], &[]).unwrap();
        assert_eq!(names(&report), [format!("{H2}-b")]);
    }

    #[test]
    fn skips_fifos_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let report = find_references(&nix_store(), &[dir.path().to_owned()], &[]).unwrap();
        assert!(report.references.is_empty());
    }

    #[test]
    fn missing_root_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = find_references(&nix_store(), std::slice::from_ref(&missing), &[]).unwrap_err();
        assert!(
            matches!(&err, RefsError::RootNotFound { path } if *path == missing),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` does not exist; pass existing files or directories to scan",
                missing.display()
            )
        );
    }

    #[test]
    fn parse_forbid_accepts_paths_and_base_names() {
        let store = nix_store();
        let want = sp(&format!("{H1}-foo"));
        let ok = [
            ("absolute", format!("/nix/store/{H1}-foo")),
            ("with sub-path", format!("/nix/store/{H1}-foo/bin/foo")),
            ("base name", format!("{H1}-foo")),
        ];
        for (name, arg) in ok {
            assert_eq!(parse_forbid(&store, &arg), Ok(want.clone()), "{name}");
        }
        let bad = [
            ("outside the store", "/tmp/x".to_owned()),
            ("escaping", format!("/nix/store/{H1}-foo/../../etc")),
            ("not a base name", "foo".to_owned()),
            ("relative path", format!("{H1}-foo/bin")),
        ];
        for (name, arg) in bad {
            assert!(parse_forbid(&store, &arg).is_err(), "{name}");
        }
    }
}
