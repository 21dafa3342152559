//! Pure decisions, no processes and no file system: which names belong to a unit, where its
//! temporary out-dir goes, and how rustc's artifact notifications and dep-info files are rewritten.

use std::path::{Path, PathBuf};

use crate::args::Unit;

/// Prefix of every name this wrapper creates in an out-dir; nothing with it survives a compile.
pub const TMP_PREFIX: &str = ".nixcache-tmp-";

/// The start of rustc's artifact notification (`--json=artifacts`), the only line we touch.
pub const ARTIFACT_PREFIX: &[u8] = br#"{"$message_type":"artifact","artifact":""#;

/// The unit's output stem: `crate_name` + `extra-filename` (e.g. `foo-1a2b3c4d`).
pub fn stem(unit: &Unit) -> String {
    format!(
        "{}{}",
        unit.crate_name.as_deref().unwrap_or(""),
        unit.extra_filename
    )
}

/// The temporary out-dir for the redirect strategy: inside the real out-dir (same file system, so
/// moves are renames) and named after the unit, so it is stable across runs (a chained sccache
/// sees the same arguments every time) and two units never share one.
///
/// `None` when the stem cannot be one file name: `-C extra-filename` is free text, and one
/// holding `/` (say `/../../x`) would put the directory, which is removed before and after
/// rustc runs, outside the out-dir. Such a unit is compiled in place.
pub fn tmp_dir(unit: &Unit) -> Option<PathBuf> {
    let name = format!("{TMP_PREFIX}{}", stem(unit));
    let plain = !name.contains(['/', '\0']) && name.len() <= 255;
    plain.then(|| unit.out_dir.join(name))
}

/// Whether `file_name` in the out-dir is one of this unit's outputs: `STEM`, `libSTEM`, or either
/// followed by `.` and anything (`.rlib`, `.rmeta`, `.d`, `.so`, `.STEM.cgu.rcgu.dwo`, ...).
/// Without an extra-filename the stem is just the crate name, which still names only this unit
/// within cargo's out-dirs.
pub fn owns_output(stem: &str, file_name: &str) -> bool {
    if stem.is_empty() {
        return false;
    }
    let rest = file_name
        .strip_prefix("lib")
        .and_then(|r| r.strip_prefix(stem));
    [file_name.strip_prefix(stem), rest]
        .into_iter()
        .flatten()
        .any(|r| r.is_empty() || r.starts_with('.'))
}

/// A rewritten artifact notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLine {
    /// The announced file's name; it lies in the temporary out-dir.
    pub file_name: String,
    /// The same line naming `out_dir/file_name` instead.
    pub line: Vec<u8>,
}

/// Rewrites `{"$message_type":"artifact","artifact":"PATH","emit":"..."}` to name the file in
/// `out_dir`. Only the file name of PATH is kept, so a replayed notification naming an older temp
/// dir (sccache replays stored stderr) is fixed too. `None` for any other line, or one we cannot
/// read (escapes other than `\"`, `\\`, `\/`; a non-UTF-8 out-dir); those pass through unchanged.
pub fn rewrite_artifact_line(line: &[u8], out_dir: &Path) -> Option<ArtifactLine> {
    let rest = line.strip_prefix(ARTIFACT_PREFIX)?;
    let (path, tail) = json_string_body(rest)?;
    let file_name = path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())?
        .to_owned();
    let new_path = format!("{}/{file_name}", out_dir.to_str()?.trim_end_matches('/'));
    let mut out = Vec::with_capacity(line.len() + new_path.len());
    out.extend_from_slice(ARTIFACT_PREFIX);
    json_escape_into(&new_path, &mut out);
    out.extend_from_slice(tail);
    Some(ArtifactLine {
        file_name,
        line: out,
    })
}

