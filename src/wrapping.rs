//! Putting the installed `nixcache-rustc-wrapper` in front of rustc, for `env`, `exec` and
//! `demo`: where the wrapper is, and the environment that chains it before the user's own.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `nixcache-rustc-wrapper` installed beside the running `cargo-nixcache` (as `cargo install`
/// and `cargo build` put it).
pub fn installed_wrapper() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the cargo-nixcache binary")?;
    let wrapper = nixcache::userwrapper::wrapper_next_to(&exe);
    if !wrapper.is_file() {
        anyhow::bail!(
            "`{}` is missing: install nixcache-rustc-wrapper beside cargo-nixcache \
             (`cargo install --path .` installs both; in a checkout, `cargo build` builds both)",
            wrapper.display()
        );
    }
    Ok(wrapper)
}

/// The environment that puts `wrapper` in front of rustc for a cargo command line with these
/// `--config` values, run in `cwd` with the environment `env`.
pub fn wrapper_env(
    wrapper: &Path,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    cli_config: &[String],
) -> Result<Vec<(String, OsString)>> {
    Ok(nixcache::userwrapper::plan_env(
        wrapper, cwd, env, cli_config,
    )?)
}

/// [`wrapper_env`] for the installed wrapper, here and now.
pub fn wrapper_env_here(cli_config: &[String]) -> Result<Vec<(String, OsString)>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    wrapper_env(
        &installed_wrapper()?,
        &cwd,
        &|k| std::env::var_os(k),
        cli_config,
    )
}
