//! `freshen`: the stale-binary guard.
//!
//! Every file in the Nix store has mtime 1, and so does every source a Nix build copies out of
//! it. When a derivation inherits fingerprints that were built from *other* sources (crane's
//! dummy sources, or an older revision) which also carried mtime 1, cargo finds no source newer
//! than its records and calls the unit Fresh: the build ships the old binary. Giving the local
//! packages' files (workspace members and other path dependencies, the only sources cargo checks
//! by mtime) the current time makes them newer than anything inherited, so they always rebuild;
//! registry dependencies are fingerprinted by version and stay Fresh.

use crate::fsutil::{self, FsError, IoContext};
use filetime::FileTime;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Default, serde::Serialize)]
pub struct FreshenReport {
    /// Root directories of the packages whose files were touched.
    pub packages: Vec<PathBuf>,
    pub files: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FreshenError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("failed to run `cargo metadata`")]
    Spawn(#[source] std::io::Error),
    #[error("`cargo metadata` failed; run it yourself to see why:\n{0}")]
    Metadata(String),
    #[error("`cargo metadata` printed something that is not its JSON format: {0}")]
    Json(#[from] serde_json::Error),
}

/// Directories never descended into: build output and VCS data.
fn skipped(dir: &Path) -> bool {
    dir.file_name()
        .is_some_and(|n| n == ".git" || n == "target")
        || dir.join("CACHEDIR.TAG").is_file()
}

/// Touches every file of every local package (`source: null` in `cargo metadata`).
pub fn freshen(manifest_path: Option<&Path>) -> Result<FreshenReport, FreshenError> {
    let roots = local_package_roots(manifest_path)?;
    let now = FileTime::now();
    let mut report = FreshenReport::default();
    for root in &roots {
        let walk = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_entry(|e| !(e.file_type().is_dir() && e.depth() > 0 && skipped(e.path())));
        for entry in walk {
            let entry = entry.map_err(|e| fsutil::walk_error(root, e))?;
            if entry.file_type().is_file() {
                filetime::set_file_mtime(entry.path(), now)
                    .with_path("set mtime of", entry.path())?;
                report.files += 1;
            }
        }
    }
    report.packages = roots;
    Ok(report)
}

fn local_package_roots(manifest_path: Option<&Path>) -> Result<Vec<PathBuf>, FreshenError> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["metadata", "--format-version", "1", "--offline"]);
    if let Some(m) = manifest_path {
        // cargo finds `.cargo/config.toml` (source replacement) from its working directory.
        cmd.arg("--manifest-path").arg(m);
        if let Some(dir) = m.parent().filter(|d| !d.as_os_str().is_empty()) {
            cmd.current_dir(dir);
        }
    }
    let out = cmd.output().map_err(FreshenError::Spawn)?;
    if !out.status.success() {
        return Err(FreshenError::Metadata(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut roots: Vec<PathBuf> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["source"].is_null())
        .filter_map(|p| {
            Path::new(p["manifest_path"].as_str()?)
                .parent()
                .map(Path::to_path_buf)
        })
        .collect();
    roots.sort();
    // A package nested in another's directory is covered by the outer walk.
    roots.dedup_by(|inner, outer| inner.starts_with(outer));
    Ok(roots)
}
