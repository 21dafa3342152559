//! Reading what cargo says about freshness, line by line: its fingerprint log on stderr
//! (`CARGO_LOG=cargo::core::compiler::fingerprint=info`, a `tracing` format) and its JSON
//! messages on stdout (`--message-format json`).
//!
//! From the log: each unit cargo called dirty with its reason as cargo's `{:?}` text
//! (`    dirty: EnvVarChanged { name: "X", .. }`), each unit it found no fingerprint for
//! (`    err: failed to read `.../lib-foo``), and which dependency was newer than a unit. From the
//! messages: every compiled unit and its `fresh` flag. Cargo 1.95 and 1.97 write the same lines.
//!
//! The reader also says what each line was, so a caller passing cargo's output through can hold
//! back the log (including the indented error reports cargo logs after `err:`) and nothing else.

use super::debug::{self, Value};
use serde::Deserialize;

/// The `CARGO_LOG` filter that makes cargo log why units are dirty, and nothing else.
pub const LOG_FILTER: &str = "cargo::core::compiler::fingerprint=info";

/// What separates the span context from the message on a fingerprint log line.
const TARGET: &str = ": cargo::core::compiler::fingerprint: ";

/// One unit of cargo's build graph, as the log names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unit {
    /// The package name, e.g. `applib`.
    pub package: String,
    pub version: String,
    /// cargo's display of the package id: `applib v0.1.0 (/src/applib)`, `nc-beta v0.1.0`.
    pub package_id: String,
    /// The target name, e.g. `applib`, `build-script-build`, `cli`.
    pub target: String,
    /// The target kind as in cargo's JSON messages: `lib`, `proc-macro`, `bin`, `test`,
    /// `custom-build`, ... (`?` when the log line did not say).
    pub kind: String,
    /// cargo's compile mode, kebab-case: `build`, `test`, `check`, `run-custom-build`, `doc`...
    pub mode: String,
    /// Built with the test harness (`cargo test` builds of libs and bins, test targets).
    pub test: bool,
}

impl Unit {
    /// `applib lib:applib`, `app bin:app (test)`, `nc-rerun custom-build:build-script-build (run)`.
    pub fn label(&self) -> String {
        let mut notes = Vec::new();
        match self.mode.as_str() {
            "run-custom-build" => notes.push("run"),
            mode @ ("check" | "doc" | "doctest") => notes.push(mode),
            _ => {}
        }
        if self.test && !matches!(self.kind.as_str(), "test" | "bench") {
            notes.push("test");
        }
        let suffix = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        format!("{} {}:{}{suffix}", self.package, self.kind, self.target)
    }

    /// What a JSON message can be matched on; `None` for units that send no `compiler-artifact`.
    fn artifact_key(&self) -> Option<(&str, &str, &str, bool)> {
        (!matches!(self.mode.as_str(), "run-custom-build" | "doctest")).then_some((
            &*self.package,
            &*self.version,
            &*self.target,
            self.test,
        ))
    }
}

/// What cargo concluded about a unit it did not call Fresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `dirty: <reason>`: cargo's `DirtyReason`, as its `{:?}` text.
    Dirty(String),
    /// `err: <error>`: the old fingerprint could not be read (first line of the error), which
    /// cargo treats as a unit never built before.
    NoFingerprint(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedUnit {
    pub unit: Unit,
    pub verdict: Verdict,
}

/// `dependency on `nc_beta` is newer than we are 5.000000000s > 4.000000000s "/src"`: cargo
/// names the dependency only here, with both mtimes as `FileTime`'s display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewerDependency {
    pub name: String,
    pub dependency_mtime: String,
    pub own_mtime: String,
}

/// One `compiler-artifact` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub package: String,
    pub version: String,
    pub target: String,
    pub kind: String,
    pub test: bool,
    pub fresh: bool,
}

/// What a line was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A line of the fingerprint log, or of an error report it logged.
    Log,
    /// A cargo JSON message.
    Message,
    /// Anything else: cargo's status lines, diagnostics, a program's output.
    Other,
}

