//! Integration tests for `pack`, `unpack`, `refs` and `verify`: real cargo builds of the fixture
//! workspaces, a store directory made really read-only, hostile archives built here, one per
//! attack, and GNU tar/zstd where the issue asks for a comparison.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::hostile::*;
use support::layout::{self, fingerprint_files, lock_files};
use support::{canonicalize, Compare, Fixture, NodeKind, Store, TreeSnapshot};

/// The exit code for rejected input (see `cli::EXIT_REJECTED`).
const EXIT_REJECTED: i32 = 3;

/// pack `target_dir` into a new store path named `name`, then make it read-only like the store.
fn pack(fx: &Fixture, store: &Store, target_dir: &Path, name: &str) -> PathBuf {
    let out = store.path(name);
    nixcache_ok(
        fx,
        store,
        &["pack", "--target-dir", s(target_dir), "--out", s(&out)],
    );
    support::make_read_only(&out);
    out
}

/// pack the fixture's `target` into a new store path `name`, with `extra` arguments.
fn pack_target(fx: &Fixture, store: &Store, name: &str, extra: &[&str]) -> PathBuf {
    let out = store.path(name);
    let mut args = vec!["pack", "--target-dir", "target", "--out", s(&out)];
    args.extend_from_slice(extra);
    nixcache_ok(fx, store, &args);
    out
}

fn unpack(fx: &Fixture, store: &Store, artifacts: &Path, target_dir: &Path) {
    nixcache_ok(
        fx,
        store,
        &["unpack", s(artifacts), "--target-dir", s(target_dir)],
    );
}

/// Every symlink in `dir` points at a regular file (one hop), inside `store`.
fn assert_links_one_hop(dir: &Path, store: &Path) -> usize {
    let mut links = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.path_is_symlink() {
            links += 1;
            let target = fs::read_link(entry.path()).unwrap();
            assert!(
                target.starts_with(store),
                "{} -> {} is outside the store",
                entry.path().display(),
                target.display()
            );
            let meta = fs::symlink_metadata(&target).unwrap_or_else(|e| {
                panic!("{} -> {}: {e}", entry.path().display(), target.display())
            });
            assert!(
                meta.is_file(),
                "{} -> {} is not one hop to a file",
                entry.path().display(),
                target.display()
            );
        }
    }
    links
}

#[test]
fn round_trip_restores_types_contents_modes_and_mtimes() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let locks = lock_files(&fx.path("target"));
    assert!(!locks.is_empty(), "cargo wrote no lock file");
    // The store drops write bits; inline files come back owner-writable. Compare r/x bits.
    let mask = |_: &Path, n: &mut support::Node| n.mode &= 0o555;
    // Never carried over: cargo's lock files and rustc's incremental cache.
    let before = TreeSnapshot::capture(fx.path("target")).without("debug/incremental");
    let before = layout::without_lock_files(before).map(mask);

    let out = pack(&fx, &store, &fx.path("target"), "deps");
    let restored = fx.base().join("restored");
    unpack(&fx, &store, &out, &restored);

    let after = TreeSnapshot::capture_following_links(&restored).map(mask);
    // cargo's rustc probe cache comes back with its JSON keys sorted (pack stores it so, for
    // reproducible outputs): the same JSON, in another order; every other byte is the same.
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    };
    assert_eq!(
        json(fx.path("target/.rustc_info.json")),
        json(restored.join(".rustc_info.json")),
        "the rustc probe cache's contents"
    );
    let (before, after) = (
        before.without(".rustc_info.json"),
        after.without(".rustc_info.json"),
    );
    let diff = before.diff_with(&after, Compare::IGNORE_DIR_MTIMES);
    assert!(
        diff.is_empty(),
        "round trip changed the tree:\n{}",
        diff.join("\n")
    );
    assert_eq!(
        lock_files(&restored),
        Vec::<PathBuf>::new(),
        "lock files restored"
    );
    // Directory mtimes are restored too (after their children were created).
    let only_dirs = |_: &Path, n: &support::Node| n.kind == NodeKind::Dir;
    let dirs = before
        .clone()
        .filter(only_dirs)
        .diff(&after.clone().filter(only_dirs));
    assert!(
        dirs.is_empty(),
        "directory mtimes differ:\n{}",
        dirs.join("\n")
    );
    let links = assert_links_one_hop(&restored, &store.dir);
    assert!(links > 5, "expected rlibs etc. as links, found {links}");
    // Files cargo rewrites are real, writable files.
    let fingerprints = fingerprint_files(&restored);
    assert!(!fingerprints.is_empty(), "no fingerprints restored");
    for file in fingerprints {
        assert!(!file.is_symlink(), "{} must be a real file", file.display());
    }
    let manifest = fs::read_to_string(out.join("nixcache.json")).unwrap();
    let layout = if layout::layout_v2() { "v2" } else { "classic" };
    assert!(
        manifest.contains(&format!("\"layout\": \"{layout}\"")),
        "{manifest}"
    );
}

#[test]
fn build_after_unpack_is_fresh_with_a_read_only_store() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let out = pack(&fx, &store, &fx.path("target"), "deps");
    fs::remove_dir_all(fx.path("target")).unwrap();
    unpack(&fx, &store, &out, &fx.path("target"));

    let run = fx.cargo_unprivileged(["build"]);
    assert!(
        run.all_fresh(),
        "units rebuilt after unpack: {:?}",
        run.dirty_units()
    );
    let app = run.bin("app");
    let printed = Command::new(&app).output().unwrap();
    assert!(printed.status.success());

    // Negative control: had unpack not restored the mtimes of the inline files, cargo would
    // see the workspace sources as newer than its dep-info files and rebuild.
    for file in fingerprint_files(&fx.path("target")) {
        filetime::set_file_mtime(file, filetime::FileTime::from_unix_time(1, 0)).unwrap();
    }
    // (The rebuild then fails on the read-only store: that is the rustc wrapper's business.)
    let run = fx.cargo_cmd(["build"]).run_unchecked();
    assert!(
        run.stderr.contains("Compiling"),
        "the freshness check cannot fail:\n{run}"
    );
}

