//! Hardening around the archive (issue 10): integrity of every byte read, links that leave the
//! store through a store path, special files where the manifest, anchor or archive should be,
//! file descriptors, concurrent and failed packs, and one exit-code policy.
//!
//! Every hostile input is built the hard way: the manifest and anchor around it are consistent
//! (member count, stream length, every store path anchored), so the check under test is the one
//! that fires; each test asserts the message, and a control shows the same setup otherwise works.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::hostile::*;
use support::{Compare, Fixture, Store, TreeSnapshot};

const EXIT_ERROR: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_REJECTED: i32 = 3;

/// A fixture copy, its store, and a store file for links to point at.
fn with_blob() -> (Fixture, Store, PathBuf) {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let blob = store_blob(&store);
    (fx, store, blob)
}

/// `res` failed with `code`, naming `needle`; returns its stderr.
fn failed_with(res: &Output, code: i32, needle: &str) -> String {
    let err = stderr(res);
    assert_eq!(res.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
    err
}

/// unpack must refuse `artifacts` with exit 3 and `needle` in its message, without creating
/// the target dir and without printing a raw control byte; returns stderr.
fn unpack_refused(fx: &Fixture, store: &Store, artifacts: &Path, needle: &str) -> String {
    let dest = fx.base().join("dest");
    let res = run_bounded(
        fx,
        store,
        &["unpack", s(artifacts), "--target-dir", s(&dest)],
    );
    let err = failed_with(&res, EXIT_REJECTED, needle);
    assert!(!dest.exists(), "a refused unpack created the target dir");
    assert!(
        !err.bytes().any(|b| b < 0x20 && b != b'\n'),
        "raw control bytes in {err:?}"
    );
    err
}

/// verify must refuse our `artifacts` the same way: "ok" means unpack will succeed.
fn verify_refused(fx: &Fixture, store: &Store, artifacts: &Path, needle: &str) {
    let res = run_bounded(fx, store, &["verify", s(artifacts)]);
    failed_with(&res, EXIT_REJECTED, needle);
}

/// unpack and verify both refuse our `artifacts`, naming `needle`.
fn both_refuse(fx: &Fixture, store: &Store, artifacts: &Path, needle: &str) {
    unpack_refused(fx, store, artifacts, needle);
    verify_refused(fx, store, artifacts, needle);
}

/// Runs cargo-nixcache, failing the test if it takes longer than a minute (a hang).
fn run_bounded(fx: &Fixture, store: &Store, args: &[&str]) -> Output {
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.arg(store.arg()).args(args);
    run_with_deadline(&mut cmd, Duration::from_secs(60))
}

/// `dir` is as `before` captured it, but for directory mtimes.
fn assert_unchanged(before: &TreeSnapshot, dir: &Path) {
    let diff = before.diff_with(&TreeSnapshot::capture(dir), Compare::IGNORE_DIR_MTIMES);
    assert!(
        diff.is_empty(),
        "{} changed:\n{}",
        dir.display(),
        diff.join("\n")
    );
}

/// Bytes that do not compress: zstd stores them raw, so a flipped byte decodes to a changed
/// file that only the frame's checksum can tell.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A crane archive of `target/`, `target/debug/`, and `target/debug/blob.bin` holding `data`.
fn crane_tar(data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, "target/");
    append_dir(&mut b, "target/debug/");
    append_file(&mut b, "target/debug/blob.bin", data);
    b.into_inner().unwrap()
}

/// The position of a byte whose flip makes zstd fail on the checksum alone.
fn checksum_only_flip(frame: &[u8]) -> usize {
    (64..frame.len() - 8)
        .find(|&i| {
            let mut b = frame.to_vec();
            b[i] ^= 1;
            zstd::stream::decode_all(&b[..]).is_err_and(|e| e.to_string().contains("checksum"))
        })
        .expect("a flip that only the checksum catches")
}

// ---- (1) every byte read is integrity-checked ----------------------------------------------

#[test]
fn crane_archives_are_checked_to_their_last_byte() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let data = incompressible(64 << 10);
    let tar = crane_tar(&data);
    let good = zstd_cli(&tar, &[]);

    // Control: the archive as zstd wrote it restores the file.
    let control = store.path("control");
    write_crane_bytes(&control, &good);
    let dest = fx.base().join("control-dest");
    nixcache_ok(
        &fx,
        &store,
        &["unpack", s(&control), "--target-dir", s(&dest)],
    );
    assert_eq!(fs::read(dest.join("debug/blob.bin")).unwrap(), data);

    let at = checksum_only_flip(&good);
    let mut flipped = good.clone();
    flipped[at] ^= 1;
    let no_marker = &tar[..tar.len() - 1024];
    let mut trailing_tar = tar.clone();
    trailing_tar.extend_from_slice(&[b'x'; 512]);
    let mut trailing_frame = good.clone();
    trailing_frame.extend_from_slice(b"trailing garbage");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("flipped", flipped, "checksum"),
        (
            "cut-checksum",
            good[..good.len() - 2].to_vec(),
            "the file ends inside a zstd frame",
        ),
        (
            "no-check",
            zstd_cli(&tar, &["--no-check"]),
            "a zstd frame without a content checksum",
        ),
        (
            "no-end-marker",
            zstd_cli(no_marker, &[]),
            "without its end-of-archive marker",
        ),
        (
            "trailing-tar-data",
            zstd_cli(&trailing_tar, &[]),
            "data after the end-of-archive marker",
        ),
        ("trailing-garbage", trailing_frame, "is not a zstd frame"),
    ];
    for (name, bytes, needle) in cases {
        let out = store.path(name);
        write_crane_bytes(&out, &bytes);
        let err = unpack_refused(&fx, &store, &out, needle);
        assert!(err.contains("crane archive"), "{name}: {err}");
    }
}

