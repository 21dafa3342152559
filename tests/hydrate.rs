//! `hydrate`, the dev shell's fill of the target dir (issue 19): it never deletes what it did not
//! write. Each test pins one way the user's files were lost before, beside its control: the same
//! steps without the user's file (or cargo's lock) refill as they should.
//!
//! The deps outputs are packs of small made-up target dirs (no cargo build needed): a fingerprint,
//! a dep-info file, an rlib that becomes a link into the store.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::hostile::{nixcache_ok, s, stderr};
use support::{caps, Compare, Fixture, Store, TreeSnapshot};

const MARKER: &str = ".nixcache-hydrated";

/// A deps output whose target dir holds `files` (path, contents) besides a fingerprint, a
/// dep-info file and an rlib, all saying `tag`.
fn deps_with(fx: &Fixture, store: &Store, tag: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let target = fx.scratch_dir(&format!("made-{tag}/target"));
    let write = |rel: &str, data: &[u8]| {
        let path = target.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    };
    write(
        "CACHEDIR.TAG",
        b"Signature: 8a477f597d28d172789f06886806bc55\n",
    );
    write(
        "debug/.fingerprint/app-0123456789abcdef/bin-app",
        tag.as_bytes(),
    );
    write("debug/deps/app-0123456789abcdef.d", tag.as_bytes());
    write("debug/deps/libx-0123456789abcdef.rlib", tag.as_bytes());
    for (rel, data) in files {
        write(rel, data);
    }
    let out = store.path(&format!("deps-{tag}"));
    // Packed from outside the workspace: no source digests, nothing but the tree.
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.current_dir(fx.base())
        .arg(store.arg())
        .args(["pack", "--compress", "none", "--target-dir", s(&target)])
        .args(["--out", s(&out)]);
    let o = support::output_of(&mut cmd);
    support::assert_success(&cmd, &o);
    support::canonicalize(&out);
    out
}

fn deps(fx: &Fixture, store: &Store, tag: &str) -> PathBuf {
    deps_with(fx, store, tag, &[])
}

/// `cargo nixcache --json hydrate DEPS --target-dir TARGET` without capabilities (so a
/// read-only directory is read-only), whatever its exit status.
fn hydrate(fx: &Fixture, store: &Store, deps: &Path, target: &Path) -> Output {
    support::output_of(&mut hydrate_cmd(fx, store, deps, target))
}

fn hydrate_cmd(fx: &Fixture, store: &Store, deps: &Path, target: &Path) -> Command {
    hydrate_args(
        fx,
        store,
        &["--json", "hydrate", s(deps), "--target-dir", s(target)],
    )
}

/// `cargo nixcache --store-dir STORE ARGS` in the workspace, without capabilities.
fn hydrate_args(fx: &Fixture, store: &Store, args: &[&str]) -> Command {
    let unprivileged = caps::unprivileged_command(support::nixcache_bin());
    let mut cmd = fx.command(unprivileged.get_program());
    cmd.args(unprivileged.get_args())
        .arg(store.arg())
        .args(args);
    cmd
}

