//! Where a symlink into the store really leads.
//!
//! A link target that names a store path is only as good as what it resolves to: a store path
//! may itself be a symlink, and so may anything inside one, and nothing stops either from
//! pointing out of the store. A target dir restored from such links lets the next build read
//! (and, through a linked directory, write) outside both the target dir and the store. So
//! unpack, verify and pack resolve every link target here, and it must end inside the store dir
//! (a store path linking to another store path is fine). The store dir itself is resolved once:
//! it may live behind a symlink.
//!
//! The parent directory of a target is opened and resolved once per directory (hundreds of
//! links share `deps/`); the target itself costs one `fstatat` of its name in it, plus a
//! resolution when it is a symlink.

use crate::store::StoreDir;
use nix::fcntl::{open, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why a link target is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkProblem {
    #[error("its symlink target `{target}` does not exist")]
    Missing { target: PathBuf },
    #[error(
        "its symlink target `{target}` resolves to `{resolved}`, outside the store dir `{store}`"
    )]
    LeavesStore {
        target: PathBuf,
        resolved: PathBuf,
        store: PathBuf,
    },
    #[error("its symlink target `{target}` cannot be resolved: {reason}")]
    Unresolvable { target: PathBuf, reason: String },
}

impl LinkProblem {
    /// Whether the file system, not the link, is at fault (an I/O error while resolving).
    pub fn is_environment(&self) -> bool {
        matches!(self, LinkProblem::Unresolvable { .. })
    }
}

/// Parent directories kept open at most (an archive's links share a few dozen).
const MAX_OPEN_PARENTS: usize = 64;

/// Checks link targets against one store dir, keeping the directories already resolved open.
pub struct LinkCheck<'a> {
    store: &'a StoreDir,
    real_store: Option<PathBuf>,
    /// Parent directories found to resolve inside the store, opened (`O_PATH`), so each
    /// target costs one `fstatat` of its last component.
    parents: HashMap<PathBuf, OwnedFd>,
}

impl<'a> LinkCheck<'a> {
    pub fn new(store: &'a StoreDir) -> Self {
        LinkCheck {
            store,
            real_store: None,
            parents: HashMap::new(),
        }
    }

    /// Checks that `target` (an absolute path inside the store dir, as the archive reader
    /// already made sure) exists and resolves inside the store dir.
    pub fn check(&mut self, target: &Path) -> Result<(), LinkProblem> {
        let real_store = self.real_store(target)?;
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(self.leaves(target, target.into()));
        };
        if !self.parents.contains_key(parent) {
            // The kernel resolves the directory once, and the path of what it opened is the
            // truth about where it is (no window between a check and a use).
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let fd = open(parent, flags, Mode::empty())
                .map_err(|e| self.failed(target, io::Error::from(e)))?;
            let real = real_path(&fd, parent).map_err(|e| self.failed(target, e))?;
            if !real.starts_with(&real_store) {
                return Err(self.leaves(target, real.join(name)));
            }
            if self.parents.len() >= MAX_OPEN_PARENTS {
                self.parents.clear();
            }
            self.parents.insert(parent.to_path_buf(), fd);
        }
        let fd = &self.parents[parent];
        let st = fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.failed(target, io::Error::from(e)))?;
        if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK {
            let real = std::fs::canonicalize(target).map_err(|e| self.failed(target, e))?;
            if real == real_store || !real.starts_with(&real_store) {
                return Err(self.leaves(target, real));
            }
        }
        Ok(())
    }

    fn real_store(&mut self, target: &Path) -> Result<PathBuf, LinkProblem> {
        if let Some(real) = &self.real_store {
            return Ok(real.clone());
        }
        let real =
            std::fs::canonicalize(self.store.as_path()).map_err(|e| self.failed(target, e))?;
        self.real_store = Some(real.clone());
        Ok(real)
    }

    fn failed(&self, target: &Path, e: io::Error) -> LinkProblem {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => LinkProblem::Missing {
                target: target.into(),
            },
            _ => LinkProblem::Unresolvable {
                target: target.into(),
                reason: e.to_string(),
            },
        }
    }

    fn leaves(&self, target: &Path, resolved: PathBuf) -> LinkProblem {
        LinkProblem::LeavesStore {
            target: target.into(),
            resolved,
            store: self.store.as_path().into(),
        }
    }
}

/// Where the directory open as `fd` (opened as `path`) is: the kernel's own record of it
/// (`/proc/self/fd`), else `path` resolved anew.
fn real_path(fd: &OwnedFd, path: &Path) -> io::Result<PathBuf> {
    match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(real) if real.is_absolute() => Ok(real),
        _ => std::fs::canonicalize(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_store_paths_and_what_is_inside_them() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        // The store dir itself behind a symlink is fine.
        let real_store = base.join("real-store");
        std::fs::create_dir(&real_store).unwrap();
        symlink(&real_store, base.join("store")).unwrap();
        let store = StoreDir::new(base.join("store")).unwrap();
        let sp = |name: &str| store.as_path().join(format!("{}-{name}", "0".repeat(32)));
        let outside = base.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("f"), "x").unwrap();

        std::fs::create_dir(sp("real")).unwrap();
        std::fs::write(sp("real").join("f"), "x").unwrap();
        symlink(sp("real"), sp("alias")).unwrap();
        symlink(&outside, sp("escape")).unwrap();
        std::fs::create_dir(sp("holder")).unwrap();
        symlink(&outside, sp("holder").join("sub")).unwrap();
        symlink(outside.join("f"), sp("holder").join("g")).unwrap();
        symlink(store.as_path(), sp("to-store")).unwrap();

        let mut check = LinkCheck::new(&store);
        for good in [sp("real").join("f"), sp("alias").join("f"), sp("alias")] {
            assert_eq!(check.check(&good), Ok(()), "{}", good.display());
        }
        let leaves = |t: PathBuf, r: PathBuf| LinkProblem::LeavesStore {
            target: t,
            resolved: r,
            store: store.as_path().into(),
        };
        let cases = [
            (
                sp("escape").join("f"),
                leaves(sp("escape").join("f"), outside.join("f")),
            ),
            (sp("escape"), leaves(sp("escape"), outside.clone())),
            (
                sp("holder").join("sub/f"),
                leaves(sp("holder").join("sub/f"), outside.join("f")),
            ),
            (
                sp("holder").join("g"),
                leaves(sp("holder").join("g"), outside.join("f")),
            ),
            (sp("to-store"), leaves(sp("to-store"), real_store.clone())),
            (
                sp("real").join("missing"),
                LinkProblem::Missing {
                    target: sp("real").join("missing"),
                },
            ),
            (
                sp("gone").join("f"),
                LinkProblem::Missing {
                    target: sp("gone").join("f"),
                },
            ),
        ];
        for (target, want) in cases {
            assert_eq!(check.check(&target), Err(want), "{}", target.display());
        }
    }
}
