//! Filesystem helpers whose errors always name the path they failed on.
//!
//! Modeled on cargo-util's `paths`: each helper carries the name of the `std::fs` function it
//! wraps, so call sites read like std while error messages say which file was involved.
//! Atomic writes go through a temporary file in the destination directory plus a rename.
//! Files that are input (a manifest, an anchor, an archive) are opened with [`open_regular`]:
//! a fifo, a device or a directory there is refused before a byte is read.

use crate::fault::{Fault, HasFault};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An I/O failure on a named path.
#[derive(Debug, thiserror::Error)]
#[error("failed to {op} `{path}`")]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl HasFault for FsError {
    fn fault(&self) -> Fault {
        Fault::Environment
    }
}

impl FsError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attaches an operation and a path to an `io::Result`.
pub trait IoContext<T> {
    fn with_path(self, op: &'static str, path: &Path) -> Result<T, FsError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn with_path(self, op: &'static str, path: &Path) -> Result<T, FsError> {
        self.map_err(|e| FsError::new(op, path, e))
    }
}

/// Why a file that is input cannot be read as such. Apart from [`InputFileError::Fs`] (the
/// environment failed), the input itself is wrong.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("`{0}` does not exist")]
    Missing(PathBuf),
    #[error("`{path}` is not a regular file but a {kind}")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("`{path}` is {len} bytes long, more than the {max} bytes a {what} may have")]
    TooBig {
        path: PathBuf,
        len: u64,
        max: u64,
        what: &'static str,
    },
    #[error("`{0}` is not UTF-8")]
    NotUtf8(PathBuf),
}

impl HasFault for InputFileError {
    fn fault(&self) -> Fault {
        match self {
            InputFileError::Fs(e) => e.fault(),
            InputFileError::Missing(_)
            | InputFileError::NotRegular { .. }
            | InputFileError::TooBig { .. }
            | InputFileError::NotUtf8(_) => Fault::Input,
        }
    }
}

/// Opens `path` (following symlinks) for reading if it is a regular file. The open does not
/// block (`O_NONBLOCK`: a fifo would wait for a writer), and the check is made on the opened
/// file, so what was checked is what is read.
pub fn open_regular(path: &Path) -> Result<fs::File, InputFileError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => InputFileError::Missing(path.into()),
            _ => FsError::new("open", path, e).into(),
        })?;
    let meta = file.metadata().with_path("stat", path)?;
    if !meta.is_file() {
        return Err(InputFileError::NotRegular {
            path: path.into(),
            kind: kind_name(&meta.file_type()),
        });
    }
    // A regular file ignores O_NONBLOCK; clear it anyway so reads mean what they say.
    let flags = fcntl(&file, FcntlArg::F_GETFL).map_err(io::Error::from);
    let flags = OFlag::from_bits_truncate(flags.with_path("read the flags of", path)?);
    fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))
        .map_err(io::Error::from)
        .with_path("set the flags of", path)?;
    Ok(file)
}

/// Reads a whole regular file of at most `max` bytes (a `what`) as UTF-8, without ever holding
/// more than `max` bytes of it.
pub fn read_input_to_string(
    path: &Path,
    max: u64,
    what: &'static str,
) -> Result<String, InputFileError> {
    let file = open_regular(path)?;
    let too_big = |len| InputFileError::TooBig {
        path: path.into(),
        len,
        max,
        what,
    };
    let len = file.metadata().with_path("stat", path)?.len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_path("read", path)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| InputFileError::NotUtf8(path.into()))
}

