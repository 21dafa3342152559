//! `cargo nixcache demo`: the whole inheritance cycle on the bundled example workspace, with a
//! timing table. It plays two crane-style derivations without Nix, in a store directory it
//! treats as Nix does (mtime 1, read-only, and the app build runs without capabilities so even
//! root cannot write into it): a deps derivation that builds and packs, then an app derivation
//! with changed sources that inherits, guards, rebuilds through the wrapper and packs again.
//! crane's default inherit (`zstd -d | tar -x` of the whole target) is timed in the same run.
//!
//! It needs cargo, GNU tar and coreutils, nothing more (no `zstd` command: libzstd is linked
//! in), so `cargo run --release -- demo` works on a fresh clone. Under `cargo run` cargo has
//! built only `cargo-nixcache`, so the demo has that cargo build the wrapper too.

use crate::output::{elapsed, print_stdout};
use crate::wrapping::{installed_wrapper, wrapper_env};
use anyhow::{bail, Context, Result};
use nixcache::archive::Compression;
use nixcache::store::{nixbase32, StoreDir, CANONICAL_MTIME};
use nixcache::userwrapper::WRAPPER_BIN;
use nixcache::{freshen, pack, unpack};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The example, relative to a checkout of this repository.
const EXAMPLE: &str = "tests/fixtures/ws-basic";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The example workspace; its `.cargo/config.toml` must point at a `../vendor` directory
    /// source, as the bundled fixtures do [default: tests/fixtures/ws-basic of the checkout
    /// `cargo run` runs from, else of the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Keep the work directory here instead of a temporary one
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// Variables a user's shell may carry that would send the example's builds elsewhere; the demo
/// builds as a Nix build does, without them.
const CLEARED_ENV: [&str; 4] = [
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
];

struct Units {
    fresh: usize,
    total: usize,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let example = example_workspace(args.workspace.as_deref())?;
    let wrapper = wrapper()?;
    let tmp = tempfile::tempdir()?;
    let work = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::fs::canonicalize(dir)?
        }
        None => tmp.path().to_path_buf(),
    };
    let store = StoreDir::new(work.join("store"))?;
    std::fs::create_dir_all(store.as_path())?;
    let store_path = |n: u8, name: &str| {
        store
            .as_path()
            .join(format!("{}-{name}", nixbase32::encode(&[n; 20])))
    };

    // The sources: vendored dependencies in the store, like crane's vendorCargoDeps.
    let vendor = store_path(1, "vendor-cargo-deps");
    copy_tree(&vendor_of(&example), &vendor)?;
    canonicalize(&vendor)?;
    let ws = work.join("ws");
    copy_tree(&example, &ws)?;
    let config = ws.join(".cargo/config.toml");
    let text =
        std::fs::read_to_string(&config).with_context(|| format!("read {}", config.display()))?;
    std::fs::write(
        &config,
        text.replace("\"../vendor\"", &format!("{:?}", vendor)),
    )?;
    set_mtimes(&ws, CANONICAL_MTIME)?; // sources copied out of the store keep mtime 1
    let target = ws.join("target");
    eprintln!("demo: working in {}", work.display());

    // Derivation 1: deps.
    let (t_deps, _) = cargo_build(&ws, None)?;
    let crane_archive = work.join(nixcache::artifacts::crane::ARCHIVE);
    crane_compress(&ws, &crane_archive)?;
    let deps_out = store_path(2, "demo-deps");
    let (t_pack_deps, deps_report) =
        timed(|| Ok(pack::pack(&pack_options(&store, &ws, &deps_out))?))?;
    canonicalize(&deps_out)?;

    // crane's default inherit of the same target dir, for comparison.
    let crane_dest = work.join("crane-inherit");
    std::fs::create_dir_all(&crane_dest)?;
    let (t_crane, ()) = timed(|| crane_inherit(&crane_archive, &crane_dest))?;

    // Derivation 2: the app, with changed sources (still mtime 1, as everything from the store).
    std::fs::remove_dir_all(&target)?;
    let lib = ws.join("applib/src/lib.rs");
    let changed = std::fs::read_to_string(&lib)?
        .replace("hello from applib", "hello from the changed applib");
    std::fs::write(&lib, changed)?;
    set_mtimes(&ws.join("applib"), CANONICAL_MTIME)?;
    let opts = unpack::UnpackOptions {
        artifacts: deps_out.clone(),
        target_dir: target.clone(),
        build_dir: nixcache::builddir::BuildDir::None,
        store: store.clone(),
        mtimes: Default::default(),
    };
    let (t_unpack, unpacked) = timed(|| Ok(unpack::unpack(&opts)?))?;
    let guard = freshen::FreshenOptions {
        manifest_path: ws.join("Cargo.toml"),
        inherited: Some(deps_out.clone()),
        skip: vec![target.clone()],
        store: store.clone(),
    };
    let (t_freshen, guarded) = timed(|| Ok(freshen::freshen(&guard)?))?;
    let (t_app, units) = cargo_build(&ws, Some(&wrapper))?;
    let app_out = store_path(3, "demo-app");
    let (t_pack_app, _) = timed(|| Ok(pack::pack(&pack_options(&store, &ws, &app_out))?))?;
    let printed = Command::new(target.join("debug/app")).output()?;
    let printed = String::from_utf8_lossy(&printed.stdout);
    if !printed.contains("changed applib") {
        bail!("the app binary does not reflect the changed sources: {printed}");
    }

    let ratio = |d: Duration| d.as_secs_f64() / t_crane.as_secs_f64().max(1e-9);
    let mut table = String::new();
    let mut row = |step: String, took: Duration, vs_crane: Option<f64>| {
        let vs = vs_crane.map_or(String::new(), |r| format!("{r:.2}"));
        writeln!(table, "{step:<58} {:>9} {vs:>9}", elapsed(took)).expect("a String takes it");
    };
    row("deps derivation: cargo build".into(), t_deps, None);
    let packed = format!(
        "deps derivation: nixcache pack ({} entries)",
        deps_report.entries
    );
    row(packed, t_pack_deps, None);
    let crane = "app derivation, crane use-zstd inherit (zstd -d | tar -x)";
    row(crane.into(), t_crane, Some(1.0));
    let inherit = format!(
        "app derivation: nixcache unpack ({} links, {} files)",
        unpacked.links, unpacked.files
    );
    row(inherit, t_unpack, Some(ratio(t_unpack)));
    let guard = format!(
        "app derivation: nixcache freshen ({} of {} packages)",
        guarded.freshened,
        guarded.packages.len()
    );
    row(guard, t_freshen, None);
    let build = format!(
        "app derivation: cargo build ({} of {} units fresh)",
        units.fresh, units.total
    );
    row(build, t_app, None);
    row("app derivation: nixcache pack".into(), t_pack_app, None);
    print_stdout(&format!(
        "\n{:<58} {:>9} {:>9}\n{table}\nthe app prints: {}\n",
        "step",
        "time",
        "vs crane",
        printed.trim()
    ))?;
    if args.keep.is_some() {
        eprintln!("demo: kept everything in {}", work.display());
    }
    Ok(())
}

