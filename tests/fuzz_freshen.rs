//! freshen never masks a difference (issue 19), as a property: whatever is edited in a workspace
//! after its target dir was inherited, a build after `freshen --inherited` ships the binary a
//! clean build of the edited sources makes.
//!
//! The workspace is tiny and has no dependencies, so a case costs one small cargo build: a
//! library `lib` with up to six modules and a build script, a binary `app` printing one line
//! that depends on every source (each module's constant, the build script's output, lib's
//! version, a feature, app's own constant). The deps derivation builds it once, pack stores its
//! target dir in a (fake, read-only, mtime 1) store path. Each case then starts from those base
//! sources, applies a random list of edits: a constant changed (often keeping the file's size),
//! a module added or removed, a source turned into a symlink into the store, to a shared file of
//! the workspace root, into a store directory, or moved beside a `CACHEDIR.TAG`, the build
//! script changed or removed, lib's version bumped (a manifest), the feature toggled; gives
//! every source mtime 1 (as a Nix build copies them out of the store), unpacks the inherited
//! target dir, runs `freshen --inherited` and `cargo build` through `cargo nixcache exec`
//! without capabilities, and checks what `app` prints against the line the edited sources
//! must print. Every [`CLEAN_EVERY`]th case also builds the same sources in a fresh target dir,
//! which must print that line too and make the same binary.
//!
//! Bounded for CI: `NIXCACHE_FRESHEN_CASES` cases (default 200, in two halves run side by side;
//! a case costs ~0.6 s of one core, the whole 1.5-2 min on 2 cores shared with other work); a
//! run of its own with a bigger budget: `NIXCACHE_FRESHEN_CASES=2000 cargo test --test
//! fuzz_freshen`.

mod support;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::cargo::{cargo_program, clean_env};
use support::store::{canonicalize, set_mtimes, CANONICAL_MTIME};
use support::{caps, output_of, snapshot::fnv1a64};

/// Module slots of `lib`.
const SLOTS: usize = 6;
/// Every this many cases, a clean build is compared too.
const CLEAN_EVERY: u64 = 16;

/// Where a source file is, as cargo reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    /// A regular file.
    Plain,
    /// A symlink to a file in a store path (mtime 1, read-only).
    Store,
    /// A symlink to a file of the workspace root (`shared/`, the root package's own).
    Shared,
    /// A regular file in `lib/src/cache/`, beside a `CACHEDIR.TAG` (modules only).
    Cached,
    /// `lib/src/gen_<i>` is a symlink to a store directory holding `mod.rs` (modules only).
    StoreDir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Source {
    value: u32,
    storage: Storage,
}

/// The workspace's sources, as a value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    modules: [Option<Source>; SLOTS],
    /// What `lib/build.rs` passes to lib (`None`: no build script).
    build: Option<u32>,
    /// lib's version is `0.1.<patch>`.
    patch: u8,
    /// app enables lib's `extra` feature, which compiles `lib/src/extra.rs`.
    extra: bool,
    extra_value: u32,
    /// app's own constant (`app/src/main.rs`, never `Cached` or `StoreDir`).
    app: Source,
}

#[derive(Clone, Debug)]
enum Edit {
    /// A module's constant (added as a plain file if absent).
    Value(usize, u32),
    /// A module's constant, keeping the number of digits (so the file's size).
    SameSize(usize, u32),
    Add(usize, Storage),
    Remove(usize),
    /// The same contents, reached another way: symlinks swapped in and out.
    Move(usize, Storage),
    Build(Option<u32>),
    Version(u8),
    Feature(bool),
    ExtraValue(u32),
    AppValue(u32),
    AppMove(Storage),
}

fn source(value: u32, storage: Storage) -> Option<Source> {
    Some(Source { value, storage })
}

impl State {
    fn base() -> State {
        State {
            // Every way a source can be reached, in the inherited build already: an edit that
            // changes only what a link leads to leaves the files around it as they were.
            modules: [
                source(10, Storage::Plain),
                source(2000, Storage::Store),
                source(30, Storage::Cached),
                source(4, Storage::StoreDir),
                source(500, Storage::Shared),
                None,
            ],
            build: Some(7),
            patch: 0,
            extra: false,
            extra_value: 5,
            app: Source {
                value: 1,
                storage: Storage::Store,
            },
        }
    }

