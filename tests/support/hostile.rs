//! Building archives by hand, hostile ones included, and the artifacts around them.
//!
//! Tar members are written with tar-rs headers whose raw fields the test controls (a path with
//! `..`, a NUL byte, a type we refuse); pax records are added by hand. [`write_artifacts_with`]
//! wraps any stream in a CONSISTENT artifacts directory (an anchor listing every store path in
//! the stream, a manifest counting its members and, for zstd, its length), so the check a test
//! aims at is the one that fires, not the anchor or count check in front of it.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Fixture, Store};

pub type Builder = tar::Builder<Vec<u8>>;

/// `cargo-nixcache --store-dir=<store> <args>`, whatever the exit status.
pub fn nixcache(fx: &Fixture, store: &Store, args: &[&str]) -> Output {
    let mut all = vec![store.arg()];
    all.extend(args.iter().map(|s| s.to_string()));
    fx.nixcache(all)
}

/// [`nixcache`], panicking unless it succeeds.
pub fn nixcache_ok(fx: &Fixture, store: &Store, args: &[&str]) -> Output {
    let mut all = vec![store.arg()];
    all.extend(args.iter().map(|s| s.to_string()));
    fx.nixcache_ok(all)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o755);
    h.set_mtime(1);
    h
}

pub fn set_raw_path(h: &mut tar::Header, path: &str) {
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
}

