//! The artifacts directory a pack writes into (`$out`): one pack at a time, only the packs of
//! one tree, and nothing left over from a pack that was killed.
//!
//! pack moves the artifacts it finds into `OUT/artifacts/<path>` by rename, which replaces what
//! is there. Two packs of different target dirs into one OUT would therefore replace each
//! other's artifacts, and one tree's links would run the other build's binaries. So:
//! - a pack holds an exclusive `flock` on OUT for its whole run; a second one fails at once;
//! - OUT records which tree it holds (`.nixcache-pack`: the packed roots' absolute paths),
//!   written before the first artifact moves, and a pack of another tree is refused (a repack
//!   of the same tree, in the same derivation, stays allowed);
//! - OUT holding crane's artifacts (its `target/`, archive or `.prev` link) is refused too: pack
//!   would leave them beside its own, stale, and crane's `.prev` would lead crane's hooks on;
//! - temporary files a killed pack left (`.<name>.<random>.tmp`) are removed by the next pack,
//!   and a failed pack removes what it created ([`OutDir::abandon`]).
//!
//! The owner record is this module's own file; what else lies in OUT (our artifacts, and
//! crane's) it asks of [`artifacts`](crate::artifacts), which alone knows the names.

use crate::artifacts::{crane, publish};
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, FsError, IoContext};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Why a pack cannot have OUT.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("another `cargo nixcache pack` is writing into `{0}`; wait for it, or pack into another output")]
    Busy(PathBuf),
    #[error("`{out}` holds the artifacts of another pack ({owner}); pack each target dir into an output of its own")]
    ForeignOut { out: PathBuf, owner: String },
    #[error(
        "`{out}` holds crane's artifacts ({}), which pack would leave beside its own: remove \
         them, or pack into an output of its own (did crane's installCargoArtifacts run too?)",
        found.join(", ")
    )]
    CraneOut { out: PathBuf, found: Vec<String> },
}

impl HasFault for OutDirError {
    fn fault(&self) -> Fault {
        match self {
            OutDirError::Fs(e) => e.fault(),
            OutDirError::Busy(_) => Fault::Environment,
            OutDirError::ForeignOut { .. } | OutDirError::CraneOut { .. } => Fault::Usage,
        }
    }
}

/// The owner record: which target (and build) dir the artifacts in OUT come from.
pub const OWNER: &str = ".nixcache-pack";

/// OUT, locked for this pack.
pub struct OutDir {
    path: PathBuf,
    _lock: Flock<File>,
    /// This pack created OUT, or `OUT/artifacts`, or the owner record: a failed pack removes them.
    created: bool,
    created_blobs: bool,
    created_owner: bool,
}

impl OutDir {
    /// Creates OUT if need be, locks it, makes sure it holds nothing but this tree's artifacts,
    /// removes a killed pack's temporary files, and records this tree as the owner.
    /// `roots` are the packed roots by archive name (`target`, `build`).
    pub fn claim(out: &Path, roots: &[(&str, PathBuf)]) -> Result<OutDir, OutDirError> {
        let mut owner = BTreeMap::new();
        for (name, root) in roots {
            let real = fs::canonicalize(root).with_path("resolve", root)?;
            owner.insert(name.to_string(), real);
        }
        let created = fs::symlink_metadata(out).is_err();
        if created {
            fsutil::create_dir_all(out)?;
        }
        let dir = File::open(out).with_path("open", out)?;
        let lock = Flock::lock(dir, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
            Errno::EWOULDBLOCK => OutDirError::Busy(out.into()),
            e => FsError::new("lock", out, io::Error::from(e)).into(),
        })?;
        let owner_path = out.join(OWNER);
        let recorded = match fs::read(&owner_path) {
            Ok(bytes) => Some(serde_json::from_slice::<BTreeMap<String, PathBuf>>(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(FsError::new("read", &owner_path, e).into()),
        };
        let holds_artifacts = publish::holds_ours(out);
        let found = crane::found_in(out, recorded.is_some());
        if !found.is_empty() {
            return Err(OutDirError::CraneOut {
                out: out.into(),
                found,
            });
        }
        let created_owner = recorded.is_none();
        match recorded {
            Some(Some(theirs)) if theirs == owner => {}
            Some(theirs) => {
                let of = theirs
                    .and_then(|t| t.get("target").cloned())
                    .map_or("of an unknown target dir".into(), |t| {
                        format!("of `{}`", t.display())
                    });
                return Err(OutDirError::ForeignOut {
                    out: out.into(),
                    owner: of,
                });
            }
            None if holds_artifacts => {
                return Err(OutDirError::ForeignOut {
                    out: out.into(),
                    owner: "whose target dir was not recorded".into(),
                })
            }
            None => {}
        }
        remove_leftovers(out)?;
        let created_blobs = fs::symlink_metadata(publish::blobs_dir(out)).is_err();
        if created_owner {
            let json = serde_json::to_vec_pretty(&owner).map_err(io::Error::from);
            let json = json.with_path("write", &owner_path)?;
            fsutil::write_atomic(&owner_path, |w| w.write_all(&json))?;
        }
        Ok(OutDir {
            path: out.into(),
            _lock: lock,
            created,
            created_blobs,
            created_owner,
        })
    }

    /// After a failed pack (whose moves were undone): removes what this pack created, so OUT is
    /// as it was, or gone if it was not there. Best effort: the pack's own error is what counts.
    pub fn abandon(self) {
        if self.created {
            let _ = fs::remove_dir_all(&self.path);
            return;
        }
        if self.created_blobs {
            let _ = fs::remove_dir_all(publish::blobs_dir(&self.path));
        }
        if self.created_owner {
            let _ = fs::remove_file(self.path.join(OWNER));
        }
    }
}

/// Removes the temporary files of a killed pack (this one holds the lock: nobody else writes).
fn remove_leftovers(out: &Path) -> Result<(), FsError> {
    for entry in fs::read_dir(out).with_path("read directory", out)? {
        let entry = entry.with_path("read directory", out)?;
        let name = entry.file_name();
        if publish::is_temp_leftover(&name) || fsutil::is_temp_name_for(&name, OWNER) {
            let path = entry.path();
            fs::remove_file(&path).with_path("remove the leftover", &path)?;
        }
    }
    Ok(())
}
