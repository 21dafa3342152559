//! Nix's base32, the encoding of the hash part of every store path.
//!
//! It is not RFC 4648 base32, and it is odd in three ways that all have to be matched exactly,
//! because store path hashes are compared as strings by Nix and by the reference scanner:
//!
//! - **Alphabet.** `0123456789abcdfghijklmnpqrsvwxyz`: digits and lowercase letters minus
//!   `e`, `o`, `u` and `t`, which Nix dropped to avoid accidental words in hashes. A consequence we
//!   rely on: crane rewrites hashes to `eeee…`, which can therefore never look like a real hash.
//! - **Reversed.** The *last* character encodes the *lowest* five bits of the *first* byte; the
//!   string is the little-endian bit stream written most significant digit first. So encoding is
//!   not a left-to-right walk over the input, and string order is not byte order.
//! - **No padding.** The length is `ceil(8 * bytes / 5)`; when that leaves spare high bits in the
//!   first character they must be zero, so every byte string has exactly one encoding.
//!
//! The alphabet is ASCII-ascending, so comparing encoded strings compares digit values.

use std::fmt;

/// The 32 digits, in value order.
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Marks a byte that is not a digit in [`DIGIT_VALUE`].
const INVALID: u8 = 0xff;

/// Byte -> digit value, or [`INVALID`]. A table so the scanner's hot loop is one load per byte.
const DIGIT_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut value = 0;
    while value < ALPHABET.len() {
        table[ALPHABET[value] as usize] = value as u8;
        value += 1;
    }
    table
};

/// Whether `byte` is one of the 32 digits of [`ALPHABET`].
#[inline]
pub(crate) const fn is_char(byte: u8) -> bool {
    DIGIT_VALUE[byte as usize] != INVALID
}

/// Number of characters that encode `bytes` bytes.
pub(crate) const fn encoded_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

/// Encodes `input` the way Nix prints hashes.
pub fn encode(input: &[u8]) -> String {
    let mut out = vec![0; encoded_len(input.len())];
    encode_into(input, &mut out);
    // Every byte written comes from ALPHABET, which is ASCII.
    String::from_utf8(out).expect("nixbase32 output is ASCII")
}

/// Encodes `input` into `out`, which must be exactly `encoded_len(input.len())` long; lets callers
/// encode a digest on the stack (store path ordering does this on every comparison).
pub(crate) fn encode_into(input: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), encoded_len(input.len()));
    let len = out.len();
    for (n, slot) in out.iter_mut().enumerate() {
        // Character `n` (from the left) holds the bits starting at bit `5 * (len - 1 - n)` of the
        // input read as one little-endian number.
        let bit = 5 * (len - 1 - n);
        let (byte, shift) = (bit / 8, bit % 8);
        let low = input[byte] >> shift;
        let high = match input.get(byte + 1) {
            // `shift` can be 0, where `<< 8` would overflow a u8; those bits are not needed then.
            Some(&next) if shift > 3 => next << (8 - shift),
            _ => 0,
        };
        *slot = ALPHABET[((low | high) & 0x1f) as usize];
    }
}

