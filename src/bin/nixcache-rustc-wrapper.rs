//! `nixcache-rustc-wrapper`: see the nixcache-rustc-wrapper crate (wrapper/) and docs/wrapper.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    use nixcache_rustc_wrapper as w;
    match w::run(std::env::args_os().collect(), |k| std::env::var_os(k)) {
        Ok(status) => w::process::exit_like(status),
        Err(e) => {
            w::report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
