//! [`TreeSnapshot`]: what a directory tree looks like, in a form tests can compare.
//!
//! Every entry below the root (the root itself is left out) is recorded with its kind,
//! permission bits, and:
//! - files: length, a 64-bit FNV-1a hash of the bytes, mtime with nanoseconds;
//! - directories: mtime with nanoseconds;
//! - symlinks: the link text as stored (never followed, so no hash and no mtime; what cargo sees
//!   through a link is the target's business).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A sorted map from path (relative to the captured root) to [`Node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSnapshot {
    root: PathBuf,
    nodes: BTreeMap<PathBuf, Node>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
    Symlink,
}

/// One entry of a [`TreeSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// `st_mode & 0o7777`.
    pub mode: u32,
    /// Files: byte length. Others: 0.
    pub len: u64,
    /// Files: FNV-1a 64 of the contents. Others: 0.
    pub hash: u64,
    /// Symlinks: the stored target.
    pub link: Option<PathBuf>,
    /// Files and directories: `st_mtime`, `st_mtime_nsec`.
    pub mtime: Option<Mtime>,
}

/// A modification time with nanoseconds, printed as `secs.nnnnnnnnn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: i64,
}

/// What [`TreeSnapshot::diff_with`] compares. Kinds, link targets, lengths and hashes are always
/// compared; a path present on one side only is always a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compare {
    pub modes: bool,
    pub file_mtimes: bool,
    pub dir_mtimes: bool,
}

impl Compare {
    /// Everything.
    pub const ALL: Compare = Compare {
        modes: true,
        file_mtimes: true,
        dir_mtimes: true,
    };
    /// Everything but directory mtimes, which change whenever an entry is added or removed.
    pub const IGNORE_DIR_MTIMES: Compare = Compare {
        dir_mtimes: false,
        ..Compare::ALL
    };
    /// Only what is there and what it contains: no mtimes, no modes.
    pub const CONTENTS: Compare = Compare {
        modes: false,
        file_mtimes: false,
        dir_mtimes: false,
    };
}

impl TreeSnapshot {
    /// Walks `dir` without following symlinks. Panics if `dir` is missing or unreadable.
    pub fn capture(dir: impl AsRef<Path>) -> TreeSnapshot {
        let root = dir.as_ref();
        let mut nodes = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
            let entry = entry.unwrap_or_else(|e| panic!("walk `{}`: {e}", root.display()));
            let path = entry.path();
            let meta = fs::symlink_metadata(path)
                .unwrap_or_else(|e| panic!("lstat `{}`: {e}", path.display()));
            let rel = path
                .strip_prefix(root)
                .expect("walkdir stays below its root");
            nodes.insert(rel.to_path_buf(), Node::from_metadata(path, &meta));
        }
        TreeSnapshot {
            root: root.to_path_buf(),
            nodes,
        }
    }

    /// The directory this was captured from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn nodes(&self) -> &BTreeMap<PathBuf, Node> {
        &self.nodes
    }

    pub fn get(&self, rel: impl AsRef<Path>) -> Option<&Node> {
        self.nodes.get(rel.as_ref())
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Keeps only the entries whose relative path satisfies `keep`.
    pub fn filter(mut self, mut keep: impl FnMut(&Path, &Node) -> bool) -> TreeSnapshot {
        self.nodes.retain(|path, node| keep(path, node));
        self
    }

    /// Like [`TreeSnapshot::capture`], but a symlink is recorded as what it finally points at
    /// (a file's contents, mode and mtime), so a tree of links into a store compares equal to
    /// the tree of real files it stands for.
    pub fn capture_following_links(dir: impl AsRef<Path>) -> TreeSnapshot {
        let mut snap = TreeSnapshot::capture(&dir);
        for (rel, node) in snap.nodes.iter_mut() {
            if node.kind == NodeKind::Symlink {
                let path = snap.root.join(rel);
                let meta = fs::metadata(&path)
                    .unwrap_or_else(|e| panic!("stat `{}`: {e}", path.display()));
                *node = Node::from_metadata(&path, &meta);
            }
        }
        snap
    }

    /// Rewrites every node, e.g. to mask mode bits both sides may legitimately differ in.
    pub fn map(mut self, mut f: impl FnMut(&Path, &mut Node)) -> TreeSnapshot {
        for (path, node) in self.nodes.iter_mut() {
            f(path, node);
        }
        self
    }

    /// Drops every entry whose file name is `name` (e.g. `.cargo-lock`).
    pub fn without_named(self, name: &str) -> TreeSnapshot {
        self.filter(|path, _| path.file_name() != Some(std::ffi::OsStr::new(name)))
    }

    /// Drops `prefix` and everything below it (e.g. `debug/incremental`).
    pub fn without(self, prefix: impl AsRef<Path>) -> TreeSnapshot {
        let prefix = prefix.as_ref().to_path_buf();
        self.filter(|path, _| !path.starts_with(&prefix))
    }

    /// Differences from `self` (before) to `other` (after), comparing everything.
    pub fn diff(&self, other: &TreeSnapshot) -> Vec<String> {
        self.diff_with(other, Compare::ALL)
    }

    /// Differences from `self` (before) to `other` (after), one readable line each, sorted by
    /// path: `added <path> (file)`, `removed <path> (dir)`,
    /// `changed <path>: mtime 1.000000000 -> 2.000000000, mode 644 -> 444`.
    pub fn diff_with(&self, other: &TreeSnapshot, compare: Compare) -> Vec<String> {
        self.changes(other, compare)
            .into_iter()
            .map(|(path, change)| change.render(&path))
            .collect()
    }

    /// Paths that differ between `self` and `other` under `compare`, sorted.
    pub fn changed_paths(&self, other: &TreeSnapshot, compare: Compare) -> Vec<PathBuf> {
        self.changes(other, compare)
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    fn changes(&self, other: &TreeSnapshot, compare: Compare) -> Vec<(PathBuf, Change)> {
        let mut paths: Vec<&PathBuf> = self.nodes.keys().chain(other.nodes.keys()).collect();
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .filter_map(|path| {
                let change = match (self.nodes.get(path), other.nodes.get(path)) {
                    (Some(before), None) => Change::Removed(before.kind),
                    (None, Some(after)) => Change::Added(after.kind),
                    (Some(before), Some(after)) => {
                        let fields = before.differences(after, compare);
                        if fields.is_empty() {
                            return None;
                        }
                        Change::Changed(fields)
                    }
                    (None, None) => unreachable!("path came from one of the maps"),
                };
                Some((path.clone(), change))
            })
            .collect()
    }
}

enum Change {
    Added(NodeKind),
    Removed(NodeKind),
    Changed(Vec<String>),
}

impl Change {
    fn render(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            Change::Added(kind) => format!("added {path} ({kind})"),
            Change::Removed(kind) => format!("removed {path} ({kind})"),
            Change::Changed(fields) => format!("changed {path}: {}", fields.join(", ")),
        }
    }
}

