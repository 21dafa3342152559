//! The command line cargo hands a `RUSTC_WRAPPER`: `WRAPPER [WORKSPACE_WRAPPER] RUSTC ARGS...`.
//!
//! We never need to know which leading word is rustc and which a workspace wrapper
//! (`clippy-driver`, a project's own `RUSTC_WORKSPACE_WRAPPER`): the flags we care about cannot be
//! mistaken for a program path. Arguments may come in `@argfile`s (cargo switches to one when the
//! command line is too long; rustc reads it one argument per line), so the words are kept as
//! [`Word`]s that remember where they came from, which lets a rewrite put them back the same way.
//!
//! [`classify`] gives the three-way outcome: a compile we take care of, or a call (probe,
//! `--version`, `-vV`, `--print`) we pass through untouched.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Where one rustc argument came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// A word of argv itself.
    Arg(OsString),
    /// A whole `@path` argument: the file's lines, one argument each.
    File { path: PathBuf, lines: Vec<String> },
}

/// Errors reading the command line.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("failed to read argument file `{path}`")]
    ReadArgfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("argument file `{path}` is not UTF-8")]
    ArgfileNotUtf8 { path: PathBuf },
    #[error("flag `{flag}` has no value")]
    MissingValue { flag: &'static str },
}

/// Reads `@argfile`s (not `@shell:`, which needs a nightly flag and would need shell quoting).
pub fn read_words(args: impl IntoIterator<Item = OsString>) -> Result<Vec<Word>, ArgsError> {
    args.into_iter()
        .map(|arg| match argfile_path(&arg) {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|source| ArgsError::ReadArgfile {
                    path: path.clone(),
                    source,
                })?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| ArgsError::ArgfileNotUtf8 { path: path.clone() })?;
                let lines = text.lines().map(str::to_owned).collect();
                Ok(Word::File { path, lines })
            }
            None => Ok(Word::Arg(arg)),
        })
        .collect()
}

fn argfile_path(arg: &OsStr) -> Option<PathBuf> {
    let s = arg.to_str()?;
    let path = s.strip_prefix('@')?;
    (!path.starts_with("shell:") && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Every argument in order, argfiles expanded (borrowed, no allocation per word).
pub fn flatten(words: &[Word]) -> impl Iterator<Item = &OsStr> {
    words
        .iter()
        .flat_map(|w| -> Box<dyn Iterator<Item = &OsStr>> {
            match w {
                Word::Arg(a) => Box::new(std::iter::once(a.as_os_str())),
                Word::File { lines, .. } => Box::new(lines.iter().map(|l| OsStr::new(l.as_str()))),
            }
        })
}

/// What a compile writes and where: everything the strategies need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub out_dir: PathBuf,
    pub crate_name: Option<String>,
    /// `-C extra-filename`: the per-unit hash suffix cargo gives every output name.
    pub extra_filename: String,
    /// `-C split-debuginfo` other than `off`: rustc then writes `.dwo` files and binaries name them.
    pub split_debuginfo: bool,
}

/// The three-way outcome for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A compile with `--out-dir`: its outputs may be read-only symlinks to deal with.
    Compile(Unit),
    /// Anything else (probes, `-vV`, `--version`, `--print`): run the next program unchanged.
    PassThrough,
}

/// Flags that take a value and that we read. Sorted; `flag_table_is_sorted` checks it.
const VALUE_FLAGS: &[(&str, Flag)] = &[
    ("--codegen", Flag::Codegen),
    ("--crate-name", Flag::CrateName),
    ("--out-dir", Flag::OutDir),
    ("-C", Flag::Codegen),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Codegen,
    CrateName,
    OutDir,
}

fn lookup(flag: &str) -> Option<Flag> {
    VALUE_FLAGS
        .binary_search_by(|(name, _)| name.cmp(&flag))
        .ok()
        .map(|i| VALUE_FLAGS[i].1)
}

/// Splits `--flag=value` / `-Cvalue` / `--flag` into the flag and its inline value, if any.
fn split_flag(arg: &str) -> Option<(Flag, Option<&str>)> {
    if let Some(f) = lookup(arg) {
        return Some((f, None));
    }
    if let Some((name, value)) = arg.split_once('=') {
        if name.starts_with("--") {
            return lookup(name).map(|f| (f, Some(value)));
        }
    }
    arg.strip_prefix("-C")
        .filter(|v| !v.is_empty())
        .map(|v| (Flag::Codegen, Some(v)))
}

/// Decides what this call is. `args` are all words after our own argv\[0\].
pub fn classify(words: &[Word]) -> Result<Call, ArgsError> {
    let mut out_dir = None;
    let mut crate_name = None;
    let mut extra_filename = String::new();
    let mut split_debuginfo = false;
    let mut it = flatten(words);
    while let Some(arg) = it.next() {
        // Non-UTF-8 words are never one of our flags; paths are taken as OsStr below.
        let Some(s) = arg.to_str() else { continue };
        let Some((flag, inline)) = split_flag(s) else {
            continue;
        };
        let value: &OsStr = match inline {
            Some(v) => OsStr::new(v),
            None => it.next().ok_or(ArgsError::MissingValue {
                flag: flag_name(flag),
            })?,
        };
        match flag {
            Flag::OutDir => out_dir = Some(PathBuf::from(value)),
            Flag::CrateName => crate_name = value.to_str().map(str::to_owned),
            Flag::Codegen => {
                let Some(v) = value.to_str() else { continue };
                if let Some(x) = v.strip_prefix("extra-filename=") {
                    extra_filename = x.to_owned();
                } else if let Some(x) = v.strip_prefix("split-debuginfo=") {
                    split_debuginfo = x != "off";
                }
            }
        }
    }
    Ok(match out_dir {
        Some(out_dir) => Call::Compile(Unit {
            out_dir,
            crate_name,
            extra_filename,
            split_debuginfo,
        }),
        None => Call::PassThrough,
    })
}