#[test]
fn our_archives_need_checksummed_frames_an_end_marker_and_nothing_after() {
    let (fx, store, blob) = with_blob();
    let tar = valid_tar_with(&blob, |_| {});
    let len = tar.len() as u64;
    let good = zstd_with_checksum(&tar);

    // Control: the consistent artifacts unpack, streamed and in memory.
    for declared in [None, Some(len)] {
        let out = store.path("control");
        write_artifacts_with(&store, &out, &tar, good.clone(), declared, 4, None);
        let dest = fx.base().join("control-dest");
        nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", s(&dest)]);
        nixcache_ok(&fx, &store, &["verify", s(&out)]);
        fs::remove_dir_all(&dest).unwrap();
    }

    let mut garbage = good.clone();
    garbage.extend_from_slice(b"trailing garbage");
    let mut two_frames = good.clone();
    two_frames.extend_from_slice(&zstd::encode_all(&[0u8; 512][..], 3).unwrap());
    let mut skippable = good.clone();
    skippable.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
    let mut padded = tar.clone();
    padded.extend_from_slice(&[0; 512]);
    let cases: Vec<(&str, Vec<u8>, &[u8], &str)> = vec![
        (
            "no-check",
            zstd::encode_all(&tar[..], 3).unwrap(),
            &tar,
            "a zstd frame without a content checksum",
        ),
        ("garbage", garbage, &tar, "is not a zstd frame"),
        (
            "second-frame-no-check",
            two_frames,
            &padded,
            "a zstd frame without a content checksum",
        ),
        ("skippable", skippable, &tar, "is not a zstd frame"),
        (
            "cut-checksum",
            good[..good.len() - 2].to_vec(),
            &tar,
            "the file ends inside a zstd frame",
        ),
    ];
    for (name, bytes, stream, needle) in cases {
        for declared in [None, Some(stream.len() as u64)] {
            let out = store.path(&format!("{name}-{declared:?}"));
            write_artifacts_with(&store, &out, stream, bytes.clone(), declared, 4, None);
            let err = unpack_refused(&fx, &store, &out, needle);
            assert!(err.contains("is corrupt or truncated"), "{name}: {err}");
            verify_refused(&fx, &store, &out, needle);
        }
    }

    // The tar stream itself: its end-of-archive marker (two zero blocks) is required, zeros may
    // follow it (GNU tar pads to 10 KiB), anything else may not.
    let mut gnu_padded = tar.clone();
    gnu_padded.resize(10240, 0);
    let mut after_marker = tar.clone();
    after_marker.extend_from_slice(&[b'x'; 512]);
    let one_block = &tar[..tar.len() - 512];
    let none = &tar[..tar.len() - 1024];
    let control = store.path("gnu-padded");
    write_artifacts(&store, &control, &gnu_padded, 4, None);
    nixcache_ok(&fx, &store, &["verify", s(&control)]);
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "after",
            &after_marker,
            "data after the end-of-archive marker",
        ),
        ("one-block", one_block, "without its end-of-archive marker"),
        ("none", none, "without its end-of-archive marker"),
    ];
    for (name, stream, needle) in cases {
        for stored in [Stored::Plain, Stored::InMemory] {
            let out = store.path(&format!("tar-{name}-{stored:?}"));
            write_artifacts_as(stored, &store, &out, stream, 4, None);
            both_refuse(&fx, &store, &out, needle);
        }
    }
}

// ---- (2) every linked store path stays inside the store ------------------------------------

