//! crane's artifacts as they lie in a directory: the one place that knows crane's names (its
//! archive, its target dir, the `.prev` link from one `use-zstd` archive to the one before it),
//! and the stop sign pack leaves under crane's archive name. [`Artifacts::detect`] recognises
//! crane's formats by these names; reading what its archives and directories hold is
//! `unpack::crane`'s.
//!
//! [`Artifacts::detect`]: super::Artifacts::detect

use crate::archive::{Compression, Encoder};
use crate::fsutil::{self, FsError};
use std::path::{Path, PathBuf};

/// crane's `use-zstd` archive. Our outputs carry a stop sign under this name: see
/// [`write_stop_sign`].
pub const ARCHIVE: &str = "target.tar.zst";
/// crane's `use-symlink` output: a plain target dir.
pub(crate) const DIR: &str = "target";
/// Beside a `use-zstd` archive, the link to the archive of the derivation before.
const PREV_SUFFIX: &str = ".prev";
/// The link to the previous archive that crane's install hook leaves in the target dir.
const PREVIOUS_ARCHIVE_LINK: &str = ".crane-previous-archive";

/// Whether a file in a target dir is crane's own bookkeeping, never carried over (with
/// `classify`'s never-carried names).
pub(crate) fn is_bookkeeping(name: &std::ffi::OsStr) -> bool {
    name == PREVIOUS_ARCHIVE_LINK
}

/// Whether `path` is named like one of crane's archives (given directly, not in an output).
pub(crate) fn is_archive_name(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".tar.zst")
}

/// Where the link to the previous archive of `archive`'s chain would be.
pub(crate) fn prev_of(archive: &Path) -> PathBuf {
    let mut prev = archive.as_os_str().to_owned();
    prev.push(PREV_SUFFIX);
    PathBuf::from(prev)
}

/// crane's artifacts in the directory `dir`, by name: its target dir, the `.prev` link of a
/// `use-zstd` chain, and, unless `stop_sign` (`dir` holds ours, whose archive is a stop sign
/// under crane's name), its archive.
pub(crate) fn found_in(dir: &Path, stop_sign: bool) -> Vec<String> {
    let archive = dir.join(ARCHIVE);
    let mut found = Vec::new();
    if dir.join(DIR).is_dir() {
        found.push(format!("{DIR}/"));
    }
    if std::fs::symlink_metadata(prev_of(&archive)).is_ok() {
        found.push(format!("{ARCHIVE}{PREV_SUFFIX}"));
    }
    if !stop_sign && std::fs::symlink_metadata(&archive).is_ok() {
        found.push(ARCHIVE.into());
    }
    found
}

/// The one member of the stop sign: a hard link whose names tell what happened and what to do.
const STOP_SIGN_NAME: &str =
    "this-is-a-cargo-nixcache-output.inherit-it-through-the-cargo-nixcache-crane-adapter";
const STOP_SIGN_LINK: &str = "see-docs-nix.md-of-cargo-nixcache";

/// Writes `target.tar.zst` into an artifacts directory: a zstd frame holding a tar whose only
/// member is a hard link to a file that does not exist. crane's stock inheritCargoArtifacts
/// (lib/setupHooks/inheritCargoArtifactsHook.sh) copies any directory WITHOUT such a file into
/// `target/` with rsync, so a derivation of an unadapted crane lib would silently inherit our
/// manifest and archive as junk and rebuild everything. With it, crane runs
/// `zstd -d | tar -x`, GNU tar fails ("Cannot hard link to ..."), naming this member, and the
/// build stops (crane's hooks run under errexit and pipefail). Our own readers never look at it:
/// the manifest comes first. 144 bytes, always the same.
pub(crate) fn write_stop_sign(dir: &Path) -> Result<(), FsError> {
    let path = dir.join(ARCHIVE);
    fsutil::write_atomic(&path, |w| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Link);
        header.set_path(STOP_SIGN_NAME)?;
        header.set_link_name(STOP_SIGN_LINK)?;
        header.set_size(0);
        header.set_mode(0o644);
        header.set_mtime(1);
        header.set_cksum();
        let mut tar = tar::Builder::new(Vec::new());
        tar.append(&header, std::io::empty())?;
        // Through the archive's encoder: a checksum, like every zstd frame cargo-nixcache writes.
        let mut encoder = Encoder::new(Vec::new(), Compression::Zstd, 3, 0)?;
        std::io::Write::write_all(&mut encoder, &tar.into_inner()?)?;
        w.write_all(&encoder.finish()?)
    })
}
