//! Where cargo's two build-dir layouts put things, for assertions that hold in both: classic
//! (`deps/`, `.fingerprint/`, `build/<pkg>-<hash>/`) and v2 (`-Zbuild-dir-new-layout`:
//! `build/<pkg>/<hash>/{fingerprint,out,run}/`). Which one the tests run is
//! [`cargo::layout_v2`](super::cargo::layout_v2).

use std::fs;
use std::path::{Path, PathBuf};

use super::TreeSnapshot;

pub use super::cargo::layout_v2;

/// Every file (or symlink) below `dir` whose name starts with `prefix` and ends with `suffix`,
/// sorted.
pub fn find_all_below(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut hits: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap_or_else(|e| panic!("walk `{}`: {e}", dir.display())))
        .filter(|e| !e.file_type().is_dir())
        .filter(|e| {
            let n = e.file_name().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .map(|e| e.into_path())
        .collect();
    hits.sort();
    hits
}

/// The one file below `dir`, at any depth, named `prefix*suffix`: a unit's output wherever
/// the layout puts it (classic `deps/`, v2 `build/<pkg>/<hash>/out/`). Panics unless exactly
/// one matches.
pub fn find_below(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let hits = find_all_below(dir, prefix, suffix);
    assert_eq!(
        hits.len(),
        1,
        "{prefix}*{suffix} below {}: {hits:?}",
        dir.display()
    );
    hits.into_iter().next().unwrap()
}

/// Whether `rel` (below a target or build dir) is in a fingerprint directory: classic
/// `.fingerprint/`, v2 `build/<pkg>/<hash>/fingerprint/`.
pub fn is_fingerprint(rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
    parts.iter().any(|p| *p == ".fingerprint")
        || parts
            .windows(4)
            .any(|w| w[0] == "build" && w[3] == "fingerprint")
}

/// Every fingerprint file below `dir` (a target or build dir), in either layout.
pub fn fingerprint_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap_or_else(|e| panic!("walk `{}`: {e}", dir.display())))
        .filter(|e| !e.file_type().is_dir())
        .filter(|e| is_fingerprint(e.path().strip_prefix(dir).unwrap()))
        .map(|e| e.into_path())
        .collect()
}

/// The compiled build script of `package` below `profile_dir`: classic
/// `build/<package>-<hash>/build-script-build`, v2 `build/<package>/<hash>/out/build_script_build`
/// (v2 has no hyphenated copy). Panics unless there is one.
pub fn build_script(profile_dir: &Path, package: &str) -> PathBuf {
    let build = profile_dir.join("build");
    let candidates: Vec<PathBuf> = if layout_v2() {
        read_dir(&build.join(package))
            .into_iter()
            .map(|unit| unit.join("out/build_script_build"))
            .collect()
    } else {
        read_dir(&build)
            .into_iter()
            .filter(|d| {
                let name = d.file_name().unwrap().to_string_lossy();
                name.strip_prefix(package)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .map(|d| d.join("build-script-build"))
            .collect()
    };
    let hits: Vec<PathBuf> = candidates
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    assert_eq!(hits.len(), 1, "build-script-build of {package}: {hits:?}");
    hits.into_iter().next().unwrap()
}

/// The directories rustc writes unit outputs into below `profile_dir`: classic `deps/`, v2
/// every compile unit's `build/<pkg>/<hash>/out/` (not a build-script run's: that is its
/// `OUT_DIR`).
pub fn unit_out_dirs(profile_dir: &Path) -> Vec<PathBuf> {
    if !layout_v2() {
        return vec![profile_dir.join("deps")];
    }
    let mut dirs: Vec<PathBuf> = read_dir(&profile_dir.join("build"))
        .iter()
        .flat_map(|pkg| read_dir(pkg))
        .filter(|unit| !unit.join("run").exists())
        .map(|unit| unit.join("out"))
        .filter(|out| out.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Every lock file below `dir`: the names cargo-nixcache never stores (`.cargo-lock`,
/// `.cargo-build-lock`, `.cargo-artifact-lock`, `*.lock`).
pub fn lock_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap_or_else(|e| panic!("walk `{}`: {e}", dir.display())))
        .filter(|e| is_lock_file(&e.file_name().to_string_lossy()))
        .map(|e| e.into_path())
        .collect()
}

/// Whether a file name is a lock file cargo-nixcache never stores.
pub fn is_lock_file(name: &str) -> bool {
    name.ends_with(".lock") || (name.starts_with(".cargo") && name.ends_with("lock"))
}

/// `snapshot` without the lock files (which pack never stores).
pub fn without_lock_files(snapshot: TreeSnapshot) -> TreeSnapshot {
    snapshot.filter(|rel, _| {
        !rel.file_name()
            .is_some_and(|n| is_lock_file(&n.to_string_lossy()))
    })
}

/// A snapshot of everything rustc wrote for units below `profile_dir`: classic `deps/`, v2
/// `build/` restricted to the compile units' `out/` dirs ([`unit_out_dirs`]).
pub fn unit_outputs_snapshot(profile_dir: &Path, follow_links: bool) -> TreeSnapshot {
    let (root, keep): (PathBuf, Vec<PathBuf>) = if layout_v2() {
        let build = profile_dir.join("build");
        let outs = unit_out_dirs(profile_dir)
            .iter()
            .map(|d| d.strip_prefix(&build).unwrap().to_path_buf())
            .collect();
        (build, outs)
    } else {
        (profile_dir.join("deps"), vec![PathBuf::new()])
    };
    let snapshot = if follow_links {
        TreeSnapshot::capture_following_links(&root)
    } else {
        TreeSnapshot::capture(&root)
    };
    snapshot.filter(|rel, _| keep.iter().any(|k| rel.starts_with(k)))
}

/// The executable rustc wrote for the bin target `name` below `profile_dir` (before cargo
/// uplifts it): classic `deps/<name>-<hash>`, v2 `build/<pkg>/<hash>/out/<name>`.
pub fn bin_output(profile_dir: &Path, name: &str) -> PathBuf {
    let hits: Vec<PathBuf> = unit_out_dirs(profile_dir)
        .iter()
        .flat_map(|dir| read_dir(dir))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            let hashed = n
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| !hash.contains('.'));
            (n == name || hashed) && p.extension().is_none()
        })
        .collect();
    assert_eq!(hits.len(), 1, "rustc's output for bin {name}: {hits:?}");
    hits.into_iter().next().unwrap()
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read `{}`: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}