/// In a real store every artifact reads as mtime 1, while cargo compares inline files (a build
/// script's `output`) with them: unpack must give those the store's time too.
#[test]
fn build_after_unpack_from_a_canonical_store_is_fresh() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    store.vendor(&fx);
    // A Nix build copies its sources out of the store with their mtimes: 1.
    sources_at_epoch_one(&fx);
    fx.cargo(["build", "-p", "applib"]);
    let out = pack_target(&fx, &store, "deps", &[]);
    canonicalize(&out);
    fs::remove_dir_all(fx.path("target")).unwrap();

    // Negative control: the archive's own mtimes are newer than the canonical artifacts, so
    // cargo calls the build-script crates stale and rustc fails on the read-only store.
    nixcache_ok(
        &fx,
        &store,
        &[
            "unpack",
            s(&out),
            "--target-dir",
            "target",
            "--mtimes",
            "archive",
        ],
    );
    let run = fx
        .cargo_cmd(["build", "-p", "applib"])
        .unprivileged()
        .run_unchecked();
    assert!(
        !run.status.success() && run.stderr.contains("not writeable"),
        "control:\n{run}"
    );
    fs::remove_dir_all(fx.path("target")).unwrap();

    let res = nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", "target"]);
    assert!(
        stderr(&res).contains("Store mtimes"),
        "auto must pick store mtimes: {}",
        stderr(&res)
    );
    let run = fx.cargo_unprivileged(["build", "-p", "applib"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
}

#[test]
fn chain_of_three_derivations_stays_fresh_and_one_hop() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    // deps: the library and everything below it.
    fx.cargo(["build", "-p", "applib"]);
    let deps = pack(&fx, &store, &fx.path("target"), "deps");
    fs::remove_dir_all(fx.path("target")).unwrap();

    // app: inherits, builds the binary (new units), packs.
    unpack(&fx, &store, &deps, &fx.path("target"));
    let run = fx.cargo_unprivileged(["build"]);
    assert_eq!(run.dirty_packages(), ["app"], "only the app should build");
    // The app's only new unit is its executable, which pack keeps inside the archive by
    // default: linked here, so that the chain has links into every derivation (and app2 shows
    // that an inherited link to an executable stays a link).
    let app = pack_target(&fx, &store, "app", &["--inline-executables", "none"]);
    support::make_read_only(&app);
    fs::remove_dir_all(fx.path("target")).unwrap();

    // app': inherits from app, builds the tests (new units), packs.
    unpack(&fx, &store, &app, &fx.path("target"));
    let run = fx.cargo_unprivileged(["build"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
    fx.cargo_unprivileged(["test", "--no-run"]);
    let app2 = pack(&fx, &store, &fx.path("target"), "app2");
    fs::remove_dir_all(fx.path("target")).unwrap();

    unpack(&fx, &store, &app2, &fx.path("target"));
    let run = fx.cargo_unprivileged(["build"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
    assert_links_one_hop(&fx.path("target"), &store.dir);
    // Links point straight at the derivation that built each file, never through another link.
    let rlib_links: Vec<_> = walkdir::WalkDir::new(fx.path("target"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.path_is_symlink())
        .map(|e| fs::read_link(e.path()).unwrap())
        .collect();
    assert!(
        rlib_links.iter().any(|t| t.starts_with(&deps)),
        "some links must point into deps"
    );
    assert!(
        rlib_links.iter().any(|t| t.starts_with(&app)),
        "some links must point into app"
    );
    // app2's new units are test executables: inside its archive, restored as real files.
    assert!(
        !rlib_links.iter().any(|t| t.starts_with(&app2)),
        "app2 built only executables, yet something links into it"
    );
    assert!(
        !fs::read_dir(app2.join("artifacts")).is_ok_and(|mut d| d.next().is_some()),
        "app2 stored files for its executables"
    );
    let run = fx.cargo_unprivileged(["test", "--no-run"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
}

#[test]
fn a_chain_longer_than_crane_can_follow_still_resolves_in_one_hop() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-beta"]);
    let mut artifacts = pack(&fx, &store, &fx.path("target"), "d0");
    // crane's use-symlink mode fails at 41 (ELOOP); go well past it.
    for i in 1..=100 {
        let dir = fx.base().join(format!("t{i}"));
        unpack(&fx, &store, &artifacts, &dir);
        artifacts = pack(&fx, &store, &dir, &format!("d{i}"));
    }
    let last = fx.base().join("last");
    unpack(&fx, &store, &artifacts, &last);
    assert!(assert_links_one_hop(&last, &store.dir) > 0);
}

#[test]
fn pack_is_deterministic() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let first = pack(&fx, &store, &fx.path("target"), "a");
    let copy = fx.base().join("copy");
    unpack(&fx, &store, &first, &copy);
    let second = pack(&fx, &store, &copy, "b");
    for file in ["symlinks.tar.zst", "nixcache-refs"] {
        assert_eq!(
            fs::read(first.join(file)).unwrap(),
            fs::read(second.join(file)).unwrap(),
            "{file} differs between two packs of the same tree"
        );
    }
}

/// A directory with more names than one listing batch holds (`dirlist`) is packed in full byte
/// order, names that are not UTF-8 and names that differ only in length included.
#[test]
fn pack_orders_a_directory_bigger_than_one_listing_batch() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let target = fx.scratch_dir("big/target");
    let deps = target.join("debug/deps");
    fs::create_dir_all(&deps).unwrap();
    let n = 2 * nixcache::pack::dirlist::Budget::DEFAULT.names + 3;
    let mut names: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("c{}.d", (i * 7919) % n).into_bytes())
        .collect();
    names.extend([b"c\xff.d".to_vec(), b"c.d".to_vec(), b"c1.dd".to_vec()]);
    for name in &names {
        fs::write(deps.join(std::ffi::OsStr::from_bytes(name)), b"x").unwrap();
    }
    let out = store.path("big");
    nixcache_ok(
        &fx,
        &store,
        &[
            "pack",
            "--compress",
            "none",
            "--target-dir",
            s(&target),
            "--out",
            s(&out),
        ],
    );
    let mut archive = tar::Archive::new(fs::File::open(out.join("symlinks.tar")).unwrap());
    let got: Vec<Vec<u8>> = archive
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .into_owned()
                .into_os_string()
                .into_vec()
        })
        .filter_map(|p| p.strip_prefix(b"target/debug/deps/").map(<[u8]>::to_vec))
        .collect();
    names.sort();
    assert_eq!(got.len(), names.len());
    assert!(got == names, "deps/ is not packed in byte order");
}

/// Every output carries crane's archive name with a stop sign in it: crane's own
/// `zstd -d | tar -x` (what its stock inheritCargoArtifacts runs on `target.tar.zst`) fails,
/// naming it, instead of an unadapted crane copying our files into `target/` as junk.
#[test]
fn crane_stock_extraction_of_an_output_fails_naming_the_adapter() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let out = pack_target(&fx, &store, "deps", &[]);
    let target = fx.scratch_dir("crane-target");
    let extract = Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; zstd -d \"$1\" --stdout | tar -x -C \"$2\"")
        .arg("bash")
        .arg(out.join("target.tar.zst"))
        .arg(&target)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&extract.stderr);
    assert!(
        !extract.status.success(),
        "GNU tar extracted the stop sign: {stderr}"
    );
    assert!(
        stderr.contains(
            "this-is-a-cargo-nixcache-output.inherit-it-through-the-cargo-nixcache-crane-adapter"
        ) && stderr.contains("Cannot hard link"),
        "GNU tar's message does not name the adapter: {stderr}"
    );
    // Our own readers still see our format.
    nixcache_ok(&fx, &store, &["verify", s(&out)]);
    unpack(&fx, &store, &out, &fx.base().join("ours"));
}

