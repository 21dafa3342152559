//! Which files of a target (or build) dir may become read-only symlinks and which must stay real
//! files, for both build-dir layouts cargo writes.
//!
//! After unpack, anything that is a symlink into the store must be something nobody writes. The
//! rule is an allow-list, so a file cargo starts writing tomorrow is safe by default: a file is
//! linked only if it is a unit's output as rustc writes it (rlib, rmeta, so/dylib, a, dwo/dwp,
//! wasm, an executable) in a directory rustc writes unit outputs to (or cargo uplifts them
//! to). Those are written once under a name unique to the unit and only ever replaced by
//! unlinking, which cargo does before uplifting and the rustc wrapper does before rustc
//! rebuilds a unit. Everything else is inline: fingerprints, dep-info (`.d`) files, a build
//! script's bookkeeping and everything in its `OUT_DIR` (build scripts write there, libraries
//! included), rustdoc's output, `.rustc_info.json`, and any file not recognised.
//!
//! Never carried over: lock files (`.cargo-lock`; cargo >= 1.96 also opens `.cargo-build-lock`
//! and `.cargo-artifact-lock` read-write, and `-Zfine-grain-locking` a `.lock` per unit: every
//! `*.lock` is left out), and `incremental/` (rustc hard-links
//! its saved object files back into the out-dir, where a linked one would be a read-only output;
//! incremental state only speeds up rebuilding a changed crate, and Nix builds turn it off).
//!
//! ## The two layouts, recognised from the tree
//! A [`Place`] is what a directory is to cargo; it follows from its parent's place, its name and,
//! where names are ambiguous, what it contains (`has`). Below `[<triple>/]<profile>/`:
//!
//! - classic: `deps/` (rustc's out-dir for every unit), `.fingerprint/`, `examples/`, and
//!   `build/<pkg>-<hash>/` holding either a build script's binary or, for a run of it,
//!   `output`, `stderr`, `root-output`, `invoked.timestamp` and `out/` (the `OUT_DIR`).
//! - v2 (`-Zbuild-dir-new-layout`): no `deps/` and no `.fingerprint/`; one directory per unit,
//!   `build/<pkg>/<hash>/`, with `fingerprint/`, `out/` and, for a build-script run, `run/`
//!   (`stdout`, `stderr`, `root-output`, `invoked.timestamp`). A run unit's `out/` is the
//!   `OUT_DIR`; a compile unit's `out/` is rustc's out-dir. cargo creates `run/` together
//!   with the run unit's `out/`, so `run/` tells them apart.
//!
//! A profile dir is a directory of a root (or of a `<triple>/` directory) holding one of
//! `deps`, `.fingerprint`, `build`, `examples`, `incremental` or `.cargo-lock`; cargo creates
//! `examples/` in every profile dir of both layouts.
//!
//! ## Executables: stored for what can be linked
//! A linked artifact costs its whole size, uncompressed, in every store and cache that holds the
//! output; that pays off for what later units read (libraries, proc-macros, artifact
//! dependencies in `artifact/`), and for nothing else. Executables are never linked against:
//! [`Disposition::Executable`]. Leaves (test binaries, bins and examples, in rustc's out-dir,
//! uplifted, or in `examples/`) no unit runs either; build scripts cargo runs only when their
//! package's build is stale. Pack stores them inside the compressed archive or links them as
//! it is told ([`InlineExecutables`]: leaves inside by default, build scripts linked, since a
//! deps output's build scripts are what every consumer inherits) and unpack restores an inline
//! one as a real file. A build script's executable is recognised by the name cargo gives it
//! (`build-script-*`, `build_script_*`) where cargo puts one; a bin of such a name elsewhere
//! stays linked, which is only dearer.

use std::ffi::OsStr;
use std::path::{Component, Path};

/// What pack does with one file of the target tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Immutable artifact: its bytes live in the store, the tree gets a symlink.
    Link,
    /// An immutable executable nothing links against (see the module doc): stored inline or
    /// linked, as pack is told ([`InlineExecutables`]).
    Executable(Executable),
    /// Rewritten in place by cargo, rustc, rustdoc or a build script, or not recognised:
    /// stored in the archive.
    Inline,
    /// Not carried over at all.
    Skip,
}