/// What kind of file a non-regular file is, for messages.
pub fn kind_name(t: &fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

pub fn create_dir_all(path: &Path) -> Result<(), FsError> {
    fs::create_dir_all(path).with_path("create directory", path)
}

pub fn symlink_metadata(path: &Path) -> Result<fs::Metadata, FsError> {
    fs::symlink_metadata(path).with_path("stat", path)
}

pub fn read_link(path: &Path) -> Result<PathBuf, FsError> {
    fs::read_link(path).with_path("read symlink", path)
}

/// Writes `path` atomically: the bytes go to a temporary file next to it, which is renamed over
/// `path` only once `write` succeeded and the data is flushed. A failure leaves no `path` and no
/// temporary file behind.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), FsError> {
    let tmp = new_temp_beside(path)?;
    let mut file = io::BufWriter::new(tmp.as_file());
    write(&mut file)
        .and_then(|()| file.flush())
        .with_path("write", tmp.path())?;
    drop(file);
    persist(tmp, path)
}

/// Creates a temporary file `.<name>.<random>.tmp` in the directory of `path`, removed on drop,
/// readable like any file (mode 0644 less the umask; tempfile's own default is 0600).
pub fn new_temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, FsError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_path("create a temporary file in", dir)
}

/// Whether `name` is what [`new_temp_beside`] names a temporary file for `target`.
pub fn is_temp_name_for(name: &std::ffi::OsStr, target: &str) -> bool {
    let name = name.as_encoded_bytes();
    name.strip_prefix(b".")
        .and_then(|n| n.strip_prefix(target.as_bytes()))
        .and_then(|n| n.strip_prefix(b"."))
        .is_some_and(|n| n.ends_with(b".tmp"))
}

/// Renames a finished temporary file to its final name.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), FsError> {
    tmp.persist(path)
        .map(drop)
        .map_err(|e| FsError::new("rename into place", path, e.error))
}

/// Copies `from` to a new file `to` (which must not exist), preferring a reflink so that
/// filesystems like btrfs and XFS share the blocks instead of duplicating them; mode is kept.
pub fn copy_new(from: &Path, to: &Path) -> Result<u64, FsError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let mut src = fs::File::open(from).with_path("open", from)?;
    let mode = src.metadata().with_path("stat", from)?.permissions().mode();
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o7777)
        .open(to)
        .with_path("create", to)?;
    // FICLONE shares extents on CoW filesystems; everywhere else std::io::copy uses
    // copy_file_range, which is still a kernel-side copy.
    if reflink(&dst, &src) {
        return Ok(src.metadata().map(|m| m.len()).unwrap_or(0));
    }
    io::copy(&mut src, &mut dst).with_path("copy into", to)
}

/// Turns a walkdir failure below `root` into an `FsError` naming the entry that failed.
pub fn walk_error(root: &Path, err: walkdir::Error) -> FsError {
    let path = err.path().unwrap_or(root).to_path_buf();
    // Links are never followed in our walks, so walkdir cannot report a loop: this is I/O.
    let source = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("file system loop"));
    FsError::new("read directory", path, source)
}

/// The most symlink hops followed when resolving a chain (Linux's own limit).
pub const MAX_LINK_HOPS: usize = 40;

/// Why a symlink chain did not end at an existing file.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("it is a dangling symlink (to `{0}`)")]
    Dangling(PathBuf),
    #[error("it is a symlink chain longer than {MAX_LINK_HOPS} hops")]
    Loop,
}

/// Follows a symlink chain to the first path that is not a symlink, without canonicalizing the
/// directories on the way (a store dir reached through a symlink keeps its name).
pub fn resolve_link(path: &Path) -> Result<PathBuf, ResolveError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        let target = read_link(&current)?;
        let target = match current.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
        match fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => current = target,
            // Interior `.` components (`dir/./file`) are harmless; drop them so store paths parse.
            Ok(_) => return Ok(target.components().collect()),
            Err(_) => return Err(ResolveError::Dangling(target)),
        }
    }
    Err(ResolveError::Loop)
}

/// `ioctl(dst, FICLONE, src)`; false when the filesystem cannot reflink. By hand: the `nix`
/// crate has no wrapper for FICLONE.
fn reflink(dst: &std::fs::File, src: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const FICLONE: u64 = 0x4004_9409;
    // SAFETY: FICLONE takes the source fd as its argument and touches no user memory.
    unsafe { nix::libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) == 0 }
}