#[test]
fn gnu_tar_extracts_the_same_tree_as_unpack() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let out = pack_target(&fx, &store, "deps", &["--compress", "none"]);
    let ours = fx.base().join("ours");
    unpack(&fx, &store, &out, &ours);
    let theirs = fx.scratch_dir("theirs");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(out.join("symlinks.tar"))
        .current_dir(&theirs)
        .status()
        .unwrap();
    assert!(status.success());
    // GNU tar extracts the `target` root; compare contents, link targets and file mtimes.
    let a = TreeSnapshot::capture(&ours);
    let b = TreeSnapshot::capture(theirs.join("target"));
    let diff = a.diff_with(
        &b,
        Compare {
            modes: false,
            ..Compare::IGNORE_DIR_MTIMES
        },
    );
    assert!(
        diff.is_empty(),
        "GNU tar and unpack disagree:\n{}",
        diff.join("\n")
    );
}

#[test]
fn anchor_lists_store_paths_from_links_and_file_contents() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    // Put the vendored sources in the store, as in a Nix build, so `.d` files name them.
    let vendor = store.vendor(&fx);
    fx.cargo(["build"]);
    let out = pack_target(&fx, &store, "deps", &[]);
    let anchor = fs::read_to_string(out.join("nixcache-refs")).unwrap();
    let lines: Vec<&str> = anchor.lines().collect();
    assert!(
        lines.contains(&s(&vendor)),
        "anchor misses the vendor dir named in .d files:\n{anchor}"
    );
    assert!(
        lines.contains(&s(&out)),
        "anchor misses the output itself:\n{anchor}"
    );
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "anchor must be sorted");
    // Nix would find the hashes in the anchor even though the archive is compressed.
    let raw = fs::read(out.join("symlinks.tar.zst")).unwrap();
    let hash = vendor.file_name().unwrap().to_str().unwrap()[..32].to_string();
    assert!(
        !raw.windows(32).any(|w| w == hash.as_bytes()),
        "the zstd stream should hide the hash (else the test proves nothing)"
    );
}

#[test]
fn refs_lists_references_and_forbid_names_file_and_offset() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let dep = store.path("some-dep");
    fs::create_dir_all(&dep).unwrap();
    let scanned = fx.scratch_dir("scanned");
    fs::write(
        scanned.join("a.txt"),
        format!("0123{}/lib/x\n", dep.display()),
    )
    .unwrap();
    fs::write(scanned.join("clean.txt"), "nothing here").unwrap();
    let out = nixcache_ok(&fx, &store, &["refs", s(&scanned)]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), s(&dep));

    let out = nixcache(&fx, &store, &["refs", s(&scanned), "--forbid", s(&dep)]);
    assert_eq!(out.status.code(), Some(EXIT_REJECTED));
    let err = stderr(&out);
    assert!(err.contains("a.txt") && err.contains("offset 4"), "{err}");
    // A path that is not referenced is not reported (negative control).
    let other = store.path("other");
    let out = nixcache(&fx, &store, &["refs", s(&scanned), "--forbid", s(&other)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn verify_reports_dangling_links_and_unanchored_paths() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-beta"]);
    let out = pack_target(&fx, &store, "deps", &[]);
    nixcache_ok(&fx, &store, &["verify", s(&out)]);

    // Remove one artifact: its link dangles.
    let blob = walkdir::WalkDir::new(out.join("artifacts"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_type().is_file())
        .unwrap();
    fs::remove_file(blob.path()).unwrap();
    // Drop the anchor: nothing is anchored.
    fs::write(out.join("nixcache-refs"), "").unwrap();
    let res = nixcache(&fx, &store, &["verify", s(&out)]);
    assert_eq!(res.status.code(), Some(EXIT_REJECTED));
    let err = stderr(&res);
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("which its GC anchor"), "{err}");
}

#[test]
fn pack_refuses_an_output_outside_the_store_and_writes_nothing() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    let out = fx.base().join("not-a-store-path");
    let res = nixcache(
        &fx,
        &store,
        &["pack", "--target-dir", "target", "--out", s(&out)],
    );
    assert!(!res.status.success());
    assert!(
        stderr(&res).contains("is not a store path"),
        "{}",
        stderr(&res)
    );
    assert!(!out.exists());
}

#[test]
fn failed_pack_leaves_no_archive_or_manifest() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    // A symlink out of the store cannot be packed; it sorts last, after the archive was begun.
    symlink("/etc/hostname", fx.path("target/zz-outside")).unwrap();
    let out = store.path("deps");
    let res = nixcache(
        &fx,
        &store,
        &["pack", "--target-dir", "target", "--out", s(&out)],
    );
    assert!(!res.status.success());
    let err = stderr(&res);
    assert!(
        err.contains("zz-outside") && err.contains("outside the store dir"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "a failed pack left {:?} behind",
        TreeSnapshot::capture(&out)
    );
}

#[test]
fn unpack_refuses_a_non_empty_target_dir() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    let out = pack(&fx, &store, &fx.path("target"), "deps");
    let dest = fx.scratch_dir("dest");
    fs::write(dest.join("keep-me"), "precious").unwrap();
    let before = TreeSnapshot::capture(&dest);
    let res = nixcache(&fx, &store, &["unpack", s(&out), "--target-dir", s(&dest)]);
    assert!(!res.status.success());
    assert!(
        stderr(&res).contains("is not an empty directory"),
        "{}",
        stderr(&res)
    );
    assert!(before.diff(&TreeSnapshot::capture(&dest)).is_empty());
}

// ---- crane's formats -------------------------------------------------------------------------

/// Sets every source's mtime to 1, as in a Nix build (also the vendor dir, when it is still
/// beside the workspace rather than in the store), so crane's `--mtime=@1` archives are fresh.
fn sources_at_epoch_one(fx: &Fixture) {
    support::store::sources_from_store(fx);
    if fx.vendor().is_dir() {
        support::store::set_mtimes(&fx.vendor(), support::store::CANONICAL_MTIME);
    }
}

/// crane's `compressAndInstallCargoArtifactsDirFull`, verbatim flags.
fn crane_full_archive(fx: &Fixture, out: &Path) {
    fs::create_dir_all(out).unwrap();
    let script = format!(
        "tar --sort=name --mtime=@1 --owner=0 --group=0 --mode=u+w --numeric-owner \
         --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -c target \
         | zstd -q -T0 -o {}/target.tar.zst",
        out.display()
    );
    sh(fx.root(), &script);
}