impl Node {
    fn from_metadata(path: &Path, meta: &fs::Metadata) -> Node {
        let file_type = meta.file_type();
        let mode = meta.mode() & 0o7777;
        let mtime = Some(Mtime {
            secs: meta.mtime(),
            nanos: meta.mtime_nsec(),
        });
        if file_type.is_symlink() {
            let link = fs::read_link(path)
                .unwrap_or_else(|e| panic!("readlink `{}`: {e}", path.display()));
            Node {
                kind: NodeKind::Symlink,
                mode,
                len: 0,
                hash: 0,
                link: Some(link),
                mtime: None,
            }
        } else if file_type.is_dir() {
            Node {
                kind: NodeKind::Dir,
                mode,
                len: 0,
                hash: 0,
                link: None,
                mtime,
            }
        } else if file_type.is_file() {
            let bytes = fs::read(path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()));
            Node {
                kind: NodeKind::File,
                mode,
                len: bytes.len() as u64,
                hash: fnv1a64(&bytes),
                link: None,
                mtime,
            }
        } else {
            panic!("`{}` is not a file, directory or symlink", path.display())
        }
    }

    /// Readable field differences from `self` to `after`; empty when equal under `compare`.
    fn differences(&self, after: &Node, compare: Compare) -> Vec<String> {
        let mut out = Vec::new();
        if self.kind != after.kind {
            out.push(format!("kind {} -> {}", self.kind, after.kind));
            return out;
        }
        if self.link != after.link {
            let show =
                |l: &Option<PathBuf>| l.as_deref().unwrap_or(Path::new("")).display().to_string();
            out.push(format!(
                "link {} -> {}",
                show(&self.link),
                show(&after.link)
            ));
        }
        if (self.len, self.hash) != (after.len, after.hash) {
            out.push(format!(
                "contents ({} bytes, {:016x}) -> ({} bytes, {:016x})",
                self.len, self.hash, after.len, after.hash
            ));
        }
        if compare.modes && self.mode != after.mode {
            out.push(format!("mode {:o} -> {:o}", self.mode, after.mode));
        }
        let mtimes = match self.kind {
            NodeKind::File => compare.file_mtimes,
            NodeKind::Dir => compare.dir_mtimes,
            NodeKind::Symlink => false,
        };
        if mtimes && self.mtime != after.mtime {
            let show = |m: Option<Mtime>| m.map_or("none".to_string(), |m| m.to_string());
            out.push(format!(
                "mtime {} -> {}",
                show(self.mtime),
                show(after.mtime)
            ));
        }
        out
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeKind::Dir => "dir",
            NodeKind::File => "file",
            NodeKind::Symlink => "symlink",
        })
    }
}

impl fmt::Display for Mtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// 64-bit FNV-1a: tiny, stable across Rust versions, good enough to tell contents apart.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
