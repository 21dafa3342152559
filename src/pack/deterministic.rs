//! What pack does so that the same build packs to the same bytes (`nix-build --check`, binary
//! caches, Hydra): the archive's mtimes, and cargo's one file whose bytes vary from run to run.
//!
//! - Inside a Nix build every directory and file of the archive records the store's canonical
//!   mtime. Nix gives the output's files that mtime anyway, and unpack restores it for every
//!   entry of an output in a real store (`unpack --mtimes auto`), so the build's own times were
//!   recorded only to differ between two builds of the same derivation. Outside Nix (a store dir
//!   that is not canonicalized) they are kept: there they order what cargo compares.
//! - `.rustc_info.json`, cargo's cache of rustc's answers (`rustc -vV`, the target info), is a
//!   JSON map cargo writes in hash order; it is stored with its keys sorted. cargo reads it in
//!   any order, and keeping it spares every consumer two rustc runs (docs/benchmarks.md).

use crate::store::CANONICAL_MTIME;
use filetime::FileTime;

/// The name of cargo's rustc probe cache, at the top of a target or build dir.
pub(super) const RUSTC_INFO: &str = ".rustc_info.json";

/// Where the archive's directory and file mtimes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchiveMtimes {
    /// The store's canonical mtime inside a Nix build (`$NIX_BUILD_TOP` set), else `build`.
    Auto,
    /// The store's canonical mtime (1) for every directory and file.
    Store,
    /// Each entry's own mtime, as the build left it.
    Build,
}

impl ArchiveMtimes {
    /// The fixed mtime the archive records, if any; `in_nix_build` decides `Auto`.
    pub fn fixed(self, in_nix_build: bool) -> Option<FileTime> {
        match self {
            ArchiveMtimes::Store => Some(FileTime::from_unix_time(CANONICAL_MTIME, 0)),
            ArchiveMtimes::Auto if in_nix_build => {
                Some(FileTime::from_unix_time(CANONICAL_MTIME, 0))
            }
            ArchiveMtimes::Auto | ArchiveMtimes::Build => None,
        }
    }
}

/// Whether pack runs inside a Nix build.
pub fn in_nix_build() -> bool {
    std::env::var_os("NIX_BUILD_TOP").is_some_and(|v| !v.is_empty())
}

/// cargo's rustc probe cache with its JSON maps' keys sorted (serde_json's map is ordered);
/// `None` when it is not JSON (then it is stored as it is: it is a cache, cargo rewrites it).
pub(super) fn sorted_rustc_info(bytes: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_info_in_any_order_sorts_to_the_same_bytes() {
        let a = br#"{"rustc_fingerprint":7,"outputs":{"2":{"stdout":"b"},"10":{"stdout":"a"}},"successes":{}}"#;
        let b = br#"{"rustc_fingerprint":7,"outputs":{"10":{"stdout":"a"},"2":{"stdout":"b"}},"successes":{}}"#;
        let sorted = sorted_rustc_info(a).unwrap();
        assert_eq!(sorted, sorted_rustc_info(b).unwrap());
        assert_eq!(
            String::from_utf8(sorted).unwrap(),
            r#"{"outputs":{"10":{"stdout":"a"},"2":{"stdout":"b"}},"rustc_fingerprint":7,"successes":{}}"#
        );
        // Not JSON: no rewrite.
        assert_eq!(sorted_rustc_info(b"{truncated"), None);
    }

    #[test]
    fn auto_is_the_store_mtime_only_inside_a_nix_build() {
        let one = Some(FileTime::from_unix_time(1, 0));
        assert_eq!(ArchiveMtimes::Auto.fixed(true), one);
        assert_eq!(ArchiveMtimes::Auto.fixed(false), None);
        assert_eq!(ArchiveMtimes::Store.fixed(false), one);
        assert_eq!(ArchiveMtimes::Build.fixed(true), None);
    }
}
