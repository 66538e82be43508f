//! Character sets named by MSH-18 (HL7 table 0211). Sluice keeps every
//! message as the bytes that arrived; text is decoded only when a field is
//! read and encoded only when Sluice writes text of its own (ACK texts).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A character set Sluice can decode and encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charset {
    #[serde(rename = "ASCII")]
    Ascii,
    #[serde(rename = "8859/1")]
    Latin1,
    #[serde(rename = "UNICODE UTF-8")]
    Utf8,
}

impl Charset {
    /// Reads an MSH-18 value. Accepts the table 0211 names and the spellings
    /// real senders use (`UTF-8`, `ISO-8859-1`, `ISO_IR 100`).
    pub fn from_hl7_name(name: &[u8]) -> Option<Charset> {
        let name = std::str::from_utf8(name).ok()?.trim().to_ascii_uppercase();
        match name.as_str() {
            "ASCII" | "US-ASCII" | "ISO_IR 6" => Some(Charset::Ascii),
            "8859/1" | "ISO-8859-1" | "ISO8859-1" | "ISO_IR 100" | "LATIN1" => Some(Charset::Latin1),
            "UNICODE UTF-8" | "UTF-8" | "UTF8" | "ISO_IR 192" => Some(Charset::Utf8),
            _ => None,
        }
    }

    /// The table 0211 name, as written in MSH-18.
    pub fn hl7_name(self) -> &'static str {
        match self {
            Charset::Ascii => "ASCII",
            Charset::Latin1 => "8859/1",
            Charset::Utf8 => "UNICODE UTF-8",
        }
    }

    /// Decodes field bytes to text. Bytes that are not valid in the declared
    /// set become U+FFFD rather than failing: the raw message is kept intact,
    /// so nothing is lost by a lossy view of it.
    pub fn decode(self, bytes: &[u8]) -> Cow<'_, str> {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes),
            Charset::Ascii => {
                if bytes.is_ascii() {
                    Cow::Borrowed(std::str::from_utf8(bytes).expect("ASCII is UTF-8"))
                } else {
                    Cow::Owned(bytes.iter().map(|&b| if b.is_ascii() { b as char } else { '\u{FFFD}' }).collect())
                }
            }
            Charset::Latin1 => {
                if bytes.is_ascii() {
                    Cow::Borrowed(std::str::from_utf8(bytes).expect("ASCII is UTF-8"))
                } else {
                    // ISO 8859-1 maps each byte to the code point of the same value.
                    Cow::Owned(bytes.iter().map(|&b| b as char).collect())
                }
            }
        }
    }

    /// Whether this set can represent `c`.
    pub fn holds(self, c: char) -> bool {
        match self {
            Charset::Utf8 => true,
            Charset::Ascii => c.is_ascii(),
            Charset::Latin1 => (c as u32) < 256,
        }
    }

    /// Encodes one character; false (and nothing written) when this set cannot represent it.
    pub fn encode_char(self, c: char, out: &mut Vec<u8>) -> bool {
        if !self.holds(c) {
            return false;
        }
        match self {
            Charset::Utf8 => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
            // Both hold only code points below 256 here, each one byte of the same value.
            Charset::Ascii | Charset::Latin1 => out.push(c as u32 as u8),
        }
        true
    }
}

/// How MSH-18 is interpreted: `default` applies when MSH-18 is empty, or to
/// every message when `force` is set (for senders that label their charset wrongly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharsetPolicy {
    pub default: Charset,
    pub force: bool,
}

impl Default for CharsetPolicy {
    fn default() -> Self {
        CharsetPolicy { default: Charset::Utf8, force: false }
    }
}

impl CharsetPolicy {
    /// The charset for a message with this MSH-18 (first repetition), or
    /// `Err(name)` when the message names a set Sluice does not support.
    pub fn resolve(self, msh18: &[u8]) -> Result<Charset, String> {
        if self.force || msh18.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(self.default);
        }
        Charset::from_hl7_name(msh18).ok_or_else(|| String::from_utf8_lossy(msh18).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_latin1_and_utf8() {
        assert_eq!(Charset::Latin1.decode(b"M\xfcller"), "Müller");
        assert_eq!(Charset::Utf8.decode("Müller".as_bytes()), "Müller");
        assert_eq!(Charset::Ascii.decode(b"M\xfcller"), "M\u{FFFD}ller");
        assert_eq!(Charset::Utf8.decode(b"M\xfcller"), "M\u{FFFD}ller");
    }

    #[test]
    fn encodes_what_the_set_can_hold() {
        let mut out = Vec::new();
        assert!(Charset::Latin1.encode_char('ü', &mut out));
        assert_eq!(out, b"\xfc");
        assert!(!Charset::Latin1.encode_char('€', &mut out));
        assert!(!Charset::Ascii.encode_char('ü', &mut out));
    }

    #[test]
    fn policy_uses_msh18_default_and_force() {
        let policy = CharsetPolicy { default: Charset::Utf8, force: false };
        assert_eq!(policy.resolve(b""), Ok(Charset::Utf8));
        assert_eq!(policy.resolve(b"8859/1"), Ok(Charset::Latin1));
        assert_eq!(policy.resolve(b"unicode utf-8"), Ok(Charset::Utf8));
        assert_eq!(policy.resolve(b"ISO IR87"), Err("ISO IR87".to_string()));
        let forced = CharsetPolicy { default: Charset::Latin1, force: true };
        assert_eq!(forced.resolve(b"UNICODE UTF-8"), Ok(Charset::Latin1));
    }
}