/// What an executable unit output is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executable {
    /// A test binary, bin or example: run by a test or a user, never by a later unit.
    Leaf,
    /// A build script: run by cargo when its package's build is stale.
    BuildScript,
}

/// Which [`Disposition::Executable`] files pack stores inside the compressed archive when it
/// packs them for the first time; the others are linked as libraries are (an inherited link
/// to one stays a link: its bytes are in the store already).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InlineExecutables {
    /// Test binaries, bins and examples; build scripts are linked.
    #[default]
    Leaves,
    /// Build scripts too: for an output whose build scripts no later derivation is expected to
    /// inherit (a check, a package), as with crane's consumers of deps.
    All,
    /// None: every executable is linked (a deps output, inherited whole by every consumer).
    #[value(name = "none")]
    Linked,
}

impl InlineExecutables {
    /// Whether an executable of this kind goes inside the archive.
    pub fn inlines(self, kind: Executable) -> bool {
        match self {
            InlineExecutables::All => true,
            InlineExecutables::Leaves => kind == Executable::Leaf,
            InlineExecutables::Linked => false,
        }
    }
}

/// A cargo build-dir layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `deps/`, `.fingerprint/`, `build/<pkg>-<hash>/` (every cargo release so far).
    Classic,
    /// `build/<pkg>/<hash>/{fingerprint,out,run}/` (`-Zbuild-dir-new-layout`).
    V2,
}

/// The layouts a whole tree showed, as recorded in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeLayout {
    Classic,
    V2,
    /// Both: a build dir used by cargo with and without `-Zbuild-dir-new-layout`.
    Mixed,
}

/// Collects the layouts seen while walking a tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayoutsSeen {
    classic: bool,
    v2: bool,
}

impl LayoutsSeen {
    /// Notes the layout a directory's place shows, if it shows one.
    pub fn note(&mut self, place: Place) {
        match place.layout() {
            Some(Layout::Classic) => self.classic = true,
            Some(Layout::V2) => self.v2 = true,
            None => {}
        }
    }

    /// `None` when the tree held nothing of either layout (an empty target dir).
    pub fn summary(self) -> Option<TreeLayout> {
        match (self.classic, self.v2) {
            (true, true) => Some(TreeLayout::Mixed),
            (true, false) => Some(TreeLayout::Classic),
            (false, true) => Some(TreeLayout::V2),
            (false, false) => None,
        }
    }
}

/// What a directory of a target (or build) dir is to cargo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The target dir or the build dir itself.
    Root,
    /// A directory of the root that is not a profile dir: `<triple>/`, or something whose own
    /// directories may be profile dirs.
    Platform,
    /// `[<triple>/]<profile>/`: uplifted artifacts (`app`, `libfoo.rlib`).
    Profile,
    /// Classic `deps/` and below (`deps/artifact/...`): rustc's out-dir for every unit.
    Deps,
    /// `examples/`: uplifted (and, classic, pre-uplift) examples.
    Examples,
    /// `<profile>/build/`.
    Build,
    /// `build/<x>/`: classic, a build script's compile dir (its binary) or run dir (bookkeeping
    /// files, `out/`); v2, a package's unit dirs.
    BuildEntry,
    /// v2 `build/<pkg>/<hash>/`: one unit, `run` when it is a build-script run.
    Unit { run: bool },
    /// v2 `out/` of a compile unit: rustc's out-dir.
    UnitOut,
    /// `artifact/` below classic `deps/` or a v2 compile unit, and below it: artifact
    /// dependencies (`-Z bindeps`), executables other units read.
    Artifact,
    /// `.fingerprint/` (classic) or a unit's `fingerprint/` (v2): cargo rewrites these.
    Fingerprints(Layout),
    /// A build script's `OUT_DIR`: the script writes there.
    OutDir(Layout),
    /// v2 `run/`: a build-script run's bookkeeping files.
    RunFiles,
    /// Below any of the rewritten places above, and `doc/`, `tmp/`, `package/`.
    Rewritten,
    /// Anything else: its files are inline.
    Other,
}

/// Names in a directory that make it a profile dir (see the module doc).
const PROFILE_MARKERS: [&str; 6] = [
    "deps",
    ".fingerprint",
    "build",
    "examples",
    "incremental",
    ".cargo-lock",
];

