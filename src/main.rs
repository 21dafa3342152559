//! `cargo-nixcache`: parse, run, render any error once, and end with the code of
//! [`error::exit_code`], the one mapping.

// `println!` panics when stdout is a closed pipe; writes go through `output::print_stdout`.
#![deny(clippy::print_stdout)]

mod cli;
mod demo;
mod error;
mod output;
mod wrapping;

use error::{Done, Error};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Invoked as `cargo nixcache ...` cargo passes "nixcache" as the first argument; invoked
    // directly as `cargo-nixcache ...` it does not. Accept both.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "nixcache") {
        args.remove(1);
    }
    let end = match cli::parse(args) {
        Ok(command) => cli::run(command),
        // --help and --version: clap's "errors" that are none.
        Err(help) if !help.use_stderr() => {
            let _ = help.print();
            Ok(Done::Ok)
        }
        Err(usage) => Err(Error::Clap(usage)),
    };
    if let Err(err) = &end {
        report(err);
    }
    error::exit_code(&end)
}

/// Prints `error: ...` and the `caused by:` chain, unless the command reported it already.
fn report(err: &Error) {
    match err {
        Error::Clap(e) => {
            let _ = e.print();
        }
        _ if err.is_reported() || err.is_broken_pipe() => {}
        _ => {
            eprintln!("error: {err}");
            for cause in causes(err).skip(1) {
                eprintln!("  caused by: {cause}");
            }
        }
    }
}

fn causes(err: &Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
}
