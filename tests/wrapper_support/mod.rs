//! A tiny harness: a generated workspace in a temp dir, cargo commands with or without the
//! wrapper, the "inherited" state (outputs as absolute symlinks into a read-only store dir) and
//! cargo run with all capabilities dropped so that even root cannot write the store.

#![allow(dead_code)]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const WRAPPER: &str = env!("CARGO_BIN_EXE_nixcache-rustc-wrapper");

/// Messages rustc/cargo print when an output is a read-only symlink.
pub const READ_ONLY_ERRORS: &[&str] = &[
    "not writeable",
    "Permission denied",
    "Read-only file system",
];

/// The fixture: a workspace `ws/` (members `alib`, `blib` -> `alib`, `app` -> `blib`, `rerun`,
/// `gen`) and two "vendored" path crates outside it: `vendor/rerun` (build script with
/// `rerun-if-changed=does-not-exist`) and `vendor/gen` (build script writing `$OUT_DIR`).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub strategy: &'static str,
}

const FILES: &[(&str, &str)] = &[
    ("ws/Cargo.toml", "[workspace]\nmembers = [\"alib\", \"blib\", \"app\"]\nresolver = \"2\"\n"),
    ("ws/alib/Cargo.toml", "[package]\nname = \"alib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
    ("ws/alib/src/lib.rs", "/// Doc.\npub fn a() -> u32 {\n    1\n}\n"),
    (
        "ws/blib/Cargo.toml",
        "[package]\nname = \"blib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\nalib = { path = \"../alib\" }\n",
    ),
    ("ws/blib/src/lib.rs", "/// Doc.\npub fn b() -> u32 {\n    alib::a() + 1\n}\n"),
    (
        "ws/app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\nblib = { path = \"../blib\" }\nrerun = { path = \"../../vendor/rerun\" }\ngen = { path = \"../../vendor/gen\" }\n",
    ),
    (
        "ws/app/src/main.rs",
        "fn main() {\n    println!(\"{} {} {}\", blib::b(), rerun::r(), gen::GENERATED);\n}\n#[test]\nfn t() {\n    assert_eq!(blib::b(), 2);\n}\n",
    ),
    ("vendor/rerun/Cargo.toml", "[package]\nname = \"rerun\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
    ("vendor/rerun/build.rs", "fn main() {\n    println!(\"cargo:rerun-if-changed=does-not-exist\");\n}\n"),
    ("vendor/rerun/src/lib.rs", "pub fn r() -> u32 {\n    7\n}\n"),
    ("vendor/gen/Cargo.toml", "[package]\nname = \"gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
    (
        "vendor/gen/build.rs",
        "fn main() {\n    println!(\"cargo:rerun-if-changed=input.txt\");\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    let v = std::fs::read_to_string(\"input.txt\").unwrap();\n    let out = std::path::Path::new(&std::env::var(\"OUT_DIR\").unwrap()).join(\"gen.rs\");\n    std::fs::write(out, format!(\"pub const GENERATED: &str = {:?};\", v.trim())).unwrap();\n}\n",
    ),
    ("vendor/gen/input.txt", "one\n"),
    ("vendor/gen/src/lib.rs", "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n"),
];

impl Fixture {
    pub fn new(strategy: &'static str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("nixcache-wrapper-test-")
            .tempdir()
            .unwrap();
        for (rel, text) in FILES {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Fixture { dir, strategy }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn ws(&self) -> PathBuf {
        self.p("ws")
    }

    pub fn target(&self) -> PathBuf {
        self.p("ws/target")
    }

    pub fn store(&self) -> PathBuf {
        self.p("store")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.p(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }

    pub fn write_exe(&self, rel: &str, text: &str) {
        self.write(rel, text);
        std::fs::set_permissions(self.p(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Makes `rel` newer than anything cargo wrote so far, without changing its content.
    pub fn touch(&self, rel: &str) {
        let later = std::time::SystemTime::now();
        let f = std::fs::File::options()
            .write(true)
            .open(self.p(rel))
            .unwrap();
        f.set_modified(later).unwrap();
    }

    /// `cargo ARGS` in `ws/`, clean environment, not wrapped, with full privileges.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.args(args).current_dir(self.ws());
        for var in [
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_RUSTC_WRAPPER",
            "NIXCACHE_USER_WRAPPER",
            "NIXCACHE_WRAPPER_STRATEGY",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("CARGO_INCREMENTAL", "0")
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_NET_OFFLINE", "true");
        cmd
    }

    /// Like [`Fixture::cargo`], behind the wrapper with this fixture's strategy and no user wrapper.
    pub fn wrapped(&self, args: &[&str]) -> Command {
        let mut cmd = self.cargo(args);
        cmd.env("RUSTC_WRAPPER", WRAPPER)
            .env("NIXCACHE_WRAPPER_STRATEGY", self.strategy);
        cmd
    }

    /// Builds the "deps derivation": runs each command, then turns the target dir into the
    /// inherited state.
    pub fn inherited(&self, commands: &[&[&str]]) {
        for args in commands {
            ok(&mut self.cargo(args));
        }
        inherit(&self.target(), &self.store());
    }
}

/// Runs `cmd` with every capability dropped, so root too gets EACCES on 0444 files.
pub fn unprivileged(cmd: &Command) -> Command {
    let mut out = Command::new("setpriv");
    out.args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        out.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    out
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` unprivileged and asserts success.
pub fn ok(cmd: &mut Command) -> Output {
    let out = run(&mut unprivileged(cmd));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    out
}

/// Runs `cmd` unprivileged and asserts that it fails because an inherited output is read-only:
/// the negative control every scenario has.
pub fn fails_read_only(cmd: &mut Command) -> Output {
    let out = run(&mut unprivileged(cmd));
    let t = text(&out);
    assert!(
        !out.status.success(),
        "expected {cmd:?} to fail without the wrapper, it passed:\n{t}"
    );
    assert!(
        READ_ONLY_ERRORS.iter().any(|e| t.contains(e)),
        "failed for another reason:\n{t}"
    );
    out
}

/// Whether a target-dir file is linked into the store after unpack (immutable artifacts) or
/// inlined (files cargo and build scripts rewrite): mirrors the classification of issue 2.
fn is_linked(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    let comps: Vec<&str> = s.split('/').collect();
    let name = *comps.last().unwrap();
    let in_build_out = comps.windows(2).any(|w| w[0] == "build") && comps.contains(&"out");
    let top_level_d = name.ends_with(".d") && !comps.contains(&"deps") && !comps.contains(&"build");
    !(comps.contains(&".fingerprint")
        || in_build_out
        || top_level_d
        || [
            "invoked.timestamp",
            "output",
            "stderr",
            "root-output",
            ".rustc_info.json",
            "CACHEDIR.TAG",
        ]
        .contains(&name))
}

/// THE swap point for the real `cargo nixcache pack` + `unpack` once they exist: moves every
/// linked artifact of `target` into `store` (same relative path), leaves an absolute symlink in
/// its place, drops `.cargo-lock`, and makes the store read-only.
pub fn inherit(target: &Path, store: &Path) {
    let mut stack = vec![target.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let ft = e.file_type().unwrap();
            let rel = path.strip_prefix(target).unwrap();
            if ft.is_dir() {
                stack.push(path);
            } else if rel.file_name().unwrap() == ".cargo-lock" {
                std::fs::remove_file(&path).unwrap();
            } else if ft.is_file() && is_linked(rel) {
                let dst = store.join("target").join(rel);
                std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                std::fs::rename(&path, &dst).unwrap();
                std::os::unix::fs::symlink(&dst, &path).unwrap();
            }
        }
    }
    let st = Command::new("chmod")
        .arg("-R")
        .arg("a-w")
        .arg(store)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Every path under `dir` whose name or content mentions the wrapper's temp names.
pub fn mentions_tmp(dir: &Path) -> Vec<PathBuf> {
    let needle = nixcache_rustc_wrapper::plan::TMP_PREFIX.as_bytes();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if path
                .file_name()
                .unwrap()
                .as_encoded_bytes()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                found.push(path.clone());
            }
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Relative path -> bytes of every regular file (symlinks followed) under `dir`.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

pub fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_symlink()
}

/// The one file in `dir` whose name starts with `prefix` and ends with `suffix`.
pub fn find(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{prefix}*{suffix} in {}: {hits:?}",
        dir.display()
    );
    hits.into_iter().next().unwrap()
}

pub fn os(s: &str) -> OsString {
    s.into()
}