pub fn append_raw(b: &mut Builder, path: &str, mut h: tar::Header, data: &[u8]) {
    set_raw_path(&mut h, path);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

pub fn append_dir(b: &mut Builder, path: &str) {
    append_raw(b, path, header(tar::EntryType::Directory, 0), &[]);
}

pub fn append_file(b: &mut Builder, path: &str, data: &[u8]) {
    append_raw(
        b,
        path,
        header(tar::EntryType::Regular, data.len() as u64),
        data,
    );
}

pub fn append_symlink(b: &mut Builder, path: &str, target: &Path) {
    let mut h = header(tar::EntryType::Symlink, 0);
    h.set_link_name(target).unwrap();
    append_raw(b, path, h, &[]);
}

/// A pax extended header (`x`) with these records, applying to the member after it.
pub fn append_pax(b: &mut Builder, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (key, value) in records {
        // "<len> <key>=<value>\n", where <len> counts its own digits too.
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len} {key}=").as_bytes());
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    let h = header(tar::EntryType::XHeader, data.len() as u64);
    append_raw(b, "PaxHeader", h, &data);
}

/// zstd's command line, as crane compresses (`zstd -q`: a content checksum by default).
pub fn zstd_cli(data: &[u8], args: &[&str]) -> Vec<u8> {
    let mut child = Command::new("zstd")
        .args(["-q", "-c"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run zstd");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "zstd {args:?} failed");
    out.stdout
}

/// A crane `target.tar.zst` in `out`, compressed by the zstd command line like crane's.
pub fn write_crane_archive(out: &Path, build: impl FnOnce(&mut Builder)) {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    write_crane_bytes(out, &zstd_cli(&b.into_inner().unwrap(), &[]));
}

pub fn write_crane_bytes(out: &Path, bytes: &[u8]) {
    fs::create_dir_all(out).unwrap();
    fs::write(out.join("target.tar.zst"), bytes).unwrap();
}

/// How `write_artifacts_as` stores the archive: plain, which unpack streams twice, or zstd with
/// the stream's length in the manifest, which unpack decompresses once into memory.
#[derive(Clone, Copy, Debug)]
pub enum Stored {
    Plain,
    InMemory,
}

/// Writes an artifacts dir by hand: the archive as given, an anchor listing every store path in
/// it (unless `anchor` overrides), and a manifest counting `entries`.
pub fn write_artifacts(store: &Store, out: &Path, tar: &[u8], entries: u64, anchor: Option<&str>) {
    write_artifacts_as(Stored::Plain, store, out, tar, entries, anchor)
}

pub fn write_artifacts_as(
    stored: Stored,
    store: &Store,
    out: &Path,
    tar: &[u8],
    entries: u64,
    anchor: Option<&str>,
) {
    match stored {
        Stored::Plain => write_artifacts_with(store, out, tar, tar.to_vec(), None, entries, anchor),
        Stored::InMemory => {
            let compressed = zstd_with_checksum(tar);
            let len = Some(tar.len() as u64);
            write_artifacts_with(store, out, tar, compressed, len, entries, anchor)
        }
    }
}

/// One zstd frame with a content checksum, as pack writes.
pub fn zstd_with_checksum(data: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// The general form: `archive` is the file's bytes (plain when they equal `stream`, else named
/// `symlinks.tar.zst`), `stream` what they decompress to (its store paths go into the anchor
/// unless `anchor` overrides), `stream_bytes` what the manifest declares.
pub fn write_artifacts_with(
    store: &Store,
    out: &Path,
    stream: &[u8],
    archive: Vec<u8>,
    stream_bytes: Option<u64>,
    entries: u64,
    anchor: Option<&str>,
) {
    fs::create_dir_all(out).unwrap();
    let (name, compression) = if archive == stream {
        ("symlinks.tar", "none")
    } else {
        ("symlinks.tar.zst", "zstd")
    };
    fs::write(out.join(name), archive).unwrap();
    let anchor = match anchor {
        Some(a) => a.to_string(),
        None => anchor_for(store, stream),
    };
    fs::write(out.join("nixcache-refs"), anchor).unwrap();
    let mut manifest = serde_json::json!({
        "format": "cargo-nixcache", "version": 1, "archive": name, "compression": compression,
        "anchor": "nixcache-refs", "store_dir": store.dir, "entries": entries, "roots": ["target"],
        "generator": "test",
    });
    if let Some(n) = stream_bytes {
        manifest["stream_bytes"] = n.into();
    }
    fs::write(out.join("nixcache.json"), manifest.to_string()).unwrap();
}

/// Every store path (`<store>/<base name>`) named in `stream`, one per line, sorted.
pub fn anchor_for(store: &Store, stream: &[u8]) -> String {
    let text = String::from_utf8_lossy(stream);
    let prefix = format!("{}/", store.dir.display());
    let mut found: Vec<String> = text
        .match_indices(&prefix)
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest[prefix.len()..]
                .find(['/', '\0', '\n'])
                .map_or(rest.len(), |e| e + prefix.len());
            rest[..end].to_string()
        })
        .collect();
    found.sort();
    found.dedup();
    found.iter().map(|l| format!("{l}\n")).collect()
}

/// A valid little archive: target/, target/debug/, a link to a real store file, an inline file.
pub type Member = Box<dyn Fn(&mut Builder)>;

pub fn valid_members(blob: &Path) -> Vec<Member> {
    let blob = blob.to_path_buf();
    vec![
        Box::new(|b| append_dir(b, "target/")),
        Box::new(|b| append_dir(b, "target/debug/")),
        Box::new(move |b| append_symlink(b, "target/debug/libx.rlib", &blob)),
        Box::new(|b| append_file(b, "target/debug/x.d", b"dep info")),
    ]
}

/// The valid members as a tar stream, with `hostile` appended at the end of `target/debug/`.
pub fn valid_tar_with(blob: &Path, hostile: impl FnOnce(&mut Builder)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in valid_members(blob) {
        m(&mut b);
    }
    hostile(&mut b);
    b.into_inner().unwrap()
}

/// A store path `blob` holding `libx.rlib`, what [`valid_members`] links to; returns the file.
pub fn store_blob(store: &Store) -> std::path::PathBuf {
    let dir = store.path("blob");
    fs::create_dir_all(&dir).unwrap();
    let blob = dir.join("libx.rlib");
    fs::write(&blob, "rlib").unwrap();
    blob
}

/// cargo-nixcache run by bash after `limits` (`ulimit ...; trap ...`).
pub fn limited(fx: &Fixture, store: &Store, limits: &str, args: &[&str]) -> Output {
    let mut cmd = fx.command("bash");
    cmd.arg("-c")
        .arg(format!("{limits}; exec \"$0\" \"$@\""))
        .arg(super::nixcache_bin())
        .arg(store.arg())
        .args(args);
    run_with_deadline(&mut cmd, Duration::from_secs(120))
}

/// Runs `cmd`, failing the test if it takes longer than `deadline` (a hang).
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hung for {deadline:?}: {}\n{}",
                super::command_line(cmd),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
