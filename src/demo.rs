//! `cargo nixcache demo`: the whole inheritance cycle on the bundled example workspace, with a
//! timing table. It plays two crane-style derivations without Nix, in a store directory it
//! treats as Nix does (mtime 1, read-only, and the app build runs without capabilities so even
//! root cannot write into it): a deps derivation that builds and packs, then an app derivation
//! with changed sources that inherits, guards, rebuilds through the wrapper and packs again.
//! crane's default inherit (`zstd -d | tar -x` of the whole target) is timed in the same run.

use crate::cli::{elapsed, Global};
use anyhow::{bail, Context, Result};
use nixcache::archive::Compression;
use nixcache::store::{nixbase32, StoreDir, CANONICAL_MTIME};
use nixcache::{freshen, pack, unpack};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The example workspace; its `.cargo/config.toml` must point at a `../vendor` directory
    /// source, as the bundled fixtures do
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws-basic"))]
    workspace: PathBuf,
    /// Keep the work directory here instead of a temporary one
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

struct Units {
    fresh: usize,
    total: usize,
}

pub fn run(_g: &Global, args: DemoArgs) -> Result<i32> {
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
    let fixtures = args
        .workspace
        .parent()
        .context("the workspace has no parent directory")?;
    let vendor = store_path(1, "vendor-cargo-deps");
    copy_tree(&fixtures.join("vendor"), &vendor)?;
    canonicalize(&vendor)?;
    let ws = work.join("ws");
    copy_tree(&args.workspace, &ws)?;
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
    let (t_deps, _) = cargo_build(&ws, false)?;
    let crane_archive = work.join("target.tar.zst");
    sh(
        &ws,
        &format!(
            "tar --sort=name -cf - target | zstd -q -T0 -o {}",
            crane_archive.display()
        ),
    )?;
    let deps_out = store_path(2, "demo-deps");
    let (t_pack_deps, deps_report) =
        timed(|| Ok(pack::pack(&pack_options(&store, &ws, &deps_out))?))?;
    canonicalize(&deps_out)?;

    // crane's default inherit of the same target dir, for comparison.
    let crane_dest = work.join("crane-inherit");
    std::fs::create_dir_all(&crane_dest)?;
    let (t_crane, ()) = timed(|| {
        sh(
            &crane_dest,
            &format!("zstd -dc {} | tar -x", crane_archive.display()),
        )
    })?;

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
    let (t_app, units) = cargo_build(&ws, true)?;
    let app_out = store_path(3, "demo-app");
    let (t_pack_app, _) = timed(|| Ok(pack::pack(&pack_options(&store, &ws, &app_out))?))?;
    let printed = Command::new(target.join("debug/app")).output()?;
    let printed = String::from_utf8_lossy(&printed.stdout);
    if !printed.contains("changed applib") {
        bail!("the app binary does not reflect the changed sources: {printed}");
    }

    let ratio = |d: Duration| d.as_secs_f64() / t_crane.as_secs_f64().max(1e-9);
    println!();
    println!("{:<58} {:>9} {:>9}", "step", "time", "vs crane");
    println!(
        "{:<58} {:>9}",
        "deps derivation: cargo build",
        elapsed(t_deps)
    );
    let packed = format!(
        "deps derivation: nixcache pack ({} entries)",
        deps_report.entries
    );
    println!("{packed:<58} {:>9}", elapsed(t_pack_deps));
    println!(
        "{:<58} {:>9} {:>9}",
        "app derivation, crane use-zstd inherit (zstd -d | tar -x)",
        elapsed(t_crane),
        "1.00"
    );
    let inherit = format!(
        "app derivation: nixcache unpack ({} links, {} files)",
        unpacked.links, unpacked.files
    );
    println!(
        "{inherit:<58} {:>9} {:>9.2}",
        elapsed(t_unpack),
        ratio(t_unpack)
    );
    let guard = format!(
        "app derivation: nixcache freshen ({} of {} packages)",
        guarded.freshened,
        guarded.packages.len()
    );
    println!("{guard:<58} {:>9}", elapsed(t_freshen));
    let build = format!(
        "app derivation: cargo build ({} of {} units fresh)",
        units.fresh, units.total
    );
    println!("{build:<58} {:>9}", elapsed(t_app));
    println!(
        "{:<58} {:>9}",
        "app derivation: nixcache pack",
        elapsed(t_pack_app)
    );
    println!("\nthe app prints: {}", printed.trim());
    if args.keep.is_some() {
        eprintln!("demo: kept everything in {}", work.display());
    }
    Ok(0)
}

fn pack_options(store: &StoreDir, ws: &Path, out: &Path) -> pack::PackOptions {
    pack::PackOptions {
        target_dir: ws.join("target"),
        build_dir: None,
        out: out.into(),
        compression: Compression::Zstd,
        zstd_level: 3,
        zstd_threads: 0,
        store: store.clone(),
        workspace: Some(ws.join("Cargo.toml")),
    }
}

/// `cargo build` in `ws`; `inherited` runs it through the wrapper and without capabilities
/// (when `setpriv` can drop them), so the store is really read-only, as in a Nix build.
fn cargo_build(ws: &Path, inherited: bool) -> Result<(Duration, Units)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut words: Vec<std::ffi::OsString> = Vec::new();
    if inherited {
        if has_setpriv() {
            words.extend(
                ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"].map(Into::into),
            );
        }
        words.push(std::env::current_exe()?.into());
        words.extend(["exec", "--"].map(Into::into));
    }
    words.push(cargo);
    words.extend(["build", "--offline", "--locked", "--message-format=json"].map(Into::into));
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .current_dir(ws)
        .env("CARGO_INCREMENTAL", "0");
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
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

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let start = Instant::now();
    let value = f()?;
    Ok((start.elapsed(), value))
}

fn sh(dir: &Path, script: &str) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()?;
    if !status.success() {
        bail!("`{script}` failed ({status}); are tar and zstd installed?");
    }
    Ok(())
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
