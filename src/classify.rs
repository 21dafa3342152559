//! Which files of a target dir may become read-only symlinks and which must stay real files.
//!
//! After unpack, anything that is a symlink into the store must be something nobody writes.
//! Measured on cargo 1.83+: cargo truncates and rewrites `.fingerprint/**`, the build-script
//! bookkeeping files `build/*/{invoked.timestamp,output,stderr,root-output}`, dep-info `*.d`
//! files and `.rustc_info.json`; build scripts write into `build/*/out/`; rustdoc rewrites its
//! shared files under `doc/`; `.cargo-lock` is opened read-write and must never be carried over.
//! Everything else (rlibs, rmetas, shared objects, executables, build-script binaries) is
//! written once by rustc under a unique name and only ever replaced by a rename or unlink.
//!
//! `incremental/` is not carried over at all: rustc hard-links its saved object files back into
//! the out-dir, so a linked one would turn up there as a read-only symlink and fail the rebuild
//! ("output file ... is not writeable"). Incremental state only speeds up rebuilding a crate
//! that changed, and Nix builds usually turn it off anyway.

use std::ffi::OsStr;
use std::path::{Component, Path};

/// What pack does with one file of the target tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Immutable artifact: its bytes live in the store, the tree gets a symlink.
    Link,
    /// Rewritten in place by cargo, rustc, rustdoc or a build script: stored in the archive.
    Inline,
    /// Not carried over at all.
    Skip,
}

/// rustc's incremental compilation cache.
const INCREMENTAL: &str = "incremental";

/// Whether a directory (relative to the target dir root) is left out with everything below it.
pub fn skip_dir(rel: &Path) -> bool {
    rel.file_name().is_some_and(|n| n == INCREMENTAL)
}

/// Files rewritten in place in `build/<unit>/` (the build script's bookkeeping).
const BUILD_SCRIPT_RUN_FILES: [&str; 4] = ["invoked.timestamp", "output", "stderr", "root-output"];

/// Classifies a regular file by its path relative to the target (or build) dir root.
pub fn classify(rel: &Path) -> Disposition {
    let name = rel.file_name().unwrap_or(OsStr::new(""));
    if name == ".cargo-lock" || name == ".crane-previous-archive" {
        return Disposition::Skip;
    }
    let parts: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    let in_dir = |dir: &str| {
        parts[..parts.len().saturating_sub(1)]
            .iter()
            .any(|p| *p == dir)
    };
    if in_dir(INCREMENTAL) {
        return Disposition::Skip;
    }
    let extension = rel.extension().and_then(OsStr::to_str);
    let rewritten_in_place = in_dir(".fingerprint")
        || in_dir("doc")
        || in_dir("tmp")
        || build_script_output(&parts)
        || matches!(extension, Some("d" | "lock" | "json"))
        || name == "CACHEDIR.TAG";
    if rewritten_in_place {
        Disposition::Inline
    } else {
        Disposition::Link
    }
}

/// `.../build/<unit>/{invoked.timestamp,...}` or anything below `.../build/<unit>/out/`.
fn build_script_output(parts: &[&OsStr]) -> bool {
    parts.iter().enumerate().any(|(i, p)| {
        *p == "build"
            && match parts.get(i + 2..) {
                Some([file]) => BUILD_SCRIPT_RUN_FILES.iter().any(|f| file == f),
                Some([out, _, ..]) => *out == "out",
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disposition::*;

    #[test]
    fn classifies_a_cargo_tree() {
        let cases = [
            (".cargo-lock", Skip),
            ("debug/.cargo-lock", Skip),
            (".rustc_info.json", Inline),
            ("CACHEDIR.TAG", Inline),
            ("debug/.fingerprint/foo-0123/lib-foo", Inline),
            ("debug/.fingerprint/foo-0123/dep-lib-foo", Inline),
            ("debug/build/foo-0123/invoked.timestamp", Inline),
            ("debug/build/foo-0123/output", Inline),
            ("debug/build/foo-0123/root-output", Inline),
            ("debug/build/foo-0123/stderr", Inline),
            ("debug/build/foo-0123/out/generated.rs", Inline),
            ("debug/build/foo-0123/out/lib/libz.a", Inline),
            ("debug/build/foo-4567/build-script-build", Link),
            ("debug/build/foo-4567/build_script_build-4567", Link),
            ("debug/build/foo-4567/build_script_build-4567.d", Inline),
            ("debug/deps/libfoo-0123.rlib", Link),
            ("debug/deps/libfoo-0123.rmeta", Link),
            ("debug/deps/libfoo_macros-0123.so", Link),
            ("debug/deps/foo-0123.d", Inline),
            ("debug/deps/app-0123", Link),
            ("debug/app", Link),
            ("debug/app.d", Inline),
            ("debug/libapplib.rlib", Link),
            ("x86_64-unknown-linux-gnu/debug/deps/libfoo-0123.rlib", Link),
            ("doc/foo/index.html", Inline),
            ("doc/search-index.js", Inline),
            ("debug/incremental/foo-1/s-abc.lock", Skip),
            ("debug/incremental/foo-1/s-abc/query-cache.bin", Skip),
        ];
        for (path, want) in cases {
            assert_eq!(classify(Path::new(path)), want, "{path}");
        }
        assert!(skip_dir(Path::new("debug/incremental")));
        assert!(!skip_dir(Path::new("debug/deps")));
    }
}