/// Everything read so far.
#[derive(Clone, Debug, Default)]
pub struct CargoLog {
    /// Units cargo called dirty or found no fingerprint for, in log order.
    pub units: Vec<LoggedUnit>,
    pub newer_dependencies: Vec<NewerDependency>,
    /// `compiler-artifact` messages, in order.
    pub artifacts: Vec<Artifact>,
    /// Whether any fingerprint log line was seen.
    pub saw_log: bool,
    /// Whether any cargo JSON message was seen.
    pub saw_messages: bool,
    /// The unit of the last `fingerprint dirty/error for` line, waiting for its reason.
    pending: Option<Unit>,
    /// Inside the multi-line error report of an `err:` line.
    in_error_report: bool,
}

impl CargoLog {
    /// Reads every line of `input` (a saved log; stderr and stdout may be mixed) as it comes,
    /// in bounded memory ([`lines`]).
    pub fn read_from(input: impl std::io::Read) -> std::io::Result<CargoLog> {
        let mut log = CargoLog::default();
        lines(input, |piece| {
            if let Piece::Line(line) = piece {
                log.feed(String::from_utf8_lossy(line).trim_end_matches(['\n', '\r']));
            }
        })?;
        Ok(log)
    }

    /// Reads every line of `text` (a saved log; stderr and stdout may be mixed).
    #[cfg(test)]
    pub fn read(text: &str) -> CargoLog {
        CargoLog::read_from(text.as_bytes()).expect("memory reads")
    }

    /// Adds what another reader saw (cargo's stdout and stderr are read apart).
    pub fn merge(&mut self, other: CargoLog) {
        self.units.extend(other.units);
        self.newer_dependencies.extend(other.newer_dependencies);
        self.artifacts.extend(other.artifacts);
        self.saw_log |= other.saw_log;
        self.saw_messages |= other.saw_messages;
    }

    /// Reads one line (without its newline) and says what it was.
    pub fn feed(&mut self, raw: &str) -> LineKind {
        let line = strip_ansi(raw);
        if let Some((span, message)) = line.split_once(TARGET) {
            self.saw_log = true;
            self.in_error_report = false;
            self.event(span, message);
            return LineKind::Log;
        }
        if self.in_error_report && is_error_report_line(&line) {
            return LineKind::Log;
        }
        self.in_error_report = false;
        if line.starts_with('{') && self.message(&line) {
            return LineKind::Message;
        }
        LineKind::Other
    }

    fn event(&mut self, span: &str, message: &str) {
        let span_package = span_field(span, "package_id=", " target=\"");
        let span_target = span_field(span, " target=\"", "\"");
        let message = message.trim_start();
        let header = message
            .strip_prefix("fingerprint dirty for ")
            .or_else(|| message.strip_prefix("fingerprint error for "));
        if let Some(rest) = header {
            self.pending = Some(parse_unit(rest, span_package, span_target));
        } else if let Some(reason) = message.strip_prefix("dirty: ") {
            if let Some(unit) = self.pending.take() {
                let verdict = Verdict::Dirty(reason.trim_end().to_owned());
                self.units.push(LoggedUnit { unit, verdict });
            }
        } else if let Some(error) = message.strip_prefix("err: ") {
            self.in_error_report = true;
            if let Some(unit) = self.pending.take() {
                let verdict = Verdict::NoFingerprint(error.trim_end().to_owned());
                self.units.push(LoggedUnit { unit, verdict });
            }
        } else if let Some(rest) = message.strip_prefix("dependency on `") {
            if let Some(dep) = parse_newer_dependency(rest) {
                self.newer_dependencies.push(dep);
            }
        }
    }