/// crane's `compressAndInstallCargoArtifactsDirDiff`: files newer than epoch 1, plus `.prev`.
fn crane_diff_archive(fx: &Fixture, out: &Path, prev: &Path) {
    fs::create_dir_all(out).unwrap();
    let script = format!(
        "touch -d @1 ../stamp && find target -newer ../stamp -print0 | tar --null --no-recursion \
         --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner \
         --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -c -f - -T - \
         | zstd -q -T0 -o {out}/target.tar.zst && ln -s {prev}/target.tar.zst {out}/target.tar.zst.prev",
        out = out.display(),
        prev = prev.display()
    );
    sh(fx.root(), &script);
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn crane_zstd_chain_is_unpacked_oldest_first() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    sources_at_epoch_one(&fx);
    fx.cargo(["build", "-p", "applib"]);
    let deps = store.path("crane-deps");
    crane_full_archive(&fx, &deps);
    // crane's inherit extracts with mtimes of 1; the next derivation builds the app on top.
    fs::remove_dir_all(fx.path("target")).unwrap();
    fs::create_dir(fx.path("target")).unwrap();
    sh(
        fx.root(),
        &format!(
            "zstd -dc {}/target.tar.zst | tar -x -C target --strip-components=1",
            deps.display()
        ),
    );
    fx.cargo(["build"]);
    let app = store.path("crane-app");
    crane_diff_archive(&fx, &app, &deps);
    support::make_read_only(&store.dir);
    let expected = layout::without_lock_files(TreeSnapshot::capture(fx.path("target")));

    let restored = fx.base().join("restored");
    let res = nixcache_ok(
        &fx,
        &store,
        &["unpack", s(&app), "--target-dir", s(&restored)],
    );
    assert!(stderr(&res).contains("crane-zstd"), "{}", stderr(&res));
    let got = TreeSnapshot::capture(&restored);
    let diff = expected.diff_with(&got, Compare::CONTENTS);
    assert!(
        diff.is_empty(),
        "crane chain restored wrongly:\n{}",
        diff.join("\n")
    );
    // And cargo agrees it is the same build.
    fs::remove_dir_all(fx.path("target")).unwrap();
    fs::rename(&restored, fx.path("target")).unwrap();
    let run = fx.cargo_unprivileged(["build"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
}

#[test]
fn crane_symlink_dir_is_unpacked_with_rewritable_files_copied() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    // crane's use-symlink output: $out/target, read-only, one level deduplicated by links.
    let first = store.path("crane-deps");
    fs::create_dir_all(&first).unwrap();
    sh(
        fx.root(),
        &format!(
            "cp -a target {}/target && rm -f {}/target/debug/.cargo-lock",
            first.display(),
            first.display()
        ),
    );
    let second = store.path("crane-app");
    fs::create_dir_all(&second).unwrap();
    sh(
        fx.root(),
        &format!(
            "cp -a {f}/target {s}/target && cd {s}/target && find . -type f -name '*.rlib' | \
             while read -r p; do ln -sfn {f}/target/$p $p; done",
            f = first.display(),
            s = second.display()
        ),
    );
    support::make_read_only(&store.dir);

    fs::remove_dir_all(fx.path("target")).unwrap();
    let res = nixcache_ok(
        &fx,
        &store,
        &["unpack", s(&second), "--target-dir", "target"],
    );
    assert!(stderr(&res).contains("crane-dir"), "{}", stderr(&res));
    assert_links_one_hop(&fx.path("target"), &store.dir);
    for file in fingerprint_files(&fx.path("target")) {
        assert!(!file.is_symlink(), "fingerprints must be copies");
    }
    let run = fx.cargo_unprivileged(["build"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
}

#[test]
fn crane_chain_cannot_write_through_a_link_planted_by_an_earlier_archive() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let victim = store.path("victim");
    fs::create_dir_all(&victim).unwrap();
    // Archive 1: `debug` is a symlink to a store directory. Archive 2: a file below `debug`.
    let one = store.path("one");
    let two = store.path("two");
    write_crane_archive(&one, |b| {
        append_dir(b, "target/");
        append_symlink(b, "target/debug", &victim);
    });
    write_crane_archive(&two, |b| {
        append_dir(b, "target/");
        append_file(b, "target/debug/planted", b"x");
    });
    symlink(one.join("target.tar.zst"), two.join("target.tar.zst.prev")).unwrap();
    let dest = fx.base().join("dest");
    let res = nixcache(&fx, &store, &["unpack", s(&two), "--target-dir", s(&dest)]);
    assert!(!res.status.success());
    assert!(
        !victim.join("planted").exists(),
        "wrote through a symlink into the store"
    );
    assert!(
        !dest.exists(),
        "a failed unpack must leave no target dir: {:?}",
        TreeSnapshot::capture(&dest)
    );
}

// ---- hostile archives ------------------------------------------------------------------------

/// Builds an archive of the valid members with `hostile` inserted at `at`, unpacks it into an
/// existing empty dir, and returns stderr after checking the refusal left the dir untouched.
/// Both ways unpack reads archives (streamed twice, or decompressed once into memory) must
/// refuse it with the same error.
fn rejected(
    hostile: impl Fn(&mut Builder, &Store, &Path),
    at: usize,
    corrupt: impl Fn(Vec<u8>) -> Vec<u8>,
) -> String {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let blob_dir = store.path("blob");
    fs::create_dir_all(&blob_dir).unwrap();
    let blob = blob_dir.join("libx.rlib");
    fs::write(&blob, "rlib").unwrap();

    // The negative control: the same archive without the hostile member unpacks fine.
    let good = store.path("good");
    let mut b = tar::Builder::new(Vec::new());
    for m in valid_members(&blob) {
        m(&mut b);
    }
    write_artifacts(&store, &good, &b.into_inner().unwrap(), 4, None);
    let control = fx.base().join("control");
    let res = nixcache(
        &fx,
        &store,
        &["unpack", s(&good), "--target-dir", s(&control)],
    );
    assert!(res.status.success(), "control failed: {}", stderr(&res));

    let mut b = tar::Builder::new(Vec::new());
    for (i, m) in valid_members(&blob).iter().enumerate() {
        if i == at {
            hostile(&mut b, &store, &blob);
        }
        m(&mut b);
    }
    if at >= 4 {
        hostile(&mut b, &store, &blob);
    }
    let tar = corrupt(b.into_inner().unwrap());
    let mut refusals = [Stored::Plain, Stored::InMemory].map(|stored| {
        let bad = store.path(&format!("bad-{stored:?}"));
        write_artifacts_as(stored, &store, &bad, &tar, 5, None);
        let dest = fx.scratch_dir(&format!("dest-{stored:?}"));
        let outside = fx.base().join("outside");
        let res = nixcache(&fx, &store, &["unpack", s(&bad), "--target-dir", s(&dest)]);
        assert_eq!(
            res.status.code(),
            Some(EXIT_REJECTED),
            "accepted ({stored:?}): {}",
            stderr(&res)
        );
        assert!(
            fs::read_dir(&dest).unwrap().next().is_none(),
            "the target dir was written to ({stored:?})"
        );
        assert!(
            !outside.exists(),
            "something was written outside the target dir ({stored:?})"
        );
        // verify checks everything unpack checks: no "ok" for what unpack refuses.
        let verified = nixcache(&fx, &store, &["verify", s(&bad)]);
        assert_eq!(
            verified.status.code(),
            Some(EXIT_REJECTED),
            "verify accepted ({stored:?}): {}",
            stderr(&verified)
        );
        stderr(&res).replace(s(&bad), "ARTIFACTS")
    });
    let in_memory = refusals[1].replace("symlinks.tar.zst", "symlinks.tar");
    assert_eq!(refusals[0], in_memory, "the two ways to read disagree");
    std::mem::take(&mut refusals[0])
}

/// Unpacks `artifacts` into a fresh dir and checks the refusal: exit code, message, nothing made.
fn assert_unpack_rejected(fx: &Fixture, store: &Store, artifacts: &Path, needle: impl AsRef<str>) {
    let dest = fx.base().join("dest");
    let res = nixcache(
        fx,
        store,
        &["unpack", s(artifacts), "--target-dir", s(&dest)],
    );
    assert_eq!(res.status.code(), Some(EXIT_REJECTED), "{}", stderr(&res));
    assert!(stderr(&res).contains(needle.as_ref()), "{}", stderr(&res));
    assert!(!dest.exists(), "a rejected unpack created the target dir");
}

fn no_corruption(v: Vec<u8>) -> Vec<u8> {
    v
}

/// Appends hostile members to an archive being built.
type Hostile = Box<dyn Fn(&mut Builder, &Store)>;

/// One hostile archive of [`rejected`]: the member(s) `hostile` appends before valid member
/// `at` (or after all of them), how the stream is damaged then, and what the refusal must say.
struct Rejection {
    hostile: Hostile,
    at: usize,
    damage: fn(Vec<u8>) -> Vec<u8>,
    says: &'static [&'static str],
}

fn rejection(
    at: usize,
    says: &'static [&'static str],
    hostile: impl Fn(&mut Builder, &Store) + 'static,
) -> Rejection {
    Rejection {
        hostile: Box::new(hostile),
        at,
        damage: no_corruption,
        says,
    }
}

