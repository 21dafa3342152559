//! Materializes entries beneath a directory without ever following a symlink in it.
//!
//! Every creation is an `*at` call relative to an open file descriptor of the parent directory,
//! and parent directories are opened one component at a time with `O_NOFOLLOW`, so an entry can
//! never be written through a symlink that is already in the tree (one planted by an earlier
//! entry or by another process). Open parents are kept on a stack: for input in sorted order
//! (our archives) each entry costs one syscall for its creation plus one per directory change.
//! Only the deepest [`MAX_OPEN_DIRS`] directories of the stack keep their descriptor; one closed
//! above them is reopened through `..` of its child when the walk climbs back to it (and must be
//! the same directory), so a tree of any depth needs a bounded number of descriptors. Removing
//! a tree ([`remove_tree`], what a failed unpack rolls back with) works the same way.
//!
//! # Security
//! Defended: entry paths escaping the root (callers pass validated `RelPath`s, and parents are
//! never resolved through symlinks), writes through pre-existing symlinks, replacing a directory,
//! running out of file descriptors in a deep tree. Not defended: a concurrent process with write
//! access to the tree renaming directories around while we work (a directory reopened through
//! `..` that is not the one we left is an error, not a defence); the root path itself is resolved
//! once, normally, when the tree is opened.

use crate::archive::path;
use crate::fsutil::{FsError, IoContext};
use filetime::FileTime;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{futimens, mkdirat, utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What to do when an entry's name already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Fail (`EEXIST`): the tree was empty, so a clash is a bug or a race.
    Fail,
    /// Replace files and symlinks, keep directories (overlaying a chain of archives).
    Replace,
}

/// Directory descriptors a tree keeps open at most, whatever its depth.
pub const MAX_OPEN_DIRS: usize = 32;

struct Frame {
    rel: PathBuf,
    /// Open for the deepest [`MAX_OPEN_DIRS`] frames (always for the top one).
    fd: Option<OwnedFd>,
    /// Device and inode, recorded when `fd` is closed, to recognise the directory on reopening.
    id: Option<(u64, u64)>,
    mtime: Option<FileTime>,
}

/// A directory being filled.
pub struct Tree {
    root: PathBuf,
    existing: Existing,
    root_mtime: Option<FileTime>,
    dirs: DirStack,
}