#[test]
fn links_through_a_store_path_that_leads_out_of_the_store_are_refused() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let outside = fx.scratch_dir("outside");
    fs::write(outside.join("libx.rlib"), "not from the store").unwrap();
    // A store path that is itself a symlink out of the store.
    let escape = store.path("escape");
    symlink(&outside, &escape).unwrap();
    // A real store path holding a symlink out of the store.
    let holder = store.path("holder");
    fs::create_dir(&holder).unwrap();
    symlink(&outside, holder.join("sub")).unwrap();
    let resolved = outside.join("libx.rlib");

    let cases: Vec<(&str, PathBuf, String)> = vec![
        (
            "store-path-is-a-link",
            escape.join("libx.rlib"),
            format!(
                "resolves to `{}`, outside the store dir",
                resolved.display()
            ),
        ),
        (
            "link-inside-a-store-path",
            holder.join("sub/libx.rlib"),
            format!(
                "resolves to `{}`, outside the store dir",
                resolved.display()
            ),
        ),
        (
            "link-to-the-store-path",
            escape.clone(),
            format!("resolves to `{}`, outside the store dir", outside.display()),
        ),
    ];
    for (name, target, needle) in &cases {
        let tar = valid_tar_with(target, |_| {});
        let out = store.path(name);
        write_artifacts(&store, &out, &tar, 4, None);
        let err = unpack_refused(&fx, &store, &out, needle);
        assert!(
            err.contains("entry `target/debug/libx.rlib` is rejected"),
            "{err}"
        );
        verify_refused(&fx, &store, &out, needle);
    }

    // Control: a store path that is a symlink to another store path is as good as that one.
    let real = store.path("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("libx.rlib"), "rlib").unwrap();
    let alias = store.path("alias");
    symlink(&real, &alias).unwrap();
    let tar = valid_tar_with(&alias.join("libx.rlib"), |_| {});
    let out = store.path("via-alias");
    write_artifacts(&store, &out, &tar, 4, None);
    nixcache_ok(&fx, &store, &["verify", s(&out)]);
    let dest = fx.base().join("alias-dest");
    nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", s(&dest)]);

    // Nor crane's formats: a symlink member of a `target.tar.zst`, a link in a `target/` dir.
    let crane_zstd = store.path("crane-zstd");
    write_crane_archive(&crane_zstd, |b| {
        append_dir(b, "target/");
        append_dir(b, "target/debug/");
        append_symlink(b, "target/debug/libx.rlib", &escape.join("libx.rlib"));
    });
    let err = unpack_refused(&fx, &store, &crane_zstd, &cases[0].2);
    assert!(err.contains("entry `debug/libx.rlib` is rejected"), "{err}");
    let crane_dir = store.path("crane-dir");
    fs::create_dir_all(crane_dir.join("target/debug/deps")).unwrap();
    symlink(
        escape.join("libx.rlib"),
        crane_dir.join("target/debug/deps/libx-0123456789abcdef.rlib"),
    )
    .unwrap();
    let err = unpack_refused(&fx, &store, &crane_dir, &cases[0].2);
    assert!(err.contains("crane artifacts"), "{err}");

    // pack does not inherit such a link either.
    let target = fx.base().join("hand-made-target");
    fs::create_dir_all(target.join("debug/deps")).unwrap();
    symlink(
        escape.join("libx.rlib"),
        target.join("debug/deps/libx-0123456789abcdef.rlib"),
    )
    .unwrap();
    let out = store.path("packed");
    let res = nixcache(
        &fx,
        &store,
        &["pack", "--target-dir", s(&target), "--out", s(&out)],
    );
    failed_with(&res, EXIT_REJECTED, &cases[0].2);
}

// ---- (4) one pack per OUT --------------------------------------------------------------------

/// `target/debug/zz-slow.bin`: an inline file that keeps `pack --zstd-level 19` busy for a
/// while after it has taken OUT (its temporary archive exists), whatever the machine.
fn slow_inline_file(target: &Path) {
    fs::write(target.join("debug/zz-slow.bin"), incompressible(8 << 20)).unwrap();
}

fn pack_cmd(fx: &Fixture, store: &Store, target: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = fx.command(support::nixcache_bin());
    cmd.arg(store.arg())
        .args(["pack", "--target-dir", s(target), "--out", s(out)])
        .args(extra);
    cmd
}

/// Temporary files (`.<name>.<random>.tmp`) in `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `dir` holds a temporary file of at least `min` bytes: a pack is writing.
fn wait_for_temp_file(dir: &Path, min: u64, child: &mut std::process::Child) {
    let start = Instant::now();
    loop {
        let big = temp_files(dir)
            .iter()
            .any(|p| fs::metadata(p).is_ok_and(|m| m.len() >= min));
        if big {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pack ended ({status}) before it was caught writing");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no temp file");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn file_hash(path: &Path) -> u64 {
    support::snapshot::fnv1a64(&fs::read(path).unwrap())
}

#[test]
fn two_packs_cannot_share_an_out() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "app"]);
    let a = fx.path("target");
    let b = fx.base().join("target-b");
    assert!(Command::new("cp")
        .args(["-a", s(&a), s(&b)])
        .status()
        .unwrap()
        .success());
    // B is another build: same names, other bytes.
    let app = Path::new("debug/app");
    let mut other = fs::read(b.join(app)).unwrap();
    other.extend_from_slice(b"another build");
    fs::write(b.join(app), other).unwrap();
    let a_app = file_hash(&a.join(app));
    slow_inline_file(&a);

    let out = store.path("deps");
    let mut first = pack_cmd(&fx, &store, &a, &out, &["--zstd-level", "19"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_temp_file(&out, 1, &mut first);
    let res = support::output_of(&mut pack_cmd(&fx, &store, &b, &out, &[]));
    let busy = format!(
        "another `cargo nixcache pack` is writing into `{}`",
        out.display()
    );
    failed_with(&res, EXIT_ERROR, &busy);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));

    // Once the first is done, OUT holds its artifacts: B may not mix its own in.
    let res = support::output_of(&mut pack_cmd(&fx, &store, &b, &out, &[]));
    let foreign = format!(
        "`{}` holds the artifacts of another pack (of `{}`)",
        out.display(),
        a.display()
    );
    failed_with(&res, EXIT_USAGE, &foreign);
    assert_eq!(
        file_hash(&a.join(app)),
        a_app,
        "A's links lead to A's bytes"
    );
    assert_ne!(file_hash(&b.join(app)), a_app);
    nixcache_ok(&fx, &store, &["verify", s(&out)]);

    // A repack of the same tree stays allowed.
    fs::remove_file(a.join("debug/zz-slow.bin")).unwrap();
    let res = support::output_of(&mut pack_cmd(&fx, &store, &a, &out, &[]));
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(file_hash(&a.join(app)), a_app);
    nixcache_ok(&fx, &store, &["verify", s(&out)]);
}

