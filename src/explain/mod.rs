//! `explain`: why cargo did not call a unit Fresh, one row per unit.
//!
//! Cargo knows why it rebuilds a unit but says so only in its debug log
//! (`CARGO_LOG=cargo::core::compiler::fingerprint=info`), as the `{:?}` of an internal enum,
//! or (with `-v`) once per package in prose. explain runs cargo with that log on (or reads a
//! saved one), and turns it into typed causes ([`Cause`]): a newer file with both mtimes, a
//! changed environment variable with both values, RUSTFLAGS, features, profile, a source path,
//! a missing output or watched file, a rebuilt dependency, a unit never built with this
//! configuration (with what differs from the nearest earlier build, see [`fingerprint`]).
//! cargo's JSON messages add the `fresh` flag of every compiled unit, so a unit rebuilt
//! without a logged reason is listed too, and an all-Fresh build is reported as such.
//!
//! - [`debug`]: a reader for Rust's `{:?}` syntax.
//! - [`log`]: cargo's log lines and JSON messages -> units and verbatim reasons.
//! - [`cause`]: verbatim reasons -> [`Cause`].
//! - [`fingerprint`]: a new unit's fingerprint against its siblings in the target dir.
//! - [`run`]: running cargo with the log on, passing its output through.

mod cause;
mod debug;
mod fingerprint;
mod log;
pub mod run;

pub(crate) use cause::{Cause, Mtime};
pub use log::LOG_FILTER;
pub(crate) use log::{CargoLog, Unit};

use crate::fault::{Fault, HasFault};
use crate::fsutil::{self, InputFileError};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("failed to run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read cargo's output")]
    ReadOutput(#[source] std::io::Error),
    #[error("cannot read the cargo log")]
    Log(#[from] InputFileError),
    #[error("failed to read the cargo log `{path}`")]
    ReadLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasFault for ExplainError {
    fn fault(&self) -> Fault {
        match self {
            ExplainError::Log(e) => e.fault(),
            ExplainError::Spawn { .. }
            | ExplainError::ReadOutput(_)
            | ExplainError::ReadLog { .. } => Fault::Environment,
        }
    }
}

/// One unit that was not Fresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitReport {
    /// `applib lib:applib`, see [`Unit::label`].
    pub unit: String,
    #[serde(flatten)]
    pub id: Unit,
    #[serde(flatten)]
    pub cause: Cause,
}

/// Every unit that was not Fresh, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Causes of their own first, then units rebuilt because a dependency was; each group in
    /// cargo's order.
    pub units: Vec<UnitReport>,
    /// How many compiled units cargo's JSON messages called Fresh / not Fresh (`None` without
    /// messages: a log of stderr only, or a `--message-format` other than JSON).
    pub fresh: Option<usize>,
    pub not_fresh: Option<usize>,
}

impl Report {
    /// Builds the report from what cargo said; reads the target dir only for units without a
    /// fingerprint (to compare with their siblings).
    pub fn new(log: &CargoLog) -> Report {
        let this_run: HashSet<PathBuf> = log
            .units
            .iter()
            .filter_map(|u| match &u.verdict {
                log::Verdict::NoFingerprint(error) => match Cause::from_fingerprint_error(error) {
                    Cause::NewUnit { fingerprint, .. } => Some(fingerprint),
                    _ => None,
                },
                log::Verdict::Dirty(_) => None,
            })
            .collect();
        let mut units: Vec<UnitReport> = log
            .units
            .iter()
            .map(|logged| {
                let cause = match &logged.verdict {
                    log::Verdict::Dirty(reason) => Cause::from_dirty_reason(reason),
                    log::Verdict::NoFingerprint(error) => Cause::from_fingerprint_error(error),
                };
                UnitReport {
                    unit: logged.unit.label(),
                    id: logged.unit.clone(),
                    cause: complete(cause, log, &this_run),
                }
            })
            .collect();
        units.extend(log.unexplained_artifacts().into_iter().map(|a| {
            let id = Unit {
                package: a.package.clone(),
                version: a.version.clone(),
                package_id: format!("{} v{}", a.package, a.version),
                target: a.target.clone(),
                kind: a.kind.clone(),
                mode: if a.test { "test" } else { "build" }.into(),
                test: a.test,
            };
            UnitReport {
                unit: id.label(),
                id,
                cause: Cause::Unexplained,
            }
        }));
        units.sort_by_key(|u| u.cause.is_consequence());
        let counted = log.saw_messages.then(|| {
            let fresh = log.artifacts.iter().filter(|a| a.fresh).count();
            (fresh, log.artifacts.len() - fresh)
        });
        Report {
            units,
            fresh: counted.map(|c| c.0),
            not_fresh: counted.map(|c| c.1),
        }
    }

