//! Where the store is ([`StoreDir`]) and what a store path is ([`StorePath`]).
//!
//! Store paths arrive as strings from many places (command lines, symlink targets, bytes found by
//! the reference scanner). They are parsed here, once, into typed values; code downstream never
//! re-checks strings. The rules are Nix's own, so a path accepted here is one Nix would accept, and
//! a path handed to the archive writer cannot climb out of its store path with `..`.

use crate::fault::{Fault, HasFault};
use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::nixbase32;

/// The store directory used when neither `--store-dir`, `NIX_STORE` nor `NIX_STORE_DIR` says
/// otherwise. This is the only place in cargo-nixcache that may spell it out: everything else gets
/// it from a [`StoreDir`], so non-default stores (`/tmp/store`, test stores) just work.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Environment variable Nix sets inside every build to the store directory.
pub const ENV_NIX_STORE: &str = "NIX_STORE";

/// Environment variable Nix itself reads to relocate the store.
pub const ENV_NIX_STORE_DIR: &str = "NIX_STORE_DIR";

/// Bytes of the hash part of a store path: a truncated sha256, 160 bits.
pub const DIGEST_LEN: usize = 20;

/// Characters of the hash part in a base name.
pub const HASH_PART_LEN: usize = nixbase32::encoded_len(DIGEST_LEN);

/// Longest name Nix allows (255-byte file name limit minus hash and dash, with room to spare).
pub const MAX_NAME_LEN: usize = 211;

/// Which bytes may appear in a store path name: `[A-Za-z0-9+-._?=]`, as in Nix.
const NAME_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] =
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_' | b'?' | b'=');
        byte += 1;
    }
    table
};

/// Whether `byte` may appear in a store path name; shared with the reference scanner so both
/// agree on where a name ends.
#[inline]
pub const fn is_name_char(byte: u8) -> bool {
    NAME_CHARS[byte as usize]
}

/// Why a store directory or store path was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the Nix store directory `{path}` is not an absolute path; pass an absolute --store-dir or NIX_STORE_DIR")]
    StoreDirNotAbsolute { path: PathBuf },

    #[error(
        "the Nix store directory `{path}` contains a `.` or `..` component; pass it in normal form"
    )]
    StoreDirNotNormal { path: PathBuf },

    #[error(
        "`/` cannot be the Nix store directory; pass the directory that holds the store paths"
    )]
    StoreDirIsRoot,

    #[error("`{path}` is not inside the Nix store `{store_dir}`; pass --store-dir or set NIX_STORE_DIR if your store lives elsewhere")]
    NotInStore { path: PathBuf, store_dir: PathBuf },

    #[error("`{path}` contains a `.` or `..` component; write store paths in normal form (`..` could escape the store path)")]
    NotNormal { path: PathBuf },

    #[error("`{base_name}` is not a valid store path base name ({reason}); expected `<32-char nixbase32 hash>-<name>`")]
    InvalidBaseName {
        base_name: String,
        reason: BaseNameError,
    },
}

impl HasFault for StoreError {
    /// Store paths the user typed (`--store-dir`, `--forbid`, `--out`); input that names a bad
    /// one is classified by its own error type.
    fn fault(&self) -> Fault {
        Fault::Usage
    }
}

/// What exactly is wrong with a base name; carried by [`StoreError::InvalidBaseName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BaseNameError {
    #[error("too short")]
    TooShort,
    #[error("no `-` after the hash")]
    MissingDash,
    #[error("bad hash: {0}")]
    Hash(nixbase32::DecodeError),
    #[error("empty name")]
    EmptyName,
    #[error("name is {len} characters, more than {MAX_NAME_LEN}")]
    NameTooLong { len: usize },
    #[error("name starts with `.`")]
    NameStartsWithDot,
    #[error("name contains {} at position {index}; allowed are A-Z a-z 0-9 + - . _ ? =", describe_byte(*byte))]
    InvalidNameChar { index: usize, byte: u8 },
}

fn describe_byte(byte: u8) -> String {
    format!("`{}`", char::from(byte).escape_default())
}

/// The absolute, normalized store directory (no trailing slash), e.g. the default
/// [`DEFAULT_STORE_DIR`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreDir {
    path: PathBuf,
}

