//! Which fingerprints of local units pack leaves out (see the rule in [`super`]'s module doc):
//! those of the workspace's own packages whose newest file is older than the newest local source
//! file.
//!
//! Made in two parts, neither of which climbs back up the tree:
//! - before the walk, from the sources alone ([`local_sources`]): their digests, the names of the
//!   local packages and the newest source mtime, which make the rule ([`StaleUnits`]);
//! - during the walk, from what the way down already told: each directory it is about to enter
//!   is judged from its parent's place (`classify`), its name and a [`Lineage`] handed down. A
//!   classic unit is `.fingerprint/<package>-<16 hex digits>/` of a profile dir; a v2 unit's is
//!   `build/<package>/<hash>/fingerprint/`, judged only in a profile dir without a classic
//!   `.fingerprint/` (a mixed profile's v2 units are kept). A unit's time is the newest mtime of
//!   what its fingerprint directory holds, read there, one level down, before the walk enters it.
//!
//! A profile dir is what `classify` calls one, so the rule looks where the walk goes: in the
//! trees cargo writes, `[<triple>/]<profile>/` (profiles under a root, or under a `<triple>/`
//! directory of one); never `incremental/`, never another root nested in this one.

use super::PackError;
use crate::classify::{Layout, Place};
use crate::fsutil::{self, FsError, IoContext};
use crate::sources::{self, SourceDigests};
use crate::store::StoreDir;
use crate::workspace::Workspace;
use filetime::FileTime;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// cargo's directory of unit fingerprints in the classic layout, in each profile dir; its
/// entries are `<package>-<16 hex digits>/`.
const FINGERPRINT: &str = ".fingerprint";
/// Build-dir layout v2: a unit's fingerprint directory, in `<profile>/build/<package>/<hash>/`.
const V2_FINGERPRINT: &str = "fingerprint";

/// The rule: local units whose fingerprint is older than the newest local source are stale.
#[derive(Debug)]
pub(super) struct StaleUnits {
    /// The local packages' names.
    names: HashSet<String>,
    /// The newest mtime of a local source file.
    newest: FileTime,
}

/// What the walk knows about a directory from the way down to it, as far as the rule cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Lineage {
    /// In a profile dir (or below) that holds a classic `.fingerprint/` directory.
    classic: bool,
    /// In `build/<package>/` (or below) of a local package, in a profile dir without one.
    local_package: bool,
}

