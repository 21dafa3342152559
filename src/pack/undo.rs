//! Moving artifacts out of the target dir and back: each new artifact is moved (renamed, or
//! copied across file systems) into `$out/artifacts/<root>/<path>` once per inode and replaced
//! by a symlink to its new place ([`Blobs::move_in`]); every move is noted in the [`Undo`] log,
//! which a failed pack runs to put the target dir back as it was. Also here: the half-made link
//! a killed pack can leave beside an artifact, recognised so the next pack removes it.

use crate::archive::RelPath;
use crate::artifacts::publish;
use crate::fsutil::{self, FsError, IoContext};
use filetime::FileTime;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the artifacts a pack moves go (`$out/artifacts`), and what it moved so far.
pub(super) struct Blobs<'u> {
    /// `$out/artifacts`.
    dir: PathBuf,
    /// Hard-linked files (cargo's uplifted binaries) already moved, by (device, inode): where to
    /// and from where.
    moved_inodes: HashMap<(u64, u64), (PathBuf, PathBuf)>,
    /// The last blob directory created, to skip most `create_dir_all` calls.
    made_dir: Option<PathBuf>,
    /// What was moved out of the target dir, to put back if the pack fails.
    undo: &'u mut Undo,
}

impl<'u> Blobs<'u> {
    /// Moves into the artifacts directory `out`, noting each move in `undo`.
    pub fn new(out: &Path, undo: &'u mut Undo) -> Self {
        Blobs {
            dir: publish::blobs_dir(out),
            moved_inodes: HashMap::new(),
            made_dir: None,
            undo,
        }
    }

    /// Moves the freshly built artifact at `path` (archive path `rel`) into
    /// `$out/artifacts/<rel>`, once per inode, and leaves a symlink to it where it was, so the
    /// target dir stays usable. Returns where its bytes are now, and whether they were moved now
    /// (not another name of a file already moved).
    pub fn move_in(
        &mut self,
        rel: &RelPath,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<(PathBuf, bool), FsError> {
        let (blob, moved) = self.take(rel, path, meta)?;
        replace_with_symlink(path, &blob)?;
        Ok((blob, moved))
    }

    fn take(
        &mut self,
        rel: &RelPath,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<(PathBuf, bool), FsError> {
        let inode = (meta.dev(), meta.ino());
        // Not asked only when the link count says so: across file systems (a Nix build's /build
        // and the store) moving the first name removed it, so this one may now count 1. The
        // inode cannot have been reused meanwhile: this name still holds it.
        if let Some((blob, first)) = self.moved_inodes.get(&inode) {
            self.undo.0.push(Moved::Alias {
                original: path.into(),
                of: first.clone(),
            });
            return Ok((blob.clone(), false));
        }
        let blob = self.dir.join(rel.as_path());
        let dir = blob.parent().expect("blob paths have a parent");
        if self.made_dir.as_deref() != Some(dir) {
            fsutil::create_dir_all(dir)?;
            self.made_dir = Some(dir.to_path_buf());
        }
        match fs::rename(path, &blob) {
            Ok(()) => self.undo.0.push(Moved::Artifact {
                original: path.into(),
                blob: blob.clone(),
                copied: false,
            }),
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
                fsutil::copy_new(path, &blob)?;
                self.undo.0.push(Moved::Artifact {
                    original: path.into(),
                    blob: blob.clone(),
                    copied: true,
                });
                let mtime = FileTime::from_last_modification_time(meta);
                filetime::set_file_mtime(&blob, mtime).with_path("set mtime of", &blob)?;
                fs::remove_file(path).with_path("remove", path)?;
            }
            Err(e) => return Err(FsError::new("move into the artifacts directory", &blob, e)),
        }
        if meta.nlink() > 1 {
            self.moved_inodes
                .insert(inode, (blob.clone(), path.to_path_buf()));
        }
        Ok((blob, true))
    }

    /// Whether the symlink `rel` to `target` is one a killed pack made and never renamed into
    /// place (see [`Blobs::move_in`]): not part of the tree.
    pub fn is_link_leftover(&self, rel: &RelPath, target: &Path) -> bool {
        rel.file_name()
            .as_encoded_bytes()
            .ends_with(LINK_SUFFIX.as_bytes())
            && target.starts_with(&self.dir)
    }
}

/// Suffix of the name a symlink is made under before it replaces an artifact.
const LINK_SUFFIX: &str = ".nixcache-link";

/// Leaves a symlink to the moved artifact where it was, so the target dir stays usable.
fn replace_with_symlink(path: &Path, target: &Path) -> Result<(), FsError> {
    replace_atomically(path, LINK_SUFFIX, |tmp| {
        std::os::unix::fs::symlink(target, tmp)
    })
}

/// Makes `path` anew under `path<suffix>` with `make`, then renames it over `path`.
fn replace_atomically(
    path: &Path,
    suffix: &str,
    make: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), FsError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(suffix);
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    make(&tmp).with_path("create", &tmp)?;
    fs::rename(&tmp, path).with_path("replace", path)
}