/// The open directories from the root down to the last entry's parent.
struct DirStack {
    root_fd: OwnedFd,
    stack: Vec<Frame>,
    /// The directory created last and its mtime, not applied yet: if entries follow inside
    /// it, it is opened and gets its mtime when closed (after its children changed it);
    /// if not, it gets it as soon as the next entry shows it has no children.
    last_dir: Option<(PathBuf, FileTime)>,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Tree {
    /// Opens an existing directory as the root.
    pub fn open(root: &Path, existing: Existing) -> Result<Self, FsError> {
        let root_fd = nix::fcntl::open(root, DIR_FLAGS, Mode::empty())
            .map_err(io::Error::from)
            .with_path("open directory", root)?;
        let dirs = DirStack {
            root_fd,
            stack: Vec::new(),
            last_dir: None,
        };
        Ok(Tree {
            root: root.into(),
            existing,
            root_mtime: None,
            dirs,
        })
    }

    /// The directory the tree fills.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets the root's own mtime; applied in `finish`, after all its children exist.
    pub fn set_root_mtime(&mut self, mtime: FileTime) {
        self.root_mtime = Some(mtime);
    }

    pub fn create_dir(&mut self, rel: &Path, mode: u32, mtime: FileTime) -> Result<(), FsError> {
        self.create_dir_untimed(rel, mode)?;
        self.dirs.last_dir = Some((rel.to_path_buf(), mtime));
        Ok(())
    }

    /// Creates a directory and leaves its mtime to [`Tree::set_dir_mtime`], for entries that
    /// other trees (threads) create in it later, each creation changing it.
    pub fn create_dir_untimed(&mut self, rel: &Path, mode: u32) -> Result<(), FsError> {
        let (parent, name) = self.dirs.parent(&self.root, rel)?;
        let mode = Mode::from_bits_truncate((mode & 0o777) | 0o700);
        match mkdirat(parent, name, mode) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) if self.existing == Existing::Replace && is_dir_at(parent, name) => {
                Ok(())
            }
            Err(e) => Err(fs_err(&self.root, "create directory", rel, e)),
        }
    }

    /// Sets the mtime of the directory `rel`, made by [`Tree::create_dir_untimed`], once
    /// everything inside it exists.
    pub fn set_dir_mtime(&mut self, rel: &Path, mtime: FileTime) -> Result<(), FsError> {
        let (parent, name) = self.dirs.parent(&self.root, rel)?;
        set_times_at(parent, name, mtime).map_err(|e| fs_err(&self.root, "set mtime of", rel, e))
    }

    pub fn create_symlink(&mut self, rel: &Path, target: &Path) -> Result<(), FsError> {
        self.create_with(rel, "create symlink", |parent, name| {
            symlinkat(target, parent, name)
        })
    }

    /// Creates `rel` as a hard link to `existing_rel`, an entry created earlier in this tree.
    pub fn hard_link(&mut self, rel: &Path, existing_rel: &Path) -> Result<(), FsError> {
        let (src_parent, src_name) = self.dirs.parent(&self.root, existing_rel)?;
        let src_parent = src_parent
            .try_clone_to_owned()
            .map_err(|e| FsError::new("open directory", self.root.join(existing_rel), e))?;
        let src_name = src_name.to_owned();
        self.create_with(rel, "create hard link", |parent, name| {
            linkat(
                &src_parent,
                src_name.as_os_str(),
                parent,
                name,
                nix::fcntl::AtFlags::empty(),
            )
        })
    }

    /// Creates a regular file with `contents`, writable by its owner; returns the bytes written.
    pub fn create_file(
        &mut self,
        rel: &Path,
        mode: u32,
        mtime: FileTime,
        contents: &mut dyn BufRead,
    ) -> Result<u64, FsError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate((mode & 0o777) | 0o200);
        let mut fd = None;
        self.create_with(rel, "create", |parent, name| {
            fd = Some(openat(parent, name, flags, mode)?);
            Ok(())
        })?;
        let mut file = File::from(fd.expect("create_with succeeded"));
        let n = write_all_from(contents, &mut file).with_path("write", &self.root.join(rel))?;
        let time = timespec(mtime);
        futimens(file.as_fd(), &time, &time)
            .map_err(|e| fs_err(&self.root, "set mtime of", rel, e))?;
        Ok(n)
    }

    /// Pops every open directory, applying the mtimes of directories whose children are done.
    pub fn finish(mut self) -> Result<(), FsError> {
        self.dirs.settle_last_dir(&self.root, None)?;
        while !self.dirs.stack.is_empty() {
            self.dirs.pop(&self.root)?;
        }
        if let Some(mtime) = self.root_mtime {
            let t = timespec(mtime);
            futimens(self.dirs.root_fd.as_fd(), &t, &t)
                .map_err(|e| fs_err(&self.root, "set mtime of", Path::new(""), e))?;
        }
        Ok(())
    }

    /// Runs `create(parent_fd, name)`, replacing an existing non-directory if allowed.
    fn create_with(
        &mut self,
        rel: &Path,
        what: &'static str,
        mut create: impl FnMut(BorrowedFd<'_>, &OsStr) -> nix::Result<()>,
    ) -> Result<(), FsError> {
        let (parent, name) = self.dirs.parent(&self.root, rel)?;
        match create(parent, name) {
            Err(Errno::EEXIST) if self.existing == Existing::Replace => {
                unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| fs_err(&self.root, "replace", rel, e))?;
                create(parent, name).map_err(|e| fs_err(&self.root, what, rel, e))
            }
            other => other.map_err(|e| fs_err(&self.root, what, rel, e)),
        }
    }
}