    /// Records `line` if it is a cargo JSON message.
    fn message(&mut self, line: &str) -> bool {
        #[derive(Deserialize)]
        struct Raw {
            reason: String,
            package_id: Option<String>,
            target: Option<RawTarget>,
            profile: Option<RawProfile>,
            fresh: Option<bool>,
        }
        #[derive(Deserialize)]
        struct RawTarget {
            kind: Vec<String>,
            name: String,
        }
        #[derive(Deserialize)]
        struct RawProfile {
            test: bool,
        }
        let Ok(raw) = serde_json::from_str::<Raw>(line) else {
            return false;
        };
        self.saw_messages = true;
        if let ("compiler-artifact", Some(id), Some(target), Some(profile), Some(fresh)) = (
            raw.reason.as_str(),
            raw.package_id,
            raw.target,
            raw.profile,
            raw.fresh,
        ) {
            let (package, version) = package_id_spec_name_version(&id);
            self.artifacts.push(Artifact {
                package,
                version,
                target: target.name,
                kind: target.kind.join(","),
                test: profile.test,
                fresh,
            });
        }
        true
    }

    /// The `compiler-artifact` messages of units that were not Fresh and that no log line
    /// explains.
    pub fn unexplained_artifacts(&self) -> Vec<&Artifact> {
        self.artifacts
            .iter()
            .filter(|a| !a.fresh)
            .filter(|a| {
                !self.units.iter().any(|u| {
                    u.unit.artifact_key() == Some((&a.package, &a.version, &a.target, a.test))
                })
            })
            .collect()
    }
}

/// The text between `start` and the next `end` in a span (`package_id=... target="..."`).
fn span_field<'a>(span: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = span.find(start)? + start.len();
    let len = span[from..].find(end)?;
    Some(&span[from..from + len])
}

/// `applib v0.1.0 (/src/applib)/Build/TargetInner { .. }` (the package id display, the mode's
/// `{:?}`, the target's `{:?}`), with the span's fields as the better source of the first.
fn parse_unit(text: &str, span_package: Option<&str>, span_target: Option<&str>) -> Unit {
    let (package_id, rest) = match span_package.and_then(|p| Some((p, text.strip_prefix(p)?))) {
        Some((p, rest)) => (p.to_owned(), rest.strip_prefix('/').unwrap_or(rest)),
        // No span (another log format): the mode and target follow the last `)/` or ` v1.2.3/`.
        None => match text.find("/TargetInner").and_then(|t| text[..t].rfind('/')) {
            Some(slash) => (text[..slash].to_owned(), &text[slash + 1..]),
            None => (text.to_owned(), ""),
        },
    };
    let (mode_text, target_text) = rest.split_once('/').unwrap_or((rest, ""));
    let mode = debug::parse(mode_text).ok();
    let target = debug::parse(target_text).ok();
    let (package, version) = package_display_name_version(&package_id);
    let mode_name = mode
        .as_ref()
        .and_then(Value::name)
        .map(kebab_case)
        .unwrap_or_else(|| "?".to_owned());
    let test = matches!(mode_name.as_str(), "test" | "bench")
        || mode
            .as_ref()
            .and_then(|m| m.field("test"))
            .is_some_and(|t| *t == Value::Ident("true".into()));
    Unit {
        package,
        version,
        target: span_target
            .map(str::to_owned)
            .or_else(|| target.as_ref().and_then(target_name))
            .unwrap_or_else(|| "?".to_owned()),
        kind: target
            .as_ref()
            .map(target_kind)
            .unwrap_or_else(|| "?".to_owned()),
        package_id,
        mode: mode_name,
        test,
    }
}

/// The target kind from cargo's compact `{:?}` of a target: `lib_target(name, [crate types],
/// ..)`, `custom_build_target(..)`, or a `kind: "test"` field; otherwise a binary.
fn target_kind(target: &Value) -> String {
    match target.field("..") {
        Some(Value::Tuple(ctor, args)) if ctor == "lib_target" => args
            .get(1)
            .and_then(Value::as_str_list)
            .map(|types| types.join(","))
            .unwrap_or_else(|| "lib".to_owned()),
        Some(Value::Tuple(ctor, _))
            if ctor == "custom_build_target" || ctor == "metabuild_target" =>
        {
            "custom-build".to_owned()
        }
        _ => target
            .field("kind")
            .and_then(Value::as_str)
            .unwrap_or("bin")
            .to_owned(),
    }
}

