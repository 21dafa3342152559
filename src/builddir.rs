//! Where cargo puts a workspace's intermediate artifacts (`build.build-dir`), resolved as cargo
//! resolves it.
//!
//! `--build-dir` wins, then `CARGO_BUILD_BUILD_DIR` (both handled by the command line, which
//! passes [`BuildDir::Given`]). Otherwise cargo itself is asked: `cargo metadata --no-deps`
//! reports the resolved `build_directory`, which covers `build.build-dir` in every config file
//! cargo reads and its templates (`{workspace-root}`, `{cargo-cache-home}`,
//! `{workspace-path-hash}`); it works offline and runs no compiler. cargo is asked only when
//! it can answer: a `Cargo.toml` in the directory or a parent, and a `cargo` (`$CARGO`, else
//! `PATH`) to run. A build dir that is the target dir (cargo's default) is no separate root.
//!
//! Asking costs a cargo process (~0.1-0.2 s, several times a whole pack), so first the config
//! files cargo would read are scanned: if none mentions `build-dir` (nor `include`, through
//! which another file could), cargo's build dir is its default, the target dir, and cargo is
//! not asked.

use crate::fault::{Fault, HasFault};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to find the build dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildDir {
    /// Given by the user (`--build-dir`, `CARGO_BUILD_BUILD_DIR`).
    Given(PathBuf),
    /// Ask `cargo metadata` for the workspace found from this directory.
    FromCargo(PathBuf),
    /// There is none.
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildDirError {
    #[error("failed to run `{program}` to find the build dir (build.build-dir) of `{manifest}`; pass --build-dir or set CARGO_BUILD_BUILD_DIR")]
    Spawn {
        program: String,
        manifest: PathBuf,
        source: io::Error,
    },
    #[error("`cargo metadata` failed for `{manifest}`, so the build dir (build.build-dir) is unknown; fix the workspace, or pass --build-dir or set CARGO_BUILD_BUILD_DIR:\n{stderr}")]
    Failed { manifest: PathBuf, stderr: String },
    #[error(
        "`cargo metadata` for `{manifest}` printed something that is not its JSON format: {source}"
    )]
    BadJson {
        manifest: PathBuf,
        source: serde_json::Error,
    },
}

impl HasFault for BuildDirError {
    fn fault(&self) -> Fault {
        Fault::Environment
    }
}

/// The fields of `cargo metadata --format-version 1` we read.
#[derive(serde::Deserialize)]
struct Metadata {
    target_directory: PathBuf,
    /// Since cargo 1.91 (build-dir's stabilization); older cargo has no separate build dir.
    build_directory: Option<PathBuf>,
}

impl BuildDir {
    /// The build dir, if there is a separate one.
    pub fn resolve(&self) -> Result<Option<PathBuf>, BuildDirError> {
        match self {
            BuildDir::Given(dir) => Ok(Some(dir.clone())),
            BuildDir::None => Ok(None),
            BuildDir::FromCargo(cwd) => from_cargo(cwd),
        }
    }
}

/// `cargo metadata`'s `build_directory` when it differs from its `target_directory`.
fn from_cargo(cwd: &Path) -> Result<Option<PathBuf>, BuildDirError> {
    let Some(manifest) = find_manifest(cwd) else {
        return Ok(None);
    };
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    if !config_may_set_build_dir(cwd, cargo_home.as_deref()) {
        return Ok(None);
    }
    let program: OsString = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&program)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(cwd)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BuildDirError::Spawn {
                program: program.to_string_lossy().into_owned(),
                manifest,
                source,
            })
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
        return Err(BuildDirError::Failed { manifest, stderr });
    }
    let meta: Metadata = serde_json::from_slice(&out.stdout)
        .map_err(|source| BuildDirError::BadJson { manifest, source })?;
    Ok(meta
        .build_directory
        .filter(|build| *build != meta.target_directory))
}

/// Whether a config file cargo reads from `cwd` could set `build.build-dir`: `.cargo/config.toml`
/// and `.cargo/config` in `cwd` and every parent, and in `cargo_home` (`$CARGO_HOME`, else
/// `~/.cargo`). Conservative: any mention of `build-dir` or `include` counts, and so does a
/// file that cannot be read.
fn config_may_set_build_dir(cwd: &Path, cargo_home: Option<&Path>) -> bool {
    let Ok(cwd) = std::path::absolute(cwd) else {
        return true;
    };
    let dirs = cwd
        .ancestors()
        .map(|d| d.join(".cargo"))
        .chain(cargo_home.map(Path::to_path_buf));
    dirs.flat_map(|d| [d.join("config.toml"), d.join("config")])
        .any(|file| match std::fs::read(&file) {
            Ok(text) => [&b"build-dir"[..], b"include"]
                .iter()
                .any(|needle| text.windows(needle.len()).any(|w| w == *needle)),
            Err(e) => e.kind() != io::ErrorKind::NotFound,
        })
}

/// The `Cargo.toml` cargo would find from `cwd`: there or in the nearest parent.
fn find_manifest(cwd: &Path) -> Option<PathBuf> {
    let cwd = std::path::absolute(cwd).ok()?;
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_and_none_need_no_cargo() {
        let given = BuildDir::Given("/b".into());
        assert_eq!(given.resolve().unwrap(), Some(PathBuf::from("/b")));
        assert_eq!(BuildDir::None.resolve().unwrap(), None);
    }

    #[test]
    fn only_a_config_that_may_set_build_dir_makes_cargo_asked() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let home = dir.path().join("cargo-home");
        std::fs::create_dir_all(ws.join(".cargo")).unwrap();
        std::fs::create_dir_all(ws.join("member")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let at = |file: &Path, text: &str| std::fs::write(file, text).unwrap();
        let ws_config = ws.join(".cargo/config.toml");
        at(&ws_config, "[source.crates-io]\nreplace-with = \"v\"\n");
        let asked = || config_may_set_build_dir(&ws.join("member"), Some(&home));
        assert!(!asked(), "nothing sets build-dir");
        for (file, text) in [
            (
                ws_config.clone(),
                "[build]\nbuild-dir = \"{workspace-root}/b\"\n",
            ),
            (ws.join(".cargo/config"), "build.build-dir = \"b\"\n"),
            (
                dir.path().join(".cargo/config.toml"),
                "include = [\"more.toml\"]\n",
            ),
            (home.join("config.toml"), "[build]\nbuild-dir = \"b\"\n"),
        ] {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            let before = std::fs::read_to_string(&file).ok();
            at(&file, text);
            assert!(asked(), "{}: {text}", file.display());
            match before {
                Some(b) => at(&file, &b),
                None => std::fs::remove_file(&file).unwrap(),
            }
            assert!(!asked(), "restored {}", file.display());
        }
    }

    #[test]
    fn the_manifest_is_found_as_cargo_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("member/src")).unwrap();
        std::fs::write(ws.join("Cargo.toml"), "").unwrap();
        assert_eq!(find_manifest(&ws), Some(ws.join("Cargo.toml")));
        assert_eq!(
            find_manifest(&ws.join("member/src")),
            Some(ws.join("Cargo.toml"))
        );
        std::fs::write(ws.join("member/Cargo.toml"), "").unwrap();
        let nearest = ws.join("member/Cargo.toml");
        assert_eq!(find_manifest(&ws.join("member/src")), Some(nearest));
    }
}
