//! Why a unit was not Fresh, as a typed value: cargo's `DirtyReason` (read from the `{:?}` text
//! it logs, see [`super::debug`]) mapped onto the causes a user acts on, each with the details
//! cargo knew (which file and both mtimes, which variable and both values, both flag lists).
//! A reason this module does not know stays as cargo wrote it ([`Cause::Other`]).

use super::debug::{self, Value};
use super::fingerprint::NearestBuild;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A file time as cargo logs it (`FileTime { seconds, nanos }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Mtime {
    pub seconds: i64,
    pub nanos: u32,
}

impl Mtime {
    fn from_value(v: &Value) -> Option<Mtime> {
        Some(Mtime {
            seconds: match v.field("seconds")? {
                Value::Num(n) => n.parse().ok()?,
                _ => return None,
            },
            nanos: u32::try_from(v.field("nanos")?.as_u64()?).ok()?,
        })
    }

    /// How `filetime::FileTime` displays itself in cargo's log: `1796092395.725907313s`.
    pub fn cargo_display(&self) -> String {
        format!("{}.{:09}s", self.seconds, self.nanos)
    }

    /// Parses [`Mtime::cargo_display`].
    pub fn from_cargo_display(text: &str) -> Option<Mtime> {
        let (s, n) = text.strip_suffix('s')?.split_once('.')?;
        Some(Mtime {
            seconds: s.parse().ok()?,
            nanos: n.parse().ok()?,
        })
    }

    fn nanos_since_epoch(&self) -> i128 {
        self.seconds as i128 * 1_000_000_000 + self.nanos as i128
    }
}

impl std::fmt::Display for Mtime {
    /// RFC 3339 in UTC; the Nix store's mtime 1 shows as `1970-01-01T00:00:01Z`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = u64::try_from(self.seconds)
            .ok()
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::new(s, self.nanos));
        match time {
            Some(t) if self.nanos == 0 => write!(f, "{}", humantime::format_rfc3339_seconds(t)),
            Some(t) => write!(f, "{}", humantime::format_rfc3339_nanos(t)),
            None => write!(f, "{}", self.cargo_display()),
        }
    }
}

/// What made cargo watch an environment variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvWatch {
    /// The crate's code read it (`env!`, `option_env!`) and rustc recorded it in the dep-info.
    Compiler,
    /// Its build script printed `cargo::rerun-if-env-changed`.
    BuildScript,
}

/// How a dependency made a unit dirty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DependencyChange {
    /// The dependency is not Fresh in this build either (`StaleDepFingerprint`): its own row
    /// says why.
    Stale,
    /// The dependency's fingerprint differs from the one this unit was built with
    /// (`UnitDependencyInfoChanged`): it was rebuilt since, in this build or an earlier one.
    FingerprintChanged,
    /// The dependency's output is newer than this unit's (`StaleDependency`).
    NewerOutput,
}

/// Why cargo did not call a unit Fresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// A file the unit depends on (a source, or a file a build script watches) is newer than
    /// the unit's last build, whose time is the mtime of `reference` (a dep-info file or a
    /// build script's `output`).
    FileChanged {
        file: PathBuf,
        mtime: Mtime,
        reference: PathBuf,
        reference_mtime: Mtime,
    },
    /// A file the unit depends on does not exist (e.g. `rerun-if-changed` on a missing file:
    /// such a unit is never Fresh).
    FileMissing {
        file: PathBuf,
    },
    /// One of the unit's own outputs is gone.
    OutputMissing {
        file: PathBuf,
    },
    /// An environment variable the unit depends on changed (`None`: unset).
    EnvChanged {
        name: String,
        old: Option<String>,
        new: Option<String>,
        watched_by: EnvWatch,
    },
    RustflagsChanged {
        old: Vec<String>,
        new: Vec<String>,
    },
    /// The enabled features, as cargo writes them (`["a", "b"]`).
    FeaturesChanged {
        old: String,
        new: String,
    },
    /// The profile settings changed (cargo keeps only their hash, so it cannot say which); a
    /// `[lints]` table counts as profile settings.
    ProfileChanged,
    /// The path cargo passes rustc for the crate root changed (a moved vendor directory, a
    /// different workspace location for a non-member).
    SourcePathChanged,
    ToolchainChanged,
    /// A dependency was rebuilt (now or since this unit was built) or has a newer output, so
    /// this unit must be rebuilt too. Cargo names it (and gives both mtimes) only when its
    /// output was newer than this unit's.
    DependencyRebuilt {
        change: DependencyChange,
        dependency: Option<String>,
        dependency_mtime: Option<Mtime>,
        own_mtime: Option<Mtime>,
    },
    /// No fingerprint of this unit was found: the unit was never built in this target dir
    /// with this configuration. Cargo's unit hash (the `-<hash>` in its file names) covers the
    /// package, features, profile, target, toolchain, RUSTFLAGS (without
    /// `--remap-path-prefix`) and dependencies, so a change in any of them makes a new unit
    /// rather than a dirty one. `nearest` is the most similar earlier build of the same
    /// target in the target dir, if any, and how it differs.
    NewUnit {
        fingerprint: PathBuf,
        nearest: Option<NearestBuild>,
    },
    /// Forced by the command (e.g. `cargo rustc`, `cargo doc` of the requested package).
    Forced,
    /// A reason this version of explain does not know, exactly as cargo logged it.
    Other {
        reason: String,
    },
    /// Cargo reported the unit not Fresh, but its log gave no reason.
    Unexplained,
}

impl Cause {
    /// Maps cargo's `DirtyReason` (its `{:?}` text) to a cause; unknown or unreadable text
    /// becomes [`Cause::Other`] with the text verbatim.
    pub fn from_dirty_reason(text: &str) -> Cause {
        let other = || Cause::Other {
            reason: text.to_owned(),
        };
        match debug::parse(text) {
            Ok(value) => from_value(&value).unwrap_or_else(other),
            Err(_) => other(),
        }
    }

    /// From the error cargo logged when it could not read the unit's old fingerprint:
    /// `failed to read `<hash file>``, i.e. a unit never built here. Other errors (a
    /// corrupt fingerprint) are reported verbatim.
    pub fn from_fingerprint_error(text: &str) -> Cause {
        match text
            .strip_prefix("failed to read `")
            .and_then(|t| t.strip_suffix('`'))
        {
            Some(path) => Cause::NewUnit {
                fingerprint: PathBuf::from(path),
                nearest: None,
            },
            None => Cause::Other {
                reason: format!("cargo could not compare fingerprints: {text}"),
            },
        }
    }

    /// The cause column of the table: a few words.
    pub fn title(&self) -> String {
        match self {
            Cause::FileChanged { .. } => "file changed".into(),
            Cause::FileMissing { .. } => "file missing".into(),
            Cause::OutputMissing { .. } => "output missing".into(),
            Cause::EnvChanged { .. } => "env var changed".into(),
            Cause::RustflagsChanged { .. } => "rustflags changed".into(),
            Cause::FeaturesChanged { .. } => "features changed".into(),
            Cause::ProfileChanged => "profile changed".into(),
            Cause::SourcePathChanged => "source path changed".into(),
            Cause::ToolchainChanged => "toolchain changed".into(),
            Cause::DependencyRebuilt { .. } => "dependency rebuilt".into(),
            Cause::NewUnit {
                nearest: Some(n), ..
            } => match n.differences.first() {
                Some(d) => format!("new unit ({})", d.field),
                None => "new unit".into(),
            },
            Cause::NewUnit { .. } => "new unit".into(),
            Cause::Forced => "forced".into(),
            Cause::Other { .. } => "other".into(),
            Cause::Unexplained => "unexplained".into(),
        }
    }

    /// The details column: files (relative to `base` when below it), times, values.
    pub fn details(&self, base: &Path) -> String {
        let p = |path: &Path| format!("`{}`", path.strip_prefix(base).unwrap_or(path).display());
        match self {
            Cause::FileChanged {
                file,
                mtime,
                reference,
                reference_mtime,
            } => {
                let later = mtime.nanos_since_epoch() - reference_mtime.nanos_since_epoch();
                format!(
                    "{} (mtime {mtime}) is {:.3} s newer than the last build ({}, mtime {reference_mtime})",
                    p(file),
                    later as f64 / 1e9,
                    p(reference),
                )
            }
            Cause::FileMissing { file } => format!("{} does not exist", p(file)),
            Cause::OutputMissing { file } => format!("{} does not exist", p(file)),
            Cause::EnvChanged {
                name,
                old,
                new,
                watched_by,
            } => format!(
                "{name}: {} -> {} ({})",
                show_var(old),
                show_var(new),
                match watched_by {
                    EnvWatch::Compiler => "read by the crate with env!/option_env!",
                    EnvWatch::BuildScript => "build script's rerun-if-env-changed",
                }
            ),
            Cause::RustflagsChanged { old, new } => format!("{old:?} -> {new:?}"),
            Cause::FeaturesChanged { old, new } => format!("{old} -> {new}"),
            Cause::ProfileChanged => {
                "the profile's settings (or the package's [lints]) differ; cargo keeps only their hash".into()
            }
            Cause::SourcePathChanged => "the path of the crate's source files changed".into(),
            Cause::ToolchainChanged => "rustc's version differs".into(),
            Cause::DependencyRebuilt {
                change,
                dependency,
                dependency_mtime,
                own_mtime,
            } => {
                let name = match dependency {
                    Some(d) => format!("`{d}`"),
                    None => "a dependency".into(),
                };
                match (change, dependency_mtime, own_mtime) {
                    (DependencyChange::NewerOutput, Some(d), Some(o)) => {
                        format!("{name} has a newer output (mtime {d}) than this unit (mtime {o})")
                    }
                    (DependencyChange::Stale, ..) => {
                        format!("{name} is rebuilt in this build (see its row)")
                    }
                    _ => format!(
                        "{name} was rebuilt since this unit was built (its fingerprint differs)"
                    ),
                }
            }
            Cause::NewUnit {
                fingerprint,
                nearest,
            } => match nearest {
                None => format!(
                    "no fingerprint {}: never built here with this configuration, and no other build of this target to compare with",
                    p(fingerprint)
                ),
                Some(n) if n.differences.is_empty() => format!(
                    "no fingerprint {}; {} has the same settings",
                    p(fingerprint),
                    p(&n.fingerprint)
                ),
                Some(n) => format!(
                    "no fingerprint {}; differs from {} in {}",
                    p(fingerprint),
                    p(&n.fingerprint),
                    n.differences
                        .iter()
                        .map(|d| d.describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            },
            Cause::Forced => "the command always rebuilds this unit".into(),
            Cause::Other { reason } => reason.clone(),
            Cause::Unexplained => {
                "cargo reported it not Fresh but logged no reason (a command that forces it, or a CARGO_LOG without the fingerprint log)".into()
            }
        }
    }

    /// Whether this is a consequence of another unit's rebuild rather than a cause of its own:
    /// a rebuilt dependency, or a new unit that differs from its nearest build only there.
    pub fn is_consequence(&self) -> bool {
        match self {
            Cause::DependencyRebuilt { .. } => true,
            Cause::NewUnit {
                nearest: Some(n), ..
            } => !n.differences.is_empty() && n.differences.iter().all(|d| d.field == "deps"),
            _ => false,
        }
    }
}

fn show_var(v: &Option<String>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "(unset)".into(),
    }
}