/// Directories of a root (or a `<triple>/` directory) that never hold rustc's unit outputs:
/// rustdoc's output, test scratch space, `cargo package`'s sources and verification builds.
const NOT_PROFILES: [&str; 3] = ["doc", "tmp", "package"];

/// rustc's incremental compilation cache.
const INCREMENTAL: &str = "incremental";

/// File extensions of what rustc writes as a unit's outputs (executables have none on Unix).
const ARTIFACT_EXTENSIONS: [&str; 12] = [
    "a", "dll", "dwo", "dwp", "dylib", "exe", "lib", "pdb", "rlib", "rmeta", "so", "wasm",
];

impl Place {
    /// The place of the directory `name` inside a directory of this place; `has(entry)` tells
    /// whether that directory contains `entry` (asked only where names are ambiguous). `None`:
    /// the directory is not carried over at all.
    pub fn child_dir(self, name: &OsStr, has: impl Fn(&str) -> bool) -> Option<Place> {
        if name == INCREMENTAL {
            return None;
        }
        let is = |s: &str| name == s;
        let is_profile = || PROFILE_MARKERS.iter().any(|m| has(m));
        Some(match self {
            Place::Root | Place::Platform if NOT_PROFILES.iter().any(|n| is(n)) => Place::Rewritten,
            Place::Root | Place::Platform if is_profile() => Place::Profile,
            Place::Root => Place::Platform,
            Place::Profile if is("deps") => Place::Deps,
            Place::Profile if is(".fingerprint") => Place::Fingerprints(Layout::Classic),
            Place::Profile if is("examples") => Place::Examples,
            Place::Profile if is("build") => Place::Build,
            Place::Deps | Place::Unit { run: false } if is("artifact") => Place::Artifact,
            Place::Deps => Place::Deps,
            Place::Artifact => Place::Artifact,
            Place::Build => Place::BuildEntry,
            // A v2 unit's hash is never `out`, so this is the classic OUT_DIR.
            Place::BuildEntry if is("out") => Place::OutDir(Layout::Classic),
            Place::BuildEntry if has("fingerprint") || has("out") => {
                Place::Unit { run: has("run") }
            }
            Place::Unit { .. } if is("fingerprint") => Place::Fingerprints(Layout::V2),
            Place::Unit { run: true } if is("run") => Place::RunFiles,
            Place::Unit { run: true } if is("out") => Place::OutDir(Layout::V2),
            Place::Unit { run: false } if is("out") => Place::UnitOut,
            Place::UnitOut => Place::UnitOut,
            Place::Fingerprints(_) | Place::OutDir(_) | Place::RunFiles | Place::Rewritten => {
                Place::Rewritten
            }
            _ => Place::Other,
        })
    }

    /// What happens to the regular file `name` (or a symlink to one) in a directory of this
    /// place; `executable` is whether the file has an execute bit.
    pub fn file(self, name: &OsStr, executable: bool) -> Disposition {
        if never_carried_name(name) {
            return Disposition::Skip;
        }
        let rustc_writes_here = matches!(
            self,
            Place::Profile
                | Place::Deps
                | Place::Examples
                | Place::BuildEntry
                | Place::UnitOut
                | Place::Artifact
        );
        if !(rustc_writes_here && is_unit_output(name, executable)) {
            return Disposition::Inline;
        }
        let leaves_here = matches!(
            self,
            Place::Profile | Place::Deps | Place::Examples | Place::UnitOut
        );
        let build_scripts_here = matches!(self, Place::BuildEntry | Place::UnitOut);
        match executable_kind(name, executable) {
            Some(Executable::Leaf) if leaves_here => Disposition::Executable(Executable::Leaf),
            Some(Executable::BuildScript) if build_scripts_here => {
                Disposition::Executable(Executable::BuildScript)
            }
            _ => Disposition::Link,
        }
    }

    /// The layout this place belongs to, if only one layout has it.
    pub fn layout(self) -> Option<Layout> {
        match self {
            Place::Deps => Some(Layout::Classic),
            Place::Unit { .. } | Place::UnitOut | Place::RunFiles => Some(Layout::V2),
            Place::Fingerprints(l) | Place::OutDir(l) => Some(l),
            _ => None,
        }
    }
}