    fn apply(&mut self, edit: &Edit) {
        match *edit {
            Edit::Value(i, v) => match &mut self.modules[i] {
                Some(m) => m.value = v,
                None => self.modules[i] = source(v, Storage::Plain),
            },
            Edit::SameSize(i, seed) => {
                if let Some(m) = &mut self.modules[i] {
                    m.value = same_size(m.value, seed);
                }
            }
            Edit::Add(i, storage) => {
                if self.modules[i].is_none() {
                    self.modules[i] = Some(Source {
                        value: 400 + i as u32,
                        storage,
                    });
                }
            }
            Edit::Remove(i) => self.modules[i] = None,
            Edit::Move(i, storage) => {
                if let Some(m) = &mut self.modules[i] {
                    m.storage = storage;
                }
            }
            Edit::Build(b) => self.build = b,
            Edit::Version(p) => self.patch = p,
            Edit::Feature(on) => self.extra = on,
            Edit::ExtraValue(v) => self.extra_value = v,
            Edit::AppValue(v) => self.app.value = v,
            Edit::AppMove(storage) => {
                if matches!(storage, Storage::Plain | Storage::Store | Storage::Shared) {
                    self.app.storage = storage;
                }
            }
        }
    }

    /// What `app` built from these sources prints.
    fn expected(&self) -> String {
        let mut line = String::new();
        for (i, m) in self.modules.iter().enumerate() {
            if let Some(m) = m {
                write!(line, "m{i}={} ", m.value).unwrap();
            }
        }
        let build = self.build.map_or("none".into(), |b| b.to_string());
        let extra = match self.extra {
            true => self.extra_value.to_string(),
            false => "none".into(),
        };
        format!(
            "{line}build={build} version=0.1.{} extra={extra} app={}\n",
            self.patch, self.app.value
        )
    }

