//! The walk: a target (or build) dir, depth first in archive order, into archive entries.
//!
//! Each directory's names come sorted from [`dirlist`](super::dirlist); each name is `stat`ed
//! once, and a directory's place (`classify`) follows from its parent's place and its name, or
//! where names are ambiguous from what it holds (a look one level down). Files get their fate
//! there: linked (an inherited store link, re-pointed at its final target; a new artifact, moved
//! by [`undo`](super::undo)), inline (sent to the stream thread, [`stream`](super::stream)), or
//! skipped. The walk only goes down: what it needs of the way there (the place, and the
//! [`Lineage`] the stale-fingerprint rule of [`fingerprints`](super::fingerprints) hands down)
//! goes with it, so nothing is looked up again from the root or from a parent.

use super::deterministic;
use super::dirlist::{Budget, SortedNames};
use super::fingerprints::{Lineage, StaleUnits};
use super::stream::{ArchiveStream, Contents, Finished, StreamError, StreamStopped};
use super::undo::{Blobs, Undo};
use super::{PackError, PackOptions, PackReport};
use crate::archive::{Entry, EntryKind, RelPath, SYMLINK_MTIME};
use crate::artifacts;
use crate::classify::{self, Disposition, LayoutsSeen, Place};
use crate::fsutil::{self, FsError, IoContext};
use crate::linkcheck::LinkCheck;
use filetime::FileTime;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub(super) struct Packer<'a, 'u> {
    opts: &'a PackOptions,
    /// Where the entries go, in archive order; taken when it ends.
    stream: Option<ArchiveStream>,
    archive_path: PathBuf,
    report: PackReport,
    /// Where new artifacts are moved, and the log of every move.
    blobs: Blobs<'u>,
    /// The build-dir layouts the walk recognised, for the manifest.
    layouts: LayoutsSeen,
    /// Which fingerprint directories are stale (see the module doc of `pack`); `None`: none.
    stale: Option<&'a StaleUnits>,
    /// Inherited links must resolve inside the store.
    links: LinkCheck<'a>,
    /// Executables stored inline with more than one name, by (device, inode): the first
    /// name, which the archive's later names hard-link to.
    inlined_executables: HashMap<(u64, u64), RelPath>,
}

impl<'a, 'u> Packer<'a, 'u> {
    /// A walk of `opts`'s roots into `stream` (the archive at `archive_path`), moving new
    /// artifacts into `opts.out` (noted in `undo`) and leaving out what `stale` calls stale.
    pub fn new(
        opts: &'a PackOptions,
        stream: ArchiveStream,
        archive_path: PathBuf,
        stale: Option<&'a StaleUnits>,
        undo: &'u mut Undo,
    ) -> Self {
        Packer {
            opts,
            stream: Some(stream),
            archive_path,
            report: PackReport::default(),
            blobs: Blobs::new(&opts.out, undo),
            layouts: LayoutsSeen::default(),
            stale,
            links: LinkCheck::new(&opts.store),
            inlined_executables: HashMap::new(),
        }
    }

    /// What the walk did, and the build-dir layouts it saw; the report's fingerprints left out
    /// are in archive order.
    pub fn into_report(self) -> (PackReport, LayoutsSeen) {
        (self.report, self.layouts)
    }

    /// Packs `root` under the archive root `name`, skipping the other roots (a build dir
    /// inside the target dir) and what `classify` leaves out.
    pub fn walk(&mut self, name: &str, root: &Path, skip: &[&Path]) -> Result<(), PackError> {
        let meta = fsutil::symlink_metadata(root)?;
        let rel = RelPath::new(name).expect("root names are normal");
        self.entry(rel, root, Place::Root, &meta)?;
        let lineage = Lineage::default();
        self.walk_dir(root, Path::new(name), Place::Root, lineage, skip)
    }