fn pack_options(store: &StoreDir, ws: &Path, out: &Path) -> pack::PackOptions {
    pack::PackOptions {
        target_dir: ws.join("target"),
        build_dir: nixcache::builddir::BuildDir::None,
        out: out.into(),
        compression: Compression::Zstd,
        zstd_level: 3,
        zstd_threads: 0,
        store: store.clone(),
        workspace: Some(ws.join("Cargo.toml")),
        // The demo's store dir is no Nix store: nothing gives the files its canonical mtime.
        archive_mtime: None,
        inline_executables: Default::default(),
    }
}

/// `cargo build` in `ws`. With `wrapper` (the inheriting derivation) it runs through the
/// wrapper, set up as `cargo nixcache exec` would, and without capabilities (when `setpriv` can
/// drop them), so the store is really read-only, as in a Nix build.
fn cargo_build(ws: &Path, wrapper: Option<&Path>) -> Result<(Duration, Units)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut words: Vec<OsString> = Vec::new();
    if wrapper.is_some() && has_setpriv() {
        words.extend(["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"].map(Into::into));
    }
    words.push(cargo);
    words.extend(["build", "--offline", "--locked", "--message-format=json"].map(Into::into));
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .current_dir(ws)
        .env("CARGO_INCREMENTAL", "0");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    if let Some(wrapper) = wrapper {
        let env = |k: &str| {
            if CLEARED_ENV.contains(&k) {
                None
            } else {
                std::env::var_os(k)
            }
        };
        cmd.envs(wrapper_env(wrapper, ws, &env, &[])?);
    }
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut units = Units { fresh: 0, total: 0 };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" {
            units.total += 1;
            units.fresh += usize::from(msg["fresh"] == true);
        }
    }
    Ok((took, units))
}

/// The checkout of this package that `cargo run` runs us from, if it does: cargo then sets
/// `CARGO_MANIFEST_DIR` and `CARGO_PKG_NAME` for the process, as it does for the compiler.
fn cargo_run_checkout() -> Option<PathBuf> {
    let ours = std::env::var_os("CARGO_PKG_NAME")? == env!("CARGO_PKG_NAME");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    (ours && dir.join("Cargo.toml").is_file()).then_some(dir)
}