// ---- (6) a failed or killed pack -------------------------------------------------------------

/// The archive is written on a thread of its own (src/pack/stream.rs): when writing it fails
/// (here: beyond the file size limit), pack fails with that error, naming the archive, and
/// undoes what it did, as for a failure in the walk.
#[test]
fn a_pack_whose_archive_cannot_be_written_fails_with_the_write_error() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "app"]);
    let target = fx.path("target");
    // An unknown file is stored inline: 3 MiB of incompressible bytes, early in the archive.
    fs::write(target.join("a-big.bin"), incompressible(3 << 20)).unwrap();
    let before = TreeSnapshot::capture(&target);
    for compress in ["none", "zstd"] {
        let out = store.path(&format!("deps-{compress}"));
        let pack = ["pack", "--target-dir", s(&target), "--out", s(&out)];
        let res = limited(
            &fx,
            &store,
            "ulimit -f 1024; trap '' XFSZ",
            &[&pack[..], &["--compress", compress]].concat(),
        );
        let err = failed_with(&res, EXIT_ERROR, "File too large");
        assert!(err.contains("failed to write archive"), "{compress}: {err}");
        assert!(
            !out.exists(),
            "{compress}: a failed pack left its output behind"
        );
        assert_unchanged(&before, &target);
    }
    // The control: without the limit the same pack succeeds.
    let out = store.path("deps-control");
    let res = support::output_of(&mut pack_cmd(&fx, &store, &target, &out, &[]));
    assert!(res.status.success(), "{}", stderr(&res));
}

/// An inline file that shrinks while pack streams it (issue 19: pack exited 0, its archive cut
/// short in that member): the pack fails naming the file, and undoes what it did, as every
/// failed pack does.
#[test]
fn a_file_that_changes_while_pack_reads_it_fails_the_pack() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    // A made-up target dir of a few entries: the walk is done before the archive holds a byte.
    let target = fx.scratch_dir("made/target");
    fs::create_dir_all(target.join("debug/deps")).unwrap();
    fs::write(target.join("debug/deps/libx-0123456789abcdef.rlib"), "rlib").unwrap();
    slow_inline_file(&target);
    // A second slow file between the first and the victim: the archive's first compressed bytes
    // may appear only once the first is read (zstd holds its window), and the victim must still
    // be ahead then (one slow file lost that race in CI under load).
    fs::write(target.join("debug/zz-slow2.bin"), incompressible(8 << 20)).unwrap();
    let victim = target.join("debug/zz-victim.bin");
    let bytes = vec![1u8; 1 << 20];
    fs::write(&victim, &bytes).unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&victim).unwrap());
    let before = TreeSnapshot::capture(&target);

    let out = store.path("deps");
    let mut pack = pack_cmd(&fx, &store, &target, &out, &["--zstd-level", "19"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_temp_file(&out, 1, &mut pack);
    fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(1 << 19)
        .unwrap();
    let res = pack.wait_with_output().unwrap();
    let err = failed_with(
        &res,
        EXIT_ERROR,
        &format!("`{}` changed while pack read it", victim.display()),
    );
    assert!(
        err.contains("1048576 bytes when listed, 524288 read"),
        "{err}"
    );
    assert!(!out.exists(), "a failed pack left its output behind");
    fs::write(&victim, &bytes).unwrap();
    filetime::set_file_mtime(&victim, mtime).unwrap();
    assert_unchanged(&before, &target);

    // The control: left alone, the same tree packs.
    let res = support::output_of(&mut pack_cmd(&fx, &store, &target, &out, &[]));
    assert!(res.status.success(), "{}", stderr(&res));
}

#[test]
fn a_failed_pack_leaves_the_target_dir_as_it_was_and_no_temp_files() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "app"]);
    let target = fx.path("target");
    let before = TreeSnapshot::capture(&target);
    // Sorts after everything, so artifacts were moved by the time pack meets it.
    let fifo = target.join("zz-fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let out = store.path("deps");
    let pack_args = ["pack", "--target-dir", s(&target), "--out", s(&out)];
    let res = nixcache(&fx, &store, &pack_args);
    failed_with(
        &res,
        EXIT_REJECTED,
        &format!("`{}` is a fifo", fifo.display()),
    );
    assert!(!out.exists(), "a failed pack left its output behind");
    fs::remove_file(&fifo).unwrap();
    assert_unchanged(&before, &target);
    // cargo's uplifted binary is a hard link of rustc's output, and is again.
    let profile = target.join("debug");
    let ino = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
    let rustc_output = support::layout::bin_output(&profile, "app");
    assert_eq!(
        ino(&profile.join("app")),
        ino(&rustc_output),
        "hard link lost"
    );

    // A repack that fails: the target dir (links into OUT by now, and new artifacts) stays as it
    // was before it, and OUT holds no manifest (its old one no longer describes it).
    let res = nixcache(&fx, &store, &pack_args);
    assert!(res.status.success(), "{}", stderr(&res));
    fx.cargo(["build", "-p", "app", "--release"]);
    let before = TreeSnapshot::capture(&target);
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let res = nixcache(&fx, &store, &pack_args);
    assert_eq!(res.status.code(), Some(EXIT_REJECTED), "{}", stderr(&res));
    fs::remove_file(&fifo).unwrap();
    assert_unchanged(&before, &target);
    assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));
    for name in ["nixcache.json", "target.tar.zst"] {
        assert!(!out.join(name).exists(), "{name} describes what is gone");
    }
    let res = nixcache(
        &fx,
        &store,
        &["unpack", s(&out), "--target-dir", "restored"],
    );
    failed_with(&res, EXIT_REJECTED, "holds no cargo artifacts");
}

