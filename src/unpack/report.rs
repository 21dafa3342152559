//! What an unpack did, and the mtime policy it applied: the report both readers fill (ours in
//! [`super`], crane's in [`super::crane`]), kept below both so neither imports the other.

/// Which mtimes restored files and directories get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MtimePolicy {
    /// `store` when the linked artifacts carry the store's canonical mtime, else `archive`.
    #[default]
    Auto,
    /// The mtimes recorded in the archive.
    Archive,
    /// The store's canonical mtime (1) for everything: inside a real store the linked
    /// artifacts lost their build-time mtimes to it, and cargo compares the mtimes of inline
    /// files (build-script `output`, fingerprints) with theirs. Giving both the same time keeps
    /// every such comparison "not newer", as it was when the deps were built.
    Store,
}

/// What an unpack did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpackReport {
    /// `nixcache`, `crane-zstd` or `crane-dir`.
    pub format: &'static str,
    pub dirs: u64,
    pub links: u64,
    pub files: u64,
    pub file_bytes: u64,
    /// The policy applied (`archive` or `store`; never `auto`).
    pub mtimes: MtimePolicy,
}

impl UnpackReport {
    /// Adds what `other` created (an unpack split over threads).
    pub(super) fn add_counts(&mut self, other: &UnpackReport) {
        self.dirs += other.dirs;
        self.links += other.links;
        self.files += other.files;
        self.file_bytes += other.file_bytes;
    }
}