/// A member of each shape the format refuses, each in an archive otherwise valid (whose
/// manifest and anchor agree with it), refused with its own message and nothing written.
#[test]
fn rejects_hostile_members() {
    const HARD_LINK_TARGET: &[&str] = &[
        "`target/hard` is rejected",
        "not an executable regular file earlier under the same root",
    ];
    let hard_link = |to: &'static str| {
        move |b: &mut Builder, _: &Store| {
            let mut h = header(tar::EntryType::Link, 0);
            h.set_link_name_literal(to.as_bytes()).unwrap();
            append_raw(b, "target/hard", h, &[]);
        }
    };
    let cases = vec![
        rejection(
            4,
            &["`/tmp/evil` is rejected: the path is absolute"],
            |b, _| append_file(b, "/tmp/evil", b"x"),
        ),
        rejection(
            4,
            &["`target/../../outside` is rejected", "`..`"],
            |b, _| append_file(b, "target/../../outside", b"x"),
        ),
        rejection(
            4,
            &["`target/evil` is rejected", "not inside the store dir"],
            |b, _| append_symlink(b, "target/evil", Path::new("/etc/passwd")),
        ),
        rejection(
            4,
            &["`target/evil` is rejected", "not inside the store dir"],
            |b, store| {
                let escape = store
                    .dir
                    .join("00000000000000000000000000000000-x/../../../etc/passwd");
                append_symlink(b, "target/evil", &escape)
            },
        ),
        // A hard link may name only a regular file earlier under the same root (what pack
        // writes for cargo's uplifted copy of an inline executable).
        rejection(4, HARD_LINK_TARGET, hard_link("target/debug/libx.rlib")),
        rejection(4, HARD_LINK_TARGET, hard_link("target/debug")),
        rejection(4, HARD_LINK_TARGET, hard_link("target/zzz")),
        rejection(4, HARD_LINK_TARGET, hard_link("build/debug/x.d")),
        rejection(4, HARD_LINK_TARGET, move |b, store| {
            let mut h = header(tar::EntryType::Regular, 1);
            h.set_mode(0o644);
            append_raw(b, "target/e-plain", h, b"x");
            hard_link("target/e-plain")(b, store)
        }),
        rejection(
            4,
            &["`target/hard` is rejected", "no path inside the archive"],
            hard_link("target/../etc/passwd"),
        ),
        rejection(4, &["`target/fifo` is rejected: it is a fifo"], |b, _| {
            append_raw(b, "target/fifo", header(tar::EntryType::Fifo, 0), &[])
        }),
        rejection(
            4,
            &["`target/dev` is rejected: it is a character device"],
            |b, _| append_raw(b, "target/dev", header(tar::EntryType::Char, 0), &[]),
        ),
        rejection(
            3,
            &["lies below `target/debug/libx.rlib`, which is not a directory"],
            |b, _| append_file(b, "target/debug/libx.rlib/inner", b"x"),
        ),
        rejection(
            2,
            &["`target/debug` is rejected: it appears twice"],
            |b, _| append_dir(b, "target/debug/"),
        ),
        rejection(2, &["must be sorted"], |b, _| {
            append_file(b, "target/zzz", b"x")
        }),
        // Cut inside a member's data.
        Rejection {
            damage: |v| v[..v.len() - 2000].to_vec(),
            ..rejection(4, &["corrupt or truncated"], |b, _| {
                append_file(b, "target/z", &[7u8; 3000])
            })
        },
        // Cut exactly at a member boundary: only the manifest's count can tell.
        Rejection {
            damage: |v| v[..v.len() - 1024 - 512].to_vec(),
            ..rejection(4, &["truncated"], |b, _| append_file(b, "target/z", b""))
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let err = rejected(|b, store, _| (case.hostile)(b, store), case.at, case.damage);
        for says in case.says {
            assert!(err.contains(says), "case {i}: {err}");
        }
    }
}

/// The one hard link that is accepted: to an earlier executable file, restored as another name
/// of it.
#[test]
fn restores_a_hard_link_to_an_earlier_file() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let blob = store_blob(&store);
    let tar = valid_tar_with(&blob, |b| {
        let mut h = header(tar::EntryType::Link, 0);
        h.set_link_name_literal(b"target/debug/x.d").unwrap();
        append_raw(b, "target/hard", h, &[]);
    });
    let out = store.path("hard");
    write_artifacts(&store, &out, &tar, 5, None);
    let dest = fx.base().join("restored");
    let res = nixcache(&fx, &store, &["unpack", s(&out), "--target-dir", s(&dest)]);
    assert!(res.status.success(), "{}", stderr(&res));
    let (file, link) = (
        fs::metadata(dest.join("debug/x.d")).unwrap(),
        fs::metadata(dest.join("hard")).unwrap(),
    );
    assert_eq!((link.dev(), link.ino()), (file.dev(), file.ino()));
    assert_eq!(fs::read(dest.join("hard")).unwrap(), b"dep info");
}