impl StoreDir {
    /// Validates `path`: absolute, not `/`, no `.` or `..` components. Redundant slashes (including
    /// a trailing one) are dropped.
    pub fn new(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if !path.is_absolute() {
            return Err(StoreError::StoreDirNotAbsolute {
                path: path.to_owned(),
            });
        }
        // `Path::components` silently drops interior `.`, so look at the raw segments.
        if has_dot_segment(path.as_os_str()) {
            return Err(StoreError::StoreDirNotNormal {
                path: path.to_owned(),
            });
        }
        let normal: PathBuf = path.components().collect();
        if normal.parent().is_none() {
            return Err(StoreError::StoreDirIsRoot);
        }
        Ok(StoreDir { path: normal })
    }

    /// The store directory for this process: `flag` (`--store-dir`) if given, else `NIX_STORE`
    /// (set inside Nix builds), else `NIX_STORE_DIR`, else [`DEFAULT_STORE_DIR`].
    pub fn resolve(flag: Option<&Path>) -> Result<Self, StoreError> {
        Self::resolve_from(
            flag,
            std::env::var_os(ENV_NIX_STORE).as_deref(),
            std::env::var_os(ENV_NIX_STORE_DIR).as_deref(),
        )
    }

    /// [`StoreDir::resolve`] with the environment passed in, so the precedence is testable without
    /// touching the process environment. Empty values count as unset, as in most shells' usage.
    pub fn resolve_from(
        flag: Option<&Path>,
        nix_store: Option<&OsStr>,
        nix_store_dir: Option<&OsStr>,
    ) -> Result<Self, StoreError> {
        let from_env = [nix_store, nix_store_dir]
            .into_iter()
            .flatten()
            .find(|v| !v.is_empty());
        let chosen = flag
            .or(from_env.map(Path::new))
            .unwrap_or(Path::new(DEFAULT_STORE_DIR));
        Self::new(chosen)
    }

    pub fn as_path(&self) -> &Path {
        &self.path
    }

    /// `<store dir>/<base name>`.
    pub fn to_absolute(&self, store_path: &StorePath) -> PathBuf {
        self.path.join(store_path.to_string())
    }

    /// Splits an absolute path into the store path it lies in and the sub-path inside it (empty for
    /// the store path itself). Rejects paths outside the store, malformed base names, and any `.`
    /// or `..` component, so the result can be rejoined without escaping the store path.
    pub fn parse(&self, path: &Path) -> Result<(StorePath, PathBuf), StoreError> {
        if has_dot_segment(path.as_os_str()) {
            return Err(StoreError::NotNormal {
                path: path.to_owned(),
            });
        }
        let not_in_store = || StoreError::NotInStore {
            path: path.to_owned(),
            store_dir: self.path.clone(),
        };
        // Component-wise, so `/s//t/x` is inside store dir `/s/t` but `/s/t2/x` is not.
        let rest = path.strip_prefix(&self.path).map_err(|_| not_in_store())?;
        let mut components = rest.components();
        let base_name = match components.next() {
            Some(Component::Normal(name)) => name,
            _ => return Err(not_in_store()),
        };
        let store_path = StorePath::from_base_name_bytes(base_name.as_bytes())?;
        Ok((store_path, components.as_path().to_owned()))
    }
}

impl fmt::Display for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.display().fmt(f)
    }
}

/// Whether any `/`-separated segment of `path` is `.` or `..`.
fn has_dot_segment(path: &OsStr) -> bool {
    path.as_bytes()
        .split(|&b| b == b'/')
        .any(|segment| segment == b"." || segment == b"..")
}

/// A store path, independent of where the store is: the 20-byte digest and the name, both
/// validated. Renders (via `Display`) as its base name `<hash part>-<name>`.
///
/// Ordered by base name, so sorted lists read like `ls` of the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StorePath {
    digest: [u8; DIGEST_LEN],
    name: String,
}

impl StorePath {
    /// Parses `<32 nixbase32 chars>-<name>`.
    pub fn from_base_name(base_name: &str) -> Result<Self, StoreError> {
        Self::from_base_name_bytes(base_name.as_bytes())
    }

    /// [`StorePath::from_base_name`] for raw bytes (file names, scanned file contents).
    pub fn from_base_name_bytes(base_name: &[u8]) -> Result<Self, StoreError> {
        Self::split_base_name(base_name).map_err(|reason| StoreError::InvalidBaseName {
            base_name: String::from_utf8_lossy(base_name).into_owned(),
            reason,
        })
    }