/// What a pack changed in the target dir, in order, so a failed pack can put it back.
#[derive(Default)]
pub(super) struct Undo(Vec<Moved>);

enum Moved {
    /// `original` was renamed (or, across file systems, copied) to `blob`, then replaced by a
    /// symlink to it.
    Artifact {
        original: PathBuf,
        blob: PathBuf,
        copied: bool,
    },
    /// `original` was another name (a hard link) of the file first found at `of`, and was
    /// replaced by a symlink to the same blob.
    Alias { original: PathBuf, of: PathBuf },
}

impl Undo {
    /// Moves every artifact back to where it was (renaming over the symlink left there), then
    /// restores the hard links. Goes on after a failure, and reports the first.
    pub fn run(self) -> Result<(), FsError> {
        let mut first = Ok(());
        let mut note = |r: Result<(), FsError>| {
            if first.is_ok() {
                first = r;
            }
        };
        for moved in &self.0 {
            if let Moved::Artifact {
                original,
                blob,
                copied,
            } = moved
            {
                note(if *copied {
                    copy_back(blob, original)
                } else {
                    fs::rename(blob, original).with_path("move back", original)
                });
            }
        }
        for moved in &self.0 {
            if let Moved::Alias { original, of } = moved {
                note(replace_atomically(original, ".nixcache-undo", |tmp| {
                    fs::hard_link(of, tmp)
                }));
            }
        }
        first
    }
}

