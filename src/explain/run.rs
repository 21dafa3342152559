//! Running cargo for `explain`: with its fingerprint log on and JSON messages requested, its
//! output passed through as it comes, minus the log and the messages explain asked for.

use super::log::{lines, CargoLog, LineKind, Piece, LOG_FILTER};
use super::ExplainError;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};

/// Subcommands (and their built-in aliases) that compile and accept `--message-format`.
const COMPILING: &[&str] = &[
    "b", "bench", "build", "c", "check", "clippy", "d", "doc", "fix", "r", "run", "rustc",
    "rustdoc", "t", "test",
];

/// cargo's options before the subcommand that take a value as the next argument.
const GLOBAL_WITH_VALUE: &[&str] = &["--color", "--config", "-C", "-Z"];

/// Where cargo's stdout lines that are not explain's go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passthrough {
    Stdout,
    /// When explain's own stdout carries its JSON report.
    Stderr,
}

/// What a cargo run left.
#[derive(Debug)]
pub struct CargoRun {
    pub status: ExitStatus,
    pub log: CargoLog,
}

/// The arguments with `--message-format=json-render-diagnostics` added when the subcommand
/// compiles and none was given (before a `--`, whose rest belongs to rustc or the tests); true
/// when added, so the messages are explain's to hold back.
pub(crate) fn cargo_args(args: &[OsString]) -> (Vec<OsString>, bool) {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if GLOBAL_WITH_VALUE.contains(&&*a) {
            i += 2;
        } else if a.starts_with('-') || a.starts_with('+') {
            i += 1;
        } else {
            break;
        }
    }
    let compiles = args
        .get(i)
        .is_some_and(|s| COMPILING.contains(&&*s.to_string_lossy()));
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let has_format = args[..end]
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--message-format"));
    if !compiles || has_format {
        return (args.to_vec(), false);
    }
    let mut out = args.to_vec();
    out.insert(end, "--message-format=json-render-diagnostics".into());
    (out, true)
}

/// Runs `cargo args` with the fingerprint log on, forwarding its output line by line (stderr
/// to stderr, stdout per `stdout`) except the log lines and the JSON messages explain added.
pub fn run(
    cargo: &OsStr,
    args: &[OsString],
    stdout: Passthrough,
) -> Result<CargoRun, ExplainError> {
    let (args, ours) = cargo_args(args);
    let command = std::iter::once(cargo)
        .chain(args.iter().map(OsString::as_os_str))
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(cargo)
        .args(&args)
        .env("CARGO_LOG", LOG_FILTER)
        // anyhow would add a backtrace to each logged "err:" (cargo asks for one when
        // RUST_BACKTRACE is set); the log needs none.
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ExplainError::Spawn {
            command: command.clone(),
            source,
        })?;
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let (out_log, err_log) = std::thread::scope(|s| {
        let out = s.spawn(move || {
            forward(out, |kind| match kind {
                LineKind::Message if ours => None,
                _ if stdout == Passthrough::Stdout => {
                    Some(Box::new(std::io::stdout()) as Box<dyn Write>)
                }
                _ => Some(Box::new(std::io::stderr())),
            })
        });
        let err = forward(err, |kind| {
            (kind != LineKind::Log).then(|| Box::new(std::io::stderr()) as Box<dyn Write>)
        });
        (out.join().expect("the stdout reader does not panic"), err)
    });
    let status = child
        .wait()
        .map_err(|source| ExplainError::Spawn { command, source })?;
    let mut log = err_log.map_err(ExplainError::ReadOutput)?;
    log.merge(out_log.map_err(ExplainError::ReadOutput)?);
    Ok(CargoRun { status, log })
}

/// Reads `input` line by line into a [`CargoLog`], writing each line, byte for byte, where
/// `sink` says (nowhere: `None`). A closed destination stops the forwarding, not the reading,
/// so cargo is never blocked on a full pipe.
fn forward(
    input: impl Read,
    sink: impl Fn(LineKind) -> Option<Box<dyn Write>>,
) -> std::io::Result<CargoLog> {
    let mut log = CargoLog::default();
    let mut to: Option<Box<dyn Write>> = None;
    let mut closed = false;
    lines(input, |piece| {
        let bytes = match piece {
            Piece::Line(line) => {
                let text = String::from_utf8_lossy(line);
                to = sink(log.feed(text.trim_end_matches(['\n', '\r'])));
                line
            }
            Piece::Rest(rest) => rest,
        };
        if let (Some(to), false) = (&mut to, closed) {
            closed = to.write_all(bytes).and_then(|()| to.flush()).is_err();
        }
    })?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn adds_json_messages_to_compiling_commands_only() {
        let j = "--message-format=json-render-diagnostics";
        let cases = [
            ("build --release", format!("build --release {j}"), true),
            (
                "--config a=b -Z x build",
                format!("--config a=b -Z x build {j}"),
                true,
            ),
            (
                "+nightly t -p a -- --nocapture",
                format!("+nightly t -p a {j} -- --nocapture"),
                true,
            ),
            (
                "build --message-format short",
                "build --message-format short".into(),
                false,
            ),
            ("metadata", "metadata".into(), false),
            ("clean", "clean".into(), false),
        ];
        for (given, want, added) in cases {
            let (got, ours) = cargo_args(&args(given));
            assert_eq!((got, ours), (args(&want), added), "{given}");
        }
    }
}
