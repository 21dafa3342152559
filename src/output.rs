//! What the commands write: stdout that ends quietly on a closed pipe, one-line JSON, and the
//! human-readable sizes and durations of summary lines.

use crate::error::Error;
use std::io::Write;
use std::time::Duration;

/// Writes `text` to stdout. A reader that went away (`cargo nixcache refs DIR | head -1`) is a
/// normal way to stop reading: the rest is dropped quietly and the command still ends with the
/// exit code of its result (a forbidden reference stays an error). `println!` would panic.
pub fn print_stdout(text: &str) -> Result<(), Error> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Stdout),
    }
}

/// One line of JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    print_stdout(&(serde_json::to_string(value)? + "\n"))
}

/// `1.5 MiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn elapsed(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