/// Undoes a move across file systems: a copy back (unless the original was never removed).
fn copy_back(blob: &Path, original: &Path) -> Result<(), FsError> {
    match fs::symlink_metadata(original) {
        Ok(m) if m.is_file() => return Ok(()),
        Ok(_) => fs::remove_file(original).with_path("remove", original)?,
        Err(_) => {}
    }
    fsutil::copy_new(blob, original)?;
    let meta = fsutil::symlink_metadata(blob)?;
    let mtime = FileTime::from_last_modification_time(&meta);
    filetime::set_file_mtime(original, mtime).with_path("set mtime of", original)?;
    fs::remove_file(blob).with_path("remove", blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &Path, text: &str, mtime: i64) -> fs::Metadata {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        filetime::set_file_mtime(path, FileTime::from_unix_time(mtime, 0)).unwrap();
        fs::symlink_metadata(path).unwrap()
    }

    fn rel(p: &str) -> RelPath {
        RelPath::new(p).unwrap()
    }

    #[test]
    fn moved_artifacts_become_links_and_the_undo_log_moves_them_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (target, out) = (tmp.path().join("target"), tmp.path().join("out"));
        let lib = target.join("debug/deps/libapp.rlib");
        let meta = file(&lib, "rlib", 1_000);
        // cargo's uplifted binary: a hard link of the one in deps/.
        let (bin, uplifted) = (target.join("debug/deps/app-1"), target.join("debug/app"));
        file(&bin, "elf", 2_000);
        fs::hard_link(&bin, &uplifted).unwrap();
        let bin_meta = fs::symlink_metadata(&bin).unwrap();
        let uplifted_meta = fs::symlink_metadata(&uplifted).unwrap();

        let mut undo = Undo::default();
        let mut blobs = Blobs::new(&out, &mut undo);
        let (blob, moved) = blobs
            .move_in(&rel("target/debug/deps/libapp.rlib"), &lib, &meta)
            .unwrap();
        assert!(moved);
        assert_eq!(
            blob,
            publish::blobs_dir(&out).join("target/debug/deps/libapp.rlib")
        );
        assert_eq!(fs::read_link(&lib).unwrap(), blob);
        assert_eq!(fs::read_to_string(&blob).unwrap(), "rlib");
        let (bin_blob, _) = blobs
            .move_in(&rel("target/debug/deps/app-1"), &bin, &bin_meta)
            .unwrap();
        // The second name of the same inode links to the same blob, moved once.
        let (alias_blob, moved) = blobs
            .move_in(&rel("target/debug/app"), &uplifted, &uplifted_meta)
            .unwrap();
        assert_eq!((alias_blob, moved), (bin_blob.clone(), false));
        assert_eq!(fs::read_link(&uplifted).unwrap(), bin_blob);

        undo.run().unwrap();
        let back = fs::symlink_metadata(&lib).unwrap();
        assert!(back.is_file());
        assert_eq!(fs::read_to_string(&lib).unwrap(), "rlib");
        assert_eq!(
            FileTime::from_last_modification_time(&back).unix_seconds(),
            1_000
        );
        assert!(!blob.exists() && !bin_blob.exists());
        // The hard link is one again.
        let (a, b) = (
            fs::metadata(&bin).unwrap(),
            fs::symlink_metadata(&uplifted).unwrap(),
        );
        assert!(b.is_file() && (a.dev(), a.ino()) == (b.dev(), b.ino()));
    }

    /// Across file systems a move is a copy and a removal, which leaves the other name of a
    /// hard-linked artifact (cargo's uplifted build script or binary) with a link count of 1 by
    /// the time the walk stats it: it is still the same file, moved once (it was copied twice,
    /// 35 MB of ripgrep's deps output in a Nix build), and undone as a hard link again.
    #[test]
    fn a_hard_link_moved_across_file_systems_is_copied_once() {
        let shm = tempfile::tempdir_in("/dev/shm").expect("this test needs /dev/shm");
        let tmp = tempfile::tempdir().unwrap();
        let (target, out) = (shm.path().join("target"), tmp.path().join("out"));
        let first = target.join("debug/build/x-1/build-script-build");
        let second = target.join("debug/build/x-1/build_script_build-1");
        let first_meta = file(&first, "elf", 2_000);
        fs::hard_link(&first, &second).unwrap();
        fs::create_dir_all(&out).unwrap();
        assert_ne!(
            fs::metadata(&out).unwrap().dev(),
            first_meta.dev(),
            "/dev/shm and the temp dir must be two file systems for this test"
        );
        let first_meta = fs::symlink_metadata(&first).unwrap();

        let mut undo = Undo::default();
        let mut blobs = Blobs::new(&out, &mut undo);
        let (blob, moved) = blobs
            .move_in(
                &rel("target/debug/build/x-1/build-script-build"),
                &first,
                &first_meta,
            )
            .unwrap();
        assert!(moved);
        // As the walk does: the second name is stat'ed when it is reached.
        let second_meta = fs::symlink_metadata(&second).unwrap();
        assert_eq!(
            second_meta.nlink(),
            1,
            "the copy should have removed the first name"
        );
        let (alias_blob, moved) = blobs
            .move_in(
                &rel("target/debug/build/x-1/build_script_build-1"),
                &second,
                &second_meta,
            )
            .unwrap();
        assert_eq!((alias_blob, moved), (blob.clone(), false), "copied twice");
        let copies = walkdir::WalkDir::new(&out)
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count();
        assert_eq!(copies, 1);

        undo.run().unwrap();
        let (a, b) = (
            fs::symlink_metadata(&first).unwrap(),
            fs::symlink_metadata(&second).unwrap(),
        );
        assert!(a.is_file() && b.is_file() && (a.dev(), a.ino()) == (b.dev(), b.ino()));
    }

    /// A move across file systems is a copy; undoing it copies back, with the mtime.
    #[test]
    fn a_copied_artifact_is_copied_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (original, blob) = (tmp.path().join("libapp.rlib"), tmp.path().join("blob"));
        file(&blob, "rlib", 1_000);
        std::os::unix::fs::symlink(&blob, &original).unwrap();
        let undo = Undo(vec![Moved::Artifact {
            original: original.clone(),
            blob: blob.clone(),
            copied: true,
        }]);
        undo.run().unwrap();
        let back = fs::symlink_metadata(&original).unwrap();
        assert!(back.is_file());
        assert_eq!(
            FileTime::from_last_modification_time(&back).unix_seconds(),
            1_000
        );
        assert!(!blob.exists());
    }

    #[test]
    fn a_killed_packs_half_made_link_is_a_leftover() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut undo = Undo::default();
        let blobs = Blobs::new(&out, &mut undo);
        let half_made = rel("target/debug/app.nixcache-link");
        let into_blobs = publish::blobs_dir(&out).join("target/debug/app");
        assert!(blobs.is_link_leftover(&half_made, &into_blobs));
        assert!(!blobs.is_link_leftover(&rel("target/debug/app"), &into_blobs));
        assert!(!blobs.is_link_leftover(&half_made, &tmp.path().join("elsewhere")));
    }
}