    /// A depth-first walk in archive order, below the directory at `dir` (archive path `rel`).
    /// Each directory on the current path holds at most one batch of its names (`dirlist`), so
    /// memory does not grow with the size of a directory or with the number of entries.
    fn walk_dir(
        &mut self,
        dir: &Path,
        rel: &Path,
        place: Place,
        lineage: Lineage,
        skip: &[&Path],
    ) -> Result<(), PackError> {
        let mut listing = SortedNames::at(dir, Budget::DEFAULT);
        // Byte order of names: with a depth-first walk, exactly `RelPath`'s order.
        while let Some(names) = listing.next_batch().with_path("read directory", dir)? {
            for file_name in names {
                let path = dir.join(file_name);
                let child_rel = rel.join(file_name);
                let meta = fsutil::symlink_metadata(&path)?;
                let entry_rel = |p: &Path| {
                    RelPath::new(p).expect("names read from a directory are normal components")
                };
                if !meta.is_dir() {
                    self.entry(entry_rel(&child_rel), &path, place, &meta)?;
                } else if !skip.contains(&path.as_path())
                    && !self.leaves_out(place, lineage, file_name, &path, &child_rel)?
                {
                    let has = |entry: &str| fs::symlink_metadata(path.join(entry)).is_ok();
                    if let Some(child) = place.child_dir(file_name, has) {
                        self.layouts.note(child);
                        self.entry(entry_rel(&child_rel), &path, child, &meta)?;
                        let lineage = match self.stale {
                            Some(stale) => stale.lineage(lineage, child, file_name, &path),
                            None => lineage,
                        };
                        self.walk_dir(&path, &child_rel, child, lineage, skip)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the directory `name` at `path` (archive path `rel`), in a directory whose place
    /// is `place`, is a stale local unit's fingerprint directory, left out (see the module doc);
    /// noted in the report if so.
    fn leaves_out(
        &mut self,
        place: Place,
        lineage: Lineage,
        name: &OsStr,
        path: &Path,
        rel: &Path,
    ) -> Result<bool, FsError> {
        let Some(stale) = self.stale else {
            return Ok(false);
        };
        let left_out = stale.is_stale(place, lineage, name, path)?;
        if left_out {
            self.report.left_out.push(rel.to_path_buf());
        }
        Ok(left_out)
    }

    /// Archives one entry; `place` is its parent directory's (its own, for a directory).
    fn entry(
        &mut self,
        rel: RelPath,
        path: &Path,
        place: Place,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        let file_type = meta.file_type();
        if file_type.is_dir() {
            let entry = Entry {
                path: rel,
                mtime: FileTime::from_last_modification_time(meta),
                kind: EntryKind::Dir {
                    mode: meta.mode() & 0o7777,
                },
            };
            self.append(entry, Contents::None)
        } else if file_type.is_symlink() {
            self.symlink(rel, path, place)
        } else if file_type.is_file() {
            self.file(rel, path, place, meta)
        } else {
            Err(PackError::Unsupported {
                path: path.into(),
                kind: fsutil::kind_name(&file_type),
            })
        }
    }

    fn symlink(&mut self, rel: RelPath, path: &Path, place: Place) -> Result<(), PackError> {
        if never_carried(rel.file_name()) {
            self.report.skipped += 1;
            return Ok(());
        }
        let target = fsutil::resolve_link(path).map_err(|source| PackError::BadLink {
            path: path.into(),
            source,
        })?;
        if self.opts.store.parse(&target).is_err() {
            return Err(PackError::LinkOutsideStore {
                path: path.into(),
                target,
                store: self.opts.store.as_path().into(),
            });
        }
        // A killed pack's half-made link (see `Blobs::move_in`): not part of the tree.
        if self.blobs.is_link_leftover(&rel, &target) {
            fs::remove_file(path).with_path("remove the leftover", path)?;
            self.report.skipped += 1;
            return Ok(());
        }
        self.links
            .check(&target)
            .map_err(|problem| PackError::Link {
                path: path.into(),
                problem,
            })?;
        let meta = fs::metadata(&target).with_path("stat", &target)?;
        match place.file(rel.file_name(), is_executable(&meta)) {
            // Its bytes are in the store already, whatever it is.
            Disposition::Link | Disposition::Executable(_) => self.link(rel, target),
            Disposition::Inline | Disposition::Skip => self.inline(rel, &target, &meta),
        }
    }

    fn file(
        &mut self,
        rel: RelPath,
        path: &Path,
        place: Place,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        let disposition = if artifacts::crane::is_bookkeeping(rel.file_name()) {
            Disposition::Skip
        } else {
            place.file(rel.file_name(), is_executable(meta))
        };
        match disposition {
            Disposition::Skip => {
                self.report.skipped += 1;
                Ok(())
            }
            Disposition::Inline => self.inline(rel, path, meta),
            Disposition::Executable(kind) if self.opts.inline_executables.inlines(kind) => {
                self.inline_executable(rel, path, meta)
            }
            Disposition::Link | Disposition::Executable(_) => {
                let (blob, moved) = self.blobs.move_in(&rel, path, meta)?;
                if moved {
                    self.report.moved += 1;
                    self.report.moved_bytes += meta.len();
                }
                self.link(rel, blob)
            }
        }
    }

    fn inline(
        &mut self,
        rel: RelPath,
        source: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        let (size, contents) = match rustc_info(&rel, source)? {
            Some(bytes) => (bytes.len() as u64, Contents::Bytes(bytes)),
            None => (meta.len(), Contents::File(source.to_path_buf())),
        };
        let entry = Entry {
            path: rel,
            mtime: FileTime::from_last_modification_time(meta),
            kind: EntryKind::File {
                mode: meta.permissions().mode() & 0o7777,
                size,
            },
        };
        self.append(entry, contents)?;
        self.report.inlined += 1;
        self.report.inlined_bytes += size;
        Ok(())
    }

    /// Stores an executable inline, once per inode and root: cargo's second name of it (the
    /// uplifted copy of a bin, `build-script-build` of a build script) becomes a hard link to
    /// the name archived first (the format allows one only to an executable: an `.exe` without
    /// an execute bit is stored twice).
    fn inline_executable(
        &mut self,
        rel: RelPath,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), PackError> {
        if meta.nlink() > 1 && is_executable(meta) {
            let inode = (meta.dev(), meta.ino());
            match self.inlined_executables.get(&inode) {
                Some(first) if first.root() == rel.root() => {
                    let entry = Entry {
                        path: rel,
                        mtime: SYMLINK_MTIME,
                        kind: EntryKind::HardLink {
                            target: first.clone(),
                        },
                    };
                    self.append(entry, Contents::None)?;
                    self.report.hard_links += 1;
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    self.inlined_executables.insert(inode, rel.clone());
                }
            }
        }
        self.inline(rel, path, meta)
    }

    fn link(&mut self, rel: RelPath, target: PathBuf) -> Result<(), PackError> {
        let entry = Entry {
            path: rel,
            mtime: SYMLINK_MTIME,
            kind: EntryKind::Symlink { target },
        };
        self.append(entry, Contents::None)?;
        self.report.linked += 1;
        Ok(())
    }

    fn append(&mut self, entry: Entry, contents: Contents) -> Result<(), PackError> {
        let sent = match &mut self.stream {
            Some(stream) => stream.append(entry, contents),
            None => Err(StreamStopped),
        };
        if let Err(StreamStopped) = sent {
            // The stream thread failed: its error is the cause.
            return Err(self.finish_stream().err().unwrap_or_else(|| {
                self.write_error(io::Error::other("the archive stream ended early"))
            }));
        }
        self.report.entries += 1;
        Ok(())
    }

    /// Ends the archive stream and returns what it found, or why it failed.
    pub fn finish_stream(&mut self) -> Result<Finished, PackError> {
        match self.stream.take() {
            Some(stream) => stream.finish().map_err(|e| match e {
                StreamError::Read(e) => PackError::Fs(e),
                StreamError::Changed(e) => PackError::Changed(e),
                StreamError::Write(e) => self.write_error(e),
            }),
            None => Err(self.write_error(io::Error::other("the archive stream ended early"))),
        }
    }

    fn write_error(&self, source: io::Error) -> PackError {
        PackError::Write {
            archive: self.archive_path.clone(),
            source,
        }
    }
}

/// cargo's rustc probe cache at the top of a root, read and sorted
/// ([`deterministic::sorted_rustc_info`]); `None` for any other file, or one that is no JSON.
fn rustc_info(rel: &RelPath, source: &Path) -> Result<Option<Vec<u8>>, FsError> {
    if rel.file_name() != deterministic::RUSTC_INFO || rel.as_path().components().count() != 2 {
        return Ok(None);
    }
    let bytes = fs::read(source).with_path("read", source)?;
    Ok(deterministic::sorted_rustc_info(&bytes))
}

/// Files never carried over wherever they are: cargo's locks (`classify`), crane's bookkeeping.
fn never_carried(name: &OsStr) -> bool {
    classify::never_carried_name(name) || artifacts::crane::is_bookkeeping(name)
}

fn is_executable(meta: &fs::Metadata) -> bool {
    meta.mode() & 0o111 != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveError, ArchiveReader, Compression};
    use crate::builddir::BuildDir;
    use crate::classify::InlineExecutables;
    use crate::store::StoreDir;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, text: &str, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// What the walk made of a small classic tree, entry by entry: each file's fate (`classify`
    /// with the given leaf policy), the moves into OUT, the hard link for cargo's uplifted copy,
    /// an inherited link kept one hop, lock files and `incremental/` left out.
    fn walked(inline: InlineExecutables) -> (Vec<(String, String)>, PackReport, PathBuf) {
        let tmp = tempfile::tempdir().unwrap().keep();
        let store = StoreDir::new(tmp.join("store")).unwrap();
        let inherited = store
            .as_path()
            .join("00000000000000000000000000000000-deps/libdep.rlib");
        write(&inherited, "dep rlib", 0o444);
        let target = tmp.join("target");
        write(&target.join("debug/deps/libapp-1.rlib"), "rlib", 0o644);
        write(&target.join("debug/deps/app-1"), "elf", 0o755);
        fs::hard_link(target.join("debug/deps/app-1"), target.join("debug/app")).unwrap();
        write(&target.join("debug/deps/app-1.d"), "dep-info", 0o644);
        write(
            &target.join("debug/build/x-2/build_script_build-2"),
            "script",
            0o755,
        );
        fs::hard_link(
            target.join("debug/build/x-2/build_script_build-2"),
            target.join("debug/build/x-2/build-script-build"),
        )
        .unwrap();
        write(&target.join("debug/.cargo-lock"), "", 0o644);
        write(
            &target.join("debug/incremental/app-3/s-1/query.bin"),
            "cache",
            0o644,
        );
        symlink(&inherited, target.join("debug/deps/libdep-4.rlib")).unwrap();
        symlink(&inherited, target.join(".crane-previous-archive")).unwrap();
        let out = store.as_path().join("11111111111111111111111111111111-out");
        let opts = PackOptions {
            target_dir: target.clone(),
            build_dir: BuildDir::None,
            out: out.clone(),
            compression: Compression::None,
            zstd_level: 3,
            zstd_threads: 0,
            store: store.clone(),
            workspace: None,
            archive_mtime: None,
            inline_executables: inline,
        };
        fs::create_dir_all(&out).unwrap();
        let archive = tmp.join("walked.tar");
        let file = fs::File::create(&archive).unwrap();
        let stream = ArchiveStream::start(file, Compression::None, 3, 0, &store, None).unwrap();
        let mut undo = Undo::default();
        let mut packer = Packer::new(&opts, stream, archive.clone(), None, &mut undo);
        packer.walk("target", &target, &[]).unwrap();
        packer.finish_stream().unwrap();
        let (report, _) = packer.into_report();
        let mut entries = Vec::new();
        ArchiveReader::new(&archive, &store)
            .read(|e, _| {
                let what = match &e.kind {
                    EntryKind::Dir { .. } => "dir".to_string(),
                    EntryKind::File { .. } => "inline".to_string(),
                    EntryKind::Symlink { target } => match target.strip_prefix(&out) {
                        Ok(blob) => format!("moved to {}", blob.display()),
                        Err(_) => format!("link {}", target.display()),
                    },
                    EntryKind::HardLink { target } => format!("hard link to {target}"),
                };
                entries.push((e.path.to_string(), what));
                Ok::<_, ArchiveError>(())
            })
            .unwrap();
        (entries, report, tmp)
    }

    #[test]
    fn the_walk_gives_each_file_its_fate() {
        let (entries, report, tmp) = walked(InlineExecutables::Leaves);
        let inherited = tmp.join("store/00000000000000000000000000000000-deps/libdep.rlib");
        let want = [
            ("target", "dir".to_string()),
            ("target/debug", "dir".to_string()),
            // Leaf executables inline, the uplifted name a hard link to the first one archived.
            ("target/debug/app", "inline".to_string()),
            ("target/debug/build", "dir".to_string()),
            ("target/debug/build/x-2", "dir".to_string()),
            // Build scripts linked, both of cargo's names to the one file moved.
            (
                "target/debug/build/x-2/build-script-build",
                "moved to artifacts/target/debug/build/x-2/build-script-build".to_string(),
            ),
            (
                "target/debug/build/x-2/build_script_build-2",
                "moved to artifacts/target/debug/build/x-2/build-script-build".to_string(),
            ),
            ("target/debug/deps", "dir".to_string()),
            (
                "target/debug/deps/app-1",
                "hard link to target/debug/app".to_string(),
            ),
            ("target/debug/deps/app-1.d", "inline".to_string()),
            (
                "target/debug/deps/libapp-1.rlib",
                "moved to artifacts/target/debug/deps/libapp-1.rlib".to_string(),
            ),
            (
                "target/debug/deps/libdep-4.rlib",
                format!("link {}", inherited.display()),
            ),
        ];
        let got: Vec<(&str, String)> = entries
            .iter()
            .map(|(p, w)| (p.as_str(), w.clone()))
            .collect();
        assert_eq!(got, want);
        // Skipped: cargo's lock, crane's link to its previous archive.
        assert_eq!((report.moved, report.hard_links, report.skipped), (2, 1, 2));
        // The moved files became links in the target dir; the leaves stayed files.
        let target = tmp.join("target/debug");
        assert!(fs::symlink_metadata(target.join("deps/libapp-1.rlib"))
            .unwrap()
            .is_symlink());
        assert!(fs::symlink_metadata(target.join("app")).unwrap().is_file());
        fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn build_scripts_inline_are_stored_once() {
        let (entries, report, tmp) = walked(InlineExecutables::All);
        let fate = |p: &str| entries.iter().find(|(e, _)| e == p).unwrap().1.clone();
        assert_eq!(fate("target/debug/build/x-2/build-script-build"), "inline");
        assert_eq!(
            fate("target/debug/build/x-2/build_script_build-2"),
            "hard link to target/debug/build/x-2/build-script-build"
        );
        assert_eq!(fate("target/debug/app"), "inline");
        assert_eq!((report.moved, report.hard_links), (1, 2));
        let script = tmp.join("target/debug/build/x-2/build-script-build");
        assert!(fs::symlink_metadata(script).unwrap().is_file());
        fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn linked_executables_are_moved_once() {
        let (entries, report, tmp) = walked(InlineExecutables::Linked);
        let fate = |p: &str| entries.iter().find(|(e, _)| e == p).unwrap().1.clone();
        assert_eq!(
            fate("target/debug/app"),
            "moved to artifacts/target/debug/app"
        );
        assert_eq!(
            fate("target/debug/deps/app-1"),
            "moved to artifacts/target/debug/app"
        );
        assert_eq!((report.moved, report.hard_links), (3, 0));
        fs::remove_dir_all(&tmp).ok();
    }
}