/// Decodes a JSON string body up to its closing quote; returns it and the bytes from that quote on.
fn json_string_body(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match *bytes.get(i)? {
            b'"' => return Some((String::from_utf8(out).ok()?, &bytes[i..])),
            b'\\' => {
                let c = *bytes.get(i + 1)?;
                matches!(c, b'"' | b'\\' | b'/').then(|| out.push(c))?;
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn json_escape_into(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

/// Gives a dep-info (`.d`) file written in `from` the real out-dir `to` back. Make-style escaping
/// (rustc writes a space as `\ `) is applied to both sides, so paths with spaces work too.
pub fn rewrite_dep_info(content: &[u8], from: &Path, to: &Path) -> Vec<u8> {
    let esc = |p: &Path| {
        p.as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(Vec::new(), |mut v, &b| {
                if b == b' ' {
                    v.push(b'\\');
                }
                v.push(b);
                v
            })
    };
    replace_all(content, &esc(from), &esc(to))
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if !from.is_empty() && hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_output_cases() {
        let cases: &[(&str, bool)] = &[
            ("libfoo-abc.rlib", true),
            ("libfoo-abc.rmeta", true),
            ("foo-abc.d", true),
            ("foo-abc", true),
            ("libfoo-abc.so", true),
            ("foo-abc.foo.1234-cgu.0.rcgu.dwo", true),
            ("foo-abcd.d", false),
            ("libfoo-abcd.rlib", false),
            ("foo_bar-abc.d", false),
            ("libfoo", false),
            ("bar-abc.d", false),
        ];
        for (name, want) in cases {
            assert_eq!(owns_output("foo-abc", name), *want, "{name}");
        }
        assert!(!owns_output("", "anything"));
    }

    #[test]
    fn tmp_dir_is_inside_out_dir_and_named_after_the_unit() {
        let unit = Unit {
            out_dir: "/t/debug/deps".into(),
            crate_name: Some("foo".into()),
            extra_filename: "-abc".into(),
            split_debuginfo: false,
        };
        assert_eq!(
            tmp_dir(&unit).unwrap(),
            Path::new("/t/debug/deps/.nixcache-tmp-foo-abc")
        );
        for extra in ["/../../x", "-a/b", "-\0"] {
            let odd = Unit {
                extra_filename: extra.into(),
                ..unit.clone()
            };
            assert_eq!(tmp_dir(&odd), None, "{extra:?}");
        }
    }

    #[test]
    fn artifact_line_cases() {
        let out = Path::new("/t/deps");
        let line = br#"{"$message_type":"artifact","artifact":"/t/deps/.nixcache-tmp-foo-h/libfoo-h.rmeta","emit":"metadata"}"#;
        let got = rewrite_artifact_line(&[&line[..], b"\n"].concat(), out).unwrap();
        assert_eq!(got.file_name, "libfoo-h.rmeta");
        assert_eq!(
            String::from_utf8(got.line).unwrap(),
            "{\"$message_type\":\"artifact\",\"artifact\":\"/t/deps/libfoo-h.rmeta\",\"emit\":\"metadata\"}\n"
        );
        // A replayed line naming another directory still gets the real out-dir.
        let replay =
            br#"{"$message_type":"artifact","artifact":"/old\/x/libfoo-h.rlib","emit":"link"}"#;
        let got = rewrite_artifact_line(replay, out).unwrap();
        assert_eq!(got.file_name, "libfoo-h.rlib");
        assert!(got
            .line
            .ends_with(br#""/t/deps/libfoo-h.rlib","emit":"link"}"#));
        // Out-dirs needing escapes are escaped.
        let got = rewrite_artifact_line(line, Path::new("/t/a\"b")).unwrap();
        assert!(got.line.windows(12).any(|w| w == br#"/t/a\"b/libf"#));
        // Everything else is not ours.
        for other in [
            &br#"{"$message_type":"diagnostic","message":"x"}"#[..],
            b"plain text",
            br#"{"$message_type":"artifact","artifact":"/t/\u0041","emit":"x"}"#,
            br#"{"$message_type":"artifact","artifact":"/t/unterminated"#,
            b"",
        ] {
            assert_eq!(
                rewrite_artifact_line(other, out),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn dep_info_gets_the_real_out_dir_back() {
        let from = Path::new("/t/my deps/.nixcache-tmp-foo-h");
        let to = Path::new("/t/my deps");
        let d = b"/t/my\\ deps/.nixcache-tmp-foo-h/foo-h.d: src/lib.rs\n\nsrc/lib.rs:\n";
        assert_eq!(
            rewrite_dep_info(d, from, to),
            b"/t/my\\ deps/foo-h.d: src/lib.rs\n\nsrc/lib.rs:\n"
        );
        assert_eq!(rewrite_dep_info(b"no match", from, to), b"no match");
    }
}