/// The `action` of a successful hydrate's JSON report, and the report.
fn action(out: &Output) -> (String, serde_json::Value) {
    assert!(out.status.success(), "hydrate failed: {}", stderr(out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", stderr(out)));
    (report["action"].as_str().unwrap().to_string(), report)
}

fn marker(target: &Path) -> String {
    fs::read_to_string(target.join(MARKER)).unwrap_or_default()
}

fn filled_from(target: &Path, deps: &Path) -> bool {
    marker(target) == format!("{}\n", deps.display())
        && fs::read_to_string(target.join("debug/deps/app-0123456789abcdef.d")).unwrap()
            == fs::read_to_string(
                deps.join("artifacts/target/debug/deps/libx-0123456789abcdef.rlib"),
            )
            .unwrap()
}

fn setup() -> (Fixture, Store, PathBuf, PathBuf, PathBuf) {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let a = deps(&fx, &store, "a");
    let b = deps(&fx, &store, "b");
    let target = fx.path("target");
    (fx, store, a, b, target)
}

#[test]
fn a_file_moved_into_a_hydrated_target_dir_survives_a_refill() {
    let (fx, store, a, b, target) = setup();
    assert_eq!(action(&hydrate(&fx, &store, &a, &target)).0, "hydrate");
    assert!(filled_from(&target, &a));
    // mv keeps the mtime: older than anything hydrate wrote.
    let notes = fx.base().join("notes.txt");
    fs::write(&notes, "the user's notes").unwrap();
    filetime::set_file_mtime(&notes, filetime::FileTime::from_unix_time(1000, 0)).unwrap();
    fs::rename(&notes, target.join("notes.txt")).unwrap();

    let out = hydrate(&fx, &store, &b, &target);
    let (act, report) = action(&out);
    assert_eq!(act, "keep-changed", "{report}");
    let why = report["why"].as_str().unwrap();
    assert!(why.contains("files were added or removed"), "{why}");
    assert_eq!(
        fs::read_to_string(target.join("notes.txt")).unwrap(),
        "the user's notes"
    );
    assert!(filled_from(&target, &a), "kept means untouched");

    // The control: the file gone again, the tree is exactly as hydrate left it, and is refilled.
    fs::remove_file(target.join("notes.txt")).unwrap();
    assert_eq!(action(&hydrate(&fx, &store, &b, &target)).0, "replace");
    assert!(filled_from(&target, &b));
    assert_eq!(action(&hydrate(&fx, &store, &b, &target)).0, "up-to-date");
}

/// The summary line says why a target dir is kept and how to refill it.
#[test]
fn a_kept_target_dir_is_explained() {
    let (fx, store, a, b, target) = setup();
    action(&hydrate(&fx, &store, &a, &target));
    fs::write(target.join("debug/deps/app-0123456789abcdef.d"), "rebuilt").unwrap();
    let out = support::output_of(&mut hydrate_args(
        &fx,
        &store,
        &["hydrate", s(&b), "--target-dir", s(&target)],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "kept {}: filled from {} and built in since, or files were moved in or replaced",
            target.display(),
            a.display()
        )) && err.contains(&format!("`cargo clean` to refill it from {}", b.display())),
        "{err}"
    );
}

#[test]
fn a_symlinked_target_dir_is_followed_never_replaced() {
    let (fx, store, a, b, target) = setup();
    let elsewhere = fx.scratch_dir("other-disk/target");
    symlink(&elsewhere, &target).unwrap();
    assert_eq!(action(&hydrate(&fx, &store, &a, &target)).0, "hydrate");
    assert!(fs::symlink_metadata(&target).unwrap().is_symlink());
    assert!(filled_from(&elsewhere, &a));
    assert_eq!(action(&hydrate(&fx, &store, &b, &target)).0, "replace");
    assert!(fs::symlink_metadata(&target).unwrap().is_symlink());
    assert_eq!(fs::read_link(&target).unwrap(), elsewhere);
    assert!(filled_from(&elsewhere, &b));
    // Nothing left beside the real directory.
    let beside: Vec<_> = fs::read_dir(elsewhere.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["target"]);

    // A link to nothing is refused, and left as it is.
    fs::remove_file(&target).unwrap();
    symlink(fx.base().join("gone"), &target).unwrap();
    let out = hydrate(&fx, &store, &a, &target);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a symlink to"), "{}", stderr(&out));
    assert!(fs::symlink_metadata(&target).unwrap().is_symlink());
}

/// cargo (or a build script: Go's module cache) can leave read-only directories; a chmod is no
/// change of the tree's entries. The old tree is moved aside whole, the new one filled, and the
/// old one removed, its directories made writable: never a half-deleted target dir.
#[test]
fn a_read_only_directory_does_not_stop_a_refill_half_way() {
    let (fx, store, a, b, target) = setup();
    action(&hydrate(&fx, &store, &a, &target));
    let ro = target.join("debug/.fingerprint");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    let (act, report) = action(&hydrate(&fx, &store, &b, &target));
    assert_eq!(act, "replace", "{report}");
    assert_eq!(report["leftovers"], serde_json::json!([]), "{report}");
    assert!(filled_from(&target, &b));
    let beside: Vec<_> = fs::read_dir(fx.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("nixcache"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

/// A refill whose fill fails (here: beyond the file size limit) puts the old tree back as it
/// was; the next run refills.
#[test]
fn a_failed_refill_puts_the_old_tree_back() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let a = deps(&fx, &store, "a");
    let big = vec![7u8; 3 << 20];
    let b = deps_with(&fx, &store, "b", &[("debug/zz-big.bin", &big)]);
    let target = fx.path("target");
    action(&hydrate(&fx, &store, &a, &target));
    let before = TreeSnapshot::capture(&target);
    let inner = hydrate_cmd(&fx, &store, &b, &target);
    let mut limited = fx.command("bash");
    limited
        .arg("-c")
        .arg("ulimit -f 1024; trap '' XFSZ; exec \"$@\"")
        .arg("bash")
        .arg(inner.get_program())
        .args(inner.get_args());
    let out = support::output_of(&mut limited);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("File too large"), "{}", stderr(&out));
    let diff = before.diff_with(&TreeSnapshot::capture(&target), Compare::IGNORE_DIR_MTIMES);
    assert!(
        diff.is_empty(),
        "the old tree changed:\n{}",
        diff.join("\n")
    );
    assert!(filled_from(&target, &a));
    // Still hydrate's own, so the next run refills.
    assert_eq!(action(&hydrate(&fx, &store, &b, &target)).0, "replace");
    assert!(filled_from(&target, &b));
}

/// Waits for `path` to exist while `child` runs; false if it ended first.
fn wait_for(path: &Path, child: &mut std::process::Child) -> bool {
    let start = Instant::now();
    while !path.exists() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "never appeared");
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

/// A hydrate killed outright leaves a partial tree and its record saying the fill did not
/// finish: the next run sees that everything there is what the fill wrote, and fills again. A
/// user's file in the partial tree keeps it.
#[test]
fn a_hydrate_killed_outright_is_recognised_and_filled_again() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    // Streamed (too big to hold in memory), and long to write: time to kill it at work.
    let big = vec![b'z'; 64 << 20];
    let many: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("debug/.fingerprint/u{i:03}/f"), vec![b'x'; 10]))
        .collect();
    let mut files: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    files.push(("debug/zz-big.bin", &big));
    let a = deps_with(&fx, &store, "a", &files);
    let target = fx.path("target");

    let mut killed = hydrate_cmd(&fx, &store, &a, &target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(&target.join("debug/zz-big.bin"), &mut killed),
        "hydrate finished before it could be killed"
    );
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(!target.join(MARKER).exists(), "the fill finished");
    assert!(target.join("debug/.fingerprint/u199/f").exists());

    // A user's file in the half-filled tree: kept.
    fs::write(target.join("mine.txt"), "mine").unwrap();
    let (act, report) = action(&hydrate(&fx, &store, &a, &target));
    assert_eq!(act, "keep-changed", "{report}");
    let why = report["why"].as_str().unwrap();
    assert!(
        why.contains("did not finish") && why.contains("mine.txt"),
        "{why}"
    );
    fs::remove_file(target.join("mine.txt")).unwrap();

    // Without it: filled again, whole.
    let (act, report) = action(&hydrate(&fx, &store, &a, &target));
    assert_eq!(act, "resume", "{report}");
    assert_eq!(marker(&target), format!("{}\n", a.display()));
    assert_eq!(
        fs::metadata(target.join("debug/zz-big.bin")).unwrap().len(),
        big.len() as u64
    );
    assert_eq!(action(&hydrate(&fx, &store, &a, &target)).0, "up-to-date");
}

