//! The workspace's local packages, read from its `Cargo.toml` files alone.
//!
//! cargo fingerprints a *path* package (a workspace member, or any package reached through a
//! `path` dependency) by the mtimes of its sources, and every other package by its version. The
//! stale-binary guard and pack's source digests need exactly the path packages, and must know
//! them before anything is resolved: crane writes its vendored-sources config after the guard
//! runs, so `cargo metadata` (which resolves the whole graph) fails there, and even
//! `cargo metadata --no-deps` costs a cargo start-up (~20 ms) and omits path dependencies outside
//! the workspace. So this module reads the manifests itself with cargo's rules (cargo 0.98,
//! `src/cargo/core/workspace.rs`):
//!
//! - **The root** (`find_root`, `get_ws_root`): the starting manifest if it has `[workspace]`;
//!   else the one its `package.workspace` points to; else the nearest ancestor `Cargo.toml`
//!   with `[workspace]` that does not exclude it (or whose `package.workspace` points on);
//!   else the package alone.
//! - **The members** (`find_members`, `members_paths`, `is_excluded`): each `workspace.members`
//!   entry relative to the root, expanded with the `glob` crate as cargo does (a pattern that
//!   matches nothing stays a literal path; matches that are not directories are dropped), minus
//!   paths under an `exclude` entry that are not under a `members` entry (both compared as
//!   plain path prefixes, unexpanded); plus the root manifest when it is a package.
//! - **Path dependencies** (`find_path_deps`): every `path` in `[dependencies]`,
//!   `[dev-dependencies]`, `[build-dependencies]` (and their `target.<cfg>` and underscore
//!   forms), with `workspace = true` read from `[workspace.dependencies]` relative to the root,
//!   transitively. cargo makes the ones inside the root members; outside they are not members,
//!   but they are still path packages, so they are local here too. Also the root's `[patch]` and
//!   `[replace]` paths, which cargo builds as path packages.
//!
//! Not followed: `[patch]` and `paths` overrides in `.cargo/config.toml`, and `[lib]`/`[[bin]]`
//! `path`s that leave their package's directory.

use crate::fault::{Fault, HasFault};
use crate::fsutil::FsError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

pub(crate) const MANIFEST: &str = "Cargo.toml";

/// A workspace: its root directory and every local (path) package, by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Workspace {
    /// The directory of the root manifest (absolute, lexically normalized like cargo's paths).
    pub root: PathBuf,
    /// Keyed by [`LocalPackage::key`]; always holds the root directory (`.`), a package or not.
    pub packages: BTreeMap<String, LocalPackage>,
}

/// A directory of sources that cargo checks by mtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalPackage {
    /// The directory relative to the workspace root, `/`-separated (`..` for ones outside it),
    /// `.` for the root itself: stable across derivations whatever the build directory is.
    pub key: String,
    /// Absolute and lexically normalized.
    pub dir: PathBuf,
    /// `package.name`; `None` for a virtual root manifest.
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("found no `Cargo.toml` in `{0}` or any parent directory; run in the workspace or pass --manifest-path")]
    NotFound(PathBuf),
    #[error("--manifest-path `{0}` does not exist; pass the path of the workspace's Cargo.toml")]
    NoManifest(PathBuf),
    #[error("--manifest-path `{0}` is a directory; pass the path of its Cargo.toml")]
    ManifestIsDir(PathBuf),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("`{path}` is not a valid cargo manifest: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("`{missing}` does not exist, but `{by}` names it as {what}; cargo would fail too: fix the path")]
    Missing {
        missing: PathBuf,
        by: PathBuf,
        what: &'static str,
    },
    #[error("invalid `workspace.members` pattern `{pattern}` in `{root}`")]
    Pattern {
        pattern: String,
        root: PathBuf,
        #[source]
        source: glob::PatternError,
    },
}

impl HasFault for WorkspaceError {
    fn fault(&self) -> Fault {
        match self {
            WorkspaceError::NotFound(_)
            | WorkspaceError::NoManifest(_)
            | WorkspaceError::ManifestIsDir(_) => Fault::Usage,
            WorkspaceError::Fs(e) => e.fault(),
            WorkspaceError::BadManifest { .. }
            | WorkspaceError::Missing { .. }
            | WorkspaceError::Pattern { .. } => Fault::Input,
        }
    }
}

