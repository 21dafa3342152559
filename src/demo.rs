//! `cargo nixcache demo`: the whole inheritance cycle on the bundled example workspace, with a
//! timing table. It imitates two crane derivations without Nix: a deps build packed into a
//! store directory made read-only, then an app build that inherits it, against crane's
//! default (`target.tar.zst`, decompressed on every inherit) measured in the same run.

use crate::cli::{elapsed, Global};
use anyhow::{bail, Context, Result};
use nixcache::archive::Compression;
use nixcache::store::{nixbase32, StoreDir};
use nixcache::{pack, unpack};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The example workspace (its `.cargo/config.toml` must make it build offline)
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws-basic"))]
    workspace: PathBuf,
    /// Keep the work directory here instead of a temporary one
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
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
    // The fixture's config points at `../vendor`; copy both side by side.
    let fixtures = args
        .workspace
        .parent()
        .context("workspace has no parent directory")?;
    let ws = work.join("ws");
    copy_tree(&args.workspace, &ws)?;
    if fixtures.join("vendor").is_dir() {
        copy_tree(&fixtures.join("vendor"), &work.join("vendor"))?;
    }
    let store = StoreDir::new(work.join("store"))?;
    std::fs::create_dir_all(store.as_path())?;
    let deps_out = store.as_path().join(format!("{}-demo-deps", fake_hash(1)));
    let app_out = store.as_path().join(format!("{}-demo-app", fake_hash(2)));
    let target = ws.join("target");

    eprintln!("demo: workspace {}", ws.display());
    let deps = registry_packages(&ws)?;
    let mut build_deps = cargo(
        &ws,
        &["build", "--offline", "--locked", "--message-format=json"],
    );
    for d in &deps {
        build_deps.args(["-p", d]);
    }
    let (t_deps, _) = timed_build(build_deps)?;

    // crane's default: a full target.tar.zst, decompressed by every inheriting derivation.
    let crane_archive = work.join("target.tar.zst");
    sh(
        &ws,
        &format!(
            "tar --sort=name -cf - target | zstd -q -T0 -o {}",
            crane_archive.display()
        ),
    )?;
    let crane_dest = work.join("crane-inherit");
    std::fs::create_dir_all(&crane_dest)?;
    let t_crane = time(|| {
        sh(
            &crane_dest,
            &format!("zstd -dc {} | tar -x", crane_archive.display()),
        )
    })?;

    let pack_opts = |target_dir: &Path, out: &Path| pack::PackOptions {
        target_dir: target_dir.into(),
        build_dir: None,
        out: out.into(),
        compression: Compression::Zstd,
        zstd_level: 3,
        zstd_threads: 0,
        store: store.clone(),
    };
    let mut deps_report = None;
    let t_pack_deps = time(|| {
        deps_report = Some(pack::pack(&pack_opts(&target, &deps_out))?);
        Ok(())
    })?;
    read_only(&deps_out)?;

    std::fs::remove_dir_all(&target)?;
    let unpack_opts = unpack::UnpackOptions {
        artifacts: deps_out.clone(),
        target_dir: target.clone(),
        build_dir: None,
        store: store.clone(),
        mtimes: Default::default(),
    };
    let t_unpack = time(|| unpack::unpack(&unpack_opts).map(drop).map_err(Into::into))?;

    let mut build_app = cargo(
        &ws,
        &["build", "--offline", "--locked", "--message-format=json"],
    );
    if let Some(setpriv) = setpriv_cmd() {
        // Root ignores `chmod a-w`; without capabilities the store really is read-only.
        build_app = setpriv.wrap(build_app);
    }
    let (t_app, units) = timed_build(build_app)?;
    let t_pack_app = time(|| {
        pack::pack(&pack_opts(&target, &app_out))
            .map(drop)
            .map_err(Into::into)
    })?;

    let deps_report = deps_report.expect("pack ran");
    let ratio = |d: Duration| d.as_secs_f64() / t_crane.as_secs_f64().max(1e-9);
    println!();
    println!("{:<52} {:>10} {:>10}", "step", "time", "vs crane");
    println!("{:<52} {:>10}", "deps build (cargo)", elapsed(t_deps));
    println!(
        "{:<52} {:>10}",
        format!("nixcache pack of deps ({} entries)", deps_report.entries),
        elapsed(t_pack_deps)
    );
    println!(
        "{:<52} {:>10} {:>10}",
        "crane use-zstd inherit (zstd -d | tar -x)",
        elapsed(t_crane),
        "1.00"
    );
    println!(
        "{:<52} {:>10} {:>10.2}",
        "nixcache unpack",
        elapsed(t_unpack),
        ratio(t_unpack)
    );
    println!(
        "{:<52} {:>10}",
        format!(
            "app build after unpack ({} of {} units fresh)",
            units.fresh, units.total
        ),
        elapsed(t_app)
    );
    println!("{:<52} {:>10}", "nixcache pack of app", elapsed(t_pack_app));
    if args.keep.is_some() {
        eprintln!("demo: kept everything in {}", work.display());
    }
    Ok(0)
}

struct Units {
    fresh: usize,
    total: usize,
}

fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(dir);
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_INCREMENTAL", "0");
    cmd
}

fn timed_build(mut cmd: Command) -> Result<(Duration, Units)> {
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

/// Non-workspace packages of the workspace's dependency graph: what a deps derivation builds.
fn registry_packages(ws: &Path) -> Result<Vec<String>> {
    let out = cargo(
        ws,
        &["metadata", "--offline", "--locked", "--format-version", "1"],
    )
    .output()?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut names: Vec<String> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| !p["source"].is_null())
        .filter_map(|p| {
            Some(format!(
                "{}@{}",
                p["name"].as_str()?,
                p["version"].as_str()?
            ))
        })
        .collect();
    names.sort();
    Ok(names)
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn sh(dir: &Path, script: &str) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()?;
    if !status.success() {
        bail!("`{script}` failed ({status}); is it installed?");
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

fn read_only(dir: &Path) -> Result<()> {
    let status = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(dir)
        .status()?;
    if !status.success() {
        bail!("chmod -R a-w `{}` failed", dir.display());
    }
    Ok(())
}

/// A valid-looking store path hash part, distinct per `seed`.
fn fake_hash(seed: u8) -> String {
    nixbase32::encode(&[seed; 20])
}

struct Setpriv;

impl Setpriv {
    fn wrap(&self, cmd: Command) -> Command {
        let mut wrapped = Command::new("setpriv");
        wrapped.args(["--inh-caps=-all", "--bounding-set=-all", "--"]);
        wrapped.arg(cmd.get_program()).args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped
    }
}

fn setpriv_cmd() -> Option<Setpriv> {
    Command::new("setpriv")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| Setpriv)
}