    fn split_base_name(base_name: &[u8]) -> Result<Self, BaseNameError> {
        if base_name.len() < HASH_PART_LEN + 2 {
            return Err(match base_name.get(HASH_PART_LEN) {
                Some(b'-') => BaseNameError::EmptyName,
                _ => BaseNameError::TooShort,
            });
        }
        let (hash, rest) = base_name.split_at(HASH_PART_LEN);
        let digest = nixbase32::decode_fixed(hash).map_err(BaseNameError::Hash)?;
        let name = rest.strip_prefix(b"-").ok_or(BaseNameError::MissingDash)?;
        validate_name(name)?;
        let name = String::from_utf8(name.to_vec()).expect("validated names are ASCII");
        Ok(StorePath { digest, name })
    }

    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.digest
    }

    fn hash_part_bytes(&self) -> [u8; HASH_PART_LEN] {
        let mut out = [0; HASH_PART_LEN];
        nixbase32::encode_into(&self.digest, &mut out);
        out
    }
}

fn validate_name(name: &[u8]) -> Result<(), BaseNameError> {
    match name {
        [] => Err(BaseNameError::EmptyName),
        _ if name.len() > MAX_NAME_LEN => Err(BaseNameError::NameTooLong { len: name.len() }),
        // Also rules out `.` and `..`, which would make the base name a path component trick.
        [b'.', ..] => Err(BaseNameError::NameStartsWithDot),
        _ => match name.iter().position(|&b| !is_name_char(b)) {
            Some(index) => Err(BaseNameError::InvalidNameChar {
                index,
                byte: name[index],
            }),
            None => Ok(()),
        },
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = self.hash_part_bytes();
        let hash = std::str::from_utf8(&hash).expect("nixbase32 is ASCII");
        write!(f, "{hash}-{}", self.name)
    }
}

