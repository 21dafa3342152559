//! `nixcache-rustc-wrapper`: see the nixcache-rustc-wrapper crate (wrapper/) and docs/wrapper.md.

fn main() {
    use nixcache_rustc_wrapper as w;
    match w::run(std::env::args_os().collect(), |k| std::env::var_os(k)) {
        Ok(status) => w::process::exit_like(status),
        Err(e) => {
            w::report(&e);
            std::process::exit(if matches!(e, w::Error::Usage) {
                w::EXIT_USAGE
            } else {
                w::EXIT_WRAPPER_ERROR
            })
        }
    }
}