/// The manifest cargo would use in `dir` (absolute): the nearest `Cargo.toml` in it or above.
pub fn locate_manifest(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(MANIFEST))
        .find(|m| m.is_file())
}

/// That a `--manifest-path` names a file, or what it names instead.
pub fn check_manifest_path(path: &Path) -> Result<(), WorkspaceError> {
    if path.is_dir() {
        Err(WorkspaceError::ManifestIsDir(path.to_path_buf()))
    } else if !path.is_file() {
        Err(WorkspaceError::NoManifest(path.to_path_buf()))
    } else {
        Ok(())
    }
}

impl Workspace {
    /// The workspace `manifest_path` belongs to, with every local package.
    pub(crate) fn discover(manifest_path: &Path) -> Result<Workspace, WorkspaceError> {
        let cwd = std::env::current_dir().map_err(|e| FsError::new("read", ".", e))?;
        let start = normalize(&cwd.join(manifest_path));
        check_manifest_path(&start)?;
        let mut loader = Loader::default();
        let root_manifest = loader.find_root(&start)?.unwrap_or_else(|| start.clone());
        let root = parent(&root_manifest).to_path_buf();
        let root_doc = loader.load(&root_manifest, &root_manifest, "the workspace root")?;

        // (manifest, who names it, as what)
        let mut queue: Vec<(PathBuf, PathBuf, &'static str)> = Vec::new();
        if let Some(ws) = root_doc.get("workspace").and_then(toml::Value::as_table) {
            for member in members_paths(&root, ws, &root_manifest)? {
                let manifest = member.join(MANIFEST);
                if !is_excluded(&root, ws, &manifest) {
                    queue.push((manifest, root_manifest.clone(), "a workspace member"));
                }
            }
            queue.push((
                root_manifest.clone(),
                root_manifest.clone(),
                "the workspace root",
            ));
        } else {
            queue.push((start.clone(), start.clone(), "the package"));
        }
        // [patch.<source>.<name>] and [replace."<spec>"], relative to the root.
        let patches = tables(root_doc.get("patch"))
            .flat_map(|source| source.values().filter_map(toml::Value::as_table));
        for spec in patches.chain(tables(root_doc.get("replace"))) {
            if let Some(p) = spec.get("path").and_then(toml::Value::as_str) {
                let manifest = root.join(p).join(MANIFEST);
                queue.push((
                    manifest,
                    root_manifest.clone(),
                    "a [patch] or [replace] path",
                ));
            }
        }

        let ws_deps = root_doc
            .get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        let mut packages = BTreeMap::new();
        let mut seen = BTreeSet::new();
        while let Some((manifest, by, what)) = queue.pop() {
            let manifest = normalize(&manifest);
            if !seen.insert(manifest.clone()) {
                continue;
            }
            let doc = loader.load(&manifest, &by, what)?;
            let Some(name) = package_name(doc) else {
                continue; // a virtual manifest: no sources of its own beyond the root's
            };
            let dir = parent(&manifest).to_path_buf();
            for dep in path_dependencies(doc, &dir, &root, &ws_deps) {
                queue.push((dep.join(MANIFEST), manifest.clone(), "a path dependency"));
            }
            let key = relative_key(&root, &dir);
            packages.insert(
                key.clone(),
                LocalPackage {
                    key,
                    dir,
                    name: Some(name.to_string()),
                },
            );
        }
        packages
            .entry(".".to_string())
            .or_insert_with(|| LocalPackage {
                key: ".".into(),
                dir: root.clone(),
                name: None,
            });
        Ok(Workspace { root, packages })
    }
}

/// Parsed manifests by path, so each is read once.
#[derive(Default)]
struct Loader {
    docs: BTreeMap<PathBuf, toml::Table>,
}

impl Loader {
    fn load(
        &mut self,
        path: &Path,
        by: &Path,
        what: &'static str,
    ) -> Result<&toml::Table, WorkspaceError> {
        if !self.docs.contains_key(path) {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(WorkspaceError::Missing {
                        missing: path.into(),
                        by: by.into(),
                        what,
                    })
                }
                Err(e) => return Err(FsError::new("read", path, e).into()),
            };
            let doc: toml::Table =
                toml::from_str(&text).map_err(|e| WorkspaceError::BadManifest {
                    path: path.into(),
                    reason: e.message().to_string(),
                })?;
            self.docs.insert(path.to_path_buf(), doc);
        }
        Ok(&self.docs[path])
    }

    /// cargo's `find_root`: the root manifest of the workspace `manifest` belongs to, if any.
    fn find_root(&mut self, manifest: &Path) -> Result<Option<PathBuf>, WorkspaceError> {
        let doc = self.load(manifest, manifest, "the package")?;
        if let Some(root) = ws_root(doc, manifest, manifest) {
            return Ok(Some(root));
        }
        // Ancestors of the package's directory, nearest first.
        for dir in parent(manifest).ancestors().skip(1) {
            let candidate = dir.join(MANIFEST);
            if !candidate.is_file() {
                continue;
            }
            let doc = self.load(&candidate, manifest, "a parent workspace")?;
            if let Some(root) = ws_root(doc, &candidate, manifest) {
                return Ok(Some(root));
            }
        }
        Ok(None)
    }
}