fn target_name(target: &Value) -> Option<String> {
    if let Some(name) = target.field("name").and_then(Value::as_str) {
        return Some(name.to_owned());
    }
    match target.field("..") {
        Some(Value::Tuple(_, args)) => args.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// `RunCustomBuild` -> `run-custom-build`.
fn kebab_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `applib v0.1.0 (/src/applib)` -> (`applib`, `0.1.0`).
fn package_display_name_version(display: &str) -> (String, String) {
    match display.split_once(" v") {
        Some((name, rest)) => (
            name.to_owned(),
            rest.split(' ').next().unwrap_or("").to_owned(),
        ),
        None => (display.to_owned(), String::new()),
    }
}

/// A package id spec from a JSON message -> (name, version):
/// `registry+https://github.com/rust-lang/crates.io-index#nc-beta@0.1.0`,
/// `path+file:///src/applib#0.1.0` (the name is the directory's), or the format before cargo
/// 1.77, `applib 0.1.0 (path+file:///src/applib)`.
fn package_id_spec_name_version(id: &str) -> (String, String) {
    let Some((url, fragment)) = id.split_once('#') else {
        let mut words = id.split(' ');
        let name = words.next().unwrap_or("").to_owned();
        return (name, words.next().unwrap_or("").to_owned());
    };
    if let Some((name, version)) = fragment.split_once('@') {
        return (name.to_owned(), version.to_owned());
    }
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.to_owned(), fragment.to_owned())
}

/// `nc_beta` is newer than we are 5.000000000s > 4.000000000s "/src"` (after the first backtick).
fn parse_newer_dependency(rest: &str) -> Option<NewerDependency> {
    let (name, rest) = rest.split_once('`')?;
    let times = rest.strip_prefix(" is newer than we are ")?;
    let mut words = times.split(' ');
    let dependency_mtime = words.next()?.to_owned();
    (words.next()? == ">").then_some(())?;
    let own_mtime = words.next()?.to_owned();
    Some(NewerDependency {
        name: name.to_owned(),
        dependency_mtime,
        own_mtime,
    })
}

/// Whether a line continues the error report (anyhow's `{:?}`) of an `err:` log line:
/// blank lines, `Caused by:` and its indented causes, `Stack backtrace:` and its frames. A
/// cargo status line (`    Checking foo`, its verb right-aligned in 12 columns) is not.
fn is_error_report_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    if trimmed.is_empty() || trimmed == "Caused by:" || trimmed == "Stack backtrace:" {
        return true;
    }
    let numbered = trimmed
        .split_once(": ")
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if indent > 0 && (numbered || trimmed.starts_with("at ")) {
        return true;
    }
    indent >= 4 && !is_status_line(line)
}