fn path(v: &Value, field: &str) -> Option<PathBuf> {
    v.field(field)?.as_str().map(PathBuf::from)
}

fn opt(v: &Value, field: &str) -> Option<Option<String>> {
    v.field(field)?.as_opt_str().map(|o| o.map(str::to_owned))
}

fn from_value(v: &Value) -> Option<Cause> {
    Some(match v.name()? {
        "Forced" => Cause::Forced,
        "RustcChanged" => Cause::ToolchainChanged,
        "ProfileConfigurationChanged" => Cause::ProfileChanged,
        "PathToSourceChanged" => Cause::SourcePathChanged,
        "RustflagsChanged" => Cause::RustflagsChanged {
            old: v.field("old")?.as_str_list()?,
            new: v.field("new")?.as_str_list()?,
        },
        "FeaturesChanged" => Cause::FeaturesChanged {
            old: v.field("old")?.as_str()?.to_owned(),
            new: v.field("new")?.as_str()?.to_owned(),
        },
        "EnvVarChanged" => Cause::EnvChanged {
            name: v.field("name")?.as_str()?.to_owned(),
            old: opt(v, "old_value")?,
            new: opt(v, "new_value")?,
            watched_by: EnvWatch::BuildScript,
        },
        "UnitDependencyInfoChanged" => Cause::DependencyRebuilt {
            change: DependencyChange::FingerprintChanged,
            dependency: None,
            dependency_mtime: None,
            own_mtime: None,
        },
        "FsStatusOutdated" => from_fs_status(v.newtype("FsStatusOutdated")?)?,
        _ => return None,
    })
}