/// Why a string is not valid nixbase32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// `byte` at `index` is not in the alphabet.
    InvalidChar { index: usize, byte: u8 },
    /// No byte string encodes to `len` characters (or not the length that was asked for).
    InvalidLength { len: usize },
    /// The first character sets bits beyond the last byte, so this is not the canonical encoding.
    NonZeroPadding,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::InvalidChar { index, byte } => write!(
                f,
                "invalid nixbase32 character {:?} at position {index} (allowed: {})",
                char::from(byte).escape_default().to_string(),
                std::str::from_utf8(ALPHABET).expect("alphabet is ASCII"),
            ),
            DecodeError::InvalidLength { len } => {
                write!(f, "{len} characters is not a valid nixbase32 hash length")
            }
            DecodeError::NonZeroPadding => {
                f.write_str("the first nixbase32 character has bits set beyond the hash")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly `N` bytes, e.g. the 20-byte digest of a store path.
pub(crate) fn decode_fixed<const N: usize>(
    input: impl AsRef<[u8]>,
) -> Result<[u8; N], DecodeError> {
    let input = input.as_ref();
    if input.len() != encoded_len(N) {
        return Err(DecodeError::InvalidLength { len: input.len() });
    }
    let mut out = [0; N];
    decode_into(input, &mut out)?;
    Ok(out)
}

/// The inverse of [`encode_into`]; `input.len()` must already be `encoded_len(out.len())`.
fn decode_into(input: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let len = input.len();
    for (index, &byte) in input.iter().enumerate() {
        let digit = DIGIT_VALUE[byte as usize];
        if digit == INVALID {
            return Err(DecodeError::InvalidChar { index, byte });
        }
        let bit = 5 * (len - 1 - index);
        let (pos, shift) = (bit / 8, bit % 8);
        out[pos] |= digit << shift;
        let carry = if shift > 3 { digit >> (8 - shift) } else { 0 };
        match out.get_mut(pos + 1) {
            Some(next) => *next |= carry,
            None if carry != 0 => return Err(DecodeError::NonZeroPadding),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes any length some byte string encodes to, for Nix's vectors of every hash size
    /// (cargo-nixcache itself decodes only store path digests, with `decode_fixed`).
    fn decode(input: &str) -> Result<Vec<u8>, DecodeError> {
        let bytes = input.len() * 5 / 8;
        if encoded_len(bytes) != input.len() {
            return Err(DecodeError::InvalidLength { len: input.len() });
        }
        let mut out = vec![0; bytes];
        decode_into(input.as_bytes(), &mut out)?;
        Ok(out)
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// (name, hex bytes, nixbase32). Produced by Nix 2.8: `nix-hash --type <t> --to-base32 <hex>`.
    const VECTORS: &[(&str, &str, &str)] = &[
        ("empty", "", ""),
        (
            "sha256 of the empty string",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
        ),
        (
            "sha256 all ones (top digit carries 1 bit)",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ),
        (
            "store path digest (net-tools)",
            "8a12321522fd91efbd60ebb2481af88580f61600",
            "00bgd045z0d4icpbc2yyz4gx48ak44la",
        ),
        (
            "sha1 one: the last byte lands in the first characters",
            "0000000000000000000000000000000000000001",
            "04000000000000000000000000000000",
        ),
        (
            "sha1 all ones",
            "ffffffffffffffffffffffffffffffffffffffff",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ),
        (
            "sha1 counting",
            "0102030405060708090a0b0c0d0e0f1011121314",
            "2h9i448h1w70s30b184hh1q60l2060h1",
        ),
        (
            "md5 of the empty string (16 bytes)",
            "d41d8cd98f00b204e9800998ecf8427e",
            "3y8bwfr609h3lh9ch0izcqq7fl",
        ),
    ];

    #[test]
    fn encodes_like_nix() {
        for &(name, bytes, text) in VECTORS {
            assert_eq!(encode(&hex(bytes)), text, "{name}");
        }
    }

    #[test]
    fn decodes_like_nix() {
        for &(name, bytes, text) in VECTORS {
            assert_eq!(decode(text), Ok(hex(bytes)), "{name}");
        }
    }

    #[test]
    fn decode_fixed_round_trips_digests() {
        // A spread of 20-byte digests: every byte value appears at every position over the run.
        for seed in 0..=255u8 {
            let digest: [u8; 20] = std::array::from_fn(|i| {
                seed.wrapping_mul(31)
                    .wrapping_add((i as u8).wrapping_mul(97))
            });
            let text = encode(&digest);
            assert_eq!(text.len(), 32);
            assert_eq!(decode_fixed::<20>(&text), Ok(digest), "{text}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        let cases: &[(&str, &str, DecodeError)] = &[
            // `e` is what crane rewrites hashes to; it is deliberately not a digit.
            (
                "letter e",
                "0000000000000000000000000000000e",
                DecodeError::InvalidChar {
                    index: 31,
                    byte: b'e',
                },
            ),
            (
                "uppercase",
                "0Z",
                DecodeError::InvalidChar {
                    index: 1,
                    byte: b'Z',
                },
            ),
            (
                "dash",
                "-0",
                DecodeError::InvalidChar {
                    index: 0,
                    byte: b'-',
                },
            ),
            (
                "one char encodes nothing",
                "0",
                DecodeError::InvalidLength { len: 1 },
            ),
            (
                "three chars encode nothing",
                "000",
                DecodeError::InvalidLength { len: 3 },
            ),
            (
                "bits beyond 32 bytes",
                "2zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                DecodeError::NonZeroPadding,
            ),
        ];
        for (name, input, err) in cases {
            assert_eq!(decode(input), Err(*err), "{name}");
        }
    }

    #[test]
    fn decode_fixed_rejects_wrong_lengths() {
        let cases: &[(&str, &str)] = &[
            ("31 chars", "0000000000000000000000000000000"),
            ("33 chars", "000000000000000000000000000000000"),
            (
                "a sha256",
                "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
            ),
        ];
        for (name, input) in cases {
            assert_eq!(
                decode_fixed::<20>(input),
                Err(DecodeError::InvalidLength { len: input.len() }),
                "{name}"
            );
        }
    }

    #[test]
    fn is_char_matches_the_alphabet_exactly() {
        for byte in 0..=255u8 {
            assert_eq!(is_char(byte), ALPHABET.contains(&byte), "byte {byte:#04x}");
        }
        assert!(!is_char(b'e') && !is_char(b'o') && !is_char(b'u') && !is_char(b't'));
    }

    #[test]
    fn alphabet_is_ascending_so_string_order_is_digit_order() {
        assert!(ALPHABET.windows(2).all(|w| w[0] < w[1]));
    }
}