#[test]
fn rejects_corrupt_zstd() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    let out = pack_target(&fx, &store, "deps", &[]);
    let archive = out.join("symlinks.tar.zst");
    let good = fs::read(&archive).unwrap();
    let stream = zstd::stream::decode_all(&good[..]).unwrap();
    // Flip one bit at many places. Without zstd's checksum some of these decode into plausible
    // data and were ACCEPTED (a file's bytes silently changed); others into a mangled entry.
    // Every one that changes the stream must be reported as a damaged archive. A few bits of a
    // zstd frame change nothing (about 1 in 170 here: padding in its bit streams); with those
    // the archive is intact and unpacking it is right, so they are skipped.
    // Both ways unpack reads an archive: decompressed once into memory (the manifest declares
    // the stream's length), and streamed from the file (it does not).
    let manifest_path = out.join("nixcache.json");
    let manifest = fs::read_to_string(&manifest_path).unwrap();
    let mut undeclared: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    undeclared.as_object_mut().unwrap().remove("stream_bytes");
    let mut damaging = 0;
    for at in (64..good.len() - 16).step_by(good.len() / 32) {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        if zstd::stream::decode_all(&bytes[..]).is_ok_and(|decoded| decoded == stream) {
            continue;
        }
        damaging += 1;
        fs::write(&archive, &bytes).unwrap();
        for declared in [manifest.clone(), undeclared.to_string()] {
            fs::write(&manifest_path, declared).unwrap();
            assert_unpack_rejected(
                &fx,
                &store,
                &out,
                "symlinks.tar.zst` is corrupt or truncated",
            );
        }
    }
    assert!(damaging >= 24, "only {damaging} flips damaged the stream");
}

#[test]
fn checks_the_stream_length_the_manifest_declares() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    for compress in ["zstd", "none"] {
        let out = pack_target(
            &fx,
            &store,
            &format!("deps-{compress}"),
            &["--compress", compress],
        );
        let manifest_path = out.join("nixcache.json");
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
        let len = manifest["stream_bytes"].as_u64().unwrap();
        let archive = out.join(manifest["archive"].as_str().unwrap());
        let stream = fs::read(&archive).unwrap();
        let stream = zstd::stream::decode_all(&stream[..]).unwrap_or(stream);
        assert_eq!(len, stream.len() as u64, "pack records the stream's length");
        let with_len = |n: Option<u64>| {
            let mut m = manifest.clone();
            match n {
                Some(n) => m["stream_bytes"] = n.into(),
                None => drop(m.as_object_mut().unwrap().remove("stream_bytes")),
            }
            fs::write(&manifest_path, m.to_string()).unwrap();
        };
        // Shorter, longer, and far beyond what unpack would hold in memory: each refused
        // before anything is written, with both lengths named.
        for wrong in [len - 1, len + 1, 1 << 40] {
            with_len(Some(wrong));
            assert_unpack_rejected(
                &fx,
                &store,
                &out,
                format!("uncompressed stream of {len} bytes but its manifest says {wrong}"),
            );
            let res = nixcache(&fx, &store, &["verify", s(&out)]);
            assert_eq!(res.status.code(), Some(EXIT_REJECTED), "{}", stderr(&res));
            let needle =
                format!("uncompressed stream of {len} bytes but its manifest says {wrong}");
            assert!(stderr(&res).contains(&needle), "{}", stderr(&res));
        }
        // Without the field (streamed from the file twice) and with it, the same tree.
        let trees = [None, Some(len)].map(|declared| {
            with_len(declared);
            let dest = fx.base().join(format!("dest-{compress}-{declared:?}"));
            unpack(&fx, &store, &out, &dest);
            TreeSnapshot::capture(&dest)
        });
        assert!(trees[0].len() > 10, "{:?}", trees[0].nodes().keys());
        let diff = trees[0].diff(&trees[1]);
        assert!(diff.is_empty(), "{diff:#?}");
    }
}

#[test]
fn rejects_store_paths_missing_from_the_anchor() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let blob_dir = store.path("blob");
    fs::create_dir_all(&blob_dir).unwrap();
    fs::write(blob_dir.join("libx.rlib"), "rlib").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for m in valid_members(&blob_dir.join("libx.rlib")) {
        m(&mut b);
    }
    let out = store.path("deps");
    write_artifacts(&store, &out, &b.into_inner().unwrap(), 4, Some(""));
    assert_unpack_rejected(
        &fx,
        &store,
        &out,
        format!("names `{}`, which its GC anchor", blob_dir.display()),
    );
}

#[test]
fn rejects_links_into_missing_store_paths() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    let out = pack(&fx, &store, &fx.path("target"), "deps");
    // The store path the links point into is garbage-collected; a copy of the archive remains.
    let copy = store.path("copy");
    fs::create_dir_all(&copy).unwrap();
    for f in ["nixcache.json", "nixcache-refs", "symlinks.tar.zst"] {
        fs::copy(out.join(f), copy.join(f)).unwrap();
    }
    support::make_writable(&out);
    fs::remove_dir_all(&out).unwrap();
    assert_unpack_rejected(
        &fx,
        &store,
        &copy,
        format!("links into `{}`, which does not exist", out.display()),
    );
}

#[test]
fn unpack_never_writes_mode_bits_it_should_not() {
    // Inline files become owner-writable even if packed read-only (cargo rewrites them).
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    for file in fingerprint_files(&fx.path("target")) {
        fs::set_permissions(file, fs::Permissions::from_mode(0o444)).unwrap();
    }
    let out = pack(&fx, &store, &fx.path("target"), "deps");
    let dest = fx.base().join("dest");
    unpack(&fx, &store, &out, &dest);
    let restored = fingerprint_files(&dest);
    assert!(!restored.is_empty());
    for file in restored {
        let mode = file.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o200, 0o200, "{} is not writable", file.display());
    }
}

// ---- the stale-binary guard and the wrapper front end ----------------------------------------

/// Inherited fingerprints built from *other* sources with the store's mtime make cargo ship the
/// old binary; `freshen` prevents it, and `exec` lets the rebuild through the read-only store.
#[test]
fn freshen_and_exec_rebuild_changed_sources_behind_inherited_artifacts() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    store.vendor(&fx);
    sources_at_epoch_one(&fx);
    fx.cargo(["build"]);
    let out = pack_target(&fx, &store, "deps", &[]);
    canonicalize(&out);
    fs::remove_dir_all(fx.path("target")).unwrap();

    // The next derivation's sources differ, but carry mtime 1 like everything from the store.
    let lib = fx
        .read("applib/src/lib.rs")
        .replace("hello from applib", "hello from NEW applib");
    fx.write("applib/src/lib.rs", lib);
    sources_at_epoch_one(&fx);
    nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", "target"]);

    // Negative control: without the guard cargo calls everything Fresh: a stale binary.
    let run = fx.cargo_unprivileged(["build"]);
    assert!(
        run.all_fresh(),
        "control expected the stale-binary bug:\n{run}"
    );
    let printed = Command::new(run.bin("app")).output().unwrap();
    assert!(String::from_utf8_lossy(&printed.stdout).starts_with("hello from applib"));

    let res = fx.nixcache_ok(["freshen"]);
    assert!(stderr(&res).contains("Freshened"), "{}", stderr(&res));
    // Without the wrapper the rebuild dies on the read-only store...
    let run = fx.cargo_cmd(["build"]).unprivileged().run_unchecked();
    assert!(
        !run.status.success() && run.stderr.contains("not writeable"),
        "{run}"
    );
    // ...through `exec` it goes through, and the binary reflects the new sources.
    exec_cargo_build(&fx, &[]);
    let printed = Command::new(fx.path("target/debug/app")).output().unwrap();
    assert!(
        String::from_utf8_lossy(&printed.stdout).starts_with("hello from NEW applib"),
        "stale binary: {}",
        String::from_utf8_lossy(&printed.stdout)
    );
    assert!(store_untouched(&out), "something wrote into the store");
}