impl DirStack {
    /// The open parent directory of `rel` and `rel`'s last component, opening (and if need be
    /// creating) the directories in between one component at a time.
    fn parent<'a>(
        &mut self,
        root: &Path,
        rel: &'a Path,
    ) -> Result<(BorrowedFd<'_>, &'a OsStr), FsError> {
        let name = rel
            .file_name()
            .ok_or_else(|| fs_err(root, "create", rel, Errno::EINVAL))?;
        // On bytes rather than `Path` components: this runs for every entry.
        let bytes = rel.as_os_str().as_bytes();
        let parent = &bytes[..bytes.len() - name.len()]
            .strip_suffix(b"/")
            .unwrap_or(&[]);
        self.settle_last_dir(root, Some(parent))?;
        while self
            .stack
            .last()
            .is_some_and(|f| !path::starts_with(parent, f.rel.as_os_str().as_bytes()))
        {
            self.pop(root)?;
        }
        let opened = self.stack.last().map_or(0, |f| f.rel.as_os_str().len() + 1);
        let mut end = opened;
        for component in parent.get(opened..).unwrap_or(&[]).split(|&b| b == b'/') {
            if component.is_empty() {
                break;
            }
            if component == b"." || component == b".." {
                return Err(fs_err(root, "open directory", rel, Errno::EINVAL));
            }
            end += component.len();
            let rel_dir = PathBuf::from(OsStr::from_bytes(&parent[..end]));
            end += 1;
            let fd = self
                .open_or_create_dir(OsStr::from_bytes(component))
                .map_err(|e| fs_err(root, "open directory", &rel_dir, e))?;
            let mtime = self
                .last_dir
                .take_if(|(p, _)| *p == rel_dir)
                .map(|(_, t)| t);
            self.stack.push(Frame {
                rel: rel_dir,
                fd: Some(fd),
                id: None,
                mtime,
            });
            self.close_beyond_window(root)?;
        }
        Ok((self.top_fd(), name))
    }

    /// The innermost open directory: the top frame's (always open), else the root's.
    fn top_fd(&self) -> BorrowedFd<'_> {
        self.stack.last().map_or(self.root_fd.as_fd(), |f| {
            f.fd.as_ref().expect("the top frame is open").as_fd()
        })
    }

    /// Closes the descriptor of the frame that just left the window of open ones.
    fn close_beyond_window(&mut self, root: &Path) -> Result<(), FsError> {
        let Some(i) = self.stack.len().checked_sub(MAX_OPEN_DIRS + 1) else {
            return Ok(());
        };
        let frame = &mut self.stack[i];
        if let Some(fd) = frame.fd.take() {
            let id = dir_id(fd.as_fd()).map_err(|e| fs_err(root, "stat", &frame.rel, e))?;
            frame.id = Some(id);
        }
        Ok(())
    }

    fn open_or_create_dir(&self, name: &OsStr) -> nix::Result<OwnedFd> {
        let parent = self.top_fd();
        match openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Err(Errno::ENOENT) => {
                mkdirat(parent, name, Mode::from_bits_truncate(0o755))?;
                openat(parent, name, DIR_FLAGS, Mode::empty())
            }
            other => other,
        }
    }

    /// Applies the last created directory's mtime now unless the next entry, whose parent is
    /// `next_parent` (`None`: there is none), lies inside it.
    fn settle_last_dir(&mut self, root: &Path, next_parent: Option<&[u8]>) -> Result<(), FsError> {
        let Some((dir, mtime)) = &self.last_dir else {
            return Ok(());
        };
        if next_parent.is_some_and(|p| path::starts_with(p, dir.as_os_str().as_bytes())) {
            return Ok(());
        }
        // Nothing was opened or closed since it was created: the top of the stack is its parent.
        let parent = self.top_fd();
        let name = dir.file_name().expect("a created directory has a name");
        set_times_at(parent, name, *mtime).map_err(|e| fs_err(root, "set mtime of", dir, e))?;
        self.last_dir = None;
        Ok(())
    }

    fn pop(&mut self, root: &Path) -> Result<(), FsError> {
        let frame = self.stack.pop().expect("pop on a non-empty stack");
        let fd = frame.fd.expect("the top frame is open");
        if let Some(parent) = self.stack.last_mut().filter(|p| p.fd.is_none()) {
            let reopened = reopen_parent(fd.as_fd(), parent.id)
                .map_err(|e| fs_err(root, "reopen directory", &parent.rel, e))?;
            parent.fd = Some(reopened);
        }
        if let Some(mtime) = frame.mtime {
            let t = timespec(mtime);
            futimens(fd.as_fd(), &t, &t)
                .map_err(|e| fs_err(root, "set mtime of", &frame.rel, e))?;
        }
        Ok(())
    }
}

fn dir_id(fd: BorrowedFd<'_>) -> nix::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Opens the parent of the directory `child` through `..`, and checks it is the directory
/// `expected` names (device, inode): a directory renamed meanwhile is an error, not followed.
fn reopen_parent(child: BorrowedFd<'_>, expected: Option<(u64, u64)>) -> nix::Result<OwnedFd> {
    let parent = openat(child, "..", DIR_FLAGS, Mode::empty())?;
    if expected.is_some_and(|id| dir_id(parent.as_fd()) != Ok(id)) {
        return Err(Errno::ESTALE);
    }
    Ok(parent)
}

/// Copies `from` to `to` a buffer at a time: contents held in memory go out in one `write`.
fn write_all_from(from: &mut dyn BufRead, to: &mut File) -> io::Result<u64> {
    let mut written = 0;
    loop {
        let buf = from.fill_buf()?;
        if buf.is_empty() {
            return Ok(written);
        }
        to.write_all(buf)?;
        let n = buf.len();
        from.consume(n);
        written += n as u64;
    }
}

fn fs_err(root: &Path, op: &'static str, rel: &Path, e: Errno) -> FsError {
    FsError::new(op, root.join(rel), io::Error::from(e))
}

fn is_dir_at(parent: BorrowedFd<'_>, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
}

fn timespec(t: FileTime) -> TimeSpec {
    TimeSpec::new(t.unix_seconds(), t.nanoseconds() as _)
}

fn set_times_at(parent: BorrowedFd<'_>, name: &OsStr, mtime: FileTime) -> nix::Result<()> {
    let t = timespec(mtime);
    utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink)
}