#[test]
fn a_later_pack_cleans_up_what_a_killed_one_left() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "app"]);
    let target = fx.path("target");
    slow_inline_file(&target);
    let out = store.path("deps");
    let mut killed = pack_cmd(&fx, &store, &target, &out, &["--zstd-level", "19"])
        .spawn()
        .unwrap();
    wait_for_temp_file(&out, 256 << 10, &mut killed);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let left = temp_files(&out);
    assert!(
        !left.is_empty(),
        "the killed pack left no temp file to clean"
    );

    // Another tree may not pack into what the killed pack began.
    let other = fx.base().join("other-target");
    fs::create_dir_all(other.join("debug")).unwrap();
    let res = support::output_of(&mut pack_cmd(&fx, &store, &other, &out, &[]));
    failed_with(&res, EXIT_USAGE, "holds the artifacts of another pack");

    // The same tree packs again, and the temp files are gone.
    fs::remove_file(target.join("debug/zz-slow.bin")).unwrap();
    let res = support::output_of(&mut pack_cmd(&fx, &store, &target, &out, &[]));
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));
    nixcache_ok(&fx, &store, &["verify", s(&out)]);
    let dest = fx.base().join("dest");
    nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", s(&dest)]);
}

// ---- (8) exit codes and messages -------------------------------------------------------------

#[test]
fn names_the_file_system_cannot_hold_are_refused_before_anything_is_written() {
    let (fx, store, blob) = with_blob();
    let long = format!("target/debug/{}", "z".repeat(256));
    let longest = format!("target/debug/{}", "z".repeat(255));
    let nul_link = [blob.as_os_str().as_encoded_bytes(), b"\0x"].concat();

    // Control: a 255-byte name is fine.
    let tar = valid_tar_with(&blob, |b| {
        append_pax(b, &[("path", longest.as_bytes())]);
        append_file(b, "x", b"longest");
    });
    let out = store.path("control");
    write_artifacts(&store, &out, &tar, 5, None);
    let dest = fx.base().join("control-dest");
    nixcache_ok(&fx, &store, &["unpack", s(&out), "--target-dir", s(&dest)]);

    type Records<'a> = Vec<(&'a str, Vec<u8>)>;
    let cases: Vec<(&str, Records, tar::EntryType, String)> = vec![
        (
            "nul-in-name",
            vec![("path", b"target/debug/a\0b".to_vec())],
            tar::EntryType::Regular,
            r"entry `target/debug/a\0b` is rejected: the path has a NUL byte".to_string(),
        ),
        (
            "long-name",
            vec![("path", long.as_bytes().to_vec())],
            tar::EntryType::Regular,
            "is rejected: the path has a component of 256 bytes, more than the 255".to_string(),
        ),
        (
            "nul-in-link",
            vec![("path", b"target/debug/z".to_vec()), ("linkpath", nul_link)],
            tar::EntryType::Symlink,
            r"has a NUL byte".to_string(),
        ),
    ];
    for (name, records, kind, needle) in cases {
        let tar = valid_tar_with(&blob, |b| {
            let records: Vec<(&str, &[u8])> = records.iter().map(|(k, v)| (*k, &v[..])).collect();
            append_pax(b, &records);
            append_raw(b, "x", header(kind, 0), &[]);
        });
        for stored in [Stored::Plain, Stored::InMemory] {
            let out = store.path(&format!("{name}-{stored:?}"));
            write_artifacts_as(stored, &store, &out, &tar, 5, None);
            both_refuse(&fx, &store, &out, &needle);
        }
    }
}

#[test]
fn a_gnu_long_name_is_named_as_such() {
    let (fx, store, blob) = with_blob();
    let tar = valid_tar_with(&blob, |b| {
        let path = format!("target/debug/{}", "l".repeat(120));
        b.append_data(&mut header(tar::EntryType::Regular, 1), path, &b"x"[..])
            .unwrap();
    });
    let out = store.path("gnu");
    write_artifacts(&store, &out, &tar, 5, None);
    let needle = "entry `././@LongLink` is rejected: it is a GNU long name";
    both_refuse(&fx, &store, &out, needle);
}

#[test]
fn a_missing_or_garbled_anchor_or_archive_is_a_rejection_everywhere() {
    let (fx, store, blob) = with_blob();
    let tar = valid_tar_with(&blob, |_| {});
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 3] = [
        (
            "anchor-missing",
            |out| fs::remove_file(out.join("nixcache-refs")).unwrap(),
            "nixcache-refs` does not exist",
        ),
        (
            "anchor-not-utf8",
            |out| fs::write(out.join("nixcache-refs"), b"\xff\xfe\n").unwrap(),
            "nixcache-refs` is not UTF-8",
        ),
        (
            "archive-missing",
            |out| fs::remove_file(out.join("symlinks.tar")).unwrap(),
            "symlinks.tar` does not exist",
        ),
    ];
    for (name, damage, needle) in cases {
        let out = store.path(name);
        write_artifacts(&store, &out, &tar, 4, None);
        damage(&out);
        both_refuse(&fx, &store, &out, needle);
    }
}

