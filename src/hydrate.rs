//! `hydrate`: fill a dev shell's target dir from a deps output, once, and never over the user's
//! own work.
//!
//! `nix develop` / `nix-shell` start with whatever target dir the checkout has; without this the
//! first `cargo build` in the shell recompiles every dependency the deps derivation already built.
//! The shell hook (nix/hooks/nixcache-shell-hook.sh) runs `cargo nixcache hydrate` on entry: it
//! unpacks the deps output when the target dir is absent or empty, and records which output it
//! came from in a marker file inside the target dir (its mtime is the time of hydration).
//! Entering again with the same output does nothing; with another output, the target dir is
//! replaced only if nothing in it is newer than the marker (no build since); otherwise it is kept
//! and the user is told how to refill it (`cargo clean`). A target dir with no marker is the
//! user's own and is never touched. `cargo clean` removes the marker with the rest, so the next
//! entry hydrates again.

use crate::fsutil::{self, FsError, IoContext};
use crate::unpack::{self, UnpackError, UnpackOptions, UnpackReport};
use filetime::FileTime;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The marker, in the target dir: one line, the artifacts path the dir was filled from.
pub const MARKER: &str = ".nixcache-hydrated";

/// What the target dir holds before hydrating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TargetState {
    /// No target dir, or an empty one.
    Empty,
    /// Entries, but no marker: the user's own build.
    Own,
    /// Filled by hydrate from `from`; `built_since`: something in it is newer than the marker.
    Hydrated { from: PathBuf, built_since: bool },
}

/// What hydrate does about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Unpack into the empty target dir.
    Hydrate,
    /// Already filled from these artifacts: nothing to do.
    UpToDate,
    /// Filled from other artifacts and not built in since: replace it.
    Replace { previous: PathBuf },
    /// Filled from other artifacts but built in since: keep the user's work.
    KeepBuiltSince { previous: PathBuf },
    /// The user's own target dir: never touched.
    KeepOwn,
}

/// The decision, pure: see the module doc.
pub(crate) fn decide(state: &TargetState, wanted: &Path) -> Action {
    match state {
        TargetState::Empty => Action::Hydrate,
        TargetState::Own => Action::KeepOwn,
        TargetState::Hydrated { from, .. } if from == wanted => Action::UpToDate,
        TargetState::Hydrated { from, built_since } if *built_since => Action::KeepBuiltSince {
            previous: from.clone(),
        },
        TargetState::Hydrated { from, .. } => Action::Replace {
            previous: from.clone(),
        },
    }
}

#[derive(Debug, serde::Serialize)]
pub struct HydrateReport {
    #[serde(flatten)]
    pub action: Action,
    pub artifacts: PathBuf,
    pub target_dir: PathBuf,
    /// The unpack, when there was one.
    pub unpacked: Option<UnpackReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum HydrateError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("marker `{0}` is not a cargo-nixcache hydrate marker (one line: an artifacts path); remove the target dir or the marker")]
    BadMarker(PathBuf),
}

/// Hydrates `opts.target_dir` from `opts.artifacts` (see the module doc).
pub fn hydrate(opts: &UnpackOptions) -> Result<HydrateReport, HydrateError> {
    let state = target_state(&opts.target_dir)?;
    let action = decide(&state, &opts.artifacts);
    let unpacked = match &action {
        Action::Hydrate => Some(fill(opts)?),
        Action::Replace { .. } => {
            fs::remove_dir_all(&opts.target_dir)
                .with_path("remove the previously hydrated", &opts.target_dir)?;
            Some(fill(opts)?)
        }
        Action::UpToDate | Action::KeepBuiltSince { .. } | Action::KeepOwn => None,
    };
    Ok(HydrateReport {
        action,
        artifacts: opts.artifacts.clone(),
        target_dir: opts.target_dir.clone(),
        unpacked,
    })
}

fn fill(opts: &UnpackOptions) -> Result<UnpackReport, HydrateError> {
    let report = unpack::unpack(opts)?;
    let mut line = opts.artifacts.clone().into_os_string().into_vec();
    line.push(b'\n');
    fsutil::write_atomic(&opts.target_dir.join(MARKER), |w| w.write_all(&line))?;
    Ok(report)
}

fn target_state(target: &Path) -> Result<TargetState, HydrateError> {
    let entries = match fs::read_dir(target) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TargetState::Empty),
        Err(e) => return Err(FsError::new("read directory", target, e).into()),
    };
    if entries.count() == 0 {
        return Ok(TargetState::Empty);
    }
    let marker = target.join(MARKER);
    let text = match fs::read(&marker) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TargetState::Own),
        Err(e) => return Err(FsError::new("read", &marker, e).into()),
    };
    let from = text
        .strip_suffix(b"\n")
        .filter(|line| !line.is_empty() && !line.contains(&b'\n'))
        .map(|line| PathBuf::from(std::ffi::OsStr::from_bytes(line)))
        .ok_or_else(|| HydrateError::BadMarker(marker.clone()))?;
    let hydrated_at = FileTime::from_last_modification_time(&fsutil::symlink_metadata(&marker)?);
    Ok(TargetState::Hydrated {
        from,
        built_since: newer_than(target, hydrated_at, &marker)?,
    })
}

/// Whether any entry below `dir` (symlinks not followed, the marker aside) is newer than `time`.
fn newer_than(dir: &Path, time: FileTime, marker: &Path) -> Result<bool, HydrateError> {
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| fsutil::walk_error(dir, e))?;
        if entry.path() == marker {
            continue;
        }
        let meta = entry.metadata().map_err(|e| fsutil::walk_error(dir, e))?;
        if FileTime::from_last_modification_time(&meta) > time {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hydrated(from: &str, built_since: bool) -> TargetState {
        TargetState::Hydrated {
            from: from.into(),
            built_since,
        }
    }

    #[test]
    fn decisions() {
        let deps = Path::new("/s/aaa-deps");
        assert_eq!(decide(&TargetState::Empty, deps), Action::Hydrate);
        assert_eq!(decide(&TargetState::Own, deps), Action::KeepOwn);
        assert_eq!(
            decide(&hydrated("/s/aaa-deps", true), deps),
            Action::UpToDate
        );
        assert_eq!(
            decide(&hydrated("/s/bbb-deps", false), deps),
            Action::Replace {
                previous: "/s/bbb-deps".into()
            }
        );
        assert_eq!(
            decide(&hydrated("/s/bbb-deps", true), deps),
            Action::KeepBuiltSince {
                previous: "/s/bbb-deps".into()
            }
        );
    }
}
