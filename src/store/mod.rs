//! The Nix store as this tool sees it: where it is, what a store path is, and how to find store
//! paths inside arbitrary bytes.
//!
//! - [`nixbase32`]: the odd base32 Nix writes hashes in.
//! - [`path`]: [`StoreDir`] and [`StorePath`], parsed once and typed from then on.
//! - [`refscan`]: the reference scanner behind GC anchors, `refs` and `verify`.
//!
//! Nothing here touches the filesystem; the store directory is a value passed in, never assumed.

pub mod nixbase32;
mod path;
mod refscan;

pub use path::{StoreDir, StoreError, StorePath};
pub(crate) use refscan::{scan_bytes, scan_reader, RefScanner, Scanned};

/// The modification time (seconds since the epoch) Nix gives every file it registers in the
/// store. Whatever mtime a build left on an artifact, once it is in the store it reads as this.
pub const CANONICAL_MTIME: i64 = 1;