/// What a destination root was when an unpack prepared it, which says how to undo the unpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// It did not exist: created, and removed again on failure.
    Created,
    /// An empty directory (but for the entry the caller allowed): emptied again on failure.
    Empty,
    /// Something else is there: not to be unpacked into.
    Occupied,
}

/// Prepares a destination root: creates it if absent, accepts it if empty (but for an entry
/// named `except`, if given). Callers refuse a symlink first.
pub fn prepare_empty_root(root: &Path, except: Option<&OsStr>) -> Result<Destination, FsError> {
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            crate::fsutil::create_dir_all(root)?;
            Ok(Destination::Created)
        }
        Err(e) => Err(FsError::new("stat", root, e)),
        Ok(m) if m.is_dir() => {
            for entry in std::fs::read_dir(root).with_path("read directory", root)? {
                let entry = entry.with_path("read directory", root)?;
                if Some(entry.file_name().as_os_str()) != except {
                    return Ok(Destination::Occupied);
                }
            }
            Ok(Destination::Empty)
        }
        Ok(_) => Ok(Destination::Occupied),
    }
}

/// Undoes a failed unpack into a root `prepare_empty_root` found `was`.
pub fn rollback_root(root: &Path, was: Destination) -> Result<(), FsError> {
    remove_tree(root, was == Destination::Created)
}

/// Removes everything below the directory `root`, and `root` itself if `and_root`, never
/// following a symlink and with at most three descriptors open, whatever the depth: it goes
/// down one directory at a time and climbs back through `..` (checked to be the directory it
/// came from). Memory grows with the depth (a name per level), not with the width.
pub fn remove_tree(root: &Path, and_root: bool) -> Result<(), FsError> {
    let failed = |op, rel: &Path, e: Errno| fs_err(root, op, rel, e);
    let root_fd = nix::fcntl::open(root, DIR_FLAGS, Mode::empty())
        .map_err(|e| failed("open directory", Path::new(""), e))?;
    let root_id = dir_id(root_fd.as_fd()).map_err(|e| failed("stat", Path::new(""), e))?;
    // The directories from the root down to the current one: name, and the parent's id.
    let mut below: Vec<(OsString, (u64, u64))> = Vec::new();
    let (mut dir, mut dir_id_now) = (root_fd, root_id);
    let rel = |below: &[(OsString, (u64, u64))]| -> PathBuf {
        below.iter().map(|(n, _)| n.as_os_str()).collect()
    };
    loop {
        match clear_files(dir.as_fd())
            .map_err(|e| failed("remove the contents of", &rel(&below), e))?
        {
            Some(name) => {
                let child = openat(dir.as_fd(), name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .map_err(|e| failed("open directory", &rel(&below).join(&name), e))?;
                below.push((name, dir_id_now));
                dir_id_now = dir_id(child.as_fd()).map_err(|e| failed("stat", &rel(&below), e))?;
                dir = child;
            }
            None => {
                let Some((name, parent_id)) = below.pop() else {
                    break;
                };
                let path = rel(&below).join(&name);
                let parent = reopen_parent(dir.as_fd(), Some(parent_id))
                    .map_err(|e| failed("reopen the parent of", &path, e))?;
                drop(dir);
                unlinkat(parent.as_fd(), name.as_os_str(), UnlinkatFlags::RemoveDir)
                    .map_err(|e| failed("remove directory", &path, e))?;
                (dir, dir_id_now) = (parent, parent_id);
            }
        }
    }
    drop(dir);
    if and_root {
        std::fs::remove_dir(root).with_path("remove directory", root)?;
    }
    Ok(())
}

/// Unlinks every non-directory in `dir`; returns the name of a subdirectory, if one is left.
fn clear_files(dir: BorrowedFd<'_>) -> nix::Result<Option<OsString>> {
    use nix::dir::{Dir, Type};
    loop {
        let mut listing = Dir::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
        let mut removed = false;
        for entry in listing.iter() {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == Type::Directory,
                None => is_dir_at(dir, name),
            };
            if is_dir {
                return Ok(Some(name.to_owned()));
            }
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
            removed = true;
        }
        // Names removed while listing: list again, so that none can have been skipped.
        if !removed {
            return Ok(None);
        }
    }
}