#[test]
fn a_target_dir_given_as_a_symlink_is_refused_with_or_without_a_trailing_slash() {
    let (fx, store, blob) = with_blob();
    let out = store.path("deps");
    write_artifacts(&store, &out, &valid_tar_with(&blob, |_| {}), 4, None);
    let real = fx.scratch_dir("real-dir");
    let link = fx.base().join("link");
    symlink(&real, &link).unwrap();
    for given in [s(&link).to_string(), format!("{}/", link.display())] {
        let res = nixcache(&fx, &store, &["unpack", s(&out), "--target-dir", &given]);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(EXIT_ERROR), "{given}: {err}");
        assert!(
            err.contains(&format!(
                "`{}` is a symlink; unpack restores into a real directory",
                link.display()
            )),
            "{given}: {err}"
        );
        assert!(fs::read_dir(&real).unwrap().next().is_none(), "{given}");
    }
}

#[test]
fn pack_writes_its_files_readable() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    fx.cargo(["build", "-p", "nc-alpha"]);
    let out = store.path("deps");
    nixcache_ok(
        &fx,
        &store,
        &["pack", "--target-dir", "target", "--out", s(&out)],
    );
    // What a file created with mode 0644 gets under this umask.
    let probe = fx.base().join("probe");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&probe)
        .unwrap();
    let want = fs::metadata(&probe).unwrap().mode() & 0o777;
    assert_eq!(want & 0o400, 0o400);
    for name in [
        "nixcache.json",
        "nixcache-refs",
        "symlinks.tar.zst",
        "target.tar.zst",
    ] {
        let mode = fs::metadata(out.join(name)).unwrap().mode() & 0o777;
        assert_eq!(mode, want, "{name}: {mode:o}");
    }
}

// ---- (5) special files -----------------------------------------------------------------------

#[test]
fn manifest_anchor_and_archive_must_be_bounded_regular_files() {
    let (fx, store, blob) = with_blob();
    let tar = valid_tar_with(&blob, |_| {});
    type Damage = fn(&Path);
    let to_zero: Damage = |p| {
        fs::remove_file(p).unwrap();
        symlink("/dev/zero", p).unwrap();
    };
    let to_fifo: Damage = |p| {
        fs::remove_file(p).unwrap();
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    };
    let to_dir: Damage = |p| {
        fs::remove_file(p).unwrap();
        fs::create_dir(p).unwrap();
    };
    let to_1gib: Damage = |p| {
        let f = fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_len(1 << 30).unwrap();
    };
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "nixcache.json",
            to_zero,
            "is not a regular file but a character device",
        ),
        ("nixcache.json", to_fifo, "is not a regular file but a fifo"),
        (
            "nixcache.json",
            to_1gib,
            "is 1073741824 bytes long, more than",
        ),
        (
            "nixcache-refs",
            to_zero,
            "is not a regular file but a character device",
        ),
        ("nixcache-refs", to_fifo, "is not a regular file but a fifo"),
        (
            "nixcache-refs",
            to_dir,
            "is not a regular file but a directory",
        ),
        (
            "nixcache-refs",
            to_1gib,
            "is 1073741824 bytes long, more than",
        ),
        (
            "symlinks.tar",
            to_zero,
            "is not a regular file but a character device",
        ),
        ("symlinks.tar", to_fifo, "is not a regular file but a fifo"),
    ];
    for (i, (file, damage, needle)) in cases.into_iter().enumerate() {
        let out = store.path(&format!("case-{i}"));
        write_artifacts(&store, &out, &tar, 4, None);
        damage(&out.join(file));
        let needle = format!("`{}` {needle}", out.join(file).display());
        both_refuse(&fx, &store, &out, &needle);
    }
    // crane's archive too.
    let crane = store.path("crane");
    fs::create_dir(&crane).unwrap();
    assert!(Command::new("mkfifo")
        .arg(crane.join("target.tar.zst"))
        .status()
        .unwrap()
        .success());
    let needle = format!(
        "`{}` is not a regular file but a fifo",
        crane.join("target.tar.zst").display()
    );
    unpack_refused(&fx, &store, &crane, &needle);
}

// ---- (3) file descriptors --------------------------------------------------------------------

const DEPTH: usize = 3000;

/// `target/` and DEPTH nested directories `d`, then a file `f` of `size` bytes at the bottom:
/// paths far beyond tar's 100 bytes (pax records) and Linux's PATH_MAX.
fn deep_tar(size: usize) -> (Vec<u8>, u64) {
    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, "target/");
    let mut path = String::from("target");
    for _ in 0..DEPTH {
        path.push_str("/d");
        append_pax(&mut b, &[("path", path.as_bytes())]);
        append_dir(&mut b, "d");
    }
    path.push_str("/f");
    append_pax(&mut b, &[("path", path.as_bytes())]);
    append_file(&mut b, "f", &vec![7u8; size]);
    (b.into_inner().unwrap(), DEPTH as u64 + 2)
}

