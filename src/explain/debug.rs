//! A reader for Rust's `{:?}` output, which is how cargo logs why a unit is dirty:
//! `FsStatusOutdated(StaleItem(ChangedFile { reference: "/t/dep-lib-a", reference_mtime:
//! FileTime { seconds: 1, nanos: 0 }, .. }))`.
//!
//! The syntax is small: strings and chars with Rust escapes, numbers, identifiers, tuples and
//! tuple structs `Name(a, b)`, structs `Name { field: value, .. }`, lists `[a, b]`. No crate reads
//! it (RON is close but wants `Name(field: value)`), so this is a recursive-descent parser of
//! that grammar alone; it turns anything it cannot read into an error, never a guess, and the
//! caller then reports cargo's text verbatim.

/// One value of `{:?}` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A `"string"` or `'c'`, unescaped.
    Str(String),
    /// A number, as written.
    Num(String),
    /// A bare identifier: a unit variant or struct (`None`, `Forced`), `true`, `false`.
    Ident(String),
    /// `Name(a, b)`; an anonymous tuple has an empty name.
    Tuple(String, Vec<Value>),
    /// `Name { a: 1, b: 2 }`; a bare `..` (non-exhaustive) is dropped, and `..: value` (cargo's
    /// compact Debug of targets) kept as the field `..`.
    Struct(String, Vec<(String, Value)>),
    /// `[a, b]`.
    List(Vec<Value>),
}

impl Value {
    /// The field `name` of a struct.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(_, fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// `None` -> `Some(None)`, `Some("x")` -> `Some(Some("x"))`, anything else `None`.
    pub fn as_opt_str(&self) -> Option<Option<&str>> {
        match self {
            Value::Ident(i) if i == "None" => Some(None),
            Value::Tuple(name, items) if name == "Some" && items.len() == 1 => {
                items[0].as_str().map(Some)
            }
            _ => None,
        }
    }

    /// A list of strings.
    pub fn as_str_list(&self) -> Option<Vec<String>> {
        match self {
            Value::List(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => None,
        }
    }

    /// The single item of `Name(item)`.
    pub fn newtype(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Tuple(n, items) if n == name && items.len() == 1 => Some(&items[0]),
            _ => None,
        }
    }

    /// The name of a struct, tuple struct or unit value.
    pub fn name(&self) -> Option<&str> {
        match self {
            Value::Ident(n) | Value::Tuple(n, _) | Value::Struct(n, _) => Some(n),
            _ => None,
        }
    }
}

/// Where `{:?}` text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `{text}` at byte {at}: {what}")]
pub struct DebugSyntaxError {
    pub text: String,
    pub at: usize,
    pub what: &'static str,
}

