//! `RelPath`: a path inside the archive, which by construction cannot escape the directory it is
//! unpacked into.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A non-empty relative path made only of normal components: no root, no `.`, no `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelPath(PathBuf);

/// Why a string is not a valid `RelPath`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelPathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path is absolute")]
    Absolute,
    #[error("the path has a `..` component")]
    ParentComponent,
    #[error("the path has a `.` component")]
    CurrentComponent,
    #[error("the path has a NUL byte")]
    Nul,
    #[error(
        "the path has a component of {0} bytes, more than the {NAME_MAX} a file name may have"
    )]
    NameTooLong(usize),
}

/// The longest file name Linux file systems take (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

impl RelPath {
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, RelPathError> {
        let path = path.into();
        let bytes = path.as_os_str().as_encoded_bytes();
        // A name no file system can hold is refused here, before anything is created, rather
        // than by the first syscall that meets it halfway through an unpack.
        if bytes.contains(&0) {
            return Err(RelPathError::Nul);
        }
        if let Some(long) = bytes.split(|&b| b == b'/').find(|c| c.len() > NAME_MAX) {
            return Err(RelPathError::NameTooLong(long.len()));
        }
        // Fast path, taken for every archive entry: already normal, nothing to rebuild.
        if is_normal(bytes) {
            return Ok(RelPath(path));
        }
        let mut any = false;
        // `Path::components` silently drops interior `.` components; look at the raw bytes too.
        for raw in path.as_os_str().as_encoded_bytes().split(|&b| b == b'/') {
            if raw == b"." {
                return Err(RelPathError::CurrentComponent);
            }
        }
        for c in path.components() {
            match c {
                Component::Normal(_) => any = true,
                Component::RootDir | Component::Prefix(_) => return Err(RelPathError::Absolute),
                Component::ParentDir => return Err(RelPathError::ParentComponent),
                Component::CurDir => return Err(RelPathError::CurrentComponent),
            }
        }
        if !any {
            return Err(RelPathError::Empty);
        }
        Ok(RelPath(path.components().collect()))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// The first component: which root (`target` or `build`) the entry belongs to.
    pub fn root(&self) -> &OsStr {
        self.split_root().0
    }

    /// The path below the root component (empty for the root itself).
    pub fn below_root(&self) -> &Path {
        Path::new(self.split_root().1)
    }

    fn split_root(&self) -> (&OsStr, &OsStr) {
        let bytes = self.bytes();
        let (root, rest) = match bytes.iter().position(|&b| b == b'/') {
            Some(slash) => (&bytes[..slash], &bytes[slash + 1..]),
            None => (bytes, &[][..]),
        };
        (OsStr::from_bytes(root), OsStr::from_bytes(rest))
    }

    pub fn file_name(&self) -> &OsStr {
        self.0
            .file_name()
            .expect("RelPath always ends in a normal component")
    }

    /// Whether this is a root entry (`target`, `build`): a single component.
    pub fn is_root(&self) -> bool {
        !self.bytes().contains(&b'/')
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.0.as_os_str().as_encoded_bytes()
    }
}

/// Whether `bytes` is a relative path of normal components only, with single separators and
/// no trailing one: exactly the paths `RelPath::new` keeps as they are.
fn is_normal(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// Component-wise order (`Path`'s), which is exactly the order of a depth-first walk that visits
/// each directory's children sorted by name: parents sort before children, and an archive in
/// this order can be checked for duplicates and parentless entries with O(depth) memory.
impl Ord for RelPath {
    /// Bytes compared with `/` below every other byte, which for normalized paths is exactly
    /// `Path`'s component order, without splitting into components (this runs per entry).
    fn cmp(&self, other: &Self) -> Ordering {
        cmp(self.bytes(), other.bytes())
    }
}

// The comparisons on the bytes of normalized paths, shared with `reader`'s order check, which
// keeps the last entry's path in a reused buffer instead of a `RelPath` per entry.

pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let key = |b: &u8| if *b == b'/' { 0 } else { u16::from(*b) + 1 };
    a.iter().map(key).cmp(b.iter().map(key))
}

/// Component-wise prefix (`a/b` starts with `a`, not with `a/` nor `a/b/c`; `ab` does not start
/// with `a`), on the bytes: a `RelPath` is normalized, so this is exact.
pub(crate) fn starts_with(path: &[u8], ancestor: &[u8]) -> bool {
    path.starts_with(ancestor) && (path.len() == ancestor.len() || path[ancestor.len()] == b'/')
}

/// Whether `parent` is the directory directly containing `child`.
pub(crate) fn is_parent_of(parent: &[u8], child: &[u8]) -> bool {
    child.len() > parent.len() + 1
        && starts_with(child, parent)
        && !child[parent.len() + 1..].contains(&b'/')
}

impl PartialOrd for RelPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `bytes` as text for a message: invalid UTF-8 replaced, control characters escaped (`\0`,
/// `\n`, `\u{1b}`), so a hostile name can neither hide nor rewrite the terminal.
pub fn display_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_debug().to_string(),
            c => c.to_string(),
        })
        .collect()
}