/// The example workspace: `given`, else [`EXAMPLE`] in the checkout `cargo run` runs from, else
/// in the current directory. Checked here, so a wrong path is named as such.
fn example_workspace(given: Option<&Path>) -> Result<PathBuf> {
    let ws = match given {
        Some(ws) => {
            if std::fs::symlink_metadata(ws).is_err() {
                bail!(
                    "`{}` does not exist; pass an example workspace to --workspace",
                    ws.display()
                );
            }
            ws.to_path_buf()
        }
        None => {
            let base = match cargo_run_checkout() {
                Some(dir) => dir,
                None => std::env::current_dir().context("cannot read the current directory")?,
            };
            let ws = base.join(EXAMPLE);
            if !ws.is_dir() {
                bail!(
                    "no example workspace at `{}`: run the demo in a checkout of cargo-nixcache, or \
                     pass --workspace DIR",
                    ws.display()
                );
            }
            ws
        }
    };
    let ws =
        std::fs::canonicalize(&ws).with_context(|| format!("cannot resolve `{}`", ws.display()))?;
    if !ws.join("Cargo.toml").is_file() {
        bail!(
            "`{}` holds no Cargo.toml; pass a cargo workspace to --workspace",
            ws.display()
        );
    }
    let vendor = vendor_of(&ws);
    if !vendor.is_dir() {
        bail!(
            "`{}` does not exist; the example's `.cargo/config.toml` takes its dependencies from \
             `../vendor`, as the bundled fixtures do",
            vendor.display()
        );
    }
    Ok(ws)
}

fn vendor_of(example: &Path) -> PathBuf {
    example.parent().unwrap_or(example).join("vendor")
}

/// The wrapper the app build runs through. Under `cargo run` cargo built only `cargo-nixcache`,
/// so the same cargo builds the wrapper now (with the profile of the running binary, whose
/// dependencies are built already; a no-op when it is up to date), and cargo names the
/// executable. Otherwise it is the one installed beside `cargo-nixcache`.
fn wrapper() -> Result<PathBuf> {
    let Some(checkout) = cargo_run_checkout() else {
        return Ok(installed_wrapper()?);
    };
    let exe = std::env::current_exe().context("cannot locate the cargo-nixcache binary")?;
    let profile = match exe
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        Some("debug") | None => "dev",
        Some(dir) => dir,
    };
    eprintln!("demo: building {WRAPPER_BIN} too (`cargo run` builds only cargo-nixcache)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--bin", WRAPPER_BIN, "--profile", profile])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(checkout.join("Cargo.toml"))
        .stderr(Stdio::inherit());
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == WRAPPER_BIN)
        .and_then(|msg| msg["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("{cmd:?} named no {WRAPPER_BIN} executable"))
}

/// crane's use-zstd archive of `ws/target`: GNU tar's stream compressed by libzstd at zstd's
/// default level.
fn crane_compress(ws: &Path, archive: &Path) -> Result<()> {
    let mut tar = Command::new("tar")
        .args(["--sort=name", "-cf", "-", "target"])
        .current_dir(ws)
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run `tar`; is GNU tar installed?")?;
    let file = File::create(archive).with_context(|| format!("create `{}`", archive.display()))?;
    let stream = tar.stdout.take().expect("piped");
    zstd::stream::copy_encode(stream, file, 3)
        .with_context(|| format!("write `{}`", archive.display()))?;
    let status = tar.wait()?;
    if !status.success() {
        bail!("`tar -c target` failed ({status})");
    }
    Ok(())
}

/// crane's inherit, `zstd -d | tar -x`: libzstd decompresses here while GNU tar extracts from
/// the pipe, as in crane's pipeline.
fn crane_inherit(archive: &Path, dest: &Path) -> Result<()> {
    let mut tar = Command::new("tar")
        .arg("-x")
        .current_dir(dest)
        .stdin(Stdio::piped())
        .spawn()
        .context("failed to run `tar`; is GNU tar installed?")?;
    let mut stream = tar.stdin.take().expect("piped");
    let file = File::open(archive).with_context(|| format!("open `{}`", archive.display()))?;
    let copied = zstd::stream::copy_decode(file, &mut stream);
    drop(stream);
    let status = tar.wait()?;
    copied.with_context(|| format!("decompress `{}` into tar", archive.display()))?;
    if !status.success() {
        bail!("`tar -x` failed ({status})");
    }
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let start = Instant::now();
    let value = f()?;
    Ok((start.elapsed(), value))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        bail!("failed to copy `{}` to `{}`", from.display(), to.display());
    }
    Ok(())
}

/// Sets the mtime of every file and directory below `dir` (symlinks untouched).
fn set_mtimes(dir: &Path, secs: i64) -> Result<()> {
    let time = filetime::FileTime::from_unix_time(secs, 0);
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry?;
        if !entry.path_is_symlink() {
            filetime::set_file_mtime(entry.path(), time)?;
        }
    }
    Ok(())
}

/// What Nix does to a path it registers: mtime 1 and no write permission.
fn canonicalize(dir: &Path) -> Result<()> {
    set_mtimes(dir, CANONICAL_MTIME)?;
    let status = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(dir)
        .status()?;
    if !status.success() {
        bail!("chmod -R a-w `{}` failed", dir.display());
    }
    Ok(())
}

fn has_setpriv() -> bool {
    // Without CAP_DAC_OVERRIDE root obeys file modes, so a store write fails as it would in Nix.
    Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
