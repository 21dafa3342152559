//! The GC anchor, `nixcache-refs`: one absolute store path per line, every store path the
//! archive names. Nix cannot see into a zstd stream, so this plain file is what keeps the
//! linked store paths alive; readers check the archive's references against it.

use crate::archive::path::display_bytes;
use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, FsError, InputFileError};
use crate::store::{StoreDir, StorePath};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The GC anchor's file name.
pub const ANCHOR: &str = "nixcache-refs";

/// The largest GC anchor read (about 100 bytes a store path).
const MAX_ANCHOR_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error(transparent)]
    Input(#[from] InputFileError),
    #[error("GC anchor `{path}` line {line}: {reason}")]
    Bad {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl HasFault for AnchorError {
    fn fault(&self) -> Fault {
        match self {
            AnchorError::Input(e) => e.fault(),
            AnchorError::Bad { .. } => Fault::Input,
        }
    }
}

/// Writes the anchor into the artifacts directory `dir`, atomically: sorted absolute store
/// paths, one per line.
pub fn write(dir: &Path, store: &StoreDir, paths: &BTreeSet<StorePath>) -> Result<(), FsError> {
    let mut text = String::new();
    for p in paths {
        text.push_str(&store.to_absolute(p).to_string_lossy());
        text.push('\n');
    }
    fsutil::write_atomic(&dir.join(ANCHOR), |w| w.write_all(text.as_bytes()))
}

/// Reads an anchor back into the set of store paths it keeps alive.
pub fn read(path: &Path, store: &StoreDir) -> Result<BTreeSet<StorePath>, AnchorError> {
    let text = fsutil::read_input_to_string(path, MAX_ANCHOR_BYTES, "GC anchor")?;
    let mut set = BTreeSet::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let (store_path, rest) = store.parse(Path::new(line)).map_err(|e| AnchorError::Bad {
            path: path.into(),
            line: i + 1,
            reason: display_bytes(e.to_string().as_bytes()),
        })?;
        if !rest.as_os_str().is_empty() {
            let reason = format!(
                "`{}` is not a bare store path",
                display_bytes(line.as_bytes())
            );
            return Err(AnchorError::Bad {
                path: path.into(),
                line: i + 1,
                reason,
            });
        }
        set.insert(store_path);
    }
    Ok(set)
}