impl Ord for StorePath {
    fn cmp(&self, other: &Self) -> Ordering {
        // Hash parts have a fixed length, so comparing (hash part, name) is comparing base names.
        // The digest bytes themselves would sort differently: nixbase32 is reversed.
        self.hash_part_bytes()
            .cmp(&other.hash_part_bytes())
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for StorePath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "00bgd045z0d4icpbc2yyz4gx48ak44la";

    fn store(dir: &str) -> StoreDir {
        StoreDir::new(dir).unwrap()
    }

    fn sp(base_name: &str) -> StorePath {
        StorePath::from_base_name(base_name).unwrap()
    }

    #[test]
    fn store_dir_new() {
        let ok: &[(&str, &str, &str)] = &[
            ("plain", "/nix/store", "/nix/store"),
            ("trailing slash dropped", "/nix/store/", "/nix/store"),
            ("double slashes collapsed", "//nix//store", "/nix/store"),
            ("elsewhere", "/tmp/store", "/tmp/store"),
        ];
        for (name, input, want) in ok {
            assert_eq!(store(input).as_path(), Path::new(want), "{name}");
        }
        let bad: &[(&str, &str, StoreError)] = &[
            (
                "relative",
                "nix/store",
                StoreError::StoreDirNotAbsolute {
                    path: "nix/store".into(),
                },
            ),
            (
                "empty",
                "",
                StoreError::StoreDirNotAbsolute { path: "".into() },
            ),
            ("root", "/", StoreError::StoreDirIsRoot),
            ("root twice", "//", StoreError::StoreDirIsRoot),
            (
                "dot",
                "/nix/./store",
                StoreError::StoreDirNotNormal {
                    path: "/nix/./store".into(),
                },
            ),
            (
                "dot dot",
                "/nix/../store",
                StoreError::StoreDirNotNormal {
                    path: "/nix/../store".into(),
                },
            ),
            (
                "trailing dot",
                "/nix/store/.",
                StoreError::StoreDirNotNormal {
                    path: "/nix/store/.".into(),
                },
            ),
        ];
        for (name, input, err) in bad {
            assert_eq!(StoreDir::new(input).as_ref(), Err(err), "{name}");
        }
    }

    #[test]
    fn store_dir_resolve_precedence() {
        let os = |s: &'static str| Some(OsStr::new(s));
        type Case = (
            &'static str,
            Option<&'static str>,
            Option<&'static OsStr>,
            Option<&'static OsStr>,
            &'static str,
        );
        let cases: &[Case] = &[
            ("nothing set: default", None, None, None, DEFAULT_STORE_DIR),
            (
                "flag wins",
                Some("/flag"),
                os("/nix-store"),
                os("/nix-store-dir"),
                "/flag",
            ),
            (
                "NIX_STORE over NIX_STORE_DIR",
                None,
                os("/nix-store"),
                os("/nix-store-dir"),
                "/nix-store",
            ),
            (
                "NIX_STORE_DIR alone",
                None,
                None,
                os("/nix-store-dir"),
                "/nix-store-dir",
            ),
            (
                "empty NIX_STORE is unset",
                None,
                os(""),
                os("/nix-store-dir"),
                "/nix-store-dir",
            ),
            (
                "both empty: default",
                None,
                os(""),
                os(""),
                DEFAULT_STORE_DIR,
            ),
        ];
        for (name, flag, nix_store, nix_store_dir, want) in cases {
            let got =
                StoreDir::resolve_from(flag.map(Path::new), *nix_store, *nix_store_dir).unwrap();
            assert_eq!(got.as_path(), Path::new(want), "{name}");
        }
        assert_eq!(
            StoreDir::resolve_from(None, os("relative"), None),
            Err(StoreError::StoreDirNotAbsolute {
                path: "relative".into()
            }),
            "a bad environment value is reported, not skipped"
        );
    }

    #[test]
    fn base_names() {
        let p = sp(&format!("{HASH}-net-tools-1.60_p20170221182432"));
        assert_eq!(&p.hash_part_bytes()[..], HASH.as_bytes());
        assert_eq!(p.name, "net-tools-1.60_p20170221182432");
        assert_eq!(p.digest()[0], 0x8a);
        assert_eq!(
            p.to_string(),
            format!("{HASH}-net-tools-1.60_p20170221182432")
        );
        for name in ["a", "A-Za-z0-9+-._?=", "x.", &"n".repeat(MAX_NAME_LEN)] {
            assert_eq!(sp(&format!("{HASH}-{name}")).name, name);
        }
    }

    #[test]
    fn base_name_errors() {
        let too_long = "n".repeat(MAX_NAME_LEN + 1);
        let cases: &[(&str, String, BaseNameError)] = &[
            ("empty", String::new(), BaseNameError::TooShort),
            ("hash only", HASH.into(), BaseNameError::TooShort),
            (
                "hash and dash",
                format!("{HASH}-"),
                BaseNameError::EmptyName,
            ),
            (
                "31-char hash",
                format!("{}-foo", &HASH[1..]),
                BaseNameError::Hash(nixbase32::DecodeError::InvalidChar {
                    index: 31,
                    byte: b'-',
                }),
            ),
            (
                "crane's eeee hash",
                format!("{}-foo", "e".repeat(32)),
                BaseNameError::Hash(nixbase32::DecodeError::InvalidChar {
                    index: 0,
                    byte: b'e',
                }),
            ),
            ("no dash", format!("{HASH}_foo"), BaseNameError::MissingDash),
            (
                "too long",
                format!("{HASH}-{too_long}"),
                BaseNameError::NameTooLong {
                    len: MAX_NAME_LEN + 1,
                },
            ),
            (
                "dot name",
                format!("{HASH}-."),
                BaseNameError::NameStartsWithDot,
            ),
            (
                "dot dot name",
                format!("{HASH}-.."),
                BaseNameError::NameStartsWithDot,
            ),
            (
                "hidden name",
                format!("{HASH}-.foo"),
                BaseNameError::NameStartsWithDot,
            ),
            (
                "slash",
                format!("{HASH}-foo/bar"),
                BaseNameError::InvalidNameChar {
                    index: 3,
                    byte: b'/',
                },
            ),
            (
                "space",
                format!("{HASH}-a b"),
                BaseNameError::InvalidNameChar {
                    index: 1,
                    byte: b' ',
                },
            ),
            (
                "non-ascii",
                format!("{HASH}-é"),
                BaseNameError::InvalidNameChar {
                    index: 0,
                    byte: 0xc3,
                },
            ),
        ];
        for (name, input, reason) in cases {
            assert_eq!(
                StorePath::from_base_name(input),
                Err(StoreError::InvalidBaseName {
                    base_name: input.clone(),
                    reason: reason.clone()
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn parse_splits_store_path_and_sub_path() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("store path itself", "/nix/store", "/nix/store/{H}-foo", ""),
            ("trailing slash", "/nix/store", "/nix/store/{H}-foo/", ""),
            (
                "sub-path",
                "/nix/store",
                "/nix/store/{H}-foo/lib/libfoo.so",
                "lib/libfoo.so",
            ),
            (
                "doubled slashes",
                "/nix/store",
                "/nix//store/{H}-foo//lib",
                "lib",
            ),
            ("other store", "/tmp/store", "/tmp/store/{H}-foo/bin", "bin"),
        ];
        for (name, dir, input, sub) in cases {
            let input = input.replace("{H}", HASH);
            let (path, rest) = store(dir).parse(Path::new(&input)).unwrap();
            assert_eq!(path, sp(&format!("{HASH}-foo")), "{name}");
            assert_eq!(rest, Path::new(sub), "{name}");
            assert_eq!(
                store(dir).to_absolute(&path).join(&rest),
                Path::new(dir).join(format!("{HASH}-foo")).join(sub)
            );
        }
    }

    #[test]
    fn parse_rejects() {
        let nix = store("/nix/store");
        let not_in = |p: &str| StoreError::NotInStore {
            path: p.into(),
            store_dir: "/nix/store".into(),
        };
        let not_normal = |p: &str| StoreError::NotNormal { path: p.into() };
        let cases: Vec<(&str, String, StoreError)> = vec![
            ("outside", "/tmp/x".into(), not_in("/tmp/x")),
            ("relative", "nix/store/x".into(), not_in("nix/store/x")),
            (
                "store dir itself",
                "/nix/store".into(),
                not_in("/nix/store"),
            ),
            (
                "sibling with same prefix",
                format!("/nix/store2/{HASH}-foo"),
                not_in(&format!("/nix/store2/{HASH}-foo")),
            ),
            (
                "escape via ..",
                format!("/nix/store/{HASH}-foo/../../etc"),
                not_normal(&format!("/nix/store/{HASH}-foo/../../etc")),
            ),
            (
                "dot in sub-path",
                format!("/nix/store/{HASH}-foo/./bin"),
                not_normal(&format!("/nix/store/{HASH}-foo/./bin")),
            ),
            (
                "climb out of the store dir",
                "/nix/store/../etc".into(),
                not_normal("/nix/store/../etc"),
            ),
            (
                "bad base name",
                "/nix/store/foo".into(),
                StoreError::InvalidBaseName {
                    base_name: "foo".into(),
                    reason: BaseNameError::TooShort,
                },
            ),
        ];
        for (name, input, err) in cases {
            assert_eq!(nix.parse(Path::new(&input)), Err(err), "{name}");
        }
    }

    #[test]
    fn orders_by_base_name_like_ls() {
        let mut paths: Vec<StorePath> = [
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-a",
            "00bgd045z0d4icpbc2yyz4gx48ak44la-b",
            "00bgd045z0d4icpbc2yyz4gx48ak44la-a",
            "10000000000000000000000000000000-a",
            "04000000000000000000000000000000-a",
        ]
        .iter()
        .map(|s| sp(s))
        .collect();
        paths.sort();
        let rendered: Vec<String> = paths.iter().map(ToString::to_string).collect();
        let mut want = rendered.clone();
        want.sort();
        assert_eq!(rendered, want);
        // Negative control: digest byte order disagrees with base name order for these two.
        let (a, b) = (
            sp("00000000000000000000000000000001-a"),
            sp("10000000000000000000000000000000-a"),
        );
        assert!(a < b);
        assert!(a.digest() > b.digest());
    }

    #[test]
    fn error_messages() {
        let err = store("/nix/store").parse(Path::new("/tmp/x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`/tmp/x` is not inside the Nix store `/nix/store`; pass --store-dir or set NIX_STORE_DIR if your store lives elsewhere"
        );
        let err = StorePath::from_base_name(&format!("{HASH}-a b")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{HASH}-a b` is not a valid store path base name (name contains ` ` at position 1; allowed are A-Z a-z 0-9 + - . _ ? =); expected `<32-char nixbase32 hash>-<name>`")
        );
    }
}