/// Parses one whole value; trailing text other than whitespace is an error.
pub fn parse(text: &str) -> Result<Value, DebugSyntaxError> {
    let mut p = Parser { s: text, at: 0 };
    let value = p.value()?;
    p.skip_ws();
    if p.at != text.len() {
        return Err(p.error("text after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> DebugSyntaxError {
        DebugSyntaxError {
            text: self.s.to_owned(),
            at: self.at,
            what,
        }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, what: &'static str) -> Result<(), DebugSyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self) -> Result<Value, DebugSyntaxError> {
        self.skip_ws();
        match self.peek() {
            Some('"') => Ok(Value::Str(self.quoted('"')?)),
            Some('\'') => Ok(Value::Str(self.quoted('\'')?)),
            Some('[') => {
                self.at += 1;
                Ok(Value::List(self.items(']')?))
            }
            Some('(') => {
                self.at += 1;
                Ok(Value::Tuple(String::new(), self.items(')')?))
            }
            Some(c) if c.is_ascii_digit() || c == '-' => Ok(Value::Num(self.number())),
            Some(c) if c.is_alphabetic() || c == '_' => {
                let name = self.ident();
                self.skip_ws();
                match self.peek() {
                    Some('(') => {
                        self.at += 1;
                        Ok(Value::Tuple(name, self.items(')')?))
                    }
                    Some('{') => {
                        self.at += 1;
                        Ok(Value::Struct(name, self.fields()?))
                    }
                    _ => Ok(Value::Ident(name)),
                }
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// Comma-separated values up to `close` (already past the opening bracket).
    fn items(&mut self, close: char) -> Result<Vec<Value>, DebugSyntaxError> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value()?);
            if !self.eat(',') {
                self.expect(close, "expected `,` or a closing bracket")?;
                return Ok(items);
            }
        }
    }

    /// `field: value, ...}` (already past `{`); `..` marks a non-exhaustive struct.
    fn fields(&mut self) -> Result<Vec<(String, Value)>, DebugSyntaxError> {
        let mut fields = Vec::new();
        loop {
            if self.eat('}') {
                return Ok(fields);
            }
            self.skip_ws();
            if self.s[self.at..].starts_with("..") {
                self.at += 2;
                // cargo's compact Debug of targets writes `..: lib_target(...)`: kept as `..`.
                if self.eat(':') {
                    fields.push(("..".to_owned(), self.value()?));
                }
            } else {
                let name = self.ident();
                if name.is_empty() {
                    return Err(self.error("expected a field name"));
                }
                self.expect(':', "expected `:` after a field name")?;
                fields.push((name, self.value()?));
            }
            if !self.eat(',') {
                self.expect('}', "expected `,` or `}`")?;
                return Ok(fields);
            }
        }
    }

    /// An identifier, or a path like `std::path::PathBuf` (a single `:` ends it: `field: 1`).
    fn ident(&mut self) -> String {
        let start = self.at;
        loop {
            match self.peek() {
                Some(c) if c.is_alphanumeric() || c == '_' => self.at += c.len_utf8(),
                Some(':') if self.s[self.at..].starts_with("::") => self.at += 2,
                _ => break,
            }
        }
        self.s[start..self.at].to_owned()
    }

    fn number(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_'))
        {
            self.at += 1;
        }
        self.s[start..self.at].to_owned()
    }

    /// A string or char literal with Rust's Debug escapes (`\"`, `\\`, `\n`, `\u{..}`, ...).
    fn quoted(&mut self, quote: char) -> Result<String, DebugSyntaxError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some(c) if c == quote => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, DebugSyntaxError> {
        Ok(match self.bump() {
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('0') => '\0',
            Some(c @ ('\\' | '"' | '\'')) => c,
            Some('x') => {
                let hex = self.s.get(self.at..self.at + 2).unwrap_or("");
                let byte =
                    u8::from_str_radix(hex, 16).map_err(|_| self.error("bad `\\x` escape"))?;
                self.at += 2;
                // A non-UTF-8 byte of a path: keep it visible rather than guess an encoding.
                if byte.is_ascii() {
                    byte as char
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            }
            Some('u') => {
                self.expect('{', "bad `\\u` escape")?;
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                    self.at += 1;
                }
                let code = u32::from_str_radix(&self.s[start..self.at], 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.error("bad `\\u` escape"))?;
                self.expect('}', "bad `\\u` escape")?;
                code
            }
            _ => return Err(self.error("unknown escape")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }
    fn n(v: &str) -> Value {
        Value::Num(v.into())
    }

    #[test]
    fn reads_each_form() {
        let cases: &[(&str, &str, Value)] = &[
            ("unit variant", "Forced", Value::Ident("Forced".into())),
            ("string escapes", r#""a\"b\\c\n\u{e9}""#, s("a\"b\\c\né")),
            ("char", r"'\''", s("'")),
            ("number", "1796092395", n("1796092395")),
            (
                "newtype",
                "UnitIndex(7)",
                Value::Tuple("UnitIndex".into(), vec![n("7")]),
            ),
            (
                "option",
                r#"Some("x")"#,
                Value::Tuple("Some".into(), vec![s("x")]),
            ),
            (
                "list",
                r#"["--cfg", "foo"]"#,
                Value::List(vec![s("--cfg"), s("foo")]),
            ),
            ("empty list", "[]", Value::List(vec![])),
            (
                "struct",
                "FileTime { seconds: 1, nanos: 0 }",
                Value::Struct(
                    "FileTime".into(),
                    vec![("seconds".into(), n("1")), ("nanos".into(), n("0"))],
                ),
            ),
            (
                "non-exhaustive struct",
                r#"TargetInner { name: "app", ..: with_path("/a.rs", Edition2021) }"#,
                Value::Struct(
                    "TargetInner".into(),
                    vec![
                        ("name".into(), s("app")),
                        (
                            "..".into(),
                            Value::Tuple(
                                "with_path".into(),
                                vec![s("/a.rs"), Value::Ident("Edition2021".into())],
                            ),
                        ),
                    ],
                ),
            ),
            (
                "bare non-exhaustive marker",
                "S { a: 1, .. }",
                Value::Struct("S".into(), vec![("a".into(), n("1"))]),
            ),
            ("path with a non-UTF-8 byte", r#""/a\xff""#, s("/a\u{fffd}")),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(want), "{name}: {text}");
        }
    }

    #[test]
    fn reads_a_real_dirty_reason() {
        // Captured from cargo 1.95 and 1.97 (same text).
        let text = r#"FsStatusOutdated(StaleItem(ChangedFile { reference: "/w/target/debug/.fingerprint/applib-01d67ce5cf22b7d3/dep-lib-applib", reference_mtime: FileTime { seconds: 1796092395, nanos: 557716768 }, stale: "/w/applib/src/lib.rs", stale_mtime: FileTime { seconds: 1796092395, nanos: 725907313 } }))"#;
        let v = parse(text).unwrap();
        let item = v
            .newtype("FsStatusOutdated")
            .and_then(|v| v.newtype("StaleItem"))
            .unwrap();
        assert_eq!(item.name(), Some("ChangedFile"));
        assert_eq!(
            item.field("stale").and_then(Value::as_str),
            Some("/w/applib/src/lib.rs")
        );
        let mtime = item.field("stale_mtime").unwrap();
        assert_eq!(
            mtime.field("nanos").and_then(Value::as_u64),
            Some(725907313)
        );
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        let cases = [
            ("unterminated", r#"Foo { a: "x }"#),
            ("missing colon", "Foo { a 1 }"),
            ("trailing text", "Foo bar"),
            ("unknown escape", r#""\q""#),
            ("empty", ""),
        ];
        for (name, text) in cases {
            assert!(parse(text).is_err(), "{name}: {text} parsed");
        }
    }
}