/// `find` walks trees deeper than PATH_MAX; std and walkdir do not.
fn count_below(dir: &Path, kind: &str) -> usize {
    let out = Command::new("find")
        .arg(dir)
        .args(["-type", kind])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

fn rm_rf(dir: &Path) {
    assert!(Command::new("rm")
        .arg("-rf")
        .arg(dir)
        .status()
        .unwrap()
        .success());
}

#[test]
fn a_deep_archive_unpacks_and_rolls_back_with_few_file_descriptors() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let fds = "ulimit -n 1024";

    let (tar, entries) = deep_tar(16);
    let out = store.path("deep");
    write_artifacts(&store, &out, &tar, entries, None);
    let dest = fx.base().join("dest");
    let res = limited(
        &fx,
        &store,
        fds,
        &["unpack", s(&out), "--target-dir", s(&dest)],
    );
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(count_below(&dest, "d"), DEPTH + 1);
    assert_eq!(count_below(&dest, "f"), 1);
    rm_rf(&dest);

    // The file at the bottom is bigger than the process may write: pass two fails there, with
    // every directory created, and rolls back.
    let (tar, entries) = deep_tar(4 << 20);
    let out = store.path("deep-big");
    write_artifacts(&store, &out, &tar, entries, None);
    let limits = format!("{fds}; ulimit -f 1024; trap '' XFSZ");
    let res = limited(
        &fx,
        &store,
        &limits,
        &["unpack", s(&out), "--target-dir", s(&dest)],
    );
    let err = failed_with(&res, EXIT_ERROR, "File too large");
    assert!(!err.contains("roll"), "{err}");
    if dest.exists() {
        let left = count_below(&dest, "d");
        rm_rf(&dest);
        panic!("the rollback left {left} directories behind");
    }
    // Rolling back into an existing empty dir keeps the dir.
    fs::create_dir(&dest).unwrap();
    let res = limited(
        &fx,
        &store,
        &limits,
        &["unpack", s(&out), "--target-dir", s(&dest)],
    );
    assert_eq!(res.status.code(), Some(EXIT_ERROR), "{}", stderr(&res));
    let left = count_below(&dest, "d");
    rm_rf(&dest);
    assert_eq!(left, 1, "the rollback left directories behind");
}

// ---- (9) round 2 (issue 19): the smaller points ------------------------------------------------

/// A made-up target dir (and build dir) with a link and an inline file each: pack needs no
/// cargo build for them.
fn made_up_dir(fx: &Fixture, name: &str) -> PathBuf {
    let dir = fx.scratch_dir(name);
    fs::create_dir_all(dir.join("debug/deps")).unwrap();
    fs::write(dir.join("debug/deps/libx-0123456789abcdef.rlib"), name).unwrap();
    fs::write(dir.join("debug/deps/x-0123456789abcdef.d"), name).unwrap();
    dir
}

/// A build dir given that is not there was ignored (rc 0, the archive without it); it is a
/// usage error, whichever way it is given, and nothing is written.
#[test]
fn pack_refuses_a_build_dir_given_that_does_not_exist() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let target = made_up_dir(&fx, "made/target");
    let missing = fx.base().join("nonexistent");
    let out = store.path("deps");
    let needle = format!(
        "build dir `{}` (--build-dir or CARGO_BUILD_BUILD_DIR) does not exist",
        missing.display()
    );
    let res = support::output_of(&mut pack_cmd(
        &fx,
        &store,
        &target,
        &out,
        &["--build-dir", s(&missing)],
    ));
    failed_with(&res, EXIT_USAGE, &needle);
    let res = support::output_of(
        pack_cmd(&fx, &store, &target, &out, &[]).env("CARGO_BUILD_BUILD_DIR", &missing),
    );
    failed_with(&res, EXIT_USAGE, &needle);
    assert!(!out.exists(), "a refused pack wrote {}", out.display());

    // The control: an existing build dir is packed as the archive's `build` root.
    let build = made_up_dir(&fx, "made/build");
    let res = support::output_of(
        pack_cmd(&fx, &store, &target, &out, &[]).env("CARGO_BUILD_BUILD_DIR", &build),
    );
    assert!(res.status.success(), "{}", stderr(&res));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("nixcache.json")).unwrap()).unwrap();
    assert_eq!(manifest["roots"], serde_json::json!(["build", "target"]));
}

/// A two-root archive unpacked with the build dir given as the target dir failed halfway
/// ("File exists", rc 1) and left the target dir it had created: a usage error before anything
/// is made.
#[test]
fn unpack_refuses_a_build_dir_that_is_the_target_dir() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let target = made_up_dir(&fx, "made/target");
    let build = made_up_dir(&fx, "made/build");
    let out = store.path("deps");
    let pack = pack_cmd(&fx, &store, &target, &out, &["--build-dir", s(&build)]).output();
    assert!(pack.unwrap().status.success());
    let dest = fx.base().join("dest");
    for same in [s(&dest).to_string(), format!("{}/", dest.display())] {
        let res = nixcache(
            &fx,
            &store,
            &[
                "unpack",
                s(&out),
                "--target-dir",
                s(&dest),
                "--build-dir",
                &same,
            ],
        );
        failed_with(
            &res,
            EXIT_USAGE,
            &format!("the build dir given (`{same}`) is the target dir"),
        );
        assert!(!dest.exists(), "a refused unpack left {}", dest.display());
    }
    // The control: a build dir of its own.
    let dest_build = fx.base().join("dest-build");
    let args = ["unpack", s(&out), "--target-dir", s(&dest)];
    nixcache_ok(
        &fx,
        &store,
        &[&args[..], &["--build-dir", s(&dest_build)]].concat(),
    );
    assert!(dest_build.join("debug/deps/x-0123456789abcdef.d").is_file());
}