/// Whether the directory `dir` is a target or build dir cargo made: it holds the
/// `CACHEDIR.TAG` cargo writes into both, and `.rustc_info.json` or a profile dir (directly or
/// in a `<triple>/` directory). A `CACHEDIR.TAG` alone does not make one: sources may sit
/// beside one.
pub fn is_cargo_root(dir: &Path) -> bool {
    let has = |d: &Path, entry: &str| d.join(entry).symlink_metadata().is_ok();
    let is_profile = |d: &Path| PROFILE_MARKERS.iter().any(|m| has(d, m));
    if !has(dir, "CACHEDIR.TAG") {
        return false;
    }
    if has(dir, ".rustc_info.json") {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let child = e.path();
        e.file_type().is_ok_and(|t| t.is_dir())
            && (is_profile(&child)
                || std::fs::read_dir(&child).is_ok_and(|mut grand| {
                    grand.any(|g| {
                        g.is_ok_and(|g| {
                            g.file_type().is_ok_and(|t| t.is_dir()) && is_profile(&g.path())
                        })
                    })
                }))
    })
}

/// Whether a file name is one pack never stores wherever it is: lock files (`.cargo-lock`,
/// `.cargo-build-lock`, `.cargo-artifact-lock`, any `*.lock`). (crane's bookkeeping is
/// `artifacts::crane`'s to name.)
pub fn never_carried_name(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.ends_with(b".lock") || (name.starts_with(b".cargo") && name.ends_with(b"lock"))
}

/// Whether a path (relative to a target dir root) is never carried over, judged by the path
/// alone: a never-carried name, or anything below an `incremental/` directory. For archives
/// read as a stream (crane's), where the tree cannot be asked.
pub fn never_carried(rel: &Path) -> bool {
    rel.file_name().is_some_and(never_carried_name)
        || rel
            .parent()
            .into_iter()
            .flat_map(Path::components)
            .any(|c| c == Component::Normal(OsStr::new(INCREMENTAL)))
}

/// What a unit output is, if it is an executable (no extension and an execute bit, or
/// Windows' `.exe`): a build script by cargo's names for one (see the module doc), else a leaf.
fn executable_kind(name: &OsStr, executable: bool) -> Option<Executable> {
    let bytes = name.as_encoded_bytes();
    let executable = match Path::new(name).extension() {
        Some(ext) => ext == "exe",
        None => executable,
    };
    let build_script = bytes.starts_with(b"build-script-") || bytes.starts_with(b"build_script_");
    match (executable, build_script) {
        (false, _) => None,
        (true, true) => Some(Executable::BuildScript),
        (true, false) => Some(Executable::Leaf),
    }
}