/// Every file of a canonicalized store path still has mtime 1: nothing wrote through a link.
fn store_untouched(path: &Path) -> bool {
    walkdir::WalkDir::new(path)
        .into_iter()
        .map(|e| e.unwrap())
        .all(|e| {
            e.path_is_symlink()
                || e.metadata().unwrap().modified().unwrap()
                    == std::time::UNIX_EPOCH + std::time::Duration::from_secs(1)
        })
}

#[test]
fn env_prints_exports_that_put_the_wrapper_in_front() {
    let fx = Fixture::copy("ws-basic");
    let out = fx.nixcache_ok(["env"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("export RUSTC_WRAPPER="), "{text}");
    assert!(text.contains("nixcache-rustc-wrapper"), "{text}");
    assert!(text.contains("export NIXCACHE_USER_WRAPPER="), "{text}");
}

/// rustc hard-links saved incremental objects back into `deps/`: had pack linked them into the
/// store, the rebuild of a changed crate would meet them there read-only ("not writeable").
/// (Before `incremental/` was left out, this failed exactly so.)
#[test]
fn incremental_builds_rebuild_after_unpack() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo_cmd(["build"]).env("CARGO_INCREMENTAL", "1").run();
    assert!(
        fx.path("target/debug/incremental").is_dir(),
        "the fixture build was not incremental"
    );
    let out = pack(&fx, &store, &fx.path("target"), "deps");
    fs::remove_dir_all(fx.path("target")).unwrap();
    unpack(&fx, &store, &out, &fx.path("target"));
    let lib = fx.read("applib/src/lib.rs") + "\npub fn added() {}\n";
    fx.write("applib/src/lib.rs", lib);
    exec_cargo_build(&fx, &[("CARGO_INCREMENTAL", "1")]);
}

/// `cargo nixcache exec -- cargo build` in the fixture, without capabilities, as in a Nix build.
fn exec_cargo_build(fx: &Fixture, env: &[(&str, &str)]) {
    let mut cmd = support::unprivileged_command(support::nixcache_bin());
    cmd.current_dir(fx.root())
        .args(["exec", "--", "cargo", "build", "--offline", "--locked"]);
    support::cargo::clean_env(&mut cmd, &fx.base().join("cargo-home"));
    cmd.envs(env.iter().copied());
    let built = cmd.output().unwrap();
    assert!(
        built.status.success(),
        "build through the wrapper failed:\n{}",
        stderr(&built)
    );
}

/// rustc's outputs of the fixture's `app` bin (classic `deps/app-<hash>`, v2
/// `build/app/<hash>/out/app`), which cargo uplifts as `debug/app`, a hard link.
fn app_outputs(fx: &Fixture) -> Vec<PathBuf> {
    layout::unit_out_dirs(&fx.path("target/debug"))
        .iter()
        .flat_map(|dir| fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            (name == "app" || name.starts_with("app-")) && !name.ends_with(".d")
        })
        .collect()
}

/// `--inline-executables none`: cargo's uplifted binary and rustc's output are one file; pack
/// moves the bytes once and both names link to them.
#[test]
fn hard_linked_uplifts_share_one_artifact() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build"]);
    let out = pack_target(&fx, &store, "deps", &["--inline-executables", "none"]);
    let uplifted = fs::read_link(fx.path("target/debug/app")).unwrap();
    let rustc_outputs: Vec<PathBuf> = app_outputs(&fx)
        .iter()
        .map(|p| fs::read_link(p).unwrap())
        .collect();
    assert_eq!(
        rustc_outputs,
        std::slice::from_ref(&uplifted),
        "rustc's output and debug/app must link to one file"
    );
    assert!(
        uplifted.starts_with(out.join("artifacts")),
        "{}",
        uplifted.display()
    );
}

/// The executables (extensionless, with an execute bit) an output keeps in its `artifacts/`.
fn executables_in_artifacts(out: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(out.join("artifacts"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| {
            let exec = e.metadata().unwrap().permissions().mode() & 0o111 != 0;
            e.file_type().is_file() && exec && !e.file_name().to_str().unwrap().contains('.')
        })
        .map(|e| e.into_path())
        .collect()
}

/// `cargo build --all-targets` compiles nothing and finds Fresh units (after an unpack).
fn assert_all_targets_fresh(fx: &Fixture) {
    let again = fx.cargo_cmd(["build", "--all-targets"]).run();
    assert!(
        again.dirty_units().is_empty(),
        "not Fresh after unpack:\n{again}"
    );
    assert!(!again.fresh_units().is_empty());
}

/// GNU tar's verbose listing of an output's archive.
fn gnu_tar_listing(out: &Path) -> String {
    let listing = Command::new("tar")
        .args(["--zstd", "-tvf"])
        .arg(out.join("symlinks.tar.zst"))
        .output()
        .unwrap();
    assert!(listing.status.success(), "GNU tar failed: {listing:?}");
    String::from_utf8(listing.stdout).unwrap()
}

/// By default executables nothing links against stay out of the output's files: stored once
/// inside the archive (the uplifted name a hard link to rustc's output), left as they were in
/// the target dir, restored as one file with two names, and Fresh for cargo afterwards.
#[test]
fn leaf_executables_are_stored_once_inside_the_archive() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "--all-targets"]);
    let before = fs::read(fx.path("target/debug/app")).unwrap();
    let inode = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.dev(), m.ino())
    };
    // The bin's output (not the test executable of the bin, also `app-<hash>`).
    let same_file = |fx: &Fixture| -> Vec<PathBuf> {
        let uplifted = inode(&fx.path("target/debug/app"));
        app_outputs(fx)
            .into_iter()
            .filter(|p| inode(p) == uplifted)
            .collect()
    };
    let linked_before = same_file(&fx);
    assert_eq!(linked_before.len(), 1, "{:?}", app_outputs(&fx));
    let out = pack_target(&fx, &store, "deps", &[]);
    let outputs = app_outputs(&fx);
    assert!(!outputs.is_empty());
    for exe in outputs.iter().chain([&fx.path("target/debug/app")]) {
        assert!(
            !fs::symlink_metadata(exe).unwrap().is_symlink(),
            "{} was linked",
            exe.display()
        );
    }
    // Nothing executable in the output's files but build scripts.
    for exe in executables_in_artifacts(&out) {
        let name = exe.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("build"), "{} was moved", exe.display());
    }
    let listing = gnu_tar_listing(&out);
    let hard: Vec<&str> = listing.lines().filter(|l| l.starts_with('h')).collect();
    assert_eq!(hard.len(), 1, "GNU tar lists one hard link: {listing}");
    assert!(
        hard[0].contains("target/debug/deps/app-") || hard[0].contains("out/app"),
        "{}",
        hard[0]
    );

    fs::remove_dir_all(fx.path("target")).unwrap();
    unpack(&fx, &store, &out, &fx.path("target"));
    assert!(fs::symlink_metadata(fx.path("target/debug/app"))
        .unwrap()
        .is_file());
    assert_eq!(
        same_file(&fx),
        linked_before,
        "the hard link was not restored"
    );
    assert_eq!(fs::read(fx.path("target/debug/app")).unwrap(), before);
    assert_all_targets_fresh(&fx);
}