fn is_status_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    let verb = trimmed.split(' ').next().unwrap_or("");
    let indent = line.len() - trimmed.len();
    indent + verb.len() == 12
        && verb.starts_with(|c: char| c.is_ascii_uppercase())
        && verb[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Removes ANSI escape sequences (cargo colours its log when stderr is a terminal).
fn strip_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\x1b') {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte(@..~)
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// The most of one line held in memory: a longer one is judged by its start, and the rest of it
/// passed on in pieces.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// What [`lines`] hands on.
pub(crate) enum Piece<'a> {
    /// A line, with its newline (none at the end of input), or its first [`MAX_LINE`] bytes.
    Line(&'a [u8]),
    /// More of a line longer than that.
    Rest(&'a [u8]),
}

/// Reads `input` line by line in bounded memory, whatever it holds (no newline at all, say).
pub(crate) fn lines(input: impl std::io::Read, mut each: impl FnMut(Piece)) -> std::io::Result<()> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, input);
    let mut line = Vec::new();
    let mut overlong = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            if !line.is_empty() {
                each(Piece::Line(&line));
            }
            return Ok(());
        }
        let (chunk, ends) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if overlong {
            each(Piece::Rest(chunk));
        } else {
            let fits = chunk.len().min(MAX_LINE - line.len());
            line.extend_from_slice(&chunk[..fits]);
            if ends || line.len() == MAX_LINE {
                each(Piece::Line(&line));
                line.clear();
                if fits < n {
                    each(Piece::Rest(&chunk[fits..]));
                }
                overlong = !ends;
            }
        }
        if ends {
            overlong = false;
        }
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines, captured from cargo 1.95 building tests/fixtures/ws-basic (cargo 1.97 writes
    // the same), paths shortened.
    const TOUCHED: &str = r#"   0.009001039s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="app"}: cargo::core::compiler::fingerprint: stale: changed "/w/applib/src/lib.rs"
   0.009045215s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="app"}: cargo::core::compiler::fingerprint:           (vs) "/w/target/debug/.fingerprint/applib-01d67ce5cf22b7d3/dep-lib-applib"
   0.009102942s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="app"}: cargo::core::compiler::fingerprint:                FileTime { seconds: 1796092395, nanos: 557716768 } < FileTime { seconds: 1796092395, nanos: 725907313 }
   0.009153537s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="app"}: cargo::core::compiler::fingerprint: fingerprint dirty for app v0.1.0 (/w/app)/Build/TargetInner { name: "app", doc: true, ..: with_path("/w/app/src/main.rs", Edition2021) }
   0.009159967s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="app"}: cargo::core::compiler::fingerprint:     dirty: FsStatusOutdated(StaleDepFingerprint { unit: UnitIndex(1) })
   0.009365075s  INFO prepare_target{force=false package_id=applib v0.1.0 (/w/applib) target="applib"}: cargo::core::compiler::fingerprint: fingerprint dirty for applib v0.1.0 (/w/applib)/Build/TargetInner { name_inferred: true, ..: lib_target("applib", ["lib"], "/w/applib/src/lib.rs", Edition2021) }
   0.009370273s  INFO prepare_target{force=false package_id=applib v0.1.0 (/w/applib) target="applib"}: cargo::core::compiler::fingerprint:     dirty: FsStatusOutdated(StaleItem(ChangedFile { reference: "/w/target/debug/.fingerprint/applib-01d67ce5cf22b7d3/dep-lib-applib", reference_mtime: FileTime { seconds: 1796092395, nanos: 557716768 }, stale: "/w/applib/src/lib.rs", stale_mtime: FileTime { seconds: 1796092395, nanos: 725907313 } }))
   Compiling applib v0.1.0 (/w/applib)
   Compiling app v0.1.0 (/w/app)
    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.17s"#;

    const NEW_UNIT: &str = r#"   0.044564080s  INFO prepare_target{force=false package_id=nc-alpha v0.1.0 target="build-script-build"}: cargo::core::compiler::fingerprint: fingerprint error for nc-alpha v0.1.0/RunCustomBuild/TargetInner { ..: custom_build_target("build-script-build", "/w/../vendor/nc-alpha/build.rs", Edition2021) }
   0.044590499s  INFO prepare_target{force=false package_id=nc-alpha v0.1.0 target="build-script-build"}: cargo::core::compiler::fingerprint:     err: failed to read `/w/target/debug/.fingerprint/nc-alpha-7284b3cd76d60183/run-build-script-build-script-build`

Caused by:
    No such file or directory (os error 2)

Stack backtrace:
   0: cargo_util::paths::read_bytes
  14: std::rt::lang_start_internal
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/rt.rs:171:5
  27: <unknown>
   0.044698872s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="cli"}: cargo::core::compiler::fingerprint: fingerprint error for app v0.1.0 (/w/app)/Test/TargetInner { kind: "test", name: "cli", benched: false, ..: with_path("/w/app/tests/cli.rs", Edition2021) }
   0.044715236s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="cli"}: cargo::core::compiler::fingerprint:     err: failed to read `/w/target/debug/.fingerprint/app-46e34d3cdf83c559/test-integration-test-cli`

