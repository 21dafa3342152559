//! Putting the installed `nixcache-rustc-wrapper` in front of rustc, for `env`, `exec` and
//! `demo`: where the wrapper is, and the environment that chains it before the user's own.

use crate::error::Error;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `nixcache-rustc-wrapper` installed beside the running `cargo-nixcache` (as `cargo install`
/// and `cargo build` put it).
pub fn installed_wrapper() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(Error::CurrentExe)?;
    let wrapper = nixcache::userwrapper::wrapper_next_to(&exe);
    if !wrapper.is_file() {
        return Err(Error::WrapperMissing(wrapper));
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
) -> Result<Vec<(String, OsString)>, Error> {
    Ok(nixcache::userwrapper::plan_env(
        wrapper, cwd, env, cli_config,
    )?)
}

/// [`wrapper_env`] for the installed wrapper, here and now.
pub fn wrapper_env_here(cli_config: &[String]) -> Result<Vec<(String, OsString)>, Error> {
    let cwd = std::env::current_dir().map_err(Error::CurrentDir)?;
    wrapper_env(
        &installed_wrapper()?,
        &cwd,
        &|k| std::env::var_os(k),
        cli_config,
    )
}