fn flag_name(flag: Flag) -> &'static str {
    VALUE_FLAGS
        .iter()
        .find(|(_, f)| *f == flag)
        .map_or("?", |(n, _)| n)
}

/// Replaces the value of `--out-dir` with `new`, keeping each word where it was (an argfile's
/// lines stay in that [`Word::File`]; the caller writes it out again).
pub fn replace_out_dir(words: &[Word], new: &Path) -> Vec<Word> {
    let new_str = new.to_string_lossy();
    let mut pending = false;
    let mut fix = |arg: &OsStr| -> Option<OsString> {
        if pending {
            pending = false;
            return Some(new.as_os_str().to_owned());
        }
        match arg.to_str() {
            Some("--out-dir") => {
                pending = true;
                None
            }
            Some(s) if s.starts_with("--out-dir=") => Some(format!("--out-dir={new_str}").into()),
            _ => None,
        }
    };
    words
        .iter()
        .map(|w| match w {
            Word::Arg(a) => Word::Arg(fix(a).unwrap_or_else(|| a.clone())),
            Word::File { path, lines } => Word::File {
                path: path.clone(),
                lines: lines
                    .iter()
                    .map(|l| match fix(OsStr::new(l)) {
                        Some(n) => n.to_string_lossy().into_owned(),
                        None => l.clone(),
                    })
                    .collect(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<Word> {
        args.iter().map(|a| Word::Arg((*a).into())).collect()
    }

    #[test]
    fn flag_table_is_sorted() {
        assert!(VALUE_FLAGS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn classify_cases() {
        let unit = |out: &str, name: Option<&str>, extra: &str, split: bool| {
            Call::Compile(Unit {
                out_dir: out.into(),
                crate_name: name.map(str::to_owned),
                extra_filename: extra.into(),
                split_debuginfo: split,
            })
        };
        let cases: &[(&str, &[&str], Call)] = &[
            ("version probe", &["rustc", "-vV"], Call::PassThrough),
            (
                "build script --version",
                &["rustc", "--version"],
                Call::PassThrough,
            ),
            (
                "cargo's file-names probe",
                &[
                    "rustc",
                    "-",
                    "--crate-name",
                    "___",
                    "--print=file-names",
                    "--crate-type",
                    "bin",
                ],
                Call::PassThrough,
            ),
            (
                "separate values",
                &[
                    "rustc",
                    "--crate-name",
                    "foo",
                    "-C",
                    "extra-filename=-abc",
                    "--out-dir",
                    "/t/deps",
                ],
                unit("/t/deps", Some("foo"), "-abc", false),
            ),
            (
                "joined values",
                &[
                    "rustc",
                    "--crate-name=foo",
                    "-Cextra-filename=-abc",
                    "--out-dir=/t/deps",
                ],
                unit("/t/deps", Some("foo"), "-abc", false),
            ),
            (
                "workspace wrapper first, --codegen spelling",
                &[
                    "clippy-driver",
                    "rustc",
                    "--codegen=extra-filename=-x",
                    "--out-dir",
                    "d",
                ],
                unit("d", None, "-x", false),
            ),
            (
                "split debuginfo unpacked",
                &["rustc", "--out-dir", "d", "-C", "split-debuginfo=unpacked"],
                unit("d", None, "", true),
            ),
            (
                "split debuginfo off",
                &["rustc", "--out-dir", "d", "-C", "split-debuginfo=off"],
                unit("d", None, "", false),
            ),
        ];
        for (name, args, want) in cases {
            assert_eq!(&classify(&words(args)).unwrap(), want, "case {name}");
        }
    }

    #[test]
    fn missing_value_is_an_error() {
        let err = classify(&words(&["rustc", "--out-dir"])).unwrap_err();
        assert!(
            matches!(err, ArgsError::MissingValue { flag: "--out-dir" }),
            "{err:?}"
        );
    }

    #[test]
    fn argfile_is_read_and_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("args");
        std::fs::write(
            &file,
            "--crate-name\nfoo\n--out-dir\n/t/deps\n-Cextra-filename=-h\n",
        )
        .unwrap();
        let argfile = format!("@{}", file.display());
        let ws = read_words(["rustc".into(), argfile.into(), "--cfg=x".into()]).unwrap();
        assert_eq!(
            classify(&ws).unwrap(),
            Call::Compile(Unit {
                out_dir: "/t/deps".into(),
                crate_name: Some("foo".into()),
                extra_filename: "-h".into(),
                split_debuginfo: false,
            })
        );
        let rewritten = replace_out_dir(&ws, Path::new("/t/deps/.tmp"));
        assert_eq!(
            rewritten[1],
            Word::File {
                path: file.clone(),
                lines: [
                    "--crate-name",
                    "foo",
                    "--out-dir",
                    "/t/deps/.tmp",
                    "-Cextra-filename=-h"
                ]
                .map(String::from)
                .to_vec(),
            }
        );
        assert_eq!(rewritten[2], Word::Arg("--cfg=x".into()));
    }

    #[test]
    fn replace_out_dir_joined_form() {
        let out = replace_out_dir(&words(&["rustc", "--out-dir=/a", "x"]), Path::new("/b"));
        assert_eq!(out, words(&["rustc", "--out-dir=/b", "x"]));
    }

    #[test]
    fn unreadable_argfile_names_the_path() {
        let err = read_words(["@/nonexistent/argfile".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to read argument file `/nonexistent/argfile`"
        );
    }
}