    /// The table: one row per unit (unit, cause, details), paths relative to `base`; or one
    /// line saying nothing was dirty.
    pub fn table(&self, base: &Path) -> String {
        if self.units.is_empty() {
            return match self.fresh {
                Some(n) => format!("All {n} units Fresh: nothing was rebuilt.\n"),
                None => "No unit was dirty in cargo's log.\n".into(),
            };
        }
        let rows: Vec<[String; 3]> =
            std::iter::once(["UNIT".into(), "CAUSE".into(), "DETAILS".into()])
                .chain(
                    self.units
                        .iter()
                        .map(|u| [u.unit.clone(), u.cause.title(), u.cause.details(base)]),
                )
                .collect();
        let w0 = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
        rows.iter()
            .map(|[a, b, c]| format!("{a:w0$}  {b:w1$}  {c}\n"))
            .collect()
    }

    /// `2 units not Fresh: 1 file changed, 1 dependency rebuilt; 5 of 7 compiled units Fresh`
    /// (build-script runs are units without a message of their own, so the counts differ).
    pub fn summary(&self) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for u in &self.units {
            let title = u.cause.title();
            match counts.iter_mut().find(|(t, _)| *t == title) {
                Some((_, n)) => *n += 1,
                None => counts.push((title, 1)),
            }
        }
        let compiled = match (self.fresh, self.not_fresh) {
            (Some(f), Some(n)) => {
                format!(
                    "; {f} of {} compiled {} Fresh",
                    f + n,
                    plural(f + n, "unit")
                )
            }
            _ => String::new(),
        };
        let parts: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
        let causes = if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join(", "))
        };
        let n = self.units.len();
        format!("{n} {} not Fresh{causes}{compiled}", plural(n, "unit"))
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// Adds what the rest of the log (or the target dir) knows to a cause: the dependency cargo
/// named in another line, what differs from the nearest earlier build (not one of `this_run`'s
/// new units).
fn complete(cause: Cause, log: &CargoLog, this_run: &HashSet<PathBuf>) -> Cause {
    match cause {
        Cause::DependencyRebuilt {
            change,
            dependency: None,
            dependency_mtime: Some(dep),
            own_mtime: Some(own),
        } => Cause::DependencyRebuilt {
            change,
            dependency: log
                .newer_dependencies
                .iter()
                .find(|d| {
                    Mtime::from_cargo_display(&d.dependency_mtime) == Some(dep)
                        && Mtime::from_cargo_display(&d.own_mtime) == Some(own)
                })
                .map(|d| d.name.clone()),
            dependency_mtime: Some(dep),
            own_mtime: Some(own),
        },
        Cause::NewUnit {
            fingerprint,
            nearest: None,
        } => Cause::NewUnit {
            nearest: fingerprint::nearest_build(&fingerprint, this_run),
            fingerprint,
        },
        other => other,
    }
}

/// Reads a saved log: cargo's stderr with the fingerprint log, and optionally its stdout with
/// JSON messages, in one file (`-`: standard input), as it comes: memory does not grow with the
/// log's size. A file must be a regular one (`/dev/zero` would never end).
pub fn read_log(path: &Path) -> Result<CargoLog, ExplainError> {
    let result = if path == Path::new("-") {
        CargoLog::read_from(std::io::stdin().lock())
    } else {
        match fsutil::open_regular(path) {
            Ok(file) => CargoLog::read_from(file),
            Err(InputFileError::Missing(_)) => Err(std::io::ErrorKind::NotFound.into()),
            Err(InputFileError::Fs(e)) => Err(e.source),
            Err(e) => return Err(e.into()),
        }
    };
    result.map_err(|source| ExplainError::ReadLog {
        path: path.to_owned(),
        source,
    })
}