impl fmt::Display for RelPath {
    /// For messages: control characters escaped (see [`display_bytes`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display_bytes(self.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths_and_normalizes_slashes() {
        assert_eq!(RelPath::new("a//b/").unwrap().as_path(), Path::new("a/b"));
    }

    #[test]
    fn rejects_escapes_and_names_no_file_system_holds() {
        let long = format!("a/{}", "n".repeat(256));
        assert!(RelPath::new(format!("a/{}", "n".repeat(255))).is_ok());
        let cases = [
            ("", RelPathError::Empty),
            ("/etc/passwd", RelPathError::Absolute),
            ("a/../../b", RelPathError::ParentComponent),
            ("..", RelPathError::ParentComponent),
            ("./a", RelPathError::CurrentComponent),
            ("a/./b", RelPathError::CurrentComponent),
            (".", RelPathError::CurrentComponent),
            ("a/b\0c", RelPathError::Nul),
            (&long, RelPathError::NameTooLong(256)),
        ];
        for (input, want) in cases {
            assert_eq!(RelPath::new(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn displays_control_bytes_escaped() {
        assert_eq!(
            display_bytes(b"a\0b\x1b[2J\n\xff"),
            "a\\0b\\u{1b}[2J\\n\u{fffd}"
        );
    }

    #[test]
    fn orders_like_a_sorted_depth_first_walk() {
        let mut v: Vec<_> = ["a-c", "a/b", "a", "a/b/c", "b"]
            .iter()
            .map(|s| RelPath::new(*s).unwrap())
            .collect();
        v.sort();
        let got: Vec<_> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["a", "a/b", "a/b/c", "a-c", "b"]);
    }

    #[test]
    fn byte_order_is_component_order() {
        let names = [
            "a", "a/b", "a/b/c", "a-c", "a.d", "ab", "a/bc", "b", "a/b-c", "a/b/d",
        ];
        for x in names {
            for y in names {
                let (px, py) = (RelPath::new(x).unwrap(), RelPath::new(y).unwrap());
                assert_eq!(px.cmp(&py), Path::new(x).cmp(Path::new(y)), "{x} vs {y}");
                assert_eq!(
                    starts_with(px.bytes(), py.bytes()),
                    Path::new(x).starts_with(y),
                    "{x} starts with {y}"
                );
                let parent = Path::new(x).parent() == Some(Path::new(y));
                assert_eq!(
                    is_parent_of(py.bytes(), px.bytes()),
                    parent,
                    "{y} parent of {x}"
                );
            }
        }
    }

    #[test]
    fn splits_root_and_rest() {
        let p = RelPath::new("target/debug/deps").unwrap();
        assert_eq!(p.root(), "target");
        assert_eq!(p.below_root(), Path::new("debug/deps"));
    }
}