    /// Writes the workspace into the empty `ws`, store files into `store`.
    fn write(&self, ws: &Path, store: &Path) {
        let put = |rel: &str, text: &str| {
            let path = ws.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        put(
            "Cargo.toml",
            "[workspace]\nmembers = [\"app\", \"lib\"]\nresolver = \"2\"\n\n\
             [profile.dev]\ndebug = 0\n",
        );
        put(
            "Cargo.lock",
            &format!(
                "# This file is automatically @generated by Cargo.\n\
                 # It is not intended for manual editing.\nversion = 4\n\n\
                 [[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"lib\",\n]\n\n\
                 [[package]]\nname = \"lib\"\nversion = \"0.1.{}\"\n",
                self.patch
            ),
        );
        put(
            "lib/Cargo.toml",
            &format!(
                "[package]\nname = \"lib\"\nversion = \"0.1.{}\"\nedition = \"2021\"\n\n\
                 [features]\nextra = []\n",
                self.patch
            ),
        );
        if let Some(b) = self.build {
            put(
                "lib/build.rs",
                &format!(
                    "fn main() {{\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    \
                     println!(\"cargo:rustc-env=LIB_BUILD={b}\");\n}}\n"
                ),
            );
        }
        put("lib/src/extra.rs", &constant(self.extra_value));
        let mut lib = String::from("#[cfg(feature = \"extra\")]\nmod extra;\n");
        let mut body = String::new();
        for (i, m) in self.modules.iter().enumerate() {
            let Some(m) = m else { continue };
            let text = constant(m.value);
            let file = format!("lib/src/m{i}.rs");
            match m.storage {
                Storage::Plain => put(&file, &text),
                Storage::Store => link(ws, &file, &store_file(store, &text)),
                Storage::Shared => {
                    put(&format!("shared/m{i}.rs"), &text);
                    link(ws, &file, Path::new(&format!("../../shared/m{i}.rs")));
                }
                Storage::Cached => {
                    put("lib/src/cache/CACHEDIR.TAG", CACHEDIR_TAG);
                    put(&format!("lib/src/cache/m{i}.rs"), &text);
                    writeln!(lib, "#[path = \"cache/m{i}.rs\"]").unwrap();
                }
                Storage::StoreDir => {
                    let file = store_file(store, &text);
                    link(ws, &format!("lib/src/gen_{i}"), file.parent().unwrap());
                    writeln!(lib, "#[path = \"gen_{i}/mod.rs\"]").unwrap();
                }
            }
            writeln!(lib, "mod m{i};").unwrap();
            writeln!(body, "    s += &format!(\"m{i}={{}} \", m{i}::V);").unwrap();
        }
        lib += "\npub fn values() -> String {\n    let mut s = String::new();\n";
        lib += &body;
        lib +=
            "    s += &format!(\"build={} \", option_env!(\"LIB_BUILD\").unwrap_or(\"none\"));\n\
                s += &format!(\"version={} \", env!(\"CARGO_PKG_VERSION\"));\n\
                #[cfg(feature = \"extra\")]\n    { s += &format!(\"extra={}\", extra::V); }\n\
                #[cfg(not(feature = \"extra\"))]\n    { s += \"extra=none\"; }\n    s\n}\n";
        put("lib/src/lib.rs", &lib);
        let features = if self.extra {
            ", features = [\"extra\"]"
        } else {
            ""
        };
        put(
            "app/Cargo.toml",
            &format!(
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nlib = {{ path = \"../lib\"{features} }}\n"
            ),
        );
        let main = format!(
            "const APP: u32 = {};\n\nfn main() {{\n    println!(\"{{}} app={{}}\", lib::values(), APP);\n}}\n",
            self.app.value
        );
        match self.app.storage {
            Storage::Store => link(ws, "app/src/main.rs", &store_file(store, &main)),
            Storage::Shared => {
                put("shared/main.rs", &main);
                link(ws, "app/src/main.rs", Path::new("../../shared/main.rs"));
            }
            _ => put("app/src/main.rs", &main),
        }
    }
}

/// cargo's own tag: the same bytes as in a target dir.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
    # This file is a cache directory tag created by cargo.\n\
    # For information about cache directory tags see https://bford.info/cachedir/\n";

fn constant(value: u32) -> String {
    format!("pub const V: u32 = {value};\n")
}

/// Another value with as many decimal digits as `value`.
fn same_size(value: u32, seed: u32) -> u32 {
    let digits = value.to_string().len() as u32;
    let low = if digits == 1 {
        0
    } else {
        10u32.pow(digits - 1)
    };
    let span = 10u32.pow(digits) - low;
    let v = low + seed % span;
    if v == value {
        low + (seed + 1) % span
    } else {
        v
    }
}

fn link(ws: &Path, rel: &str, target: &Path) {
    let path = ws.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

/// A store path holding `mod.rs` with `text`, made Nix-like (mtime 1, read-only) when new;
/// named after its contents, as the store would.
fn store_file(store: &Path, text: &str) -> PathBuf {
    let alphabet = b"0123456789abcdfghijklmnpqrsvwxyz";
    let mut h = fnv1a64(text.as_bytes());
    let hash: String = (0..32)
        .map(|i| {
            let c = alphabet[(h % 32) as usize] as char;
            h = h.rotate_right(5) ^ (i as u64 * 0x9e37_79b9);
            c
        })
        .collect();
    let dir = store.join(format!("{hash}-src"));
    let file = dir.join("mod.rs");
    if !dir.exists() {
        fs::create_dir_all(&dir).unwrap();
        fs::write(&file, text).unwrap();
        canonicalize(&dir);
    }
    file
}

fn storage() -> impl Strategy<Value = Storage> {
    prop_oneof![
        Just(Storage::Plain),
        Just(Storage::Store),
        Just(Storage::Shared),
        Just(Storage::Cached),
        Just(Storage::StoreDir),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let slot = 0..SLOTS;
    let value = prop_oneof![0u32..10, 0u32..100_000];
    prop_oneof![
        3 => (slot.clone(), value.clone()).prop_map(|(i, v)| Edit::Value(i, v)),
        3 => (slot.clone(), any::<u32>()).prop_map(|(i, s)| Edit::SameSize(i, s)),
        1 => (slot.clone(), storage()).prop_map(|(i, s)| Edit::Add(i, s)),
        1 => slot.clone().prop_map(Edit::Remove),
        3 => (slot, storage()).prop_map(|(i, s)| Edit::Move(i, s)),
        1 => proptest::option::of(0u32..1000).prop_map(Edit::Build),
        1 => (0u8..3).prop_map(Edit::Version),
        1 => any::<bool>().prop_map(Edit::Feature),
        1 => (0u32..100).prop_map(Edit::ExtraValue),
        1 => value.prop_map(Edit::AppValue),
        1 => storage().prop_map(Edit::AppMove),
    ]
}

/// The deps derivation's output and everything the cases share.
struct Bench {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    store: PathBuf,
    cargo_home: PathBuf,
    artifacts: PathBuf,
    /// A scratch target dir for the clean builds.
    clean: PathBuf,
}

impl Bench {
    /// Builds the base sources (at mtime 1, as in a Nix build) and packs the target dir.
    fn new() -> Bench {
        let tmp = tempfile::Builder::new()
            .prefix("nixcache-fuzz-freshen-")
            .tempdir()
            .unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let bench = Bench {
            ws: base.join("ws"),
            store: base.join("store"),
            cargo_home: base.join("cargo-home"),
            artifacts: base.join("store/0000000000000000000000000000000d-deps"),
            clean: base.join("clean-target"),
            _tmp: tmp,
        };
        fs::create_dir_all(&bench.store).unwrap();
        fs::create_dir_all(&bench.cargo_home).unwrap();
        bench.sources(&State::base());
        bench.ok(&mut bench.cargo(&["build"]));
        let target = bench.ws.join("target");
        let out = bench.artifacts.as_os_str();
        let pack = [
            "pack".as_ref(),
            "--target-dir".as_ref(),
            target.as_os_str(),
            "--out".as_ref(),
            out,
        ];
        bench.ok(&mut bench.nixcache(&pack));
        canonicalize(&bench.artifacts);
        bench
    }

    /// The workspace as `state` says, every mtime 1.
    fn sources(&self, state: &State) {
        // Nothing in it is read-only: the store's files are only linked.
        if self.ws.exists() {
            fs::remove_dir_all(&self.ws).unwrap();
        }
        state.write(&self.ws, &self.store);
        set_mtimes(&self.ws, CANONICAL_MTIME);
    }

    /// `cargo ARGS --offline` in the workspace, without capabilities.
    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = caps::unprivileged_command(cargo_program());
        cmd.current_dir(&self.ws).args(args).arg("--offline");
        clean_env(&mut cmd, &self.cargo_home);
        cmd
    }

    /// `cargo-nixcache --store-dir STORE ARGS` in the workspace.
    fn nixcache(&self, args: &[&OsStr]) -> Command {
        let mut cmd = Command::new(support::nixcache_bin());
        cmd.current_dir(&self.ws)
            .arg(format!("--store-dir={}", self.store.display()))
            .args(args);
        clean_env(&mut cmd, &self.cargo_home);
        cmd
    }

    fn ok(&self, cmd: &mut Command) -> String {
        let out = output_of(cmd);
        support::assert_success(cmd, &out);
        String::from_utf8(out.stdout).unwrap()
    }

    /// One case: the edited sources, the inherited target dir, freshen, a build; what `app`
    /// prints.
    fn case(&self, state: &State) -> Result<String, TestCaseError> {
        self.sources(state);
        let target = self.ws.join("target");
        let artifacts = self.artifacts.as_os_str();
        let unpack = [
            "--json".as_ref(),
            "unpack".as_ref(),
            artifacts,
            "--target-dir".as_ref(),
            target.as_os_str(),
        ];
        let unpacked = self.ok(&mut self.nixcache(&unpack));
        prop_assert!(unpacked.contains("\"mtimes\":\"store\""), "{unpacked}");
        self.ok(&mut self.nixcache(&[
            "freshen".as_ref(),
            "-q".as_ref(),
            "--inherited".as_ref(),
            artifacts,
        ]));
        let mut exec = caps::unprivileged_command(support::nixcache_bin());
        exec.current_dir(&self.ws)
            .args(["exec", "--"])
            .arg(cargo_program())
            .args(["build", "--offline"]);
        clean_env(&mut exec, &self.cargo_home);
        self.ok(&mut exec);
        Ok(self.ok(&mut Command::new(target.join("debug/app"))))
    }

    /// The same sources built in a fresh target dir: what `app` prints, and its bytes.
    fn clean_build(&self) -> (String, Vec<u8>) {
        if self.clean.exists() {
            fs::remove_dir_all(&self.clean).unwrap();
        }
        let mut cmd = self.cargo(&["build"]);
        cmd.env("CARGO_TARGET_DIR", &self.clean);
        self.ok(&mut cmd);
        let app = self.clean.join("debug/app");
        (self.ok(&mut Command::new(&app)), fs::read(&app).unwrap())
    }
}

/// The cases, in two halves run side by side (each its own workspace): a case is a short
/// chain of small rustc runs, so two keep 2 cores busy.
#[test]
fn freshen_never_masks_a_difference_1() {
    never_masks(1);
}

#[test]
fn freshen_never_masks_a_difference_2() {
    never_masks(2);
}

/// Runs half (`half`: 1 or 2) of `NIXCACHE_FRESHEN_CASES` cases.
fn never_masks(half: u32) {
    let all: u32 = std::env::var("NIXCACHE_FRESHEN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cases = all / 2 + if half == 1 { all % 2 } else { 0 };
    let start = Instant::now();
    let bench = Bench::new();
    let setup = start.elapsed();
    let n = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let edits = proptest::collection::vec(edit(), 1..8);
    let result = runner.run(&edits, |edits| {
        let mut state = State::base();
        for e in &edits {
            state.apply(e);
        }
        let printed = bench.case(&state)?;
        prop_assert_eq!(&printed, &state.expected(), "edits: {:?}", edits);
        if n.fetch_add(1, Ordering::Relaxed) % CLEAN_EVERY == 0 {
            let (clean, bytes) = bench.clean_build();
            prop_assert_eq!(&clean, &printed, "the clean build of {:?}", state);
            let inherited = fs::read(bench.ws.join("target/debug/app")).unwrap();
            prop_assert!(
                bytes == inherited,
                "app differs from a clean build's: {:?}",
                state
            );
        }
        Ok(())
    });
    let ran = n.load(Ordering::Relaxed);
    let per_case = (start.elapsed() - setup) / ran.max(1) as u32;
    eprintln!(
        "fuzz_freshen ({half}/2): {ran} cases in {:.1?} ({:.0?} a case, setup {:.1?})",
        start.elapsed(),
        per_case,
        setup
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