/// cargo's `WorkspaceConfig::get_ws_root`.
fn ws_root(doc: &toml::Table, self_path: &Path, look_from: &Path) -> Option<PathBuf> {
    if let Some(ws) = doc.get("workspace").and_then(toml::Value::as_table) {
        return (!is_excluded(parent(self_path), ws, look_from)).then(|| self_path.to_path_buf());
    }
    let pointer = doc.get("package")?.get("workspace")?.as_str()?;
    Some(normalize(&parent(self_path).join(pointer).join(MANIFEST)))
}

/// cargo's `WorkspaceRootConfig::is_excluded`: under an `exclude` entry and under no `members`
/// entry, both taken literally.
fn is_excluded(root: &Path, ws: &toml::Table, manifest: &Path) -> bool {
    let under = |key: &str| strings(ws.get(key)).any(|p| manifest.starts_with(root.join(p)));
    !under("members") && under("exclude")
}

/// cargo's `members_paths`: each pattern expanded by `glob`, falling back to the literal path.
fn members_paths(
    root: &Path,
    ws: &toml::Table,
    root_manifest: &Path,
) -> Result<Vec<PathBuf>, WorkspaceError> {
    let mut out = Vec::new();
    for pattern in strings(ws.get("members")) {
        let path = root.join(pattern);
        let bad = |source| WorkspaceError::Pattern {
            pattern: pattern.into(),
            root: root_manifest.into(),
            source,
        };
        let Some(text) = path.to_str() else {
            continue; // cargo expands nothing for a non-UTF-8 path either
        };
        let matches: Vec<PathBuf> = glob::glob(text)
            .map_err(bad)?
            .filter_map(Result::ok)
            .collect();
        if matches.is_empty() {
            out.push(path);
        } else {
            out.extend(matches.into_iter().filter(|p| p.is_dir()));
        }
    }
    Ok(out)
}

/// Directories of the path dependencies a package manifest declares, any kind, any target.
fn path_dependencies(
    doc: &toml::Table,
    dir: &Path,
    root: &Path,
    ws_deps: &toml::Table,
) -> Vec<PathBuf> {
    const KINDS: [&str; 5] = [
        "dependencies",
        "dev-dependencies",
        "dev_dependencies",
        "build-dependencies",
        "build_dependencies",
    ];
    let platforms = tables(doc.get("target"));
    let mut out = Vec::new();
    for deps in std::iter::once(doc).chain(platforms) {
        for kind in KINDS {
            for (name, spec) in deps
                .get(kind)
                .and_then(toml::Value::as_table)
                .into_iter()
                .flatten()
            {
                if let Some(p) = spec.get("path").and_then(toml::Value::as_str) {
                    out.push(dir.join(p));
                } else if spec.get("workspace").and_then(toml::Value::as_bool) == Some(true) {
                    if let Some(p) = ws_deps
                        .get(name)
                        .and_then(|d| d.get("path"))
                        .and_then(toml::Value::as_str)
                    {
                        out.push(root.join(p));
                    }
                }
            }
        }
    }
    out
}