/// `--inline-executables all` (the crane adapter's checks and packages): build scripts go
/// inside the archive too, so no executable is left in the output's files; they come back as
/// real files and cargo finds every unit Fresh, the build script's run included.
#[test]
fn inline_build_scripts_come_back_fresh() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "--all-targets"]);
    let out = pack_target(&fx, &store, "deps", &["--inline-executables", "all"]);
    let moved = executables_in_artifacts(&out);
    assert!(
        moved.is_empty(),
        "executables in the output's files: {moved:?}"
    );
    let listing = gnu_tar_listing(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('-') && l.contains("/nc-alpha") && l.contains("script_build")),
        "nc-alpha's build script is not inside the archive: {listing}"
    );

    fs::remove_dir_all(fx.path("target")).unwrap();
    unpack(&fx, &store, &out, &fx.path("target"));
    let scripts: Vec<PathBuf> = walkdir::WalkDir::new(fx.path("target"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_str().unwrap().starts_with("build"))
        .filter(|e| !e.file_name().to_str().unwrap().contains('.') && !e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    assert!(!scripts.is_empty());
    for script in &scripts {
        assert!(
            fs::symlink_metadata(script).unwrap().is_file(),
            "{} is not a file",
            script.display()
        );
    }
    assert_all_targets_fresh(&fx);
}

/// A separate `build.build-dir` is packed as its own root and restored to the build dir given.
#[test]
fn separate_build_dir_round_trips_fresh() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let build_dir = fx.path("build-dir");
    fx.cargo_cmd(["build"])
        .env("CARGO_BUILD_BUILD_DIR", &build_dir)
        .run();
    assert!(
        !fingerprint_files(&build_dir).is_empty(),
        "cargo ignored the build dir"
    );
    let out = store.path("deps");
    nixcache_ok(
        &fx,
        &store,
        &[
            "pack",
            "--target-dir",
            "target",
            "--build-dir",
            s(&build_dir),
            "--out",
            s(&out),
        ],
    );
    support::make_read_only(&out);
    let manifest = fs::read_to_string(out.join("nixcache.json")).unwrap();
    assert!(manifest.contains("\"build\""), "{manifest}");
    fs::remove_dir_all(fx.path("target")).unwrap();
    fs::remove_dir_all(&build_dir).unwrap();

    // Without a build dir to put it in, unpack refuses rather than dropping half the tree: a
    // usage error (the archive is fine).
    let res = nixcache(&fx, &store, &["unpack", s(&out), "--target-dir", "target"]);
    assert_eq!(res.status.code(), Some(2));
    assert!(
        stderr(&res).contains("pass --build-dir"),
        "{}",
        stderr(&res)
    );
    assert!(!fx.path("target").exists());

    nixcache_ok(
        &fx,
        &store,
        &[
            "unpack",
            s(&out),
            "--target-dir",
            "target",
            "--build-dir",
            s(&build_dir),
        ],
    );
    let run = fx
        .cargo_cmd(["build"])
        .env("CARGO_BUILD_BUILD_DIR", &build_dir)
        .unprivileged()
        .run();
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());
}

/// `build.build-dir` set only in cargo's config, with templates: pack and unpack find it as
/// cargo resolves it (`cargo metadata`), without a flag or variable, and the restored tree is
/// all Fresh. `CARGO_BUILD_BUILD_DIR` still overrides the config.
#[test]
fn build_dir_from_cargo_config_with_templates_round_trips_fresh() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let config = fx.read(".cargo/config.toml");
    fx.write(
        ".cargo/config.toml",
        format!(
            "{config}\n[build]\nbuild-dir = \"{{cargo-cache-home}}/build-dirs/{{workspace-path-hash}}\"\n"
        ),
    );
    fx.cargo(["build"]);
    // cargo expanded the templates: the build dir is the one below CARGO_HOME with a profile.
    let build_dirs = fx.base().join("cargo-home/build-dirs");
    let build_dir = walkdir::WalkDir::new(&build_dirs)
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_name() == "debug")
        .map(|e| e.path().parent().unwrap().to_path_buf())
        .expect("cargo used no build dir below CARGO_HOME");
    assert!(!fingerprint_files(&build_dir).is_empty());

    let out = pack_target(&fx, &store, "deps", &[]);
    support::make_read_only(&out);
    let manifest = fs::read_to_string(out.join("nixcache.json")).unwrap();
    assert!(
        manifest.contains("\"build\","),
        "the build dir was not packed: {manifest}"
    );
    fs::remove_dir_all(fx.path("target")).unwrap();
    fs::remove_dir_all(&build_dir).unwrap();
    nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", "target"]);
    assert!(!fingerprint_files(&build_dir).is_empty(), "not restored");
    let run = fx.cargo_unprivileged(["build"]);
    assert!(run.all_fresh(), "rebuilt: {:?}", run.dirty_units());

    // The variable overrides the config.
    let elsewhere = fx.base().join("elsewhere");
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.arg(store.arg())
        .args(["unpack", s(&out), "--target-dir", "target2"])
        .env("CARGO_BUILD_BUILD_DIR", &elsewhere);
    let res = support::output_of(&mut cmd);
    support::assert_success(&cmd, &res);
    assert!(
        !fingerprint_files(&elsewhere).is_empty(),
        "not restored there"
    );
}

#[test]
fn json_reports_are_machine_readable() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    let out = store.path("deps");
    let res = nixcache_ok(
        &fx,
        &store,
        &["--json", "pack", "--target-dir", "target", "--out", s(&out)],
    );
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert!(
        report["entries"].as_u64().unwrap() > 0 && report["moved"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(res.stderr.is_empty(), "--json prints no summary line");
    let dest = fx.base().join("dest");
    let res = nixcache_ok(
        &fx,
        &store,
        &["--json", "unpack", s(&out), "--target-dir", s(&dest)],
    );
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(report["format"], "nixcache");
    let res = nixcache_ok(&fx, &store, &["-q", "verify", s(&out)]);
    assert!(
        res.stderr.is_empty() && res.stdout.is_empty(),
        "-q prints nothing on success"
    );
}