/// While cargo holds a lock of the target dir it is building there: hydrate keeps the dir.
/// Lock files are cargo's and not part of the tree hydrate compares, so once cargo is done,
/// hydrate refills.
#[test]
fn hydrate_keeps_a_target_dir_cargo_is_building_in() {
    let (fx, store, a, b, target) = setup();
    action(&hydrate(&fx, &store, &a, &target));
    let lock = target.join("debug/.cargo-lock");
    // Made in the same mtime tick as the marker, as it was in the issue.
    fs::write(&lock, "").unwrap();
    let marker_time = filetime::FileTime::from_last_modification_time(
        &fs::metadata(target.join(MARKER)).unwrap(),
    );
    filetime::set_file_mtime(&lock, marker_time).unwrap();
    filetime::set_file_mtime(lock.parent().unwrap(), marker_time).unwrap();
    let held = nix::fcntl::Flock::lock(
        fs::File::open(&lock).unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map_err(|(_, e)| e)
    .unwrap();
    let (act, report) = action(&hydrate(&fx, &store, &b, &target));
    assert_eq!(act, "keep-busy", "{report}");
    assert_eq!(report["lock"], s(&lock), "{report}");
    assert!(filled_from(&target, &a));
    assert!(lock.exists());

    // The control: cargo is done.
    drop(held);
    assert_eq!(action(&hydrate(&fx, &store, &b, &target)).0, "replace");
    assert!(filled_from(&target, &b));
}

/// A target dir hydrate did not fill is the user's: never touched.
#[test]
fn a_target_dir_of_ones_own_is_never_touched() {
    let (fx, store, a, _, target) = setup();
    fs::create_dir_all(target.join("debug")).unwrap();
    fs::write(target.join("debug/app"), "built by the user").unwrap();
    let before = TreeSnapshot::capture(&target);
    assert_eq!(action(&hydrate(&fx, &store, &a, &target)).0, "keep-own");
    assert!(before.diff(&TreeSnapshot::capture(&target)).is_empty());
    // And filled once `cargo clean` removed it.
    fs::remove_dir_all(&target).unwrap();
    assert_eq!(action(&hydrate(&fx, &store, &a, &target)).0, "hydrate");
    nixcache_ok(&fx, &store, &["verify", s(&a)]);
}

/// Artifacts unpack rejects: hydrate fails as unpack does (exit 3) and leaves nothing, not even
/// its record; the next run with good artifacts fills.
#[test]
fn a_hydrate_of_bad_artifacts_leaves_nothing() {
    let (fx, store, a, _, target) = setup();
    let bad = store.path("deps-bad");
    support::make_writable(&a);
    let cp = Command::new("cp")
        .args(["-a", s(&a), s(&bad)])
        .status()
        .unwrap();
    assert!(cp.success());
    support::canonicalize(&a);
    let archive = bad.join("symlinks.tar");
    let len = fs::metadata(&archive).unwrap().len();
    support::make_writable(&bad);
    fs::OpenOptions::new()
        .write(true)
        .open(&archive)
        .unwrap()
        .set_len(len - 1024)
        .unwrap();
    for existed in [false, true] {
        if existed {
            fs::create_dir(&target).unwrap();
        }
        let out = hydrate(&fx, &store, &bad, &target);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_eq!(target.exists(), existed, "{}", stderr(&out));
        if existed {
            assert_eq!(
                fs::read_dir(&target).unwrap().count(),
                0,
                "left in the target dir"
            );
        }
    }
    assert_eq!(action(&hydrate(&fx, &store, &a, &target)).0, "hydrate");
}

/// A deps output with a separate build dir (`build.build-dir`): both dirs are filled, both are
/// part of what hydrate compares, and a refill replaces both.
#[test]
fn a_separate_build_dir_is_filled_and_compared_too() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let two_roots = |tag: &str| {
        let target = fx.scratch_dir(&format!("made2-{tag}/target"));
        let build = fx.scratch_dir(&format!("made2-{tag}/build"));
        fs::create_dir_all(build.join("debug/deps")).unwrap();
        fs::write(build.join("debug/deps/liby-0123456789abcdef.rlib"), tag).unwrap();
        fs::write(build.join("debug/deps/y-0123456789abcdef.d"), tag).unwrap();
        fs::write(target.join("CACHEDIR.TAG"), "").unwrap();
        let out = store.path(&format!("deps2-{tag}"));
        let mut cmd = fx.command(support::nixcache_bin());
        cmd.current_dir(fx.base())
            .arg(store.arg())
            .args(["pack", "--target-dir", s(&target), "--build-dir", s(&build)])
            .args(["--out", s(&out)]);
        let o = support::output_of(&mut cmd);
        support::assert_success(&cmd, &o);
        support::canonicalize(&out);
        out
    };
    let (a, b) = (two_roots("a"), two_roots("b"));
    let (target, build) = (fx.path("target"), fx.path("build"));
    let with_build = |deps: &Path| {
        let mut cmd = hydrate_cmd(&fx, &store, deps, &target);
        cmd.env("CARGO_BUILD_BUILD_DIR", &build);
        support::output_of(&mut cmd)
    };
    let d = |dir: &Path| fs::read_to_string(dir.join("debug/deps/y-0123456789abcdef.d")).unwrap();
    assert_eq!(action(&with_build(&a)).0, "hydrate");
    assert_eq!(d(&build), "a");
    assert_eq!(action(&with_build(&b)).0, "replace");
    assert_eq!(d(&build), "b");
    // A file moved into the build dir keeps both.
    fs::write(build.join("mine.txt"), "mine").unwrap();
    assert_eq!(action(&with_build(&a)).0, "keep-changed");
    assert_eq!(d(&build), "b");
    // The build dir removed: nothing of hydrate's left there to lose, but the tree is not as it
    // was left: kept, and no error.
    fs::remove_dir_all(&build).unwrap();
    let (act, report) = action(&with_build(&a));
    assert_eq!(act, "keep-changed", "{report}");
}