Caused by:
    No such file or directory (os error 2)
    Checking app v0.1.0 (/w/app)"#;

    fn kinds(text: &str) -> Vec<LineKind> {
        let mut log = CargoLog::default();
        text.lines().map(|l| log.feed(l)).collect()
    }

    #[test]
    fn reads_units_and_reasons() {
        let log = CargoLog::read(TOUCHED);
        let got: Vec<(String, &Verdict)> = log
            .units
            .iter()
            .map(|u| (u.unit.label(), &u.verdict))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "app bin:app");
        assert_eq!(
            got[0].1,
            &Verdict::Dirty("FsStatusOutdated(StaleDepFingerprint { unit: UnitIndex(1) })".into())
        );
        assert_eq!(got[1].0, "applib lib:applib");
        assert!(matches!(got[1].1, Verdict::Dirty(r) if r.contains("ChangedFile")));
        let applib = &log.units[1].unit;
        assert_eq!(
            (
                &*applib.package,
                &*applib.version,
                &*applib.package_id,
                &*applib.mode
            ),
            ("applib", "0.1.0", "applib v0.1.0 (/w/applib)", "build")
        );
    }

    #[test]
    fn reads_units_without_fingerprint_and_skips_their_error_reports() {
        let log = CargoLog::read(NEW_UNIT);
        let labels: Vec<String> = log.units.iter().map(|u| u.unit.label()).collect();
        assert_eq!(
            labels,
            [
                "nc-alpha custom-build:build-script-build (run)",
                "app test:cli"
            ]
        );
        assert_eq!(
            log.units[0].verdict,
            Verdict::NoFingerprint(
                "failed to read `/w/target/debug/.fingerprint/nc-alpha-7284b3cd76d60183/run-build-script-build-script-build`".into()
            )
        );
        assert!(log.units[1].unit.test);
        let k = kinds(NEW_UNIT);
        // Everything is log but the last line, a status line right after the report.
        assert!(
            k[..k.len() - 1].iter().all(|k| *k == LineKind::Log),
            "{k:?}"
        );
        assert_eq!(k.last(), Some(&LineKind::Other));
    }

    #[test]
    fn passes_status_lines_through() {
        let k = kinds(TOUCHED);
        assert_eq!(&k[k.len() - 3..], [LineKind::Other; 3]);
    }

    #[test]
    fn reads_a_coloured_log() {
        let line = "\x1b[2m   0.1s\x1b[0m \x1b[32m INFO\x1b[0m \x1b[1mprepare_target\x1b[0m\x1b[1m{\x1b[0m\x1b[3mforce\x1b[0m\x1b[2m=\x1b[0mfalse \x1b[3mpackage_id\x1b[0m\x1b[2m=\x1b[0mnc-beta v0.1.0 \x1b[3mtarget\x1b[0m\x1b[2m=\x1b[0m\"nc_beta\"\x1b[1m}\x1b[0m\x1b[2m:\x1b[0m \x1b[2mcargo::core::compiler::fingerprint\x1b[0m\x1b[2m:\x1b[0m fingerprint dirty for nc-beta v0.1.0/Build/TargetInner { ..: lib_target(\"nc_beta\", [\"lib\"], \"/v/src/lib.rs\", Edition2021) }";
        let mut log = CargoLog::default();
        assert_eq!(log.feed(line), LineKind::Log);
        log.feed("  0.2s  INFO prepare_target{force=false package_id=nc-beta v0.1.0 target=\"nc_beta\"}: cargo::core::compiler::fingerprint:     dirty: Forced");
        assert_eq!(log.units[0].unit.label(), "nc-beta lib:nc_beta");
        assert_eq!(log.units[0].verdict, Verdict::Dirty("Forced".into()));
    }

    #[test]
    fn reads_newer_dependency_lines() {
        let line = r#"   0.1s  INFO prepare_target{force=false package_id=app v0.1.0 (/w/app) target="app"}: cargo::core::compiler::fingerprint: dependency on `applib` is newer than we are 1796092395.725907313s > 1.000000000s "/w/app""#;
        let log = CargoLog::read(line);
        assert_eq!(
            log.newer_dependencies,
            [NewerDependency {
                name: "applib".into(),
                dependency_mtime: "1796092395.725907313s".into(),
                own_mtime: "1.000000000s".into()
            }]
        );
    }

    #[test]
    fn reads_artifact_messages_and_finds_unexplained_ones() {
        let text = format!(
            "{TOUCHED}\n{}\n{}\n{}\n{}",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/applib#0.1.0","manifest_path":"/w/applib/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"applib","src_path":"/w/applib/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":[],"executable":null,"fresh":false}"#,
            r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#nc-beta@0.1.0","target":{"kind":["lib"],"name":"nc_beta"},"profile":{"test":false},"fresh":true}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/other-dir#applib2@0.2.0","target":{"kind":["bin"],"name":"x"},"profile":{"test":false},"fresh":false}"#,
            r#"{"reason":"build-finished","success":true}"#,
        );
        let log = CargoLog::read(&text);
        assert!(log.saw_messages && log.saw_log);
        assert_eq!(log.artifacts.len(), 3);
        assert_eq!(
            (&*log.artifacts[1].package, &*log.artifacts[1].version),
            ("nc-beta", "0.1.0")
        );
        let unexplained: Vec<&str> = log
            .unexplained_artifacts()
            .iter()
            .map(|a| &*a.package)
            .collect();
        assert_eq!(unexplained, ["applib2"]);
    }

    #[test]
    fn names_modes_and_kinds() {
        let cases = [
            ("Check { test: true }", "TargetInner { ..: lib_target(\"a\", [\"lib\"], \"/a\", Edition2021) }", "a lib:a (check, test)"),
            ("Build", "TargetInner { ..: lib_target(\"m\", [\"proc-macro\"], \"/a\", Edition2021) }", "a proc-macro:m"),
            ("Build", "TargetInner { ..: custom_build_target(\"build-script-build\", \"/b.rs\", Edition2021) }", "a custom-build:build-script-build"),
            ("Test", "TargetInner { name: \"a\", ..: with_path(\"/m.rs\", Edition2021) }", "a bin:a (test)"),
            ("Build", "TargetInner { kind: \"example\", name: \"e\", ..: with_path(\"/e.rs\", Edition2021) }", "a example:e"),
        ];
        for (mode, target, want) in cases {
            let unit = parse_unit(&format!("a v1.0.0/{mode}/{target}"), Some("a v1.0.0"), None);
            assert_eq!(unit.label(), want, "{mode} {target}");
        }
    }

    /// A reader handing out `chunk` bytes at a time.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Lines come whole however the input is cut; a line longer than [`MAX_LINE`] comes as its
    /// start and the rest in pieces, so that every byte is handed on exactly once.
    #[test]
    fn lines_are_bounded_and_lose_no_byte() {
        let mut input = b"first\r\n\nthird".to_vec();
        input.splice(7..7, vec![b'x'; MAX_LINE + 10]);
        input.extend(b"\nlast");
        for chunk in [1, 7, 1 << 16] {
            let (mut got, mut starts) = (Vec::new(), Vec::new());
            lines(
                Trickle {
                    data: &input,
                    chunk,
                },
                |piece| match piece {
                    Piece::Line(l) => {
                        assert!(l.len() <= MAX_LINE);
                        starts.push(String::from_utf8_lossy(&l[..l.len().min(8)]).into_owned());
                        got.extend_from_slice(l);
                    }
                    Piece::Rest(r) => got.extend_from_slice(r),
                },
            )
            .unwrap();
            assert!(got == input, "chunk {chunk}");
            assert_eq!(
                starts,
                ["first\r\n", "xxxxxxxx", "third\n", "last"],
                "{chunk}"
            );
        }
    }
}