/// crane's archives: a member below a file was an I/O failure of pass two (rc 1); it is bad
/// input (3), in one archive and across a `.prev` chain, and nothing is written.
#[test]
fn a_crane_member_below_a_file_is_bad_input() {
    let (fx, store, _) = with_blob();
    let out = fx.base().join("crane-below");
    write_crane_archive(&out, |b| {
        append_dir(b, "target/");
        append_dir(b, "target/debug/");
        append_file(b, "target/debug/x", b"a file");
        append_file(b, "target/debug/x/y", b"below it");
    });
    let err = unpack_refused(&fx, &store, &out, "entry `debug/x/y` is rejected");
    assert!(
        err.contains("it is below `debug/x`, which an earlier member made a file"),
        "{err}"
    );

    // Across a chain: the older archive makes the file, the newer one a directory there.
    let older = fx.base().join("crane-older");
    write_crane_archive(&older, |b| {
        append_dir(b, "target/");
        append_file(b, "target/x", b"a file");
    });
    let newer = fx.base().join("crane-newer");
    write_crane_archive(&newer, |b| {
        append_dir(b, "target/");
        append_dir(b, "target/x/");
    });
    symlink(
        older.join("target.tar.zst"),
        newer.join("target.tar.zst.prev"),
    )
    .unwrap();
    unpack_refused(
        &fx,
        &store,
        &newer,
        "it is a directory where an earlier member made a file",
    );
    // The control: the newer archive alone unpacks.
    fs::remove_file(newer.join("target.tar.zst.prev")).unwrap();
    let dest = fx.base().join("dest");
    nixcache_ok(
        &fx,
        &store,
        &["unpack", s(&newer), "--target-dir", s(&dest)],
    );
}

/// An OUT holding crane's artifacts (its target dir, its archive, a `.prev` link) got ours beside
/// them, stale; it is refused as usage, and left as it was.
#[test]
fn pack_refuses_an_out_holding_cranes_artifacts() {
    let fx = Fixture::copy("ws-basic");
    let store = Store::new(&fx);
    let target = made_up_dir(&fx, "made/target");
    type Make<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Make); 3] = [
        ("target/", &|out| {
            fs::create_dir_all(out.join("target/debug")).unwrap();
            fs::write(out.join("target/debug/app"), "crane's").unwrap();
        }),
        ("target.tar.zst", &|out| {
            write_crane_archive(out, |b| append_dir(b, "target/"));
        }),
        ("target.tar.zst.prev", &|out| {
            fs::create_dir_all(out).unwrap();
            symlink("/nowhere/target.tar.zst", out.join("target.tar.zst.prev")).unwrap();
        }),
    ];
    for (name, make) in cases {
        let out = store.path("deps");
        make(&out);
        let before = TreeSnapshot::capture(&out);
        let res = support::output_of(&mut pack_cmd(&fx, &store, &target, &out, &[]));
        failed_with(
            &res,
            EXIT_USAGE,
            &format!("`{}` holds crane's artifacts ({name})", out.display()),
        );
        assert_unchanged(&before, &out);
    }
    // The control: an OUT of its own packs, and packs again (its archive is our stop sign).
    let out = store.path("deps");
    for _ in 0..2 {
        let res = support::output_of(&mut pack_cmd(&fx, &store, &target, &out, &[]));
        assert!(res.status.success(), "{}", stderr(&res));
    }
}

/// explain read the whole log into memory (`--log /dev/zero` ran out of it): it reads it as it
/// comes, a line at a time and a long line in pieces, and takes only a regular file (or stdin).
#[test]
fn explain_streams_its_log_and_takes_only_a_file() {
    let fx = Fixture::copy("ws-basic");
    let res = run_with_deadline(
        fx.command(support::nixcache_bin())
            .args(["explain", "--log", "/dev/zero"]),
        Duration::from_secs(60),
    );
    let err = failed_with(&res, EXIT_REJECTED, "`/dev/zero` is not a regular file");
    assert!(err.contains("character device"), "{err}");
    let fifo = fx.base().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let res = run_with_deadline(
        fx.command(support::nixcache_bin())
            .args(["explain", "--log"])
            .arg(&fifo),
        Duration::from_secs(60),
    );
    failed_with(&res, EXIT_REJECTED, "is not a regular file but a fifo");

    // 64 MiB through stdin, in 40 MB of address space: lines, and one line without an end.
    for input in [
        "yes '   Compiling nc-alpha v0.1.0' | head -c 64M",
        "head -c 64M /dev/zero",
    ] {
        let script = format!("{input} | (ulimit -v 40000; exec \"$0\" explain --log -)");
        let mut cmd = fx.command("bash");
        cmd.arg("-c").arg(script).arg(support::nixcache_bin());
        let res = run_with_deadline(&mut cmd, Duration::from_secs(120));
        assert!(res.status.success(), "{input}: {}", stderr(&res));
        assert!(
            String::from_utf8_lossy(&res.stdout).contains("No unit was dirty"),
            "{input}: {}",
            stderr(&res)
        );
    }
}