/// Digests the local packages' sources (skipping the roots), and makes the rule: `None` when no
/// local source file was found.
pub(super) fn local_sources(
    manifest: &Path,
    roots: &[(&'static str, PathBuf)],
    store: &StoreDir,
) -> Result<(SourceDigests, Option<StaleUnits>), PackError> {
    let ws = Workspace::discover(manifest)?;
    let dirs: Vec<PathBuf> = roots.iter().map(|(_, d)| d.clone()).collect();
    let scan = sources::scan(&ws, &dirs, store)?;
    let names = scan.iter().filter_map(|p| p.name.clone()).collect();
    let rule = scan
        .iter()
        .filter_map(|p| p.newest)
        .max()
        .map(|newest| StaleUnits { names, newest });
    Ok((sources::digests(&scan), rule))
}

impl StaleUnits {
    /// The lineage of the directory at `path`, whose place is `place`, in a directory whose
    /// lineage is `parent`.
    pub fn lineage(&self, parent: Lineage, place: Place, name: &OsStr, path: &Path) -> Lineage {
        match place {
            Place::Profile => Lineage {
                classic: path.join(FINGERPRINT).is_dir(),
                local_package: false,
            },
            Place::BuildEntry => Lineage {
                local_package: !parent.classic
                    && name.to_str().is_some_and(|n| self.names.contains(n)),
                ..parent
            },
            _ => parent,
        }
    }

    /// Whether the directory `name` at `path`, in a directory whose place is `parent` and
    /// lineage `lineage`, is a local unit's fingerprint directory older than the newest local
    /// source: left out.
    pub fn is_stale(
        &self,
        parent: Place,
        lineage: Lineage,
        name: &OsStr,
        path: &Path,
    ) -> Result<bool, FsError> {
        let local_unit = match parent {
            Place::Fingerprints(Layout::Classic) => {
                let name = name.to_string_lossy();
                name.rsplit_once('-').is_some_and(|(package, hash)| {
                    hash.len() == 16
                        && hash.bytes().all(|b| b.is_ascii_hexdigit())
                        && self.names.contains(package)
                })
            }
            Place::Unit { .. } => lineage.local_package && name == V2_FINGERPRINT,
            _ => false,
        };
        Ok(local_unit && unit_time(path)?.is_some_and(|t| t < self.newest))
    }
}

/// When cargo last wrote a unit's fingerprint: the newest mtime of its files.
fn unit_time(unit: &Path) -> Result<Option<FileTime>, FsError> {
    let mut newest = None;
    for entry in fs::read_dir(unit).with_path("read directory", unit)? {
        let path = entry.with_path("read directory", unit)?.path();
        let meta = fsutil::symlink_metadata(&path)?;
        newest = newest.max(Some(FileTime::from_last_modification_time(&meta)));
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: i64 = 1_000;
    const SOURCES: i64 = 2_000;
    const NEW: i64 = 3_000;

    fn rule() -> StaleUnits {
        StaleUnits {
            names: HashSet::from(["app".to_string()]),
            newest: FileTime::from_unix_time(SOURCES, 0),
        }
    }

    /// A fingerprint directory whose files were last written at `time`.
    fn unit(dir: &Path, time: i64) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        for file in ["lib-app", "lib-app.json"] {
            let path = dir.join(file);
            fs::write(&path, "x").unwrap();
            filetime::set_file_mtime(&path, FileTime::from_unix_time(time, 0)).unwrap();
        }
        dir.to_path_buf()
    }

    fn stale(parent: Place, lineage: Lineage, path: &Path) -> bool {
        let name = path.file_name().unwrap();
        rule().is_stale(parent, lineage, name, path).unwrap()
    }

    #[test]
    fn classic_local_units_older_than_the_sources_are_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let fp = tmp.path().join("debug/.fingerprint");
        let at = Place::Fingerprints(Layout::Classic);
        let none = Lineage::default();
        assert!(stale(
            at,
            none,
            &unit(&fp.join("app-0123456789abcdef"), OLD)
        ));
        // Rebuilt after the sources changed.
        assert!(!stale(
            at,
            none,
            &unit(&fp.join("app-1123456789abcdef"), NEW)
        ));
        // Not a local package, or not a unit's name.
        assert!(!stale(
            at,
            none,
            &unit(&fp.join("serde-0123456789abcdef"), OLD)
        ));
        assert!(!stale(at, none, &unit(&fp.join("app-0123"), OLD)));
        assert!(!stale(
            at,
            none,
            &unit(&fp.join("app-0123456789abcdeg"), OLD)
        ));
        // An empty fingerprint directory has no time: kept.
        fs::create_dir(fp.join("app-2123456789abcdef")).unwrap();
        assert!(!stale(at, none, &fp.join("app-2123456789abcdef")));
        // The same name elsewhere is no unit.
        assert!(!stale(Place::Deps, none, &fp.join("app-0123456789abcdef")));
    }

    #[test]
    fn v2_units_are_judged_below_a_local_package_of_a_profile_without_classic_fingerprints() {
        let tmp = tempfile::tempdir().unwrap();
        let rule = rule();
        let profile = tmp.path().join("debug");
        let unit_dir = profile.join("build/app/0123abcd");
        let fingerprint = unit(&unit_dir.join(V2_FINGERPRINT), OLD);
        let down = |lineage: Lineage, place: Place, rel: &str| {
            let path = profile.join(rel);
            rule.lineage(lineage, place, path.file_name().unwrap(), &path)
        };
        let walk_to_unit = |package: &str| {
            let at_profile = rule.lineage(
                Lineage::default(),
                Place::Profile,
                "debug".as_ref(),
                &profile,
            );
            let at_build = down(at_profile, Place::Build, "build");
            let at_package = down(at_build, Place::BuildEntry, &format!("build/{package}"));
            down(at_package, Place::Unit { run: false }, "build/app/0123abcd")
        };
        let unit_place = Place::Unit { run: false };
        assert!(stale(unit_place, walk_to_unit("app"), &fingerprint));
        assert!(!stale(unit_place, walk_to_unit("serde"), &fingerprint));
        // Only the unit's own `fingerprint/`.
        let out = unit(&unit_dir.join("out"), OLD);
        assert!(!stale(unit_place, walk_to_unit("app"), &out));
        // A mixed profile (a classic `.fingerprint/` too): its v2 units are not judged.
        fs::create_dir(profile.join(FINGERPRINT)).unwrap();
        assert!(!stale(unit_place, walk_to_unit("app"), &fingerprint));
    }
}
