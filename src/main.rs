//! `cargo-nixcache`: parse, run, and render any error once.

// `println!` panics when stdout is a closed pipe; writes go through `output::print_stdout`.
#![deny(clippy::print_stdout)]

mod cli;
mod demo;
mod output;
mod wrapping;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Invoked as `cargo nixcache ...` cargo passes "nixcache" as the first argument; invoked
    // directly as `cargo-nixcache ...` it does not. Accept both.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "nixcache") {
        args.remove(1);
    }
    match cli::run(cli::parse(args)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The one place errors become exit codes: 3 when the input was rejected (wherever that was
/// found), 1 when the environment failed, 2 for usage (clap exits 2 for its own usage errors).
fn exit_code(err: &anyhow::Error) -> u8 {
    use nixcache::fault::Fault;
    match nixcache::fault::of(err.as_ref()) {
        Fault::Input => cli::EXIT_REJECTED as u8,
        Fault::Environment => 1,
        Fault::Usage => 2,
    }
}

/// A closed stdout (`cargo nixcache refs ... | head`) is a normal way to stop.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