/// Whether a file looks like something rustc writes as a unit's output.
fn is_unit_output(name: &OsStr, executable: bool) -> bool {
    match Path::new(name).extension().and_then(OsStr::to_str) {
        Some(ext) => ARTIFACT_EXTENSIONS.contains(&ext),
        None => executable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disposition::*;
    const LEAF: Disposition = Executable(super::Executable::Leaf);
    const SCRIPT: Disposition = Executable(super::Executable::BuildScript);

    /// A tree given as the directories that exist; `has` answers from it.
    struct FakeTree(&'static [&'static str]);

    impl FakeTree {
        /// The place of `rel`'s parent directory, walking down from the root as pack does;
        /// `None` if a directory on the way is not carried over.
        fn place_of_parent(&self, rel: &str) -> Option<Place> {
            let mut place = Place::Root;
            let mut dir = String::new();
            let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
            for name in parent.split('/').filter(|n| !n.is_empty()) {
                let child = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                let has = |entry: &str| self.0.contains(&format!("{child}/{entry}").as_str());
                place = place.child_dir(OsStr::new(name), has)?;
                dir = child;
            }
            Some(place)
        }

        fn classify(&self, rel: &str, executable: bool) -> Disposition {
            let name = OsStr::new(rel.rsplit('/').next().unwrap());
            self.place_of_parent(rel)
                .map_or(Skip, |place| place.file(name, executable))
        }
    }

    /// A classic target dir (cargo 1.95), host and `--target` units, as cargo lays it out.
    const CLASSIC: FakeTree = FakeTree(&[
        "debug/.cargo-lock",
        "debug/deps",
        "debug/.fingerprint",
        "debug/build",
        "debug/examples",
        "debug/incremental",
        "debug/build/foo-0123/out",
        "x86_64-unknown-linux-gnu/debug/deps",
        "x86_64-unknown-linux-gnu/debug/build",
        "doc/build",
    ]);

    #[test]
    fn classifies_a_classic_tree() {
        let cases = [
            // Lock files, wherever they are; cargo >= 1.96 adds two.
            ("debug/.cargo-lock", false, Skip),
            ("debug/.cargo-build-lock", false, Skip),
            ("debug/.cargo-artifact-lock", false, Skip),
            ("debug/build/foo-0123/out/x.lock", false, Skip),
            (".rustc_info.json", false, Inline),
            ("CACHEDIR.TAG", false, Inline),
            ("debug/.fingerprint/foo-0123/lib-foo", false, Inline),
            ("debug/.fingerprint/foo-0123/dep-lib-foo", false, Inline),
            ("debug/build/foo-0123/invoked.timestamp", false, Inline),
            ("debug/build/foo-0123/output", false, Inline),
            ("debug/build/foo-0123/root-output", false, Inline),
            ("debug/build/foo-0123/stderr", false, Inline),
            ("debug/build/foo-0123/out/generated.rs", false, Inline),
            // A build script's OUT_DIR is its own, libraries and executables included.
            ("debug/build/foo-0123/out/lib/libz.a", false, Inline),
            ("debug/build/foo-0123/out/libz.a", false, Inline),
            ("debug/build/foo-0123/out/tool", true, Inline),
            ("debug/build/foo-4567/build-script-build", true, SCRIPT),
            ("debug/build/foo-4567/build_script_build-4567", true, SCRIPT),
            (
                "debug/build/foo-4567/build_script_build-4567.d",
                false,
                Inline,
            ),
            (
                "debug/build/foo-4567/build_script_build-4567.foo.cgu.0.rcgu.dwo",
                false,
                Link,
            ),
            ("debug/deps/libfoo-0123.rlib", false, Link),
            ("debug/deps/libfoo-0123.rmeta", false, Link),
            ("debug/deps/libfoo_macros-0123.so", true, Link),
            ("debug/deps/libfoo-0123.a", false, Link),
            ("debug/deps/foo-0123.d", false, Inline),
            ("debug/deps/app-0123", true, LEAF),
            ("debug/deps/app-0123.exe", false, LEAF),
            // A build script's name where cargo puts none: only dearer to link.
            ("debug/deps/build_script_x-0123", true, Link),
            ("debug/deps/app-0123.wasm", false, Link),
            ("debug/deps/app-0123.dwp", false, Link),
            ("debug/deps/artifact/bar-0123/bin/bar-0123", true, Link),
            // Unknown files are inline, never linked.
            ("debug/deps/app-0123.rcgu.o", false, Inline),
            ("debug/deps/notes", false, Inline),
            ("debug/app", true, LEAF),
            ("debug/app.d", false, Inline),
            ("debug/libapplib.rlib", false, Link),
            ("debug/examples/ex-0123", true, LEAF),
            ("debug/examples/ex", true, LEAF),
            // Not executable: no unit output (an executable has no extension on Unix).
            ("debug/examples/ex-0123.txt", true, Inline),
            (
                "x86_64-unknown-linux-gnu/debug/deps/libfoo-0123.rlib",
                false,
                Link,
            ),
            ("x86_64-unknown-linux-gnu/debug/app", true, LEAF),
            ("doc/foo/index.html", false, Inline),
            ("doc/search-index.js", false, Inline),
            ("doc/build/libdoc.rlib", false, Inline),
            ("tmp/app-0123", true, Inline),
            ("package/foo-0.1.0/run", true, Inline),
            ("elsewhere/libfoo.rlib", false, Inline),
            ("debug/incremental/foo-1/s-abc.lock", false, Skip),
            ("debug/incremental/foo-1/s-abc/query-cache.bin", false, Skip),
        ];
        for (path, executable, want) in cases {
            assert_eq!(CLASSIC.classify(path, executable), want, "{path}");
        }
    }

    /// A v2 build dir (cargo 1.97 `-Zbuild-dir-new-layout`): a lib, a build script compiled
    /// (`4567`) and run (`89ab`), a bin.
    const V2: FakeTree = FakeTree(&[
        "debug/.cargo-lock",
        "debug/build",
        "debug/incremental",
        "debug/examples",
        "debug/build/foo/0123/fingerprint",
        "debug/build/foo/0123/out",
        "debug/build/foo/4567/fingerprint",
        "debug/build/foo/4567/out",
        "debug/build/foo/89ab/fingerprint",
        "debug/build/foo/89ab/out",
        "debug/build/foo/89ab/run",
        "debug/build/app/cdef/fingerprint",
        "debug/build/app/cdef/out",
    ]);

    #[test]
    fn classifies_a_v2_tree() {
        let cases = [
            ("debug/build/foo/0123/.lock", false, Skip),
            ("debug/build/foo/0123/fingerprint/lib-foo", false, Inline),
            (
                "debug/build/foo/0123/fingerprint/invoked.timestamp",
                false,
                Inline,
            ),
            ("debug/build/foo/0123/out/libfoo-0123.rlib", false, Link),
            ("debug/build/foo/0123/out/libfoo-0123.rmeta", false, Link),
            ("debug/build/foo/0123/out/foo-0123.d", false, Inline),
            ("debug/build/foo/4567/out/build_script_build", true, SCRIPT),
            (
                "debug/build/foo/4567/out/build_script_build.d",
                false,
                Inline,
            ),
            ("debug/build/foo/89ab/run/stdout", false, Inline),
            ("debug/build/foo/89ab/run/stderr", false, Inline),
            ("debug/build/foo/89ab/run/root-output", false, Inline),
            ("debug/build/foo/89ab/run/invoked.timestamp", false, Inline),
            // The run unit's out/ is the OUT_DIR: whatever the build script wrote there.
            ("debug/build/foo/89ab/out/g.rs", false, Inline),
            ("debug/build/foo/89ab/out/libz.a", false, Inline),
            ("debug/build/foo/89ab/out/tool", true, Inline),
            (
                "debug/build/foo/89ab/fingerprint/run-build-script-build-script-build",
                false,
                Inline,
            ),
            ("debug/build/app/cdef/out/app", true, LEAF),
            // Artifact dependencies are read by the units depending on them.
            (
                "debug/build/app/cdef/artifact/bar-0123/bin/bar-0123",
                true,
                Link,
            ),
            ("debug/build/app/cdef/out/app.d", false, Inline),
            ("debug/app", true, LEAF),
            ("debug/.cargo-build-lock", false, Skip),
        ];
        for (path, executable, want) in cases {
            assert_eq!(V2.classify(path, executable), want, "{path}");
        }
    }

    #[test]
    fn records_the_layouts_a_tree_shows() {
        let seen = |tree: &FakeTree, dirs: &[&str]| {
            let mut seen = LayoutsSeen::default();
            for dir in dirs {
                let mut place = Place::Root;
                let mut at = String::new();
                for name in dir.split('/') {
                    at = if at.is_empty() {
                        name.into()
                    } else {
                        format!("{at}/{name}")
                    };
                    let has = |e: &str| tree.0.contains(&format!("{at}/{e}").as_str());
                    place = place.child_dir(OsStr::new(name), has).unwrap();
                    seen.note(place);
                }
            }
            seen.summary()
        };
        let classic = ["debug/deps", "debug/.fingerprint"];
        let v2 = ["debug/build/foo/0123", "debug/build/foo/89ab/run"];
        assert_eq!(seen(&CLASSIC, &classic), Some(TreeLayout::Classic));
        assert_eq!(seen(&V2, &v2), Some(TreeLayout::V2));
        let both = FakeTree(&["debug/deps", "debug/build/foo/0123/fingerprint"]);
        assert_eq!(
            seen(&both, &["debug/deps", "debug/build/foo/0123"]),
            Some(TreeLayout::Mixed)
        );
        assert_eq!(seen(&CLASSIC, &["doc"]), None);
    }

    #[test]
    fn never_carried_by_path() {
        for (path, want) in [
            ("debug/.cargo-lock", true),
            ("debug/.cargo-build-lock", true),
            ("debug/.cargo-artifact-lock", true),
            ("debug/build/foo/0123/.lock", true),
            ("debug/incremental/foo-1/s-abc/query-cache.bin", true),
            ("debug/incremental", false),
            ("debug/deps/libfoo-0123.rlib", false),
            ("debug/.cargo-lockfile-notes", false),
        ] {
            assert_eq!(never_carried(Path::new(path)), want, "{path}");
        }
    }
}
