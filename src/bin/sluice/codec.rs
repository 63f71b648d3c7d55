//! Keys and values as the command line shows and takes them: hex, or typed
//! from the type names a table's metadata records (built-in types only).
//!
//! The encodings mirror `src/types/primitive.rs`: integers big-endian,
//! signed ones with the sign bit flipped (so byte order is numeric order);
//! `bool` one byte; `char` its code point as a big-endian `u32`; strings
//! UTF-8; byte slices and arrays as they are.

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

pub(crate) fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return Err(format!("{text:?} is not hex: odd number of digits"));
    }
    let digit = |c: u8| -> Result<u8, String> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("{text:?} is not hex: bad digit {:?}", c as char))
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// How one column (keys or values) of a table is shown and parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Unsigned(usize),
    Signed(usize),
    Bool,
    Char,
    Unit,
    Str,
    /// Bytes shown as hex (`&[u8]`, `[u8;N]`, `Vec<u8>`, unknown types).
    Hex,
}

impl Codec {
    /// The codec for a recorded type name; `None` if it is not built in.
    pub(crate) fn for_type(name: &str) -> Option<Self> {
        Some(match name {
            "u8" => Self::Unsigned(1),
            "u16" => Self::Unsigned(2),
            "u32" => Self::Unsigned(4),
            "u64" | "usize" => Self::Unsigned(8),
            "u128" => Self::Unsigned(16),
            "i8" => Self::Signed(1),
            "i16" => Self::Signed(2),
            "i32" => Self::Signed(4),
            "i64" | "isize" => Self::Signed(8),
            "i128" => Self::Signed(16),
            "bool" => Self::Bool,
            "char" => Self::Char,
            "()" => Self::Unit,
            "&str" | "String" => Self::Str,
            "&[u8]" | "Vec<u8>" => Self::Hex,
            n if n.starts_with("[u8;") && n.ends_with(']') => Self::Hex,
            _ => return None,
        })
    }

    pub(crate) fn render(&self, bytes: &[u8]) -> String {
        match self {
            Self::Unsigned(w) | Self::Signed(w) if bytes.len() != *w => to_hex(bytes),
            Self::Unsigned(_) => be_u128(bytes).to_string(),
            Self::Signed(w) => {
                let bits = 8 * *w as u32;
                let raw = be_u128(bytes) ^ (1u128 << (bits - 1));
                // Sign-extend from `bits`.
                let shift = 128 - bits;
                (((raw << shift) as i128) >> shift).to_string()
            }
            Self::Bool => match bytes {
                [0] => "false".into(),
                [1] => "true".into(),
                _ => to_hex(bytes),
            },
            Self::Char => match <[u8; 4]>::try_from(bytes)
                .ok()
                .and_then(|b| char::from_u32(u32::from_be_bytes(b)))
            {
                Some(c) => c.to_string(),
                None => to_hex(bytes),
            },
            Self::Unit => "()".into(),
            Self::Str => match std::str::from_utf8(bytes) {
                Ok(s) => s.to_string(),
                Err(_) => to_hex(bytes),
            },
            Self::Hex => to_hex(bytes),
        }
    }

    pub(crate) fn parse(&self, text: &str) -> Result<Vec<u8>, String> {
        let bad = |what: &str| format!("{text:?} is not {what}");
        Ok(match self {
            Self::Unsigned(w) => {
                let v: u128 = text.parse().map_err(|_| bad("an unsigned integer"))?;
                if *w < 16 && v >> (8 * w) != 0 {
                    return Err(bad(&format!("a {}-bit unsigned integer", 8 * w)));
                }
                v.to_be_bytes()[16 - w..].to_vec()
            }
            Self::Signed(w) => {
                let v: i128 = text.parse().map_err(|_| bad("an integer"))?;
                let bits = 8 * *w as u32;
                if bits < 128 && (v < -(1i128 << (bits - 1)) || v >= 1i128 << (bits - 1)) {
                    return Err(bad(&format!("a {bits}-bit integer")));
                }
                let flipped = (v as u128) ^ (1u128 << (bits - 1));
                flipped.to_be_bytes()[16 - w..].to_vec()
            }
            Self::Bool => match text {
                "true" => vec![1],
                "false" => vec![0],
                _ => return Err(bad("true or false")),
            },
            Self::Char => {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => u32::from(c).to_be_bytes().to_vec(),
                    _ => return Err(bad("one character")),
                }
            }
            Self::Unit => Vec::new(),
            Self::Str => text.as_bytes().to_vec(),
            Self::Hex => from_hex(text)?,
        })
    }
}

fn be_u128(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0u128, |acc, &b| acc << 8 | u128::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_the_library_encoding() {
        let i = Codec::Signed(8);
        assert_eq!(i.parse("-1").unwrap(), ((-1i64 as u64) ^ (1 << 63)).to_be_bytes());
        for v in ["-9223372036854775808", "-1", "0", "42", "9223372036854775807"] {
            assert_eq!(i.render(&i.parse(v).unwrap()), v);
        }
        assert!(i.parse("9223372036854775808").is_err());
        let u = Codec::Unsigned(2);
        assert_eq!(u.parse("258").unwrap(), [1, 2]);
        assert!(u.parse("65536").is_err());
        assert_eq!(Codec::Signed(1).render(&[0]), "-128");
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(from_hex(&to_hex(&[0, 255, 16])).unwrap(), [0, 255, 16]);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }
}