fn package_name(doc: &toml::Table) -> Option<&str> {
    ["package", "project"]
        .iter()
        .find_map(|k| doc.get(*k)?.get("name")?.as_str())
}

/// The tables among a table's values.
fn tables(value: Option<&toml::Value>) -> impl Iterator<Item = &toml::Table> {
    value
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|t| t.values().filter_map(toml::Value::as_table))
}

/// The strings of an array value.
fn strings(value: Option<&toml::Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_str)
}

fn parent(manifest: &Path) -> &Path {
    manifest.parent().unwrap_or(Path::new("/"))
}

/// cargo-util's `normalize_path`: `.` dropped and `..` applied lexically, symlinks untouched.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `dir` relative to `root` as a `/`-separated key, with `..` for directories outside it.
fn relative_key(root: &Path, dir: &Path) -> String {
    let r: Vec<_> = root.components().collect();
    let d: Vec<_> = dir.components().collect();
    let common = r.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let parts: Vec<String> = std::iter::repeat("..".to_string())
        .take(r.len() - common)
        .chain(
            d[common..]
                .iter()
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
        )
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new(files: &[(&str, &str)]) -> Tree {
            let t = Tree(tempfile::tempdir().unwrap());
            for (path, text) in files {
                t.write(path, text);
            }
            t
        }
        fn write(&self, path: &str, text: &str) {
            let p = self.0.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        fn path(&self, rel: &str) -> PathBuf {
            normalize(&self.0.path().join(rel))
        }
        /// `key -> name` of every local package found from `start`.
        fn discover(&self, start: &str) -> Vec<(String, Option<String>)> {
            let ws = Workspace::discover(&self.path(start)).unwrap();
            for (key, pkg) in &ws.packages {
                assert_eq!(&pkg.key, key);
                assert_eq!(relative_key(&ws.root, &pkg.dir), *key);
            }
            ws.packages.into_values().map(|p| (p.key, p.name)).collect()
        }
    }

    fn pkg(name: &str) -> String {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n")
    }

    fn keys(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, n)| (k.to_string(), n.map(str::to_string)))
            .collect()
    }

    #[test]
    fn virtual_root_members_globs_excludes_and_every_kind_of_path_dependency() {
        let t = Tree::new(&[
            (
                "ws/Cargo.toml",
                "[workspace]\nmembers = [\"crates/*\", \"tools/gen\"]\nexclude = [\"crates/skipped\"]\n\
                 [workspace.dependencies]\nshared = { path = \"../shared\" }\n\
                 [patch.crates-io]\nserde = { path = \"patched/serde\" }\n",
            ),
            ("ws/crates/a/Cargo.toml", &(pkg("a") + "[dependencies]\nb = { path = \"../b\" }\nshared.workspace = true\n")),
            ("ws/crates/b/Cargo.toml", &(pkg("b") + "[target.'cfg(unix)'.dev-dependencies]\nimplicit = { path = \"../../implicit\" }\n")),
            ("ws/crates/skipped/Cargo.toml", &pkg("skipped")),
            ("ws/crates/README.md", "a file the glob matches: not a member"),
            ("ws/tools/gen/Cargo.toml", &(pkg("gen") + "[build-dependencies]\nouter = { path = \"../../../outer\", version = \"1\" }\n")),
            ("ws/implicit/Cargo.toml", &pkg("implicit")),
            ("ws/patched/serde/Cargo.toml", &pkg("serde")),
            ("shared/Cargo.toml", &(pkg("shared") + "[dependencies]\nouter = { path = \"../outer\" }\n")),
            ("outer/Cargo.toml", &pkg("outer")),
            ("ws/unrelated/Cargo.toml", &pkg("unrelated")),
        ]);
        let expected = keys(&[
            (".", None),
            ("../outer", Some("outer")),
            ("../shared", Some("shared")),
            ("crates/a", Some("a")),
            ("crates/b", Some("b")),
            ("implicit", Some("implicit")),
            ("patched/serde", Some("serde")),
            ("tools/gen", Some("gen")),
        ]);
        assert_eq!(t.discover("ws/Cargo.toml"), expected);
        // From a member (cargo run there) the same workspace is found.
        assert_eq!(t.discover("ws/crates/b/Cargo.toml"), expected);
    }

    #[test]
    fn root_package_pointer_and_lone_package() {
        let t = Tree::new(&[
            ("app/Cargo.toml", &(pkg("app") + "[workspace]\n")),
            ("app/sub/Cargo.toml", &(pkg("sub") + "workspace = \"..\"\n")),
            ("lone/Cargo.toml", &pkg("lone")),
        ]);
        assert_eq!(t.discover("app/Cargo.toml"), keys(&[(".", Some("app"))]));
        // `package.workspace` points at the root (cargo checks membership later).
        let ws = Workspace::discover(&t.path("app/sub/Cargo.toml")).unwrap();
        assert_eq!(ws.root, t.path("app"));
        assert_eq!(t.discover("lone/Cargo.toml"), keys(&[(".", Some("lone"))]));
    }

    #[test]
    fn an_ancestor_workspace_that_excludes_the_package_is_not_its_root() {
        let t = Tree::new(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"in\"]\nexclude = [\"out\"]\n",
            ),
            ("in/Cargo.toml", &pkg("in")),
            ("out/Cargo.toml", &pkg("out")),
        ]);
        let ws = Workspace::discover(&t.path("out/Cargo.toml")).unwrap();
        assert_eq!(ws.root, t.path("out"));
        let ws = Workspace::discover(&t.path("in/Cargo.toml")).unwrap();
        assert_eq!(ws.root, t.path(""));
    }

    #[test]
    fn errors_name_the_file_and_who_refers_to_it() {
        let t = Tree::new(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"gone\"]\n"),
            ("bad/Cargo.toml", "[package\nname = 1"),
            (
                "dep/Cargo.toml",
                &(pkg("dep") + "[dependencies]\nx = { path = \"../x\" }\n"),
            ),
        ]);
        let err = Workspace::discover(&t.path("Cargo.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` does not exist, but `{}` names it as a workspace member; cargo would fail too: fix the path",
                t.path("gone/Cargo.toml").display(),
                t.path("Cargo.toml").display()
            )
        );
        let err = Workspace::discover(&t.path("bad/Cargo.toml")).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "`{}` is not a valid cargo manifest: ",
                t.path("bad/Cargo.toml").display()
            )),
            "{err}"
        );
        fs::write(t.path("Cargo.toml"), "[workspace]\nmembers = [\"dep\"]\n").unwrap();
        let err = Workspace::discover(&t.path("Cargo.toml")).unwrap_err();
        assert!(
            err.to_string().contains("names it as a path dependency"),
            "{err}"
        );
        fs::write(t.path("Cargo.toml"), "[workspace]\nmembers = [\"[\"]\n").unwrap();
        let err = Workspace::discover(&t.path("Cargo.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid `workspace.members` pattern `[`"),
            "{err}"
        );
    }

    #[test]
    fn the_manifest_is_found_in_the_directory_or_above() {
        let t = Tree::new(&[("ws/Cargo.toml", "[workspace]\n"), ("ws/a/b/x.rs", "")]);
        assert_eq!(
            locate_manifest(&t.path("ws/a/b")),
            Some(t.path("ws/Cargo.toml"))
        );
        assert_eq!(
            locate_manifest(&t.path("ws")),
            Some(t.path("ws/Cargo.toml"))
        );
        let err = Workspace::discover(&t.path("ws/a/Cargo.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--manifest-path `{}` does not exist; pass the path of the workspace's Cargo.toml",
                t.path("ws/a/Cargo.toml").display()
            )
        );
        let err = Workspace::discover(&t.path("ws/a")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--manifest-path `{}` is a directory; pass the path of its Cargo.toml",
                t.path("ws/a").display()
            )
        );
    }

    #[test]
    fn keys_and_normalization() {
        let cases = [
            ("/a/b", "/a/b", "."),
            ("/a/b", "/a/b/c/d", "c/d"),
            ("/a/b", "/a/x", "../x"),
            ("/a/b", "/z", "../../z"),
        ];
        for (root, dir, key) in cases {
            assert_eq!(
                relative_key(Path::new(root), Path::new(dir)),
                key,
                "{root} {dir}"
            );
        }
        assert_eq!(normalize(Path::new("/a/./b/../c/")), Path::new("/a/c"));
    }
}