fn from_fs_status(status: &Value) -> Option<Cause> {
    Some(match status.name()? {
        "StaleDependency" => Cause::DependencyRebuilt {
            change: DependencyChange::NewerOutput,
            dependency: None,
            dependency_mtime: Some(Mtime::from_value(status.field("dep_mtime")?)?),
            own_mtime: Some(Mtime::from_value(status.field("max_mtime")?)?),
        },
        "StaleDepFingerprint" => Cause::DependencyRebuilt {
            change: DependencyChange::Stale,
            dependency: None,
            dependency_mtime: None,
            own_mtime: None,
        },
        "StaleItem" => {
            let item = status.newtype("StaleItem")?;
            match item.name()? {
                "ChangedFile" => Cause::FileChanged {
                    file: path(item, "stale")?,
                    mtime: Mtime::from_value(item.field("stale_mtime")?)?,
                    reference: path(item, "reference")?,
                    reference_mtime: Mtime::from_value(item.field("reference_mtime")?)?,
                },
                "MissingFile" => Cause::FileMissing {
                    file: path(item, "path")?,
                },
                // Cargo reads the metadata of the unit's outputs only: a missing one.
                "FailedToReadMetadata" => Cause::OutputMissing {
                    file: path(item, "path")?,
                },
                "ChangedEnv" => Cause::EnvChanged {
                    name: item.field("var")?.as_str()?.to_owned(),
                    old: opt(item, "previous")?,
                    new: opt(item, "current")?,
                    watched_by: EnvWatch::Compiler,
                },
                _ => return None,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64, nanos: u32) -> Mtime {
        Mtime { seconds, nanos }
    }

    /// Reasons as cargo 1.95 and 1.97 log them (captured from builds of tests/fixtures).
    #[test]
    fn maps_real_reasons() {
        let none = || None;
        let cases: Vec<(&str, &str, Cause)> = vec![
            (
                "touched source",
                r#"FsStatusOutdated(StaleItem(ChangedFile { reference: "/w/target/debug/.fingerprint/applib-01d67ce5cf22b7d3/dep-lib-applib", reference_mtime: FileTime { seconds: 1796092395, nanos: 557716768 }, stale: "/w/applib/src/lib.rs", stale_mtime: FileTime { seconds: 1796092395, nanos: 725907313 } }))"#,
                Cause::FileChanged {
                    file: "/w/applib/src/lib.rs".into(),
                    mtime: t(1796092395, 725907313),
                    reference: "/w/target/debug/.fingerprint/applib-01d67ce5cf22b7d3/dep-lib-applib".into(),
                    reference_mtime: t(1796092395, 557716768),
                },
            ),
            (
                "rerun-if-changed on a missing file",
                r#"FsStatusOutdated(StaleItem(MissingFile { path: "/w/../vendor/nc-rerun/does-not-exist" }))"#,
                Cause::FileMissing {
                    file: "/w/../vendor/nc-rerun/does-not-exist".into(),
                },
            ),
            (
                "deleted output",
                r#"FsStatusOutdated(StaleItem(FailedToReadMetadata { path: "/w/target/debug/deps/libapplib-01d67ce5cf22b7d3.rlib" }))"#,
                Cause::OutputMissing {
                    file: "/w/target/debug/deps/libapplib-01d67ce5cf22b7d3.rlib".into(),
                },
            ),
            (
                "option_env!",
                r#"FsStatusOutdated(StaleItem(ChangedEnv { var: "EXPLAIN_GREETING", previous: None, current: Some("hi") }))"#,
                Cause::EnvChanged {
                    name: "EXPLAIN_GREETING".into(),
                    old: None,
                    new: Some("hi".into()),
                    watched_by: EnvWatch::Compiler,
                },
            ),
            (
                "rerun-if-env-changed",
                r#"EnvVarChanged { name: "EXPLAIN_BUILD_ENV", old_value: Some("x"), new_value: None }"#,
                Cause::EnvChanged {
                    name: "EXPLAIN_BUILD_ENV".into(),
                    old: Some("x".into()),
                    new: None,
                    watched_by: EnvWatch::BuildScript,
                },
            ),
            (
                "rustflags",
                r#"RustflagsChanged { old: ["--remap-path-prefix=/a=/b"], new: ["--remap-path-prefix=/a=/b", "--cfg", "foo"] }"#,
                Cause::RustflagsChanged {
                    old: vec!["--remap-path-prefix=/a=/b".into()],
                    new: vec!["--remap-path-prefix=/a=/b".into(), "--cfg".into(), "foo".into()],
                },
            ),
            (
                "features",
                r#"FeaturesChanged { old: "[]", new: "[\"extra\"]" }"#,
                Cause::FeaturesChanged {
                    old: "[]".into(),
                    new: r#"["extra"]"#.into(),
                },
            ),
            ("profile", "ProfileConfigurationChanged", Cause::ProfileChanged),
            ("path", "PathToSourceChanged", Cause::SourcePathChanged),
            ("toolchain", "RustcChanged", Cause::ToolchainChanged),
            ("forced", "Forced", Cause::Forced),
            (
                "dependency rebuilt",
                "FsStatusOutdated(StaleDepFingerprint { unit: UnitIndex(1) })",
                Cause::DependencyRebuilt {
                    change: DependencyChange::Stale,
                    dependency: none(),
                    dependency_mtime: None,
                    own_mtime: None,
                },
            ),
            (
                "dependency info",
                "UnitDependencyInfoChanged { unit: UnitIndex(3) }",
                Cause::DependencyRebuilt {
                    change: DependencyChange::FingerprintChanged,
                    dependency: none(),
                    dependency_mtime: None,
                    own_mtime: None,
                },
            ),
            (
                "dependency newer",
                "FsStatusOutdated(StaleDependency { unit: UnitIndex(3), dep_mtime: FileTime { seconds: 5, nanos: 1 }, max_mtime: FileTime { seconds: 1, nanos: 0 } })",
                Cause::DependencyRebuilt {
                    change: DependencyChange::NewerOutput,
                    dependency: none(),
                    dependency_mtime: Some(t(5, 1)),
                    own_mtime: Some(t(1, 0)),
                },
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(Cause::from_dirty_reason(text), want, "{name}");
        }
    }

    #[test]
    fn keeps_unknown_reasons_verbatim() {
        for text in [
            "NothingObvious",
            "LocalLengthsChanged",
            r#"EnvVarsChanged { old: "A", new: "B" }"#,
            "FsStatusOutdated(StaleItem(SomethingNew { path: \"/x\" }))",
            "FsStatusOutdated(Stale)",
            "not { debug",
            // A known name with an unexpected shape.
            "RustflagsChanged { old: 1, new: 2 }",
        ] {
            assert_eq!(
                Cause::from_dirty_reason(text),
                Cause::Other {
                    reason: text.into()
                },
                "{text}"
            );
        }
    }

    #[test]
    fn reads_fingerprint_errors() {
        assert_eq!(
            Cause::from_fingerprint_error(
                "failed to read `/t/.fingerprint/a-0123456789abcdef/lib-a`"
            ),
            Cause::NewUnit {
                fingerprint: "/t/.fingerprint/a-0123456789abcdef/lib-a".into(),
                nearest: None
            }
        );
        assert!(matches!(
            Cause::from_fingerprint_error("internal error: failed to deserialize json"),
            Cause::Other { reason } if reason.ends_with("failed to deserialize json")
        ));
    }

    #[test]
    fn displays_mtimes() {
        assert_eq!(t(1, 0).to_string(), "1970-01-01T00:00:01Z");
        assert_eq!(t(1, 5).to_string(), "1970-01-01T00:00:01.000000005Z");
        assert_eq!(t(1, 5).cargo_display(), "1.000000005s");
        assert_eq!(Mtime::from_cargo_display("1.000000005s"), Some(t(1, 5)));
    }

    #[test]
    fn details_name_the_file_both_mtimes_and_values() {
        let cause = Cause::from_dirty_reason(
            r#"FsStatusOutdated(StaleItem(ChangedFile { reference: "/w/target/dep-lib-a", reference_mtime: FileTime { seconds: 1, nanos: 0 }, stale: "/w/a/src/lib.rs", stale_mtime: FileTime { seconds: 3, nanos: 500000000 } }))"#,
        );
        assert_eq!(
            cause.details(Path::new("/w")),
            "`a/src/lib.rs` (mtime 1970-01-01T00:00:03.500000000Z) is 2.500 s newer than the last build (`target/dep-lib-a`, mtime 1970-01-01T00:00:01Z)"
        );
        let env = Cause::from_dirty_reason(
            r#"EnvVarChanged { name: "V", old_value: None, new_value: Some("x") }"#,
        );
        assert_eq!(
            env.details(Path::new("/")),
            r#"V: (unset) -> "x" (build script's rerun-if-env-changed)"#
        );
    }
}
